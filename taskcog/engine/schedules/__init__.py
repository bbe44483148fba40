"""When things run: interval, daily times, cron and one-shot schedules, and ``parse_spec``.

A :class:`Schedule` is an immutable value that answers one question, :meth:`Schedule.next_after`:
the first fire time *strictly after* an instant. It never sleeps and never reads the clock
(except :meth:`Schedule.preview` with no ``after``), so it is pure and cheap to test.

Time rules, in one place:

- Every result is an aware datetime. A naive ``after`` (or ``at``) is treated as UTC; a naive
  ``datetime.time`` in a daily schedule means UTC.
- Intervals measure elapsed time, not wall time: ``next_after(prev) == prev + interval`` even
  across a DST change, returned in the tzinfo of ``prev``.
- Daily times each carry their own zone (``ZoneInfo``, fixed offsets and UTC may be mixed), and a
  fire time is returned in the zone of the time that fired, so ``fire.timetz() == listed_time``.
- **Spring forward (gap):** a daily time that does not exist on a day runs at the first valid
  instant after the gap: 02:30 America/New_York on 2022-03-13 runs at 03:00 EDT. Times that
  fall into the same gap run once, together. (discord.py's ``resolve_datetime`` in ``dst`` instead
  shifts by the gap length, 02:30 -> 03:30; it is kept ext.tasks-exact for the Loop compat layer.)
- **Fall back (ambiguous):** a daily time that happens twice runs once, at its first occurrence
  (``fold=0``).
- **Cron** follows cronsim (Debian cron semantics). An expression with a fixed minute *and*
  hour (e.g. ``30 2 * * *``) behaves like a daily time: in a gap it runs at the first valid
  minute after it (03:00 EDT), and on a fall-back day it runs once, at the first occurrence.
  An expression whose minute or hour field starts with ``*`` (e.g. ``*/30 1-3 * * *``) follows
  real elapsed time instead: it skips the minutes that do not exist and runs in *both* copies of
  a repeated hour.
- ``once``: a datetime inside a gap is moved to the first valid instant after the gap.
- ``jitter`` (seconds) is stored on the schedule for the runner to apply; the schedule itself
  stays deterministic.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from abc import ABC, abstractmethod
from typing import Any, Sequence

from cronsim import CronSim, CronSimError

from .dst import _aware, _first_valid, is_ambiguous, is_imaginary, resolve_datetime
from .durations import _duration, _spec_duration, format_duration, parse_duration
from .errors import ScheduleError
from .zones import _looks_like_zone, zone_from_name, zone_name

UTC = _dt.UTC

__all__ = [
    "CronSchedule",
    "DailySchedule",
    "IntervalSchedule",
    "OnceSchedule",
    "Schedule",
    "ScheduleError",
    "format_duration",
    "is_ambiguous",
    "is_imaginary",
    "parse_duration",
    "parse_spec",
    "resolve_datetime",
    "zone_from_name",
    "zone_name",
]


def _check_jitter(jitter: float) -> float:
    jitter = float(jitter)
    if not (jitter >= 0 and math.isfinite(jitter)):
        raise ScheduleError(f"jitter must be 0 or more seconds, got {jitter!r}")
    return jitter


def _hhmm(t: _dt.time) -> str:
    text = f"{t.hour:02d}:{t.minute:02d}"
    if t.second or t.microsecond:
        text += f":{t.second:02d}"
    if t.microsecond:
        text += f".{t.microsecond:06d}"
    return text


# --------------------------------------------------------------------------- schedules


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
        """The next ``n`` fire times after ``after`` (default: now, UTC), for command previews."""
        current: _dt.datetime | None = _dt.datetime.now(UTC) if after is None else after
        times: list[_dt.datetime] = []
        while len(times) < n and current is not None:
            current = self.next_after(current)
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
        self._jitter = _check_jitter(jitter)

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
        self._jitter = _check_jitter(jitter)

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


_CRON_FIELDS = (("second", 59), ("minute", 59), ("hour", 23), ("day-of-month", 30),
                ("month", 11), ("day-of-week", 7))  # fmt: skip


def _check_cron_steps(expr: str) -> None:
    """Refuse a step wider than its field (``*/99``), which cronsim quietly reads as ``0``."""
    parts = expr.split()
    fields = _CRON_FIELDS if len(parts) == 6 else _CRON_FIELDS[1:]
    for part, (name, widest) in zip(parts, fields, strict=False):
        for term in part.split(","):
            step = term.partition("/")[2]
            if step.isdigit() and int(step) > widest:
                raise CronSimError(f"Bad {name}")


class CronSchedule(Schedule):
    """A cron expression (5 fields, or 6 with seconds first) evaluated in a zone.

    ``tz`` is an IANA name, ``UTC``, a fixed offset like ``+05:30``, or a tzinfo (None: UTC).
    """

    __slots__ = ("_expr", "_tz", "_zone", "_cron", "_fixup", "_reuse")
    kind = "cron"

    def __init__(
        self, expr: str, tz: str | _dt.tzinfo | None = "UTC", *, jitter: float = 0.0
    ) -> None:
        self._expr = " ".join(expr.split()).upper()
        if not self._expr:
            raise ScheduleError("missing cron expression: use e.g. 'cron */15 * * * * UTC'")
        self._zone = zone_from_name(tz) if isinstance(tz, str) else (tz or UTC)
        self._tz = zone_name(self._zone)
        try:
            _check_cron_steps(self._expr)
            # Parsed once and reused: next_after only resets its cursor.
            self._cron = CronSim(self._expr, _dt.datetime(2000, 1, 1, tzinfo=self._zone))
        except CronSimError as exc:
            detail = str(exc)[:1].lower() + str(exc)[1:]
            raise ScheduleError(f"bad cron expression '{self._expr}': {detail}") from None
        self._fixup = getattr(self._cron, "fixup_tz", None) is not None
        self._reuse = all(
            hasattr(self._cron, name) for name in ("dt", "skip_initial_tick", "fixup_tz")
        )
        self._jitter = _check_jitter(jitter)

    @property
    def expr(self) -> str:
        """The expression, normalised (single spaces, upper case)."""
        return self._expr

    @property
    def tz(self) -> str:
        """The zone's name."""
        return self._tz

    @property
    def zone(self) -> _dt.tzinfo:
        """The zone as a tzinfo."""
        return self._zone

    def _next(self, start: _dt.datetime) -> _dt.datetime | None:
        if not self._reuse:  # a cronsim without the internals we reset: parse afresh
            return next(CronSim(self._expr, start), None)
        cron = self._cron
        cron.skip_initial_tick = False
        cron.dt = start.replace(microsecond=0, tzinfo=None if self._fixup else self._zone)
        return next(cron, None)

    def next_after(self, after: _dt.datetime) -> _dt.datetime | None:
        after = _aware(after)
        after_utc = after.astimezone(UTC)  # UTC: same-zone datetimes compare ignoring fold
        fire = self._next(after.astimezone(self._zone))
        # cronsim counts fixed-time jobs in wall time, so from inside the second copy of a
        # repeated hour it can return the first copy (already past): step on until later.
        while fire is not None and fire.astimezone(UTC) <= after_utc:
            fire = self._next(fire)
        return fire

    @property
    def spec(self) -> str:
        return f"cron {self._expr} {self._tz}{self._jitter_suffix()}"

    def describe(self) -> str:
        text = f"cron {self._expr} ({self._tz})"
        return text + (f" (jitter {format_duration(self._jitter)})" if self._jitter else "")

    def _key(self) -> tuple[Any, ...]:
        return (self._expr, self._tz, self._jitter)


