"""The ledger for the event loop: every call on the worker pool's ``db`` lane, and with
``memo`` what this process (the file's one writer) already knows answered without a trip."""

from __future__ import annotations

import contextlib
import datetime as _dt
from typing import Any, AsyncIterator, Iterable, Sequence

from ...engine.pool import WorkerPool
from .store import DB_LANE, DEFAULT_RETENTION, Ledger


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
        # Scopes whose pending batches are exactly the ones this process began and has not
        # committed or dropped yet (``_open``); a scope with none answers ``pending`` at once.
        self._settled: set[str] = set()
        self._open: dict[str, set[str]] = {}
        self._failures = 0  # changes whose outcome is unknown (they raised)

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
        async with self._changing(scope):
            await self._run(self.ledger.begin_batch, scope, batch_id, list(ids))
        self._opened(scope, batch_id)

    async def begin_unposted(
        self, scope: str, batch_id: str, ids: Sequence[str], limit: int
    ) -> set[str]:
        async with self._changing(scope):
            already: set[str] = await self._run(
                self.ledger.begin_unposted, scope, batch_id, list(ids), limit
            )
        fresh = [event_id for event_id in dict.fromkeys(ids) if event_id not in already]
        if fresh and len(fresh) <= limit:
            self._opened(scope, batch_id)
        return already

    async def commit_batch(
        self, scope: str, batch_id: str, message_id: int, ids: Sequence[str]
    ) -> None:
        async with self._changing(scope):
            await self._run(self.ledger.commit_batch, scope, batch_id, message_id, list(ids))
        self._closed(scope, batch_id)

    async def pending(self, scope: str) -> list[tuple[str, list[str]]]:
        if scope in self._settled and not self._open.get(scope):
            return []
        before = set(self._open.get(scope, ()))
        failures = self._failures
        pending = await self._run(self.ledger.pending, scope)
        if self._memo and self._failures == failures:  # no change of unknown outcome meanwhile
            began = self._open.get(scope, set()) - before  # while the read was on its way
            self._open[scope] = {batch_id for batch_id, _ in pending} | began
            self._settled.add(scope)
        return pending

    @contextlib.asynccontextmanager
    async def _changing(self, scope: str) -> AsyncIterator[None]:
        """A pending-batch change whose outcome is unknown if it fails (or is cancelled once
        it may have started): forget what this process knew of the scope's batches."""
        try:
            yield
        except BaseException:
            self._failures += 1
            self._settled.discard(scope)
            raise

    def _opened(self, scope: str, batch_id: str) -> None:
        if self._memo:
            self._open.setdefault(scope, set()).add(batch_id)

    def _closed(self, scope: str, batch_id: str) -> None:
        self._open.get(scope, set()).discard(batch_id)

    async def last_message_id(self, scope: str) -> int | None:
        return await self._run(self.ledger.last_message_id, scope)

    async def drop_batch(self, scope: str, batch_id: str) -> None:
        async with self._changing(scope):
            await self._run(self.ledger.drop_batch, scope, batch_id)
        self._closed(scope, batch_id)

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
        self._open.clear()
        await self._run(self.ledger.forget_scope, scope)

    async def scopes(self) -> list[str]:
        return await self._run(self.ledger.scopes)

    async def stats(self, scope: str) -> dict[str, Any]:
        return await self._run(self.ledger.stats, scope)

    async def close(self) -> None:
        await self._run(self.ledger.close)
