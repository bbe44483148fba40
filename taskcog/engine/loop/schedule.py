"""A loop's schedule: ``loop()``/``change_interval()`` arguments, and the properties showing them.

:func:`_build_schedule` turns ext.tasks' ``seconds/minutes/hours/time`` and our ``cron/at/
schedule`` arguments into one :class:`~taskcog.engine.schedules.Schedule`;
:class:`LoopSchedule` is the part of :class:`~taskcog.engine.tasks.Loop` that holds it.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Sequence
from typing import Any, Union

from .. import schedules
from ..clock import Clock
from ..supervision import TaskStatus
from .timing import CatchUp, SleepHandle, following_tick

__all__ = ("MISSING", "LoopSchedule")

UTC = _dt.UTC


class _MissingSentinel:
    """ext.tasks' "argument not given": falsy and equal to nothing."""

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        return False

    def __bool__(self) -> bool:
        return False

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "..."


MISSING: Any = _MissingSentinel()


def _time_parameter(time: Any) -> list[_dt.time]:
    """Validate ``time=`` like ext.tasks; naive times are UTC. Sorted, without duplicates."""
    if isinstance(time, _dt.time):
        return [time if time.tzinfo is not None else time.replace(tzinfo=UTC)]
    if not isinstance(time, Sequence):
        raise TypeError(
            "Expected datetime.time or a sequence of datetime.time for ``time``, "
            f"received {type(time)!r} instead."
        )
    if not time:
        raise ValueError("time parameter must not be an empty sequence.")
    ret: list[_dt.time] = []
    for index, t in enumerate(time):
        if not isinstance(t, _dt.time):
            raise TypeError(
                f"Expected a sequence of {_dt.time!r} for ``time``, "
                f"received {type(t).__name__!r} at index {index} instead."
            )
        ret.append(t if t.tzinfo is not None else t.replace(tzinfo=UTC))
    unique = list(dict.fromkeys(ret))
    try:
        return sorted(unique)
    except TypeError:  # ZoneInfo times have no fixed offset and cannot be compared to UTC ones
        return sorted(unique, key=lambda t: (t.replace(tzinfo=None), str(t.tzinfo)))


def _build_schedule(
    *,
    seconds: float,
    minutes: float,
    hours: float,
    time: Any,
    cron: str | None,
    tz: str,
    at: _dt.datetime | None,
    schedule: schedules.Schedule | None,
) -> tuple[schedules.Schedule, float | Any, list[_dt.time] | Any]:
    """Turn loop()/change_interval() arguments into (schedule, relative sleep, time list)."""
    relative = any((seconds, minutes, hours))
    explicit = [name for name, v in (("time", time is not MISSING), ("cron", cron is not None),
                                      ("at", at is not None), ("schedule", schedule is not None))
                if v]  # fmt: skip
    if len(explicit) > 1:
        raise TypeError(f"Cannot combine {' and '.join(explicit)}")
    if explicit and relative:
        raise TypeError("Cannot mix explicit time with relative time")
    if time is not MISSING:
        times = _time_parameter(time)
        return schedules.DailySchedule(times), MISSING, times
    if cron is not None:
        return schedules.CronSchedule(cron, tz), MISSING, MISSING
    if at is not None:
        return schedules.OnceSchedule(at), MISSING, MISSING
    if schedule is not None:
        if not callable(getattr(schedule, "next_after", None)):
            raise TypeError(f"Expected a Schedule for ``schedule``, received {type(schedule)!r}")
        return schedule, MISSING, MISSING
    sleep = (seconds or 0) + (minutes or 0) * 60.0 + (hours or 0) * 3600.0
    if sleep < 0:
        raise ValueError("Total number of seconds cannot be less than zero.")
    return schedules.IntervalSchedule(sleep), sleep, MISSING


