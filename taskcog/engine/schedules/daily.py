"""At listed times of day, each in its own zone (``daily 09:00,21:00 Europe/Berlin``)."""

from __future__ import annotations

import datetime as _dt
from typing import Any, Sequence

from .base import Schedule, _fixed_time_jitter
from .dst import _aware, _first_valid
from .durations import format_duration
from .errors import ScheduleError
from .zones import zone_name

UTC = _dt.UTC


def _hhmm(t: _dt.time) -> str:
    text = f"{t.hour:02d}:{t.minute:02d}"
    if t.second or t.microsecond:
        text += f":{t.second:02d}"
    if t.microsecond:
        text += f".{t.microsecond:06d}"
    return text


class DailySchedule(Schedule):
    """At one or more times of day, each in its own zone (a naive time means UTC)."""

    __slots__ = ("_times", "_entries")
    kind = "daily"

    def __init__(self, times: Sequence[_dt.time] | _dt.time, *, jitter: float = 0.0) -> None:
        if isinstance(times, _dt.time):
            times = [times]
        entries: dict[tuple[str, _dt.time], _dt.time] = {}
        for t in times:
            if not isinstance(t, _dt.time):
                raise ScheduleError(f"daily times must be datetime.time, got {t!r}")
            tz = t.tzinfo or UTC
            naive = t.replace(tzinfo=None, fold=0)
            entries.setdefault((zone_name(tz), naive), t.replace(tzinfo=tz, fold=0))
        if not entries:
            raise ScheduleError("a daily schedule needs at least one time, e.g. 09:00")
        order = sorted(entries)
        self._times: tuple[_dt.time, ...] = tuple(entries[k] for k in order)
        # (zone key, naive time, tzinfo) per listed time; the zone key groups the spec text.
        self._entries = tuple((k[0], k[1], entries[k].tzinfo) for k in order)
        self._jitter = _fixed_time_jitter(jitter, "daily")

    @property
    def times(self) -> tuple[_dt.time, ...]:
        """The listed times (aware), sorted by zone then time of day."""
        return self._times

    def next_after(self, after: _dt.datetime) -> _dt.datetime:
        # Compare in UTC: two datetimes sharing a tzinfo compare by wall time, ignoring fold.
        after = _aware(after).astimezone(UTC)
        best: _dt.datetime | None = None
        best_utc = after
        for _, naive, tz in self._entries:
            day = after.astimezone(tz).date()
            # Today's run may be past; tomorrow's is always later (day 2: belt and braces).
            for offset in (0, 1, 2):
                fire = _first_valid(
                    _dt.datetime.combine(day + _dt.timedelta(days=offset), naive, tzinfo=tz)
                )
                fire_utc = fire.astimezone(UTC)
                if fire_utc > after:
                    if best is None or fire_utc < best_utc:
                        best, best_utc = fire, fire_utc
                    break
        assert best is not None
        return best

    def _groups(self) -> list[tuple[str, list[str]]]:
        groups: list[tuple[str, list[str]]] = []
        for zone, naive, _ in self._entries:
            if not groups or groups[-1][0] != zone:
                groups.append((zone, []))
            groups[-1][1].append(_hhmm(naive))
        return groups

    @property
    def spec(self) -> str:
        body = ",".join(f"{','.join(times)} {zone}" for zone, times in self._groups())
        return f"daily {body}{self._jitter_suffix()}"

    def describe(self) -> str:
        body = ", ".join(f"{', '.join(times)} {zone}" for zone, times in self._groups())
        text = f"daily {body}"
        return text + (f" (jitter {format_duration(self._jitter)})" if self._jitter else "")

    def _key(self) -> tuple[Any, ...]:
        return (tuple((zone, naive) for zone, naive, _ in self._entries), self._jitter)
