"""The :class:`Schedule` interface every schedule kind implements."""

from __future__ import annotations

import datetime as _dt
import math
from abc import ABC, abstractmethod
from typing import Any

from .durations import _spec_duration, format_duration
from .errors import ScheduleError

UTC = _dt.UTC

MAX_JITTER = 3600.0
"""The most jitter a daily, cron or once schedule may add (1h): a set time stays near its time.
An interval's jitter may be up to the interval itself."""


def _check_jitter(jitter: float, limit: float = MAX_JITTER, of: str = "") -> float:
    """``jitter`` as seconds, refused unless it is 0 to ``limit``; ``of`` names the limit (the
    interval, or the maximum for a kind) in the error: ``jitter 2h is longer than the interval
    1h``."""
    jitter = float(jitter)
    if not (jitter >= 0 and math.isfinite(jitter)):
        raise ScheduleError(f"jitter must be 0 or more seconds, got {jitter!r}")
    if jitter > limit:
        limit_text = of or f"the maximum of {format_duration(limit)}"
        raise ScheduleError(f"jitter {format_duration(jitter)} is longer than {limit_text}")
    return jitter


def _fixed_time_jitter(jitter: float, kind: str) -> float:
    """Jitter for a schedule that fires at set times (daily, cron, once): at most 1h."""
    of = f"the maximum of {format_duration(MAX_JITTER)} for a {kind} schedule"
    return _check_jitter(jitter, MAX_JITTER, of)


class Schedule(ABC):
    """An immutable rule that yields fire times (aware datetimes, compared in UTC)."""

    __slots__ = ("_jitter",)

    kind: str  # "every" | "daily" | "cron" | "once"

    @property
    def jitter(self) -> float:
        """Seconds; runners add a uniform random delay in ``[0, jitter)``."""
        return self._jitter

    @abstractmethod
    def next_after(self, after: _dt.datetime) -> _dt.datetime | None:
        """The first fire time strictly after ``after``, or None when there are no more."""

    def first(self, now: _dt.datetime) -> _dt.datetime | None:
        """When a freshly started job first fires. Intervals fire at once; others wait."""
        return self.next_after(now)

    def preview(self, n: int = 3, after: _dt.datetime | None = None) -> list[_dt.datetime]:
        """The next ``n`` fire times after ``after`` (default: now, UTC), for command previews;
        fewer when the schedule ends (or would run past the year 9999)."""
        current: _dt.datetime | None = _dt.datetime.now(UTC) if after is None else after
        times: list[_dt.datetime] = []
        while len(times) < n and current is not None:
            try:
                current = self.next_after(current)
            except (OverflowError, ValueError):
                break  # past year 9999: there are no more fire times to show
            if current is not None:
                times.append(current)
        return times

    @property
    @abstractmethod
    def spec(self) -> str:
        """Canonical spec text; ``parse_spec(s.spec) == s``. This is what Config stores."""

    @abstractmethod
    def describe(self) -> str:
        """Short human text, e.g. ``every 1h 30m`` or ``daily 09:00, 21:00 Europe/Berlin``."""

    @abstractmethod
    def _key(self) -> tuple[Any, ...]: ...

    def _jitter_suffix(self) -> str:
        return f" jitter {_spec_duration(self._jitter)}" if self._jitter else ""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._key() == other._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.spec!r}>"
