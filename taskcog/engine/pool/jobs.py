"""A handle on submitted work (:class:`Job`) and the states it goes through."""

from __future__ import annotations

import asyncio
import enum
from typing import TYPE_CHECKING, Any, Callable, Generator, Generic, Hashable, TypeVar

from .metrics import Progress

if TYPE_CHECKING:
    from .core import WorkerPool
    from .lanes import _Lane

T = TypeVar("T")


class JobState(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(Generic[T]):
    """A handle on submitted work: ``await job`` for the result, ``job.cancel()`` to drop it."""

    def __init__(
        self,
        pool: WorkerPool,
        lane: _Lane,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        key: Hashable | None,
        priority: int,
        seq: int,
        process: bool,
        progress: Progress | None,
        future: asyncio.Future[T],
    ) -> None:
        self._pool = pool
        self._lane = lane
        self._fn: Callable[..., T] | None = fn
        self._args = args
        self._kwargs = kwargs
        self.key = key
        self.priority = priority
        self.seq = seq
        self.process = process
        self.progress = progress
        self.state = JobState.QUEUED
        self._future = future
        self._in_heap = False
        self._tracker: asyncio.Future[None] | None = None

    @property
    def lane(self) -> str:
        return self._lane.config.name

    def done(self) -> bool:
        """True once the job finished, failed or was cancelled."""
        return self._future.done()

    def cancel(self) -> bool:
        """Drop the job if it is still queued (awaiters get ``CancelledError``).

        Returns False if it is already running (it cannot be interrupted: its
        :attr:`Progress.cancelled` flag is set instead) or already finished.
        """
        if self.state is JobState.QUEUED:
            self._pool._drop(self)
            return True
        if self.state is JobState.RUNNING and self.progress is not None:
            self.progress.cancelled = True
        return False

    def __await__(self) -> Generator[Any, None, T]:
        return self._future.__await__()

    def __repr__(self) -> str:
        return f"<Job lane={self.lane!r} key={self.key!r} state={self.state}>"
