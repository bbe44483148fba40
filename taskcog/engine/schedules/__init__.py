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

One module per idea: ``base`` (the interface), ``interval``, ``daily``, ``cron`` and ``once`` (one
kind each), ``spec`` (``parse_spec``), ``durations``, ``zones``, ``dst`` and ``errors``.
"""

from __future__ import annotations

from .after import AfterSchedule
from .base import Schedule
from .cron import CronSchedule
from .daily import DailySchedule
from .dst import is_ambiguous, is_imaginary, resolve_datetime
from .durations import format_duration, parse_duration
from .errors import ScheduleError
from .interval import IntervalSchedule
from .once import OnceSchedule
from .spec import parse_spec
from .zones import zone_from_name, zone_name

__all__ = [
    "AfterSchedule",
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
