"""The ``local`` backend: today's behaviour, the work runs in the bot's own process.

Both steps are awaited on the event loop: their I/O is async, and their parsing goes to a
thread (the pool's ``parse`` lane, or ``asyncio.to_thread``) inside the step itself. The cog's
history import does not even build the JSON-able job for the local case: it reads through its
own source and parses in its pool directly (``pipeline.history.import_files``).
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Mapping

from .base import BackendStatus, IngestResult

Step = Callable[[Mapping[str, Any]], Awaitable[dict[str, Any]]]


class LocalBackend:
    """Runs the work functions it is given in this process (the default backend)."""

    kind = "local"

    def __init__(self, ingest: Step, import_slice: Step) -> None:
        self._ingest = ingest
        self._import_slice = import_slice
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
        return await self._count(self._import_slice(job))

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
