"""The killfeed's memory: which events were posted, which batches are in flight, and cursors.

One SQLite file per bot (WAL mode, ``synchronous=FULL``) holds three tables, each keyed by a
*scope* (``"<guild id>:<server name>"``):

- ``posted``: every event id that reached Discord, with its message id and when;
- ``pending``: batches written *before* their message is sent and deleted, in the same
  transaction that records their ids as posted, once it was. A pending batch found at startup
  means the process died around a send; :meth:`KillfeedSink.recover` settles it by looking
  for the message in the channel's history;
- ``cursors``: where each log stream of a scope was read up to, committed only after the
  events before it were posted.

Together they give exactly-once posting across crashes: a re-read never double-posts (the ids
are in ``posted``), and a kill is never lost (the cursor moves only after its post).

:class:`Ledger` is synchronous and thread-safe (one connection behind a lock). Code on the event
loop uses :class:`AsyncLedger`, which runs every call on the worker pool's ``db`` lane.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sqlite3
import threading
from typing import Any, Iterable, Sequence

from ..engine.clock import SYSTEM_CLOCK, Clock
from ..engine.pool import WorkerPool

DEFAULT_RETENTION = _dt.timedelta(days=14)
DB_LANE = "db"
_MAX_PARAMS = 500  # well under SQLite's host-parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS posted (
    scope TEXT NOT NULL,
    event_id TEXT NOT NULL,
    message_id INTEGER,
    posted_at REAL NOT NULL,
    PRIMARY KEY (scope, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS posted_by_time ON posted (posted_at);
CREATE TABLE IF NOT EXISTS pending (
    scope TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    event_ids TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (scope, batch_id)
);
CREATE TABLE IF NOT EXISTS cursors (
    scope TEXT NOT NULL,
    stream TEXT NOT NULL,
    cursor TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (scope, stream)
);
"""


