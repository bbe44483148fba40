"""The built-in tasks, one module each. New built-in tasks (stats, leaderboards…) go here."""

from __future__ import annotations

from ..abc import MixinMeta
from ..registry import TaskSpec
from .checkpoint import checkpoint_spec
from .history import history_spec
from .housekeeping import housekeeping_spec
from .killfeed import killfeed_spec
from .leaderboard import leaderboard_spec
from .serverlog import serverlog_spec


def builtin_tasks(cog: MixinMeta) -> list[TaskSpec]:
    """Every task taskcog ships, in the order ``[p]tasks status`` lists them."""
    return [
        housekeeping_spec(cog),
        checkpoint_spec(cog),
        killfeed_spec(cog),
        history_spec(cog),
        leaderboard_spec(cog),
        serverlog_spec(cog),
    ]
