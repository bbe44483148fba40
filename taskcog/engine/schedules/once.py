"""Once, at a given instant (``once 2026-12-24T18:00 Europe/Paris``)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from .base import Schedule, _fixed_time_jitter
from .dst import _aware, _first_valid, is_ambiguous, is_imaginary
from .durations import format_duration
from .errors import ScheduleError
from .zones import zone_name

UTC = _dt.UTC

# Fire times become Unix timestamps and may gain up to an hour of jitter: keep them well inside
# what datetime can hold (years 1-9999).
_EARLIEST = _dt.datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = _dt.datetime(9999, 1, 1, tzinfo=UTC)


def _in_range(at: _dt.datetime) -> bool:
    try:
        return _EARLIEST <= at.astimezone(UTC) < _LATEST
    except (OverflowError, ValueError):  # year 1 or 9999 moved past the edge by its offset
        return False


class OnceSchedule(Schedule):
    """Once, at ``at`` (naive means UTC; a time inside a DST gap moves to the gap's end)."""

    __slots__ = ("_at",)
    kind = "once"

    def __init__(self, at: _dt.datetime, *, jitter: float = 0.0) -> None:
        if not isinstance(at, _dt.datetime):
            raise ScheduleError(f"'once' needs a datetime, got {at!r}")
        at = _aware(at)
        if not _in_range(at):
            shown = f"{at.replace(tzinfo=None).isoformat(' ', 'minutes')} {zone_name(at.tzinfo)}"
            raise ScheduleError(
                f"'once' time {shown} is out of range: use a year from 1970 to 9998"
            )
        self._at = _first_valid(at) if is_imaginary(at) else at
        self._jitter = _fixed_time_jitter(jitter, "once")

    @property
    def at(self) -> _dt.datetime:
        """The fire time, in the zone it was given in."""
        return self._at

    def next_after(self, after: _dt.datetime) -> _dt.datetime | None:
        after = _aware(after)
        if self._at.astimezone(UTC) > after.astimezone(UTC):  # UTC: fold-safe comparison
            return self._at.astimezone(after.tzinfo)
        return None

    def _local_text(self, sep: str) -> str:
        local = self._at.replace(tzinfo=None, fold=0)
        timespec = "minutes" if not (local.second or local.microsecond) else "auto"
        return local.isoformat(sep=sep, timespec=timespec)

    @property
    def spec(self) -> str:
        text = self._local_text("T")
        if self._at.fold and is_ambiguous(self._at):
            # The second copy of a repeated hour: only the offset tells it apart.
            text += zone_name(_dt.timezone(self._at.utcoffset()))  # type: ignore[arg-type]
        return f"once {text} {zone_name(self._at.tzinfo)}{self._jitter_suffix()}"

    def when(self) -> str:
        """The fire time as people read it: ``2026-12-24 18:00 Europe/Paris``."""
        return f"{self._local_text(' ')} {zone_name(self._at.tzinfo)}"

    def describe(self) -> str:
        text = f"once {self.when()}"
        return text + (f" (jitter {format_duration(self._jitter)})" if self._jitter else "")

    def _key(self) -> tuple[Any, ...]:
        return (self._at.astimezone(UTC), zone_name(self._at.tzinfo), self._jitter)
