"""The state every part of the :class:`~.core.Supervisor` shares, declared once.

The supervisor is one class assembled from mixins, one per idea. This base declares the
attributes ``Supervisor.__init__`` sets and the methods the parts call on one another, so each
part reads (and type-checks) on its own. Declarations only: they cost nothing at runtime.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import random
from array import array
from collections import deque
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Hashable, Mapping

from ..clock import Clock
from ..supervision import RetryPolicy, State, TaskStatus

if TYPE_CHECKING:
    from .definitions import JobContext, JobSpec
    from .jobs import _Entry, _Family, _Job, _Runner
    from .timeline import _Timeline
    from .waker import _Waker


class _SupervisorBase:
    """What the parts of the supervisor share: its settings, its state and its inner calls."""

    # Settings, from the constructor.
    _clock: Clock
    _timestamp: Callable[[], float]  # the clock's wall time as a float timestamp
    _monotonic: Callable[[], float]  # the clock's monotonic time (the loop's, once started)
    _max: int
    _policy: RetryPolicy
    _on_circuit_open: (
        Callable[[str, Hashable, TaskStatus, BaseException], Awaitable[None] | None] | None
    )
    _ready: Callable[[], Awaitable[None]] | None
    _rng: random.Random
    _name: str
    _resolution: float
    _stall: float  # a launch later than this after its due time means the loop stalled
    failure: BaseException | None  # why waiting for ``ready`` failed, if it did

    # Registered tasks.
    _families: dict[str, _Family]
    _registered: int

    # The loop, the dispatcher task, the heap and the wake-up timer.
    _loop: asyncio.AbstractEventLoop | None
    _ready_queue: deque[Any] | None  # the loop's call_soon queue, for eager steps
    _dispatcher: asyncio.Task[None] | None
    _is_ready: bool
    _ready_event: asyncio.Event | None
    _closing: bool
    _timeline: _Timeline  # the due entries
    _stale: int
    _waiting: deque[_Entry]
    _draining: bool
    _waker: _Waker | None
    _idle_wait: Callable[[asyncio.Future[None]], Awaitable[None]] | None
    _context: contextvars.Context | None  # the dispatcher task's
    _timer: asyncio.TimerHandle | None
    _armed: float  # the due time the timer is set for; -inf while dispatching
    _wake_now: float | None  # the time read at this wake-up, while dispatching
    wakeups: int  # timer wake-ups so far

    # Runs and what they report.
    _running: dict[asyncio.Task[Any], JobContext]  # tasks inside a run's body, and that run
    _queue: deque[JobContext]  # launched scheduled runs waiting for a runner
    _runners: set[_Runner]
    _free: int  # runners not inside a body (about to take the next queued run)
    _batching: bool  # dispatching a wake-up: start the runner once, at its end
    _parked: asyncio.Future[None] | None  # the runner waiting for the next batch, if any
    _granularity: float  # how early the loop's timers may fire
    _active: int
    _aux: set[asyncio.Task[Any]]
    _lateness: array[float]  # a ring: run n's lateness is at n & LATENESS_MASK
    _late_runs: int  # scheduled runs whose lateness was recorded
    _progress: dict[_Job, tuple[float, float | None, str]]
    _waiters: dict[_Job, list[asyncio.Future[None]]]

    if TYPE_CHECKING:  # defined in the parts named; the other parts call them
        # timer.py
        def _now(self) -> float: ...
        def _push(
            self, job: _Job, fire: float, when: float | None = None, first: bool = False
        ) -> None: ...
        def _invalidate(self, job: _Job) -> None: ...
        def _drain(self) -> None: ...

        # planning.py
        def _replan(self, job: _Job, spread: bool = True) -> None: ...
        def _next_after(self, job: _Job, fire: float) -> float | None: ...
        def _plan(
            self, job: _Job, candidate: float | None, policy: str, first: bool = False
        ) -> None: ...
        def _advance(self, job: _Job, fire: float, limit: float) -> tuple[float, float | None]: ...

        # runs.py
        def _launch(self, job: _Job, when: float, now: float) -> None: ...
        def _start_run(
            self,
            job: _Job,
            fire: float,
            options: Mapping[str, Any],
            when: float,
            now: float,
            manual: bool,
            pending_spec: Awaitable[Any] | None = None,
        ) -> asyncio.Task[Any] | None: ...
        def _step_now(self, task: asyncio.Task[Any]) -> None: ...
        def _finish(
            self, ctx: JobContext, error: BaseException | None, cancelled: bool
        ) -> None: ...
        def _finish_ok(self, ctx: JobContext) -> None: ...

        # runners.py
        def _enqueue(self, ctx: JobContext) -> None: ...
        def _kick(self) -> None: ...
        def _cut(self, ctx: JobContext) -> None: ...
        def _cancel_runs(self, job: _Job) -> None: ...
        def _drop_queued(self, ctx: JobContext) -> None: ...
        def _release_parked(self) -> None: ...
        async def _wait_idle(self, job: _Job) -> None: ...

        # families.py
        async def _populate(self, family: _Family) -> None: ...
        def _apply(self, job: _Job, spec: JobSpec) -> bool: ...
        def _family(self, task: str) -> _Family: ...
        def _job(self, task: str, key: Hashable) -> _Job: ...
        def _jobs(self, family: _Family, key: Hashable, strict: bool = True) -> list[_Job]: ...
        def _drop(self, job: _Job) -> None: ...

        # status.py
        def _materialize(self, job: _Job) -> TaskStatus: ...
        def _set_state(self, job: _Job, state: State) -> None: ...
        def _idle_state(self, job: _Job) -> State: ...

        # core.py
        def _spawn(self, coro: Awaitable[Any], name: str) -> None: ...

        # dependencies.py
        _gated: set[str]
        _watched: set[str]

        def _declare(self, definition: Any) -> None: ...
        def _link(self, family: _Family) -> None: ...
        def _unlink(self, family: _Family) -> None: ...
        def _gate(self, job: _Job, now: float) -> bool: ...
        def _succeeded(self, job: _Job) -> None: ...
        def _await_leader(self, job: _Job) -> None: ...
        def _dependency_text(self, job: _Job) -> str | None: ...


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value
