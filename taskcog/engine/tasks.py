"""``@tasks.loop``: a drop-in superset of discord.py 2.7.1's ``discord.ext.tasks``.

Write ``from taskcog.engine import tasks`` and keep ``@tasks.loop(...)``: the public surface of
ext.tasks is kept (``loop()``, :class:`Loop` and its methods, hooks, per-instance binding,
``is_ambiguous``/``is_imaginary``/``resolve_datetime``). The module imports nothing from discord.

Added on top:

- ``cron="*/15 * * * *"`` with ``tz=`` (IANA name, default UTC), one-shot ``at=datetime`` and
  ``schedule=`` any :class:`~taskcog.engine.schedules.Schedule`; ``time=`` may mix ZoneInfo and
  UTC times.
- Supervision (:mod:`taskcog.engine.supervision`): an exception never kills the loop. The
  ``error`` hook runs, the error is recorded in :attr:`Loop.status`, and the same scheduled tick
  is retried after an exponential backoff with full jitter. After ``failure_threshold``
  consecutive failures the circuit opens: the loop parks in state ``circuit-open``, the
  ``on_circuit_open=`` callback and ``@loop.circuit_open`` hook fire once, and it stays parked
  until :meth:`Loop.start` (resumes the same task) or :meth:`Loop.restart`. A 429 waits
  ``retry_after`` and is not a failure; 5xx and network errors are transient.
- ext.tasks' reconnect list keeps its meaning: with ``reconnect=True`` an exception from
  :meth:`Loop.add_exception_type`'s list is retried with backoff, never reaches the ``error``
  hook and never opens the circuit. Every other exception (and, with ``reconnect=False``, every
  exception) goes through the supervision rules instead of killing the task.
- ``overlap=False|True|int``: False runs iterations one after another; True lets them overlap
  without limit, an int caps how many run at once (the next tick waits for a free slot). An
  overlapping iteration that fails is not retried: it holds further launches for its backoff.
  ``count`` then counts launches.
- ``catch_up="coalesce"|"skip"|"all"``: what happens to ticks missed during an overrun (one
  catch-up run, none, or every one of them).
- ``timeout=`` seconds per iteration (a cut-off iteration is a failure), ``clock=`` (e.g. a
  VirtualClock), and the schedule's ``jitter`` added to each sleep.
- ``on_circuit_open(loop, status, exc)`` may be sync or async; the ``@loop.circuit_open`` hook
  is called like ``error``: ``([instance,] status, exc)``.

Intended divergences from ext.tasks (checked in tests/test_loop_differential.py):

- No replayed ticks after an overrun: by default (``catch_up="coalesce"``) missed ticks give one
  catch-up run and then the loop is back on its grid; ext.tasks' seconds mode replays every
  missed tick back to back (``catch_up="all"`` restores that).
- A failed ``time=`` iteration is retried for the *same* scheduled time and the next time runs
  once; ext.tasks sleeps to the next time and then runs the body twice in a row.
- DST, ``time=`` in a zone: a time inside a spring-forward gap runs at the first valid instant
  after the gap (02:30 New York -> 03:00) and a time in a repeated hour runs once, at its first
  occurrence (the :class:`~taskcog.engine.schedules.DailySchedule` rule). ext.tasks'
  :func:`resolve_datetime` gives 03:30 and the second occurrence; it is re-exported unchanged.
- :meth:`Loop.change_interval` takes effect at once, also before the first run, and also in
  ``time=`` mode (ext.tasks ignores it until the body has run once).
- :meth:`Loop.stop` during a sleep or a backoff ends the loop at once; ext.tasks runs the body one
  more time (seconds mode) or keeps retrying until success.
- With ``count=`` the loop ends right after the last iteration; ext.tasks first sleeps one more
  interval.
- :meth:`Loop.failed` is true while iterations are failing or the circuit is open (the task does
  not die of a failing body).
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import inspect
import logging
import random
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Callable, Coroutine, Generic, TypeVar, Union

from . import schedules
from .clock import SYSTEM_CLOCK, Clock
from .loop.hooks import ET as ET
from .loop.hooks import FT as FT
from .loop.hooks import LoopHooks
from .loop.runner import LoopRunner
from .loop.schedule import MISSING, LoopSchedule
from .loop.schedule import UTC as UTC
from .loop.schedule import _build_schedule as _build_schedule
from .loop.schedule import _MissingSentinel as _MissingSentinel
from .loop.schedule import _time_parameter as _time_parameter
from .loop.supervision import (
    CircuitCallback,
    LoopSupervision,
    ReconnectableError,
    _default_reconnect_errors,
)
from .loop.timing import _MAX_SCAN as _MAX_SCAN
from .loop.timing import CatchUp, SleepHandle, following_tick
from .schedules import is_ambiguous, is_imaginary, resolve_datetime
from .supervision import RetryPolicy, TaskStatus

_log = logging.getLogger("red.taskcog.engine.tasks")

__all__ = (
    "loop",
    "Loop",
    "SleepHandle",
    "ReconnectableError",
    "following_tick",
    "is_ambiguous",
    "is_imaginary",
    "resolve_datetime",
)

T = TypeVar("T")
_func = Callable[..., Coroutine[Any, Any, Any]]
LF = TypeVar("LF", bound=_func)


# --- The loop: wires scheduling, execution and supervision together --------------------------
# Each piece is a mixin in its own module of loop/: the task (runner.py), what a failure leads to
# (supervision.py), the schedule and change_interval (schedule.py), the hooks (hooks.py).


class Loop(LoopRunner, LoopSupervision, LoopSchedule, LoopHooks, Generic[LF]):
    """A supervised background loop; create it with :func:`loop`."""

    def __init__(
        self,
        coro: LF,
        seconds: float = MISSING,
        hours: float = MISSING,
        minutes: float = MISSING,
        time: Union[_dt.time, Sequence[_dt.time]] = MISSING,
        count: int | None = None,
        reconnect: bool = True,
        name: str | None = None,
        *,
        cron: str | None = None,
        tz: str = "UTC",
        at: _dt.datetime | None = None,
        schedule: schedules.Schedule | None = None,
        overlap: bool | int = False,
        catch_up: CatchUp = "coalesce",
        timeout: float | None = None,
        failure_threshold: int = 5,
        retry_policy: RetryPolicy | None = None,
        on_circuit_open: CircuitCallback | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        self.coro: LF = coro
        self.reconnect: bool = reconnect
        self.count: int | None = count
        self._current_loop = 0
        self._handle: SleepHandle | None = None
        self._sleeping_for_tick = False
        self._task: asyncio.Task[None] | None = None
        self._injected: Any = None
        self._valid_exception: tuple[type[BaseException], ...] = _default_reconnect_errors()
        self._before_loop: Any = None
        self._after_loop: Any = None
        self._circuit_open: Any = None
        self._is_being_cancelled = False
        self._has_failed = False
        self._stop_next_iteration = False
        self._name: str = f"taskcog-loop: {coro.__qualname__}" if name is None else name

        if self.count is not None and self.count <= 0:
            raise ValueError("count must be greater than 0 or None.")
        if catch_up not in ("coalesce", "skip", "all"):
            raise ValueError("catch_up must be 'coalesce', 'skip' or 'all'.")
        if isinstance(overlap, bool) or overlap is None:
            self.overlap: bool | int = bool(overlap)
        elif isinstance(overlap, int) and overlap >= 1:
            self.overlap = overlap
        else:
            raise ValueError("overlap must be a bool or an int of at least 1.")
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be greater than 0 or None.")
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1.")
        self.catch_up: CatchUp = catch_up
        self.timeout = timeout
        self.policy = replace(retry_policy or RetryPolicy(), failure_threshold=failure_threshold)
        self.on_circuit_open = on_circuit_open
        self._clock = clock
        self._rng = rng or random.Random()

        self.change_interval(  # type: ignore[call-overload]
            seconds=seconds, minutes=minutes, hours=hours, time=time,
            cron=cron, tz=tz, at=at, schedule=schedule,
        )  # fmt: skip
        self._last_iteration: _dt.datetime | None = None
        self._next_iteration: _dt.datetime | None = None
        self._parked = False
        self._resume: asyncio.Event | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._slots: asyncio.Semaphore | None = None
        self._hold_until: _dt.datetime | None = None
        self._status = TaskStatus(name=self._name)

        if not inspect.iscoroutinefunction(self.coro):
            raise TypeError(f"Expected coroutine function, not {type(self.coro).__name__!r}.")

    def __get__(self, obj: T, objtype: type[T]) -> Loop[LF]:
        if obj is None:
            return self
        copy: Loop[LF] = Loop(
            self.coro,
            seconds=self._seconds,
            hours=self._hours,
            minutes=self._minutes,
            time=self._time,
            count=self.count,
            reconnect=self.reconnect,
            name=self._name,
            cron=self._cron,
            tz=self._tz,
            at=self._at,
            schedule=self._schedule_arg,
            overlap=self.overlap,
            catch_up=self.catch_up,
            timeout=self.timeout,
            failure_threshold=self.policy.failure_threshold,
            retry_policy=self.policy,
            on_circuit_open=self.on_circuit_open,
            clock=self._clock,
        )
        copy._injected = obj
        copy._before_loop = self._before_loop
        copy._after_loop = self._after_loop
        copy._error = self._error  # type: ignore[method-assign]
        copy._circuit_open = self._circuit_open
        copy._valid_exception = self._valid_exception
        setattr(obj, self.coro.__name__, copy)
        return copy

    # -- public surface ------------------------------------------------------------------------

    @property
    def status(self) -> TaskStatus:
        """State, counters, last error and timings, for status commands."""
        return self._status

    @property
    def current_loop(self) -> int:
        """The current iteration of the loop."""
        return self._current_loop

    @property
    def next_iteration(self) -> _dt.datetime | None:
        """When the next iteration will occur; None when not running, stopping or parked."""
        if self._task is None or self._task.done() or self._stop_next_iteration or self._parked:
            return None
        return self._next_iteration

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the body directly, outside the loop."""
        if self._injected is not None:
            args = (self._injected, *args)
        return await self.coro(*args, **kwargs)

    def start(self, *args: Any, **kwargs: Any) -> asyncio.Task[None]:
        """Start the loop task; on a loop parked by an open circuit, close it and resume.

        Raises RuntimeError if the task is already running (and not parked).
        """
        if self._task and not self._task.done():
            if self._parked:
                self._close_circuit()
                return self._task
            raise RuntimeError("Task is already launched and is not completed.")
        if self._injected is not None:
            args = (self._injected, *args)
        self._has_failed = False
        self._parked = False
        self._last_iteration = None
        self._status.consecutive_failures = 0  # a fresh start is a closed circuit
        self._status.transient_streak = 0
        self._task = asyncio.create_task(self._loop(*args, **kwargs), name=self._name)
        return self._task

    def stop(self) -> None:
        """Stop gracefully: a running iteration finishes, a sleep or backoff ends at once."""
        if self._task and not self._task.done():
            self._stop_next_iteration = True
            if self._handle is not None and not self._handle.done():
                self._handle.wake()
            if self._resume is not None:
                self._resume.set()

    def _can_be_cancelled(self) -> bool:
        return bool(not self._is_being_cancelled and self._task and not self._task.done())

    def cancel(self) -> None:
        """Cancel the internal task (and overlapping iterations), if it is running."""
        if self._can_be_cancelled() and self._task:
            self._task.cancel()

    def restart(self, *args: Any, **kwargs: Any) -> None:
        """Cancel the task and start it again once it is over; also closes an open circuit."""

        def restart_when_over(fut: Any, *, args: Any = args, kwargs: Any = kwargs) -> None:
            if self._task:
                self._task.remove_done_callback(restart_when_over)
            self._status.restarts += 1
            self.start(*args, **kwargs)

        if self._can_be_cancelled() and self._task:
            self._task.add_done_callback(restart_when_over)
            self._task.cancel()

    def add_exception_type(self, *exceptions: type[BaseException]) -> None:
        """Add exception types that ``reconnect=True`` retries quietly (no error hook).

        Raises TypeError if one is not a class or not a BaseException subclass.
        """
        for exc in exceptions:
            if not inspect.isclass(exc):
                raise TypeError(f"{exc!r} must be a class.")
            if not issubclass(exc, BaseException):
                raise TypeError(f"{exc!r} must inherit from BaseException.")
        self._valid_exception = (*self._valid_exception, *exceptions)

    def clear_exception_types(self) -> None:
        """Remove all reconnect exception types; every error then reaches the error hook."""
        self._valid_exception = ()

    def remove_exception_type(self, *exceptions: type[BaseException]) -> bool:
        """Remove reconnect exception types; True if all of them were there."""
        old_length = len(self._valid_exception)
        self._valid_exception = tuple(x for x in self._valid_exception if x not in exceptions)
        return len(self._valid_exception) == old_length - len(exceptions)

    def get_task(self) -> asyncio.Task[None] | None:
        """The internal task, or None if there isn't one."""
        return self._task

    def is_being_cancelled(self) -> bool:
        """Whether the task is being cancelled (true inside ``after_loop`` after cancel())."""
        return self._is_being_cancelled

    def failed(self) -> bool:
        """True while iterations are failing or the circuit is open, or if before_loop raised."""
        return self._has_failed or self._status.failed

    def is_running(self) -> bool:
        """Whether the task exists and is not done (a parked loop is still running)."""
        return not self._task.done() if self._task else False


