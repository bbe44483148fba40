"""Player stats and leaderboards: a SQLite (WAL) store fed by the live killfeed and by history
imports. No Red here; the cog calls the store through the pool's ``db`` lane.

The stored kill events are the source of truth (keyed by the event id the live feed shares);
every aggregate is derived from them and :meth:`StatsStore.rebuild` recomputes them.
"""

from __future__ import annotations

from .model import (
    BOARDS,
    PERIODS,
    SUICIDE_KINDS,
    AddResult,
    BoardRow,
    FlaggedKill,
    ImportResult,
    Longest,
    PlayerMatch,
    PlayerStats,
)
from .store import StatsStore

__all__ = [
    "BOARDS",
    "PERIODS",
    "SUICIDE_KINDS",
    "AddResult",
    "BoardRow",
    "FlaggedKill",
    "ImportResult",
    "Longest",
    "PlayerMatch",
    "PlayerStats",
    "StatsStore",
]
