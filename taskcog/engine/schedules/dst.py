"""Daylight-saving edges: wall times that happen twice (fall back) or never (spring forward).

is_ambiguous / is_imaginary / resolve_datetime reproduce discord.ext.tasks (discord.py 2.7.1)
exactly, so the Loop compat layer schedules ``time=`` loops the way ext.tasks does.
``_first_valid`` is the rule our own schedules use (see the package docstring).
"""

from __future__ import annotations

import datetime as _dt
import math

UTC = _dt.UTC


def is_ambiguous(dt: _dt.datetime) -> bool:
    """True when ``dt``'s wall time happens twice in its zone (a fall-back hour)."""
    if dt.tzinfo is None or isinstance(dt.tzinfo, _dt.timezone):
        return False
    before = dt.replace(fold=0)
    after = dt.replace(fold=1)
    same_offset = before.utcoffset() == after.utcoffset()
    same_dst = before.dst() == after.dst()
    return not (same_offset and same_dst)


def is_imaginary(dt: _dt.datetime) -> bool:
    """True when ``dt``'s wall time does not exist in its zone (a spring-forward gap)."""
    if dt.tzinfo is None or isinstance(dt.tzinfo, _dt.timezone):
        return False
    tz = dt.tzinfo
    naive = dt.replace(tzinfo=None)
    roundtrip = naive.replace(tzinfo=tz).astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return naive != roundtrip


def resolve_datetime(dt: _dt.datetime) -> _dt.datetime:
    """ext.tasks' rule: shift a gap time forward by the gap length; pick fold=1 when ambiguous.

    Not the rule our schedules use (see the package docstring); kept for ext.tasks compat.
    """
    if dt.tzinfo is None or isinstance(dt.tzinfo, _dt.timezone):
        return dt
    if is_imaginary(dt):
        tomorrow = dt + _dt.timedelta(days=1)
        yesterday = dt - _dt.timedelta(days=1)
        return dt + (tomorrow.utcoffset() - yesterday.utcoffset())  # type: ignore[operator]
    if is_ambiguous(dt):
        return dt.replace(fold=1)
    return dt


def _first_valid(local: _dt.datetime) -> _dt.datetime:
    """``local`` itself, or the first instant after the gap when it falls inside one.

    Ambiguous times keep ``fold=0`` (the first occurrence).
    """
    local = local.replace(fold=0)
    if not is_imaginary(local):
        return local
    tz = local.tzinfo
    # PEP 495: in a gap fold=0 maps with the offset before the transition, fold=1 after it, so
    # the transition instant lies in (lo, hi]. Search it to the second (tzdata's precision).
    hi = math.ceil(local.astimezone(UTC).timestamp())
    lo = math.floor(local.replace(fold=1).astimezone(UTC).timestamp())
    after_offset = _dt.datetime.fromtimestamp(hi, UTC).astimezone(tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _dt.datetime.fromtimestamp(mid, UTC).astimezone(tz).utcoffset() == after_offset:
            hi = mid
        else:
            lo = mid
    return _dt.datetime.fromtimestamp(hi, UTC).astimezone(tz)


def _aware(dt: _dt.datetime) -> _dt.datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt
