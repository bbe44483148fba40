"""The :class:`Supervisor`: one class assembled from the parts of this package, and its
lifecycle (start, shutdown, background steps).

Each part is a mixin over :class:`~.base._SupervisorBase`, which declares the shared state:
:mod:`.families` (definitions and keys), :mod:`.timer` (heap and dispatch), :mod:`.planning`
(next fires), :mod:`.runs` (launching and settling runs), :mod:`.status` and :mod:`.control`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Hashable

from ..clock import SYSTEM_CLOCK, Clock, SystemClock
from ..supervision import RetryPolicy, TaskStatus
from .control import ControlMixin
from .dependencies import DependencyMixin
from .families import FamilyMixin
from .jobs import LATENESS_MASK
from .planning import PlanMixin
from .runners import RunnerMixin
from .runs import RunMixin
from .status import StatusMixin
from .timeline import _Timeline
from .timer import TimerMixin

log = logging.getLogger("red.taskcog.engine.supervisor")


@dataclass
class ShutdownReport:
    """What :meth:`Supervisor.shutdown` did with the jobs that were running."""

    finished: list[tuple[str, Hashable]]
    cut_off: list[tuple[str, Hashable]]
    duration: float


def _timestamp_reader(clock: Clock) -> Callable[[], float]:
    """The clock's wall time as a float timestamp; ``time.time`` for the plain system clock
    (the same reading, without building a datetime)."""
    if clock.__class__ is SystemClock and getattr(clock, "_now", None) is None:
        return time.time
    return lambda: clock.now().timestamp()


class Supervisor(
    ControlMixin,
    StatusMixin,
    FamilyMixin,
    RunMixin,
    RunnerMixin,
    PlanMixin,
    TimerMixin,
    DependencyMixin,
):
    """Runs every job of every registered task definition from one heap and one dispatcher."""

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        max_concurrency: int = 32,
        policy: RetryPolicy = RetryPolicy(),
        on_circuit_open: (
            Callable[[str, Hashable, TaskStatus, BaseException], Awaitable[None] | None] | None
        ) = None,
        ready: Callable[[], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
        name: str = "taskcog",
        resolution: float = 0.0,
    ) -> None:
        """``resolution``: the dispatcher may wake up to this many seconds after a fire so
        that fires close together share one wake-up (fewer wake-ups, less CPU at 30k jobs);
        it wakes at the last fire within ``resolution`` of the earliest, so a lone fire still
        runs on time, and runs are never early. 0 = wake exactly at each fire."""
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be 1 or more")
        if not resolution >= 0:
            raise ValueError("resolution must be 0 or more seconds")
        self._resolution = float(resolution)
        self._stall = 0.001 + self._resolution
        self._clock = clock
        self._timestamp = _timestamp_reader(clock)
        self._monotonic = clock.monotonic
        self._max = max_concurrency
        self._policy = policy
        self._on_circuit_open = on_circuit_open
        self._ready = ready
        self._rng = rng or random.Random()
        self._name = name
        self._families = {}
        self._registered = 0
        self._timeline = _Timeline()
        self._stale = 0
        self._waiting = deque()
        self._draining = False
        self._running = {}
        self._queue = deque()
        self._runners = set()
        self._free = 0
        self._batching = False
        self._parked = None
        self._granularity = 0.0
        self._active = 0
        self._aux = set()
        self._loop = None
        self._ready_queue = None
        self._dispatcher = None
        self._is_ready = False
        self._ready_event = None
        self._closing = False
        self._waker = None
        self._idle_wait = None
        self._context = None
        self._timer = None
        self._armed = -math.inf
        self._wake_now = None
        self.wakeups = 0
        """Timer wake-ups so far: what the CPU floor of an idle loop is measured against."""
        # The latest 4096 start latenesses as doubles in a ring, not 4096 float objects.
        self._lateness = array("d", bytes(8 * (LATENESS_MASK + 1)))
        self._late_runs = 0
        self._progress = {}
        self._waiters = {}
        self.failure = None
        self._init_dependencies()

    async def start(self) -> None:
        """Spawn the dispatcher and return at once; it awaits ``ready`` before any job runs."""
        if self._dispatcher is not None:
            raise RuntimeError("this supervisor was already started")
        self._loop = asyncio.get_running_loop()
        if self._clock.__class__ is SystemClock:  # its monotonic() is the running loop's time
            plain = type(self._loop).time is asyncio.BaseEventLoop.time
            self._monotonic = time.monotonic if plain else self._loop.time
        ready_queue = getattr(self._loop, "_ready", None)
        self._ready_queue = ready_queue if isinstance(ready_queue, deque) else None
        # asyncio's timers are exact; uvloop's (libuv's) count whole milliseconds.
        self._granularity = 0.0 if isinstance(self._loop, asyncio.BaseEventLoop) else 0.001
        self._ready_event = asyncio.Event()
        self._dispatcher = self._loop.create_task(
            self._dispatch(), name=f"{self._name}-dispatcher"
        )

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`shutdown` (or a failed ``ready``)."""
        return self._dispatcher is not None and not self._dispatcher.done() and not self._closing

    async def shutdown(self, timeout: float = 10.0) -> ShutdownReport:  # noqa: ASYNC109
        """Stop dispatching, let running jobs finish for up to ``timeout`` seconds, then cancel
        the rest. Leaves no task behind."""
        started = self._clock.monotonic()
        self._closing = True
        self._release_parked()
        self._waiting.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        ours = [t for t in (self._dispatcher, *self._aux) if t is not None and not t.done()]
        for task in ours:
            task.cancel()
        if ours:
            await asyncio.wait(ours)
        # Runs already launched may finish (the runners keep draining their queue) until the
        # deadline; then the rest are cut off: cancelled where they run, dropped if queued.
        launched = [*self._queue, *self._running.values()]
        deadline = started + max(0.0, timeout)
        while (alive := self._run_tasks()) and (left := deadline - self._clock.monotonic()) > 0:
            await asyncio.wait(alive, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        unfinished = {*self._queue, *self._running.values()}
        while self._queue:
            self._drop_queued(self._queue.popleft())
        for task in list(self._running):
            task.cancel()
        while alive := self._run_tasks():
            await asyncio.wait(alive)
        finished = [(c.task, c.key) for c in launched if c not in unfinished]
        cut_off = [(c.task, c.key) for c in launched if c in unfinished]
        return ShutdownReport(finished, cut_off, self._clock.monotonic() - started)

    def _run_tasks(self) -> set[asyncio.Task[Any]]:
        """Every task awaiting a run now: runners and manual runs."""
        tasks = {r.task for r in self._runners if r.task is not None and not r.task.done()}
        tasks.update(t for t in self._running if not t.done())
        return tasks

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro, name=name)  # type: ignore[arg-type]
        self._aux.add(task)
        task.add_done_callback(self._aux_done)

    def _aux_done(self, task: asyncio.Task[Any]) -> None:
        self._aux.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background step failed", self._name, exc_info=task.exception())