class LoopSchedule:
    """The schedule of a :class:`~taskcog.engine.tasks.Loop` and how to change it.

    ``change_interval`` on a running loop moves the pending tick (``Loop.is_running``).
    """

    catch_up: CatchUp
    _schedule: schedules.Schedule
    _sleep: float | Any
    _seconds: float | Any
    _minutes: float | Any
    _hours: float | Any
    _time: list[_dt.time] | Any
    _cron: str | None
    _tz: str
    _at: _dt.datetime | None
    _schedule_arg: schedules.Schedule | None
    _clock: Clock
    _rng: random.Random
    _status: TaskStatus
    _handle: SleepHandle | None
    _sleeping_for_tick: bool
    _parked: bool
    _last_iteration: _dt.datetime | None
    _next_iteration: _dt.datetime | None

    @property
    def seconds(self) -> float | None:
        """Seconds between iterations; None for time/cron/at/schedule loops."""
        if self._seconds is not MISSING:
            return self._seconds
        return None

    @property
    def minutes(self) -> float | None:
        """Minutes between iterations; None for time/cron/at/schedule loops."""
        if self._minutes is not MISSING:
            return self._minutes
        return None

    @property
    def hours(self) -> float | None:
        """Hours between iterations; None for time/cron/at/schedule loops."""
        if self._hours is not MISSING:
            return self._hours
        return None

    @property
    def time(self) -> list[_dt.time] | None:
        """The exact times this loop runs at; None unless ``time=`` was given."""
        if self._time is not MISSING:
            return self._time.copy()
        return None

    @property
    def schedule(self) -> schedules.Schedule:
        """The schedule in force; seconds/minutes/hours become an IntervalSchedule."""
        return self._schedule

    def _jittered(self, tick: _dt.datetime) -> _dt.datetime:
        jitter = float(getattr(self._schedule, "jitter", 0.0) or 0.0)
        if jitter <= 0:
            return tick
        return tick + _dt.timedelta(seconds=self._rng.uniform(0.0, jitter))

    def _get_next_sleep_time(self, now: _dt.datetime = MISSING) -> _dt.datetime:
        if self._sleep is not MISSING:
            base = self._last_iteration or (self._clock.now() if now is MISSING else now)
            return base + _dt.timedelta(seconds=self._sleep)
        if now is MISSING:
            now = self._clock.now()
        # ext.tasks counts a time equal to now as the next one.
        return self._schedule.next_after(now - _dt.timedelta(microseconds=1))

    def change_interval(
        self,
        *,
        seconds: float = 0,
        minutes: float = 0,
        hours: float = 0,
        time: Union[_dt.time, Sequence[_dt.time]] = MISSING,
        cron: str | None = None,
        tz: str = "UTC",
        at: _dt.datetime | None = None,
        schedule: schedules.Schedule | None = None,
    ) -> None:
        """Change the schedule; it takes effect at once, rescheduling a pending sleep.

        Raises ValueError for a negative interval, TypeError for a bad ``time`` or for mixing
        explicit and relative times (ScheduleError, a ValueError, for a bad cron/at).
        """
        built, sleep, times = _build_schedule(
            seconds=seconds, minutes=minutes, hours=hours, time=time,
            cron=cron, tz=tz, at=at, schedule=schedule,
        )  # fmt: skip
        self._schedule = built
        self._sleep = sleep
        self._time = times
        if sleep is MISSING:
            self._seconds = self._minutes = self._hours = MISSING
        else:
            self._seconds, self._minutes, self._hours = (
                float(seconds or 0), float(minutes or 0), float(hours or 0),
            )  # fmt: skip
        self._cron, self._tz, self._at, self._schedule_arg = cron, tz, at, schedule
        if not self.is_running() or self._parked:
            return
        now = self._clock.now()
        if self._last_iteration is None:
            nxt = built.first(now)
        else:
            nxt = following_tick(built, self._last_iteration, now, self.catch_up)
        self._next_iteration = nxt
        if self._handle is not None and not self._handle.done() and self._sleeping_for_tick:
            if nxt is None:
                self._handle.wake()
            else:
                self._handle.recalculate(self._jittered(nxt))
                self._status.next_run = nxt