class OnceSchedule(Schedule):
    """Once, at ``at`` (naive means UTC; a time inside a DST gap moves to the gap's end)."""

    __slots__ = ("_at",)
    kind = "once"

    def __init__(self, at: _dt.datetime, *, jitter: float = 0.0) -> None:
        if not isinstance(at, _dt.datetime):
            raise ScheduleError(f"'once' needs a datetime, got {at!r}")
        at = _aware(at)
        self._at = _first_valid(at) if is_imaginary(at) else at
        self._jitter = _check_jitter(jitter)

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


# --------------------------------------------------------------------------- parse_spec

_KINDS = "every, daily, cron or once"
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_CRON_WORDS = {
    "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT",
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
}  # fmt: skip


def _parse_time(word: str) -> _dt.time:
    match = _TIME.match(word)
    if match:
        hour, minute, second = (int(g or 0) for g in match.groups())
        if hour < 24 and minute < 60 and second < 60:
            return _dt.time(hour, minute, second)
    raise ScheduleError(f"bad daily time '{word}': use HH:MM, e.g. 09:00")


def _parse_daily(words: list[str], default_tz: _dt.tzinfo, jitter: float) -> DailySchedule:
    # A zone applies to the times written before it; times after the last zone use the default.
    tokens = " ".join(words).replace(",", " ").split()
    if not tokens:
        raise ScheduleError("missing time: use e.g. 'daily 09:00' or 'daily 09:00,21:00 UTC'")
    times: list[_dt.time] = []
    pending: list[_dt.time] = []
    for word in tokens:
        if word[:1].isdigit():
            pending.append(_parse_time(word))
            continue
        if not pending:
            raise ScheduleError(f"time zone '{word}' must follow a time, e.g. 'daily 09:00 UTC'")
        zone = zone_from_name(word)
        times += [t.replace(tzinfo=zone) for t in pending]
        pending = []
    times += [t.replace(tzinfo=default_tz) for t in pending]
    return DailySchedule(times, jitter=jitter)