class Ledger:
    """The SQLite ledger; every method is one transaction and safe to call from any thread."""

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = os.fspath(path)
        self._clock = clock
        self._lock = threading.Lock()
        # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed pending batch must survive power loss, or a sent message could
        # be posted again.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    # -- cursors ------------------------------------------------------------------------------

    def get_cursor(self, scope: str, stream: str) -> dict[str, Any] | None:
        """The committed cursor of ``stream``, or None before the first run."""
        row = self._one(
            "SELECT cursor FROM cursors WHERE scope = ? AND stream = ?", (scope, stream)
        )
        return None if row is None else json.loads(row[0])

    def set_cursor(self, scope: str, stream: str, cursor: dict[str, Any]) -> None:
        """Commit ``cursor``; call it only after every event before it was posted."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO cursors (scope, stream, cursor, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope, stream) DO UPDATE SET cursor = excluded.cursor, "
                "updated_at = excluded.updated_at",
                (scope, stream, json.dumps(cursor, sort_keys=True), self._now()),
            )

    # -- posted ids and batches ---------------------------------------------------------------

    def posted(self, scope: str, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` were already posted in ``scope``."""
        with self._locked() as db:
            return _posted_in(db, scope, list(dict.fromkeys(ids)))

    def begin_batch(self, scope: str, batch_id: str, ids: Sequence[str]) -> None:
        """Record that a message holding ``ids`` is about to be sent (committed before it is)."""
        with self._transaction() as db:
            self._insert_pending(db, scope, batch_id, ids)

    def begin_unposted(
        self, scope: str, batch_id: str, ids: Sequence[str], limit: int
    ) -> set[str]:
        """:meth:`posted` and :meth:`begin_batch` in one transaction: returns which of ``ids``
        were posted, and records batch ``batch_id`` for the others (in order) when there are
        some and at most ``limit`` (one message). The common post of a few kills then makes one
        trip to the ``db`` lane before its message, not two."""
        wanted = list(dict.fromkeys(ids))
        with self._transaction() as db:
            found = _posted_in(db, scope, wanted)
            fresh = [event_id for event_id in wanted if event_id not in found]
            if fresh and len(fresh) <= limit:
                self._insert_pending(db, scope, batch_id, fresh)
        return found

    def _insert_pending(
        self, db: sqlite3.Connection, scope: str, batch_id: str, ids: Sequence[str]
    ) -> None:
        db.execute(
            "INSERT INTO pending (scope, batch_id, event_ids, created_at) VALUES (?, ?, ?, ?)",
            (scope, batch_id, json.dumps(list(ids)), self._now()),
        )

    def commit_batch(self, scope: str, batch_id: str, message_id: int, ids: Sequence[str]) -> None:
        """Mark ``ids`` posted in ``message_id`` and drop the pending batch, atomically."""
        now = self._now()
        with self._transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO posted (scope, event_id, message_id, posted_at) "
                "VALUES (?, ?, ?, ?)",
                [(scope, event_id, message_id, now) for event_id in ids],
            )
            db.execute("DELETE FROM pending WHERE scope = ? AND batch_id = ?", (scope, batch_id))

    def pending(self, scope: str) -> list[tuple[str, list[str]]]:
        """Batches begun and not committed or dropped, oldest first: ``(batch_id, ids)``."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT batch_id, event_ids FROM pending WHERE scope = ? "
                "ORDER BY created_at, rowid",
                (scope,),
            ).fetchall()
        return [(batch_id, json.loads(ids)) for batch_id, ids in rows]

    def last_message_id(self, scope: str) -> int | None:
        """The newest message id recorded for ``scope``: recovery reads history after it."""
        row = self._one("SELECT MAX(message_id) FROM posted WHERE scope = ?", (scope,))
        return None if row is None else row[0]

    def drop_batch(self, scope: str, batch_id: str) -> None:
        """Forget a pending batch whose message surely does not exist (it will be re-read)."""
        with self._transaction() as db:
            db.execute("DELETE FROM pending WHERE scope = ? AND batch_id = ?", (scope, batch_id))

    # -- housekeeping -------------------------------------------------------------------------

    def prune(
        self,
        older_than: _dt.timedelta = DEFAULT_RETENTION,
        *,
        now: _dt.datetime | None = None,
    ) -> int:
        """Delete posted ids older than ``older_than`` (all scopes); returns how many.

        Safe because cursors never go back that far: an id is only needed while its line
        could still be re-read.
        """
        cutoff = (now or self._clock.now()).timestamp() - older_than.total_seconds()
        with self._transaction() as db:
            pruned = db.execute("DELETE FROM posted WHERE posted_at < ?", (cutoff,)).rowcount
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'live_applied'").fetchone():
                db.execute("DELETE FROM live_applied WHERE applied_at < ?", (cutoff,))
            return pruned

    def forget_scope(self, scope: str) -> None:
        """Delete everything about ``scope`` (its server was removed, or guild data deleted),
        with its sub-scopes (``scope#log``…) and the live tables' rows (``livestore.py``)."""
        sub = scope + "#"
        with self._transaction() as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            for table in ("posted", "pending", "cursors", "live_applied", "live_state", "outbox"):
                if table in tables:
                    db.execute(
                        f"DELETE FROM {table} WHERE scope = ? OR substr(scope, 1, ?) = ?",
                        (scope, len(sub), sub),
                    )

    def scopes(self) -> list[str]:
        """Every scope with any row, sorted."""
        with self._locked() as db:
            rows = db.execute(
                "SELECT scope FROM posted UNION SELECT scope FROM pending "
                "UNION SELECT scope FROM cursors ORDER BY 1"
            ).fetchall()
        return [row[0] for row in rows]

    def stats(self, scope: str) -> dict[str, Any]:
        """``posted`` and ``pending`` counts, ``last_posted`` (aware UTC or None), ``cursors``."""
        with self._locked() as db:
            posted, last = db.execute(
                "SELECT COUNT(*), MAX(posted_at) FROM posted WHERE scope = ?", (scope,)
            ).fetchone()
            pending = db.execute(
                "SELECT COUNT(*) FROM pending WHERE scope = ?", (scope,)
            ).fetchone()[0]
            cursors = db.execute(
                "SELECT stream, cursor FROM cursors WHERE scope = ? ORDER BY stream", (scope,)
            ).fetchall()
        return {
            "posted": posted,
            "pending": pending,
            "last_posted": (None if last is None else _dt.datetime.fromtimestamp(last, _dt.UTC)),
            "cursors": {stream: json.loads(cursor) for stream, cursor in cursors},
        }

    def close(self) -> None:
        """Close the connection; later calls raise ``sqlite3.ProgrammingError``. Idempotent."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    # -- internals ----------------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock.now().timestamp()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the killfeed ledger is closed")
        return self._db

    def _one(self, sql: str, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        with self._locked() as db:
            return db.execute(sql, args).fetchone()

    def _locked(self) -> _Locked:
        return _Locked(self, transaction=False)

    def _transaction(self) -> _Locked:
        return _Locked(self, transaction=True)


def _posted_in(db: sqlite3.Connection, scope: str, wanted: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(wanted), _MAX_PARAMS):
        part = wanted[start : start + _MAX_PARAMS]
        marks = ",".join("?" * len(part))
        rows = db.execute(
            f"SELECT event_id FROM posted WHERE scope = ? AND event_id IN ({marks})",
            (scope, *part),
        )
        found.update(row[0] for row in rows)
    return found


class _Locked:
    """Hold the ledger's lock, optionally inside ``BEGIN IMMEDIATE`` ... ``COMMIT``."""

    def __init__(self, ledger: Ledger, *, transaction: bool) -> None:
        self._ledger = ledger
        self._transaction = transaction

    def __enter__(self) -> sqlite3.Connection:
        self._ledger._lock.acquire()
        try:
            db = self._ledger._conn()
            if self._transaction:
                db.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._ledger._lock.release()
            raise
        return db

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if self._transaction:
                db = self._ledger._conn()
                db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
        finally:
            self._ledger._lock.release()


class AsyncLedger:
    """:class:`Ledger` for the event loop: each call runs on the pool's ``db`` lane.

    ``memo=True`` (only when this process is the file's one writer) remembers committed cursors
    and scopes with no pending batch, so a poll with nothing new costs no trip to the lane.
    """

    def __init__(self, ledger: Ledger, pool: WorkerPool, *, memo: bool = False) -> None:
        self.ledger = ledger
        self._pool = pool
        self._memo = memo
        self._cursors: dict[tuple[str, str], dict[str, Any]] = {}
        self._settled: set[str] = set()  # scopes known to have no pending batch

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await self._pool.submit(DB_LANE, fn, *args, **kwargs)

    async def get_cursor(self, scope: str, stream: str) -> dict[str, Any] | None:
        known = self._cursors.get((scope, stream))
        if known is not None:
            return dict(known)
        cursor = await self._run(self.ledger.get_cursor, scope, stream)
        if self._memo and cursor is not None:
            self._cursors[(scope, stream)] = dict(cursor)
        return cursor

    async def set_cursor(self, scope: str, stream: str, cursor: dict[str, Any]) -> None:
        self._cursors.pop((scope, stream), None)
        await self._run(self.ledger.set_cursor, scope, stream, cursor)
        if self._memo:
            self._cursors[(scope, stream)] = dict(cursor)

    async def posted(self, scope: str, ids: Iterable[str]) -> set[str]:
        return await self._run(self.ledger.posted, scope, list(ids))

    async def begin_batch(self, scope: str, batch_id: str, ids: Sequence[str]) -> None:
        self._settled.discard(scope)
        await self._run(self.ledger.begin_batch, scope, batch_id, list(ids))

    async def begin_unposted(
        self, scope: str, batch_id: str, ids: Sequence[str], limit: int
    ) -> set[str]:
        self._settled.discard(scope)
        return await self._run(self.ledger.begin_unposted, scope, batch_id, list(ids), limit)

    async def commit_batch(
        self, scope: str, batch_id: str, message_id: int, ids: Sequence[str]
    ) -> None:
        await self._run(self.ledger.commit_batch, scope, batch_id, message_id, list(ids))

    async def pending(self, scope: str) -> list[tuple[str, list[str]]]:
        if scope in self._settled:
            return []
        pending = await self._run(self.ledger.pending, scope)
        if self._memo and not pending:
            self._settled.add(scope)
        return pending

    async def last_message_id(self, scope: str) -> int | None:
        return await self._run(self.ledger.last_message_id, scope)

    async def drop_batch(self, scope: str, batch_id: str) -> None:
        await self._run(self.ledger.drop_batch, scope, batch_id)

    async def prune(
        self,
        older_than: _dt.timedelta = DEFAULT_RETENTION,
        *,
        now: _dt.datetime | None = None,
    ) -> int:
        return await self._run(self.ledger.prune, older_than, now=now)

    async def forget_scope(self, scope: str) -> None:
        self._cursors.clear()
        self._settled.clear()
        await self._run(self.ledger.forget_scope, scope)

    async def scopes(self) -> list[str]:
        return await self._run(self.ledger.scopes)

    async def stats(self, scope: str) -> dict[str, Any]:
        return await self._run(self.ledger.stats, scope)

    async def close(self) -> None:
        await self._run(self.ledger.close)
