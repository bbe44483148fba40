"""After another task (``after killfeed``): no clock of its own, it runs each time that task
(for the same key) completes successfully. The supervisor triggers it; see
:mod:`taskcog.engine.supervisor.dependencies`."""

from __future__ import annotations

import datetime as _dt
import re
from typing import Any

from .base import Schedule
from .durations import format_duration
from .errors import ScheduleError, shown

_TASK = re.compile(r"^[a-z][a-z0-9_.-]{1,39}$")
MIN_GAP = 60.0
"""The least time between two triggered runs: a leader that runs every 10 s must not drive
its follower that often."""


class AfterSchedule(Schedule):
    """Runs after each successful run of ``task``, at most once per ``min_gap`` seconds."""

    __slots__ = ("_task", "_min_gap")
    kind = "after"

    def __init__(self, task: str, *, min_gap: float = MIN_GAP) -> None:
        name = (task or "").strip().lower()
        if not _TASK.match(name):
            raise ScheduleError(f"bad task name '{shown(task or '')}' after 'after'")
        self._task = name
        self._min_gap = float(min_gap)
        self._jitter = 0.0

    @property
    def task(self) -> str:
        """The task whose successful runs trigger this one."""
        return self._task

    @property
    def min_gap(self) -> float:
        return self._min_gap

    def next_after(self, after: _dt.datetime) -> _dt.datetime | None:
        return None  # no fire times of its own: it is triggered

    @property
    def spec(self) -> str:
        return f"after {self._task}"

    def describe(self) -> str:
        gap = f" (at most every {format_duration(self._min_gap)})" if self._min_gap else ""
        return f"after {self._task}{gap}"

    def _key(self) -> tuple[Any, ...]:
        return (self._task, self._min_gap)
