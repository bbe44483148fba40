"""Durations as people type them (``90s``, ``1h30m``, ``5 minutes``) and as we print them."""

from __future__ import annotations

import math
import re

from .errors import ScheduleError, shown

MAX_DURATION = 366 * 86400.0
"""The longest duration, interval or jitter a spec may say: 366 days (a year, leap or not)."""

_UNITS: dict[str, float] = {}
for _names, _value in (
    (("ms", "msec", "msecs", "millisecond", "milliseconds"), 0.001),
    (("s", "sec", "secs", "second", "seconds"), 1.0),
    (("m", "min", "mins", "minute", "minutes"), 60.0),
    (("h", "hr", "hrs", "hour", "hours"), 3600.0),
    (("d", "day", "days"), 86400.0),
    (("w", "wk", "week", "weeks"), 604800.0),
):
    for _name in _names:
        _UNITS[_name] = _value

_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
_DURATION = re.compile(rf"(?:\s*{_NUMBER}\s*[a-z]+\s*,?)+")
_DURATION_PART = re.compile(rf"({_NUMBER})\s*([a-z]+)")


def _duration(text: str, what: str = "duration") -> float:
    """Parse a duration of at most :data:`MAX_DURATION`, allowing zero (callers check the lower
    bound they need). ``what`` names the value in the too-long error: ``interval``, ``jitter``."""
    cleaned = text.strip().lower().replace(" and ", " ")
    total: float | None = None
    if re.fullmatch(_NUMBER, cleaned):
        total = float(cleaned)
    elif cleaned and _DURATION.fullmatch(cleaned):
        total = 0.0
        for number, unit in _DURATION_PART.findall(cleaned):
            if unit not in _UNITS:
                total = None
                break
            total += float(number) * _UNITS[unit]
    if total is None:
        raise ScheduleError(f"bad duration '{shown(text.strip())}': use e.g. 90s, 5m, 1h30m")
    if total > MAX_DURATION:  # inf too: thousands of digits parse to it
        raise ScheduleError(
            f"{what} {shown(text.strip())} is longer than the maximum of "
            f"{format_duration(MAX_DURATION)}"
        )
    return total


def parse_duration(text: str, what: str = "duration") -> float:
    """``90s``, ``5m``, ``1h30m``, ``1h 30m``, ``2d``, ``1.5h``, ``500ms``, ``5 minutes`` or a bare
    number of seconds -> seconds. Raises ScheduleError unless the result is more than 0 and at
    most :data:`MAX_DURATION` (366 days); ``what`` names the value in the error."""
    seconds = _duration(text, what)
    if seconds <= 0:
        raise ScheduleError(f"{what} must be more than 0: '{shown(text.strip())}'")
    return seconds


def _num(value: float) -> str:
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def format_duration(seconds: float) -> str:
    """``5400`` -> ``1h 30m``; ``90`` -> ``1m 30s``; ``0.25`` -> ``250ms``; ``86400`` -> ``1d``."""
    if not math.isfinite(seconds):
        return str(seconds)
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        ms = _num(seconds * 1000)
        return f"{ms}ms" if ms != "0" else f"{seconds:.3g}s"
    whole = int(seconds)
    frac = seconds - whole
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    if secs or frac:
        shown = _num(secs + frac)
        if shown != "0":
            parts.append(f"{shown}s")
    return " ".join(parts) or "0s"


def _spec_duration(seconds: float) -> str:
    """A duration as one word that parses back to exactly ``seconds``."""
    text = format_duration(seconds).replace(" ", "")
    try:
        if _duration(text) == seconds:
            return text
    except ScheduleError:
        pass
    return f"{seconds!r}s"
