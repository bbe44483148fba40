"""Calendar windows in a guild's IANA zone: today, this ISO week (from Monday 00:00), this month.

A window is keyed by its first local date as an integer ``YYYYMMDD``, never by an instant, so a
day of 23 or 25 hours (DST) is still one day. Grains: 0 = all time, 1 = day, 2 = week, 3 = month.
"""

from __future__ import annotations

import datetime as _dt
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

ALL, DAY, WEEK, MONTH = 0, 1, 2, 3
GRAINS = (DAY, WEEK, MONTH)
PERIOD_GRAIN = {"all": ALL, "today": DAY, "week": WEEK, "month": MONTH}


def zone(tz: str) -> ZoneInfo:
    """The zone named ``tz``; ValueError (one line) for a name the tz database lacks."""
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def _key(day: _dt.date) -> int:
    return day.year * 10000 + day.month * 100 + day.day


def period_start(grain: int, tz: str, now: _dt.datetime | None = None) -> int:
    """The ``YYYYMMDD`` key of the window of ``grain`` holding ``now`` (default: the clock)."""
    if now is None:
        now = _dt.datetime.now(_dt.UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=_dt.UTC)
    day = now.astimezone(zone(tz)).date()
    if grain == WEEK:
        day -= _dt.timedelta(days=day.weekday())
    elif grain == MONTH:
        day = day.replace(day=1)
    return _key(day)


class Zone(NamedTuple):
    """A guild's zone and, per grain, the first window kept in the period rows: the window
    holding "now" when the rows are written. Boards only ever show the current window, so rows
    of windows already over are never read; a history import of a year writes the rows of this
    day, week and month only, not of 365 days, 52 weeks and 12 months."""

    tz: str
    horizon: dict[int, int]


def horizons(tz: str, now: _dt.datetime | None = None) -> dict[int, int]:
    """The current window's key per grain in ``tz`` at ``now`` (default: the clock)."""
    return {grain: period_start(grain, tz, now) for grain in GRAINS}


def horizon_epoch(tz: str, horizon: dict[int, int]) -> int:
    """An epoch second at or before the start of every window in ``horizon`` (a day early, so
    a DST change at midnight cannot matter): rows before it need no period keys at all."""
    first = min(horizon.values())
    day = _dt.date(first // 10000, first // 100 % 100, first % 100) - _dt.timedelta(days=1)
    return int(_dt.datetime.combine(day, _dt.time(), zone(tz)).timestamp())


def period_starts(at: pl.Expr, tz: str) -> dict[int, pl.Expr]:
    """Window keys per grain for epoch-second ``at``, computed in polars (DST-correct)."""
    local = pl.from_epoch(at, time_unit="s").dt.replace_time_zone("UTC")
    day = local.dt.convert_time_zone(tz).dt.date()
    week = day - pl.duration(days=day.dt.weekday() - 1)  # polars: Monday = 1

    def key(d: pl.Expr) -> pl.Expr:
        return d.dt.year() * 10000 + d.dt.month().cast(pl.Int32) * 100 + d.dt.day()

    return {DAY: key(day), WEEK: key(week), MONTH: key(day.dt.month_start())}
