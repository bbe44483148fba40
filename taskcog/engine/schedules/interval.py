"""Every N seconds of elapsed time (``every 90s``)."""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from .base import Schedule, _check_jitter
from .dst import _aware
from .durations import _spec_duration, format_duration
from .errors import ScheduleError

UTC = _dt.UTC


class IntervalSchedule(Schedule):
    """Every ``seconds`` of elapsed time. ``next_after(prev) == prev + interval``.

    ``seconds=0`` is allowed for ext.tasks' ``loop()`` (run back to back); ``parse_spec`` only
    accepts 1s or more.
    """

    __slots__ = ("_seconds", "_delta")
    kind = "every"

    def __init__(self, seconds: float, *, jitter: float = 0.0) -> None:
        seconds = float(seconds)
        if not (seconds >= 0 and math.isfinite(seconds)):
            raise ScheduleError(f"interval must be 0 or more seconds, got {seconds!r}")
        try:
            self._delta = _dt.timedelta(seconds=seconds)
        except OverflowError:
            raise ScheduleError(f"interval is too long: {format_duration(seconds)}") from None
        self._seconds = seconds
        self._jitter = _check_jitter(jitter, seconds, f"the interval {format_duration(seconds)}")

    @property
    def seconds(self) -> float:
        """The interval in seconds."""
        return self._seconds

    @property
    def interval(self) -> _dt.timedelta:
        """The interval as a timedelta."""
        return self._delta

    def next_after(self, after: _dt.datetime) -> _dt.datetime:
        tz = after.tzinfo
        if tz is UTC or type(tz) is _dt.timezone:
            return after + self._delta
        if tz is None:
            return after.replace(tzinfo=UTC) + self._delta
        # Wall-clock arithmetic in a DST zone would drift by an hour; step in UTC instead.
        return (after.astimezone(UTC) + self._delta).astimezone(tz)

    def first(self, now: _dt.datetime) -> _dt.datetime:
        return _aware(now)

    @property
    def spec(self) -> str:
        return f"every {_spec_duration(self._seconds)}{self._jitter_suffix()}"

    def describe(self) -> str:
        text = f"every {format_duration(self._seconds)}"
        return text + (f" (jitter {format_duration(self._jitter)})" if self._jitter else "")

    def _key(self) -> tuple[Any, ...]:
        return (self._seconds, self._jitter)