def loop(
    *,
    seconds: float = MISSING,
    minutes: float = MISSING,
    hours: float = MISSING,
    time: Union[_dt.time, Sequence[_dt.time]] = MISSING,
    count: int | None = None,
    reconnect: bool = True,
    name: str | None = None,
    cron: str | None = None,
    tz: str = "UTC",
    at: _dt.datetime | None = None,
    schedule: schedules.Schedule | None = None,
    overlap: bool | int = False,
    catch_up: CatchUp = "coalesce",
    timeout: float | None = None,
    failure_threshold: int = 5,
    retry_policy: RetryPolicy | None = None,
    on_circuit_open: CircuitCallback | None = None,
    clock: Clock = SYSTEM_CLOCK,
    rng: random.Random | None = None,
) -> Callable[[LF], Loop[LF]]:
    """Decorate a coroutine function into a supervised :class:`Loop` (see the module docstring).

    Raises ValueError for an invalid value, TypeError for a non-coroutine, a bad ``time`` or
    mixed explicit/relative scheduling arguments.
    """

    def decorator(func: LF) -> Loop[LF]:
        return Loop[LF](
            func,
            seconds=seconds,
            minutes=minutes,
            hours=hours,
            time=time,
            count=count,
            reconnect=reconnect,
            name=name,
            cron=cron,
            tz=tz,
            at=at,
            schedule=schedule,
            overlap=overlap,
            catch_up=catch_up,
            timeout=timeout,
            failure_threshold=failure_threshold,
            retry_policy=retry_policy,
            on_circuit_open=on_circuit_open,
            clock=clock,
            rng=rng,
        )

    return decorator
