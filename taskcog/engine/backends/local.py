"""The ``local`` backend: today's behaviour, the work runs in the bot's own process.

The ingest step is awaited on the event loop (its I/O is async and its parse goes to the
worker pool); an import slice runs in a pool lane, off the loop.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Mapping

from ..pool import WorkerPool
from .base import BackendStatus, IngestResult

IngestFn = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]
SliceFn = Callable[[Mapping[str, Any]], dict[str, Any]]


class LocalBackend:
    """Runs the work functions it is given in this process (the default backend)."""

    kind = "local"

    def __init__(
        self,
        ingest: IngestFn,
        import_slice: SliceFn,
        pool: WorkerPool | None = None,
        *,
        lane: str = "parse",
    ) -> None:
        self._ingest = ingest
        self._import_slice = import_slice
        self._pool = pool
        self._lane = lane
        self.done = 0
        self.failed = 0
        self.in_flight = 0

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ingest(self, job: Mapping[str, Any]) -> IngestResult:
        return IngestResult.from_dict(await self._count(self._ingest(job)))

    async def import_slice(self, job: Mapping[str, Any]) -> dict[str, Any]:
        if self._pool is not None:
            run = self._pool.submit(self._lane, self._import_slice, job)
        else:
            run = asyncio.to_thread(self._import_slice, job)
        return await self._count(run)

    async def status(self) -> BackendStatus:
        return BackendStatus(
            "local",
            f"in this process: {self.in_flight} in flight, {self.done} done, "
            f"{self.failed} failed",
        )

    async def _count(self, work: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        self.in_flight += 1
        try:
            result = await work
        except BaseException:
            self.failed += 1
            raise
        finally:
            self.in_flight -= 1
        self.done += 1
        return result
