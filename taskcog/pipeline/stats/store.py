"""The stats store's public face: one SQLite (WAL) database, one lock, every method sync.

The cog calls each method through the pool's ``db`` lane (``await pool.submit("db", store.x,
...)``), so SQLite work never runs on the event loop.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .model import AddResult, BoardRow, FlaggedKill, ImportResult, PlayerMatch, PlayerStats

if TYPE_CHECKING:
    from ...engine.pool import Progress
    from ..events import KillEvent


class StatsStore:
    """Synchronous SQLite (WAL) store at ``path``; migrates on open. Thread-safe (own lock).

    Source of truth = stored kill events (event id = ``KillEvent.id``, shared with the live
    feed); aggregates are derived and :meth:`rebuild` recomputes them. Stats are per current
    season of each server; ``server=None`` combines a guild's servers.
    """

    SCHEMA_VERSION: int = 2

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection; the store is unusable afterwards."""
        raise NotImplementedError

    # -- writing -------------------------------------------------------------------------------

    def add_events(
        self,
        guild_id: int,
        server: str,
        events: Sequence[KillEvent],
        *,
        flag_over: float = 1500.0,
    ) -> AddResult:
        """Store live events (INSERT OR IGNORE by id: a re-delivered event counts nothing)."""
        raise NotImplementedError

    def import_data(
        self,
        guild_id: int,
        server: str,
        file: str,
        data: bytes,
        *,
        offset: int,
        final: bool,
        flag_over: float = 1500.0,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Import bytes read from ``file`` at byte ``offset``, columnar (polars).

        Stores the events and sets ``import_cursor(file) = offset + consumed`` in the SAME
        transaction, so a crash or cancel resumes exactly. Only whole lines are read
        (``final=True``: a last line without newline too). ``progress(done_bytes, len(data))``
        is reported between batches; ``progress.cancelled`` stops after the current batch
        (whatever was committed stays committed with its cursor).
        """
        raise NotImplementedError

    def import_cursor(self, guild_id: int, server: str, file: str) -> int:
        """Bytes of ``file`` already imported (0 for a new file)."""
        raise NotImplementedError

    def rebuild(self, guild_id: int | None = None) -> int:
        """Recompute every aggregate of one guild (or all) from the events; returns their count."""
        raise NotImplementedError

    # -- reading -------------------------------------------------------------------------------

    def top(
        self,
        guild_id: int,
        board: str,
        period: str,
        *,
        tz: str = "UTC",
        server: str | None = None,
        limit: int = 10,
        offset: int = 0,
        now: _dt.datetime | None = None,
    ) -> list[BoardRow]:
        """One page of a board (see ``BOARDS``/``PERIODS``); ties ordered stably by player id."""
        raise NotImplementedError

    def count_ranked(
        self,
        guild_id: int,
        board: str,
        period: str,
        *,
        tz: str = "UTC",
        server: str | None = None,
        now: _dt.datetime | None = None,
    ) -> int:
        """How many rows the board has (for pagination)."""
        raise NotImplementedError

    def player(
        self, guild_id: int, player_id: str, *, server: str | None = None
    ) -> PlayerStats | None:
        """A player's stats (current season; all servers unless ``server``), None if unknown."""
        raise NotImplementedError

    def search(self, guild_id: int, text: str, *, limit: int = 25) -> list[PlayerMatch]:
        """Exact platform id, else fuzzy over current AND earlier names, best first."""
        raise NotImplementedError

    # -- wipes and flags -------------------------------------------------------------------------

    def wipe(self, guild_id: int, server: str, *, now: _dt.datetime | None = None) -> int:
        """Start a new season for ``server`` (top 3 of each board kept); the new season number."""
        raise NotImplementedError

    def last_wipe(self, guild_id: int, server: str | None = None) -> dict[str, list[BoardRow]]:
        """The previous season's top 3 per board (of the latest wipe of ``server``/any server)."""
        raise NotImplementedError

    def flags(self, guild_id: int) -> list[FlaggedKill]:
        """Kills over the implausible distance waiting for review, oldest first."""
        raise NotImplementedError

    def review(self, guild_id: int, event_id: str, approve: bool) -> bool:
        """Approve (enters records) or reject a flagged kill; False if no such pending flag."""
        raise NotImplementedError
