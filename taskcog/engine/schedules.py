"""When things run: interval, daily times, cron and one-shot schedules, and ``parse_spec``.

INTERFACE STUB — being implemented. The signatures below are the contract other modules use.
"""

from __future__ import annotations

import datetime as _dt
from abc import ABC, abstractmethod
from typing import Sequence


class ScheduleError(ValueError):
    """A schedule, duration or spec a user typed is not valid; the message is one line."""


class Schedule(ABC):
    """An immutable rule that yields fire times (aware datetimes, compared in UTC)."""

    kind: str  # "every" | "daily" | "cron" | "once"
    jitter: float  # seconds; runners add a uniform random delay in [0, jitter)

    @abstractmethod
    def next_after(self, after: _dt.datetime) -> _dt.datetime | None:
        """The first fire time strictly after ``after``, or None when there are no more."""

    def first(self, now: _dt.datetime) -> _dt.datetime | None:
        """When a freshly started job first fires. Intervals fire at once; others wait."""
        return self.next_after(now)

    def preview(self, n: int = 3, after: _dt.datetime | None = None) -> list[_dt.datetime]:
        """The next ``n`` fire times after ``after`` (default: now), for command previews."""
        raise NotImplementedError

    @property
    @abstractmethod
    def spec(self) -> str:
        """Canonical spec text; ``parse_spec(s.spec) == s``. This is what Config stores."""

    @abstractmethod
    def describe(self) -> str:
        """Short human text, e.g. ``every 1h 30m`` or ``daily 09:00, 21:00 Europe/Berlin``."""


class IntervalSchedule(Schedule):
    kind = "every"

    def __init__(self, seconds: float, *, jitter: float = 0.0) -> None:
        raise NotImplementedError

    @property
    def seconds(self) -> float:
        raise NotImplementedError


class DailySchedule(Schedule):
    kind = "daily"

    def __init__(self, times: Sequence[_dt.time], *, jitter: float = 0.0) -> None:
        raise NotImplementedError


class CronSchedule(Schedule):
    kind = "cron"

    def __init__(self, expr: str, tz: str = "UTC", *, jitter: float = 0.0) -> None:
        raise NotImplementedError


class OnceSchedule(Schedule):
    kind = "once"

    def __init__(self, at: _dt.datetime, *, jitter: float = 0.0) -> None:
        raise NotImplementedError


def parse_spec(text: str, *, default_tz: str = "UTC") -> Schedule:
    """Parse ``every 90s`` / ``daily 09:00,21:00 Europe/Berlin`` / ``cron */15 * * * * UTC`` /
    ``once 2026-12-24T18:00 Europe/Paris``. Raises ScheduleError with one clear line."""
    raise NotImplementedError


def parse_duration(text: str) -> float:
    """``90s``, ``5m``, ``1h30m``, ``2d``, ``1.5h`` or a bare number of seconds -> seconds."""
    raise NotImplementedError


def format_duration(seconds: float) -> str:
    """``5400`` -> ``1h 30m``; ``90`` -> ``1m 30s``; ``0.25`` -> ``250ms``."""
    raise NotImplementedError
