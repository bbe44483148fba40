"""Repository root: re-exports the real cog package in ``taskcog/`` (for `[p]addpath` users)."""

from .taskcog import __red_end_user_data_statement__, setup

__all__ = ["setup", "__red_end_user_data_statement__"]
