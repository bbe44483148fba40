"""Time-zone names: ``UTC``, IANA keys in any case, fixed offsets like ``+05:30``."""

from __future__ import annotations

import datetime as _dt
import re
import zoneinfo
from functools import lru_cache

from .errors import ScheduleError, shown

UTC = _dt.UTC
_ZERO = _dt.timedelta(0)

_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


@lru_cache(maxsize=1)
def _zone_keys_by_lower() -> dict[str, str]:
    return {key.lower(): key for key in zoneinfo.available_timezones()}


def zone_from_name(name: str) -> _dt.tzinfo:
    """``UTC``, an IANA name (any case) or a fixed offset like ``+05:30`` -> tzinfo.

    Raises ScheduleError("unknown time zone '...'").
    """
    if name.upper() in ("UTC", "Z"):
        return UTC
    match = _OFFSET.match(name)
    if match:
        sign, hours, minutes = match.groups()
        delta = _dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta >= _dt.timedelta(hours=24):
            raise ScheduleError(f"unknown time zone '{shown(name)}'")
        return _dt.timezone(-delta if sign == "-" else delta) if delta else UTC
    if ".." in name or name.startswith("/"):
        raise ScheduleError(f"unknown time zone '{shown(name)}'")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        key = _zone_keys_by_lower().get(name.lower())
        if key is None:
            raise ScheduleError(f"unknown time zone '{shown(name)}'") from None
        return zoneinfo.ZoneInfo(key)


def zone_name(tz: _dt.tzinfo | None) -> str:
    """The canonical text for a zone: ``UTC``, an IANA key, or ``+05:30``."""
    if tz is None or tz is UTC:
        return "UTC"
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if key:
        return str(key)
    if isinstance(tz, _dt.timezone):
        offset = tz.utcoffset(None)
        if not offset:
            return "UTC"
        sign = "-" if offset < _ZERO else "+"
        minutes = abs(offset) // _dt.timedelta(minutes=1)
        return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"
    return str(tz)


def _looks_like_zone(word: str) -> bool:
    return bool(re.search(r"[A-Za-z_]/[A-Za-z_]", word)) or word.upper() in ("UTC", "Z")
