"""Lanes and what waits in them: the Job handle and its states, budgets, bounds, priorities
and one-at-a-time keys."""

from __future__ import annotations

import asyncio
import enum
import heapq
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generator, Generic, Hashable, Protocol, TypeVar

from ..supervision import percentile
from .metrics import _DURATION_WINDOW, LaneMetrics, Progress

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
        pool: _Owner,
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


class _Owner(Protocol):
    """The pool, as a queued job sees it: it can take the job back out."""

    def _drop(
        self, job: Job[Any], error: BaseException | None = None, *, dispatch: bool = True
    ) -> None: ...


class PoolFull(RuntimeError):
    """A lane's queue is full; the caller should try again later."""

    def __init__(self, lane: str, queued: int) -> None:
        super().__init__(f"lane {lane!r} is full ({queued} queued); try again later")
        self.lane = lane
        self.queued = queued


class PoolClosed(RuntimeError):
    """The pool is shut down: new work is refused and queued work was dropped."""


@dataclass(frozen=True)
class LaneConfig:
    """One lane: its worker budget, queue bound and priority (lower = more urgent)."""

    name: str
    workers: int
    max_queue: int = 1000
    priority: int = 0


DEFAULT_LANES: tuple[LaneConfig, ...] = (
    LaneConfig("parse", 2, priority=0),
    LaneConfig("io", 4, priority=1),
    LaneConfig("db", 1, priority=2),
)


class _Lane:
    """A lane's queue (a heap of ready jobs plus a FIFO per busy key) and counters."""

    def __init__(self, config: LaneConfig) -> None:
        self.config = config
        self.workers = config.workers
        self.heap: list[tuple[int, int, Job[Any]]] = []
        self.keys: dict[Hashable, deque[Job[Any]]] = {}
        self.queued = 0
        self.running = 0
        self.done = 0
        self.failed = 0
        self.cancelled = 0
        self.rejected = 0
        self.durations: deque[float] = deque(maxlen=_DURATION_WINDOW)

    def enqueue(self, job: Job[Any]) -> None:
        self.queued += 1
        if job.key is not None:
            waiting = self.keys.get(job.key)
            if waiting is not None:  # this key already has a job ahead: wait behind it
                waiting.append(job)
                return
            self.keys[job.key] = deque()
        self._push(job)

    def _push(self, job: Job[Any]) -> None:
        job._in_heap = True
        heapq.heappush(self.heap, (job.priority, job.seq, job))

    def peek(self) -> Job[Any] | None:
        while self.heap and self.heap[0][2].state is not JobState.QUEUED:
            heapq.heappop(self.heap)
        return self.heap[0][2] if self.heap else None

    def pop(self) -> Job[Any]:
        job = heapq.heappop(self.heap)[2]
        job._in_heap = False
        return job

    def release_key(self, key: Hashable) -> None:
        """The key's current job left (finished or was cancelled): let the next one in."""
        waiting = self.keys.get(key)
        while waiting:
            job = waiting.popleft()
            if job.state is JobState.QUEUED:
                self._push(job)
                return
        self.keys.pop(key, None)

    def queued_jobs(self) -> list[Job[Any]]:
        jobs = [entry[2] for entry in self.heap if entry[2].state is JobState.QUEUED]
        for waiting in self.keys.values():
            jobs.extend(job for job in waiting if job.state is JobState.QUEUED)
        return sorted(jobs, key=lambda job: job.seq)

    def metrics(self) -> LaneMetrics:
        durations = list(self.durations)
        return LaneMetrics(
            name=self.config.name,
            workers=self.workers,
            queued=self.queued,
            running=self.running,
            done=self.done,
            failed=self.failed,
            cancelled=self.cancelled,
            rejected=self.rejected,
            p50=percentile(durations, 0.50),
            p95=percentile(durations, 0.95),
        )
