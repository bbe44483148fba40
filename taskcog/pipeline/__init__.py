"""taskcog's data pipeline: sources give bytes, parsers turn them into events, sinks use them.

Like the engine, nothing here imports Red or discord.py; parsers are pure functions.
"""

from .events import KillEvent, ParseResult

__all__ = ["KillEvent", "ParseResult"]
