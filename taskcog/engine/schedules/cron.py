"""A cron expression evaluated in a zone by cronsim (``cron */15 * * * * UTC``)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from cronsim import CronSim, CronSimError

from .base import Schedule, _fixed_time_jitter
from .dst import _aware
from .durations import format_duration
from .errors import ScheduleError, shown
from .zones import zone_from_name, zone_name

UTC = _dt.UTC


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
            raise ScheduleError(f"bad cron expression '{shown(self._expr)}': {detail}") from None
        self._fixup = getattr(self._cron, "fixup_tz", None) is not None
        self._reuse = all(
            hasattr(self._cron, name) for name in ("dt", "skip_initial_tick", "fixup_tz")
        )
        self._jitter = _fixed_time_jitter(jitter, "cron")

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