def _parse_cron(words: list[str], default_tz: str, jitter: float) -> CronSchedule:
    tz = default_tz
    if words:
        last = words[-1]
        is_zone_word = _looks_like_zone(last) or (
            len(words) > 5
            and last.isalpha()
            and len(last) >= 3
            and last.upper() not in _CRON_WORDS
        )
        if is_zone_word:
            zone_from_name(last)  # raises "unknown time zone" for a bad one
            tz, words = last, words[:-1]
    return CronSchedule(" ".join(words), tz, jitter=jitter)


def _parse_once(words: list[str], default_tz: _dt.tzinfo, jitter: float) -> OnceSchedule:
    zone: _dt.tzinfo | None = None
    if len(words) >= 2 and not words[-1][:1].isdigit():
        zone = zone_from_name(words[-1])
        words = words[:-1]
    text = "T".join(words)
    if not text:
        raise ScheduleError("missing date: use e.g. 'once 2026-12-24T18:00 Europe/Paris'")
    try:
        at = _dt.datetime.fromisoformat(text)
    except ValueError:
        shown = " ".join(words)
        raise ScheduleError(
            f"bad date/time '{shown}': use e.g. 'once 2026-12-24T18:00 Europe/Paris'"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone or default_tz)
    elif zone is not None:
        at = at.astimezone(zone)
    return OnceSchedule(at, jitter=jitter)


def parse_spec(text: str, *, default_tz: str = "UTC", now: _dt.datetime | None = None) -> Schedule:
    """Parse ``every 90s`` / ``daily 09:00,21:00 Europe/Berlin`` / ``cron */15 * * * * UTC`` /
    ``once 2026-12-24T18:00 Europe/Paris``, each with an optional trailing ``jitter 30s``.

    A zone written after daily times applies to them; a trailing IANA zone ends a cron
    expression; anything without a zone uses ``default_tz``. With ``now``, a ``once`` time that
    is not in the future is refused. Raises ScheduleError with one clear line.
    """
    words = (text or "").split()
    if not words:
        raise ScheduleError(f"empty schedule: use {_KINDS}, e.g. 'every 1h' or 'daily 09:00'")
    jitter = 0.0
    lowered = [w.lower() for w in words]
    if "jitter" in lowered[1:]:
        at = len(lowered) - 1 - lowered[::-1].index("jitter")
        clause = " ".join(words[at + 1 :])
        if not clause:
            raise ScheduleError("missing jitter: use e.g. 'every 1h jitter 5m'")
        jitter = parse_duration(clause)
        words = words[:at]
    kind, rest = words[0].lower(), words[1:]
    zone = zone_from_name(default_tz)
    schedule: Schedule
    if kind == "every":
        if not rest:
            raise ScheduleError("missing interval: use e.g. 'every 90s' or 'every 1h30m'")
        seconds = _duration(" ".join(rest))
        if seconds < 1:
            raise ScheduleError("interval must be at least 1s")
        schedule = IntervalSchedule(seconds, jitter=jitter)
    elif kind == "daily":
        schedule = _parse_daily(rest, zone, jitter)
    elif kind == "cron":
        schedule = _parse_cron(rest, default_tz, jitter)
    elif kind == "once":
        once = _parse_once(rest, zone, jitter)
        if now is not None and once.at.astimezone(UTC) <= _aware(now).astimezone(UTC):
            raise ScheduleError(f"'once' time {once.when()} is in the past")
        schedule = once
    else:
        raise ScheduleError(f"unknown schedule kind '{words[0]}': use {_KINDS}")
    return schedule
