"""Live state next to the ledger: what each scope has applied, its state, and its outbox.

The server-log feed keeps an online list, the killfeed keeps kill streaks, and the delayed feed
keeps kills until their time. All three must agree with the ledger across a crash, so they live
in the ledger's own SQLite file (same connection, same lock) in three more tables:

- ``live_applied``: event ids whose effect on a state was applied (a re-read applies nothing
  twice); pruned with the ledger's posted ids (:meth:`Ledger.prune`);
- ``live_state``: one JSON document per ``(scope, key)``;
- ``outbox``: posts waiting to be made (due now, or later for the delayed feed), oldest first.

:meth:`LiveStore.apply` runs a pure reducer over the events not applied yet and writes the new
state, the applied ids and the reducer's posts in **one transaction**. Posts then go out through
the ledger-backed sink (which skips ids already posted) and are deleted after: a crash anywhere
leaves either nothing applied (the lines are read again) or the posts in the outbox (posted at
the next run), never a post lost or made twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from ..engine.pool import WorkerPool
from .ledger import DB_LANE, Ledger

_SCHEMA = """
CREATE TABLE IF NOT EXISTS live_applied (
    scope TEXT NOT NULL,
    event_id TEXT NOT NULL,
    applied_at REAL NOT NULL,
    PRIMARY KEY (scope, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS live_applied_by_time ON live_applied (applied_at);
CREATE TABLE IF NOT EXISTS live_state (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    event_id TEXT NOT NULL,
    due REAL NOT NULL,
    payload TEXT NOT NULL,
    UNIQUE (scope, event_id)
);
CREATE INDEX IF NOT EXISTS outbox_by_due ON outbox (scope, due, seq);
"""


@dataclass(frozen=True)
class Post:
    """Something a reducer wants posted: a stable id, when it is due, and a JSON payload."""

    id: str
    due: float
    payload: dict[str, Any]


# reducer(state, fresh events) -> (new state, posts); pure, runs inside the transaction.
Reducer = Callable[[dict[str, Any], list[Any]], tuple[dict[str, Any], list[Post]]]


class LiveStore:
    """The three live tables on a :class:`Ledger`'s connection; every method is one transaction."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        with ledger._locked() as db:
            db.executescript(_SCHEMA)

    def apply(
        self, scope: str, key: str, events: Sequence[Any], reducer: Reducer, now: float
    ) -> tuple[int, dict[str, Any]]:
        """Apply the events (anything with ``.id``) not applied yet; returns (fresh, state)."""
        with self.ledger._transaction() as db:
            ids = list(dict.fromkeys(e.id for e in events))
            seen: set[str] = set()
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT event_id FROM live_applied WHERE scope = ? AND event_id IN ({marks})",
                    (scope, *part),
                )
                seen.update(row[0] for row in rows)
            fresh, taken = [], set(seen)
            for event in events:
                if event.id not in taken:
                    taken.add(event.id)
                    fresh.append(event)
            state = self._state(db, scope, key)
            if not fresh:
                return 0, state
            state, posts = reducer(state, fresh)
            db.execute(
                "INSERT INTO live_state (scope, key, state) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, key) DO UPDATE SET state = excluded.state",
                (scope, key, json.dumps(state, sort_keys=True)),
            )
            db.executemany(
                "INSERT OR IGNORE INTO live_applied (scope, event_id, applied_at) "
                "VALUES (?, ?, ?)",
                [(scope, e.id, now) for e in fresh],
            )
            db.executemany(
                "INSERT OR IGNORE INTO outbox (scope, event_id, due, payload) VALUES (?, ?, ?, ?)",
                [(scope, p.id, p.due, json.dumps(p.payload, sort_keys=True)) for p in posts],
            )
            return len(fresh), state

    def state(self, scope: str, key: str) -> dict[str, Any]:
        with self.ledger._locked() as db:
            return self._state(db, scope, key)

    def set_state(self, scope: str, key: str, state: dict[str, Any]) -> None:
        with self.ledger._transaction() as db:
            db.execute(
                "INSERT INTO live_state (scope, key, state) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, key) DO UPDATE SET state = excluded.state",
                (scope, key, json.dumps(state, sort_keys=True)),
            )

    def due(self, scope: str, now: float, limit: int = 500) -> list[tuple[int, str, dict]]:
        """Posts due by ``now``, in order: ``(seq, event id, payload)``."""
        with self.ledger._locked() as db:
            rows = db.execute(
                "SELECT seq, event_id, payload FROM outbox WHERE scope = ? AND due <= ? "
                "ORDER BY due, seq LIMIT ?",
                (scope, now, limit),
            ).fetchall()
        return [(seq, event_id, json.loads(payload)) for seq, event_id, payload in rows]

    def waiting(self, scope: str) -> tuple[int, float | None]:
        """How many posts wait in the outbox, and when the next is due."""
        with self.ledger._locked() as db:
            count, due = db.execute(
                "SELECT COUNT(*), MIN(due) FROM outbox WHERE scope = ?", (scope,)
            ).fetchone()
        return count, due

    def done(self, scope: str, seqs: Sequence[int]) -> None:
        with self.ledger._transaction() as db:
            db.executemany(
                "DELETE FROM outbox WHERE scope = ? AND seq = ?", [(scope, s) for s in seqs]
            )

    def forget_scope(self, scope: str) -> None:
        """Delete everything about ``scope`` and its sub-scopes (``scope#...``)."""
        sub = scope + "#"
        with self.ledger._transaction() as db:
            for table in ("live_applied", "live_state", "outbox"):
                db.execute(
                    f"DELETE FROM {table} WHERE scope = ? OR substr(scope, 1, ?) = ?",
                    (scope, len(sub), sub),
                )

    @staticmethod
    def _state(db: Any, scope: str, key: str) -> dict[str, Any]:
        row = db.execute(
            "SELECT state FROM live_state WHERE scope = ? AND key = ?", (scope, key)
        ).fetchone()
        return {} if row is None else json.loads(row[0])


class AsyncLiveStore:
    """:class:`LiveStore` for the event loop: each call runs on the pool's ``db`` lane."""

    def __init__(self, store: LiveStore, pool: WorkerPool) -> None:
        self.store = store
        self._pool = pool
        # scope -> when its next post is due (None: the outbox is empty). Only this process
        # writes these scopes, so a poll with nothing due needs no trip to the db lane.
        self._next_due: dict[str, float | None] = {}

    async def _run(self, fn: Any, *args: Any) -> Any:
        return await self._pool.submit(DB_LANE, fn, *args)

    async def apply(
        self, scope: str, key: str, events: Sequence[Any], reducer: Reducer, now: float
    ) -> tuple[int, dict[str, Any]]:
        self._next_due.pop(scope, None)  # it may queue posts
        return await self._run(self.store.apply, scope, key, list(events), reducer, now)

    async def state(self, scope: str, key: str) -> dict[str, Any]:
        return await self._run(self.store.state, scope, key)

    async def set_state(self, scope: str, key: str, state: dict[str, Any]) -> None:
        await self._run(self.store.set_state, scope, key, state)

    async def due(self, scope: str, now: float, limit: int = 500) -> list[tuple[int, str, dict]]:
        if scope in self._next_due:
            next_due = self._next_due[scope]
            if next_due is None or next_due > now:
                return []
        rows = await self._run(self.store.due, scope, now, limit)
        if not rows:
            self._next_due[scope] = (await self.waiting(scope))[1]
        return rows

    async def waiting(self, scope: str) -> tuple[int, float | None]:
        return await self._run(self.store.waiting, scope)

    async def done(self, scope: str, seqs: Sequence[int]) -> None:
        await self._run(self.store.done, scope, list(seqs))

    async def forget_scope(self, scope: str) -> None:
        self._next_due.clear()
        await self._run(self.store.forget_scope, scope)
