"""``parse_spec``: the text a user types (and Config stores) -> a :class:`Schedule`."""

from __future__ import annotations

import datetime as _dt
import re

from .after import AfterSchedule
from .base import Schedule
from .cron import CronSchedule
from .daily import DailySchedule
from .dst import _aware
from .durations import _duration, format_duration, parse_duration
from .errors import ScheduleError, shown
from .interval import IntervalSchedule
from .once import OnceSchedule
from .zones import _looks_like_zone, zone_from_name

UTC = _dt.UTC

_KINDS = "every, daily, cron or once"
MAX_DAILY_TIMES = 24
MAX_CRON_LENGTH = 100
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
    raise ScheduleError(f"bad daily time '{shown(word)}': use HH:MM, e.g. 09:00")


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
            raise ScheduleError(
                f"time zone '{shown(word)}' must follow a time, e.g. 'daily 09:00 UTC'"
            )
        zone = zone_from_name(word)
        times += [t.replace(tzinfo=zone) for t in pending]
        pending = []
    times += [t.replace(tzinfo=default_tz) for t in pending]
    if len(times) > MAX_DAILY_TIMES:
        raise ScheduleError(
            f"a daily schedule takes at most {MAX_DAILY_TIMES} times, got {len(times)}: "
            "use 'every' or 'cron' for more"
        )
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
    expr = " ".join(words)
    if len(expr) > MAX_CRON_LENGTH:
        raise ScheduleError(
            f"bad cron expression '{shown(expr)}': longer than {MAX_CRON_LENGTH} characters"
        )
    return CronSchedule(expr, tz, jitter=jitter)


def _parse_once_in(
    words: list[str], default_tz: _dt.tzinfo, jitter: float, now: _dt.datetime | None
) -> OnceSchedule:
    # "once in 2h [zone]": resolved at parse time, so what is saved is an absolute time.
    zone = default_tz
    if len(words) >= 2 and _looks_like_zone(words[-1]):
        zone, words = zone_from_name(words[-1]), words[:-1]
    text = " ".join(words)
    if not text:
        raise ScheduleError("missing delay: use e.g. 'once in 2h' or 'once in 1h30m'")
    if now is None:
        raise ScheduleError(
            f"'once in {shown(text)}' is relative to now and no current time was given: "
            "write an absolute time, e.g. 'once 2026-12-24T18:00 Europe/Paris'"
        )
    seconds = _duration(text, "once in")
    if seconds <= 0:
        raise ScheduleError(f"'once in {shown(text)}' is not in the future: use e.g. 'once in 2h'")
    try:
        at = _aware(now).astimezone(UTC) + _dt.timedelta(seconds=seconds)
        if at.microsecond:  # whole seconds read better, and rounding up never lands in the past
            at = at.replace(microsecond=0) + _dt.timedelta(seconds=1)
        at = at.astimezone(zone)
    except (OverflowError, ValueError):
        raise ScheduleError(
            f"'once in {format_duration(seconds)}' is out of range: use a year from 1970 to 9998"
        ) from None
    return OnceSchedule(at, jitter=jitter)


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
        raise ScheduleError(
            f"bad date/time '{shown(' '.join(words))}': use e.g. "
            "'once 2026-12-24T18:00 Europe/Paris'"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone or default_tz)
    elif zone is not None:
        try:
            at = at.astimezone(zone)
        except (OverflowError, ValueError):
            pass  # out of range either way: OnceSchedule says so
    return OnceSchedule(at, jitter=jitter)


def parse_spec(text: str, *, default_tz: str = "UTC", now: _dt.datetime | None = None) -> Schedule:
    """Parse ``every 90s`` / ``daily 09:00,21:00 Europe/Berlin`` / ``cron */15 * * * * UTC`` /
    ``once 2026-12-24T18:00 Europe/Paris`` / ``once in 2h``, each with an optional trailing
    ``jitter 30s``.

    A zone written after daily times applies to them; a trailing IANA zone ends a cron
    expression; anything without a zone uses ``default_tz`` (a zone name, as for
    :func:`zone_from_name`). With ``now``, a ``once`` time that is not in the future is refused.
    ``once in <duration>`` needs ``now``: it becomes the absolute time ``now + duration`` (rounded
    up to a whole second) in its zone, so its ``spec`` is an absolute ``once`` spec.

    Bounds: an interval (and any duration, ``once in`` too) is at most 366 days; jitter is at
    most the interval, or 1h for daily, cron and once; a daily schedule lists at most 24 times;
    a cron expression is at most 100 characters; a ``once`` year is 1970-9998.
    Raises ScheduleError with one clear line.
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
        jitter = parse_duration(clause, "jitter")
        words = words[:at]
    kind, rest = words[0].lower(), words[1:]
    zone = zone_from_name(default_tz)
    schedule: Schedule
    if kind == "every":
        if not rest:
            raise ScheduleError("missing interval: use e.g. 'every 90s' or 'every 1h30m'")
        seconds = _duration(" ".join(rest), "interval")
        if seconds < 1:
            raise ScheduleError("interval must be at least 1s")
        schedule = IntervalSchedule(seconds, jitter=jitter)
    elif kind == "daily":
        schedule = _parse_daily(rest, zone, jitter)
    elif kind == "cron":
        schedule = _parse_cron(rest, default_tz, jitter)
    elif kind == "once":
        if rest and rest[0].lower() == "in":
            once = _parse_once_in(rest[1:], zone, jitter, now)
        else:
            once = _parse_once(rest, zone, jitter)
        if now is not None and once.at.astimezone(UTC) <= _aware(now).astimezone(UTC):
            raise ScheduleError(f"'once' time {once.when()} is in the past")
        schedule = once
    elif kind == "after":
        if len(rest) != 1 or jitter:
            raise ScheduleError("use 'after <task>', e.g. 'after killfeed' (no jitter)")
        schedule = AfterSchedule(rest[0])
    else:
        raise ScheduleError(f"unknown schedule kind '{shown(words[0])}': use {_KINDS}")
    return schedule
