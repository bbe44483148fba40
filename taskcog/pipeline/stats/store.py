"""The stats store's public face: one SQLite (WAL) database, one lock, every method sync.

The cog calls each method through the pool's ``db`` lane (``await pool.submit("db", store.x,
...)``), so SQLite work never runs on the event loop.
"""

from __future__ import annotations

import datetime as _dt
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from . import importer, maintenance, queries
from .ingest import scope_of, zones_of
from .migrations import CURRENT, connect, migrate
from .model import (
    BOARDS,
    PERIODS,
    AddResult,
    BoardRow,
    FlaggedKill,
    ImportResult,
    PlayerMatch,
    PlayerStats,
)
from .periods import PERIOD_GRAIN, period_start, zone
from .search import NameIndex, search
from .seasons import flags, last_wipe, review, wipe

if TYPE_CHECKING:
    from ...engine.pool import Progress
    from ..events import KillEvent
    from .aggregates import PairTally

BATCH_BYTES = 16 * 1024 * 1024  # one transaction (and one cursor step) per ~150k lines


class StatsStore:
    """Synchronous SQLite (WAL) store at ``path``; migrates on open. Thread-safe.

    Source of truth = stored kill events (event id = ``KillEvent.id``, shared with the live
    feed); aggregates are derived and :meth:`rebuild` recomputes them. Stats are per current
    season of each server; ``server=None`` combines a guild's servers. Writes go through one
    connection under a lock; reads use a second connection, so in WAL mode a board answers
    while an import batch is being written.
    """

    SCHEMA_VERSION: int = CURRENT

    def __init__(
        self, path: str | Path, *, clock: Callable[[], _dt.datetime] | None = None
    ) -> None:
        """``clock``: "now" for the period rows (default: the wall clock); tests set it."""
        self.path = Path(path)
        self.clock = clock
        self._wlock = threading.RLock()
        self._rlock = threading.RLock()
        self._w = connect(self.path)
        migrate(self._w)
        self._r = connect(self.path)
        self._r.row_factory = sqlite3.Row
        self._names: dict[int, tuple[int, NameIndex]] = {}
        self._generation: dict[int, int] = {}

    def close(self) -> None:
        """Close both connections; the store is unusable afterwards."""
        with self._wlock, self._rlock:
            self._w.close()
            self._r.close()

    # -- writing -------------------------------------------------------------------------------

    def _now(self) -> _dt.datetime | None:
        return None if self.clock is None else self.clock()

    def _write(self, fn, *args):
        with self._wlock:
            self._w.execute("BEGIN IMMEDIATE")
            try:
                result = fn(self._w, *args)
            except BaseException:
                self._w.execute("ROLLBACK")
                raise
            self._w.execute("COMMIT")
            return result

    def _stored(
        self,
        guild_id: int,
        server: str,
        frame: pl.DataFrame,
        flag_over: float,
        pairs: PairTally | None = None,
    ):
        from .ingest import store_frame

        def run(con: sqlite3.Connection):
            servers = con.execute(
                "SELECT server FROM scopes WHERE guild = ? AND server != ''", (guild_id,)
            ).fetchall()
            sc = scope_of(con, guild_id, server)
            if len(servers) == 1 and (server,) not in servers:
                # a second server: the combined rows start to differ from the first server's
                maintenance.rebuild(con, guild_id, self._now())
                sc = scope_of(con, guild_id, server)
            zones = zones_of(con, guild_id, self._now())
            return sc, store_frame(con, sc, frame, flag_over, zones, pairs)

        return run

    def _names_changed(self, guild_id: int, added: int) -> None:
        if added:
            self._generation[guild_id] = self._generation.get(guild_id, 0) + 1

    def add_events(
        self,
        guild_id: int,
        server: str,
        events: Sequence[KillEvent],
        *,
        flag_over: float = 1500.0,
    ) -> AddResult:
        """Store live events (INSERT OR IGNORE by id: a re-delivered event counts nothing)."""
        if not server:
            raise ValueError("a server name is required")
        if not events:
            return AddResult(0, 0, 0)
        frame = pl.DataFrame(
            {
                "id": [e.id for e in events],
                "at": [e.at.astimezone(_dt.UTC).replace(tzinfo=None) for e in events],
                "killer": [e.killer for e in events],
                "killer_id": [e.killer_id for e in events],
                "victim": [e.victim for e in events],
                "victim_id": [e.victim_id for e in events],
                "cause": [e.cause for e in events],
                "distance": [e.distance for e in events],
                "killer_platform": [e.killer_platform for e in events],
                "victim_platform": [e.victim_platform for e in events],
                "kind": [e.kind for e in events],
            },
            schema_overrides={"at": pl.Datetime("us"), "distance": pl.Float64},
        )
        from .ids import key_expr

        frame = frame.with_columns(k=key_expr(pl.col("id")))
        with self._wlock:
            _sc, (new, known, flagged, names) = self._write(
                self._stored(guild_id, server, frame, flag_over)
            )
        self._names_changed(guild_id, names)
        return AddResult(new, known, flagged)

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
        (``final=True``: a last line without newline too). Big inputs go in batches of about
        16 MiB, one transaction each; ``progress(done_bytes, len(data))`` is reported after
        each, and ``progress.cancelled`` stops before the next (what was committed stays,
        with its cursor).
        """
        if not server:
            raise ValueError("a server name is required")
        return importer.import_file(
            self, guild_id, server, file, data, offset, final, flag_over, progress, BATCH_BYTES
        )

    def import_many(
        self,
        guild_id: int,
        server: str,
        chunks: Sequence[tuple[str, bytes, int, bool]],
        *,
        flag_over: float = 1500.0,
        progress: Progress | None = None,
    ) -> ImportResult:
        """:meth:`import_data` for many ``(file, data, offset, final)`` chunks at once: small
        files share one parse and one transaction (with all their cursors), which is what makes
        an import of 1,000 daily files fast. ``progress(done_bytes, total_bytes, file)``."""
        if not server:
            raise ValueError("a server name is required")
        return importer.import_many(
            self, guild_id, server, chunks, flag_over, progress, BATCH_BYTES
        )

    def import_parsed(
        self,
        guild_id: int,
        server: str,
        frame: pl.DataFrame,
        cursors: Sequence[tuple[str, int]],
        *,
        flag_over: float = 1500.0,
    ) -> ImportResult:
        """Store an already parsed batch (the parser's columns plus ``id``/``k`` from
        :func:`~taskcog.pipeline.stats.ids.with_ids`, e.g. from a worker) and set each
        ``(file, offset)`` of ``cursors`` in the SAME transaction. Returns ``new``/``known``;
        the parse counts (lines, malformed) are the caller's."""
        if not server:
            raise ValueError("a server name is required")
        result = ImportResult()
        importer.store_parsed(self, guild_id, server, frame, cursors, flag_over, result)
        return result

    def import_cursor(self, guild_id: int, server: str, file: str) -> int:
        """Bytes of ``file`` already imported (0 for a new file)."""
        with self._rlock:
            row = self._r.execute(
                "SELECT c.offset FROM cursors AS c JOIN scopes AS s ON s.scope = c.scope"
                " WHERE s.guild = ? AND s.server = ? AND c.file = ?",
                (guild_id, server, file),
            ).fetchone()
        return row[0] if row else 0

    def import_cursors(self, guild_id: int, server: str) -> dict[str, int]:
        """Every file of a server already (partly) imported, with its bytes imported."""
        with self._rlock:
            rows = self._r.execute(
                "SELECT c.file, c.offset FROM cursors AS c JOIN scopes AS s ON s.scope = c.scope"
                " WHERE s.guild = ? AND s.server = ?",
                (guild_id, server),
            ).fetchall()
        return dict(rows)

    def rebuild(self, guild_id: int | None = None) -> int:
        """Recompute every aggregate of one guild (or all) from the events; returns their count."""
        with self._wlock:
            guilds = (
                [guild_id]
                if guild_id is not None
                else [g for (g,) in self._w.execute("SELECT DISTINCT guild FROM scopes")]
            )
            return sum(self._write(maintenance.rebuild, g, self._now()) for g in guilds)

    def settle(self, guild_id: int) -> int:
        """Recompute the streaks of players whose events arrived out of order (reads do this
        on their own; a history import may call it once at its end)."""
        with self._wlock:
            return self._write(maintenance.settle, guild_id, self._now())

    # -- reading -------------------------------------------------------------------------------

    def _scope(self, guild_id: int, server: str | None) -> int | None:
        if not server:
            servers = self._r.execute(
                "SELECT scope FROM scopes WHERE guild = ? AND server != '' LIMIT 2", (guild_id,)
            ).fetchall()
            if len(servers) == 1:  # one server: its rows are the combined ones
                return servers[0][0]
        row = self._r.execute(
            "SELECT scope FROM scopes WHERE guild = ? AND server = ?", (guild_id, server or "")
        ).fetchone()
        return row[0] if row else None

    def _prepare(self, guild_id: int, period: str, tz: str) -> None:
        """Settle dirty streaks and derive a new zone's rows before reading."""
        if period != "all":
            zone(tz)
            with self._rlock:
                known = self._r.execute(
                    "SELECT 1 FROM zones WHERE guild = ? AND tz = ?", (guild_id, tz)
                ).fetchone()
            if not known:
                with self._wlock:
                    self._write(maintenance.ensure_zone, guild_id, tz, self._now())
        with self._rlock:
            dirty = self._r.execute(
                "SELECT 1 FROM dirty JOIN scopes USING (scope) WHERE guild = ? LIMIT 1",
                (guild_id,),
            ).fetchone()
        if dirty:
            self.settle(guild_id)

    def _bucket(self, guild_id: int, board: str, period: str, tz: str, now) -> int | None:
        if board not in BOARDS:
            raise ValueError(f"unknown board {board!r} (one of {', '.join(BOARDS)})")
        if period not in PERIODS:
            raise ValueError(f"unknown period {period!r} (one of {', '.join(PERIODS)})")
        self._prepare(guild_id, period, tz)
        grain = PERIOD_GRAIN[period]
        if grain == 0:
            return 0
        now = now or self._now()
        row = self._r.execute(
            "SELECT bid FROM buckets WHERE tz = ? AND grain = ? AND start = ?",
            (tz, grain, period_start(grain, tz, now)),
        ).fetchone()
        return row[0] if row else None

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
        """One page of a board (see ``BOARDS``/``PERIODS``); ties: first-seen player first."""
        bid = self._bucket(guild_id, board, period, tz, now)
        with self._rlock:
            scope = self._scope(guild_id, server)
            if bid is None or scope is None:
                return []
            return queries.board(self._r, board, scope, bid, max(0, limit), max(0, offset))

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
        bid = self._bucket(guild_id, board, period, tz, now)
        with self._rlock:
            scope = self._scope(guild_id, server)
            if bid is None or scope is None:
                return 0
            return queries.count(self._r, board, scope, bid)

    def player(
        self, guild_id: int, player_id: str, *, server: str | None = None
    ) -> PlayerStats | None:
        """A player's stats (current season; all servers unless ``server``), None if unknown."""
        self._prepare(guild_id, "all", "UTC")
        with self._rlock:
            scope = self._scope(guild_id, server)
            row = self._r.execute(
                "SELECT pid FROM players WHERE guild = ? AND player_id = ?", (guild_id, player_id)
            ).fetchone()
            if row is None or scope is None:
                return None
            return queries.player(self._r, scope, row[0])

    def search(self, guild_id: int, text: str, *, limit: int = 25) -> list[PlayerMatch]:
        """Exact platform id, else fuzzy over current AND earlier names, best first."""
        with self._rlock:
            generation = self._generation.get(guild_id, 0)
            cached = self._names.get(guild_id)
            if cached is None or cached[0] != generation:
                cached = (generation, NameIndex(self._r, guild_id))
                self._names[guild_id] = cached
            return search(self._r, cached[1], guild_id, text, max(1, limit))

    # -- wipes and flags -------------------------------------------------------------------------

    def wipe(self, guild_id: int, server: str, *, now: _dt.datetime | None = None) -> int:
        """Start a new season for ``server`` (top 3 of each board kept); the new season number."""
        self._prepare(guild_id, "all", "UTC")
        with self._wlock:
            return self._write(wipe, guild_id, server, now or self._now())

    def last_wipe(self, guild_id: int, server: str | None = None) -> dict[str, list[BoardRow]]:
        """The previous season's top 3 per board (of the latest wipe of ``server``/any server)."""
        with self._rlock:
            return last_wipe(self._r, guild_id, server)

    def flags(self, guild_id: int) -> list[FlaggedKill]:
        """Kills over the implausible distance waiting for review, oldest first."""
        with self._rlock:
            return flags(self._r, guild_id)

    def review(self, guild_id: int, event_id: str, approve: bool) -> bool:
        """Approve (enters records) or reject a flagged kill; False if no such pending flag."""
        with self._wlock:
            return self._write(review, guild_id, event_id, approve, self._now())
