"""What a user of the supervisor writes and gets: a task definition, the spec its provider
returns for each key, and the context a running job receives."""

from __future__ import annotations

import asyncio
import datetime as _dt
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable, Iterable, Mapping, Protocol

from ..schedules import Schedule
from ..supervision import RetryPolicy, TaskStatus

UTC = _dt.UTC
CATCH_UP = ("coalesce", "skip", "all")
PRIORITIES = ("high", "normal", "low")


@dataclass(frozen=True)
class Requirement:
    """``requires=``: run on schedule only if ``task`` succeeded (for the same key, or its
    global job) within ``within`` seconds, or within ``intervals`` of its own interval;
    otherwise the run is skipped with a recorded reason (not a failure)."""

    task: str
    within: float | None = None
    intervals: float | None = None

    def __post_init__(self) -> None:
        if (self.within is None) == (self.intervals is None):
            raise ValueError("a requirement needs either within (seconds) or intervals")
        if not (self.within or self.intervals or 0) > 0:
            raise ValueError("a requirement's freshness must be more than 0")

    def describe(self) -> str:
        from ..schedules import format_duration

        if self.within is not None:
            return f"requires {self.task} ok within {format_duration(self.within)}"
        n = f"{self.intervals:g}"
        return f"requires {self.task} ok within {n} interval{'' if n == '1' else 's'}"


def _global_keys() -> list[Hashable]:
    return [None]


@dataclass(frozen=True)
class JobSpec:
    """What the provider says about one (task, key), read at each tick."""

    enabled: bool
    schedule: Schedule
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class TaskDefinition:
    """A task run once per key. ``provider(key)`` returns a JobSpec, ``None`` (no job for that
    key), or an awaitable of either.

    ``overlap``: ``False`` = one run at a time, ``True`` = unlimited, ``n`` = at most n at once
    (with overlap the next fire is scheduled when a run starts, not when it ends).
    ``spread``: spread interval first fires of keyed jobs over one interval.
    ``misfire_grace``: with ``catch_up="skip"``, how late (seconds) a fire may be and still run.
    """

    name: str
    run: Callable[[JobContext], Awaitable[Any]]
    provider: Callable[[Hashable], JobSpec | None | Awaitable[JobSpec | None]]
    keys: Callable[[], Iterable[Hashable]] = _global_keys
    timeout: float | None = None
    overlap: bool | int = False
    catch_up: str = "coalesce"
    policy: RetryPolicy | None = None
    owner: str | None = None
    spread: bool = True
    misfire_grace: float = 1.0
    after: str | None = None  # also run each time this task succeeds (for the same key)
    requires: Requirement | str | None = None  # a str means fresh within 2 of its intervals
    priority: str = "normal"  # "low" runs are deferred while the loop lags (see deferral)

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a task needs a name")
        if self.catch_up not in CATCH_UP:
            raise ValueError(
                f"catch_up must be one of {', '.join(CATCH_UP)}, not {self.catch_up!r}"
            )
        if not isinstance(self.overlap, bool) and (
            not isinstance(self.overlap, int) or self.overlap < 1
        ):
            raise ValueError(
                f"overlap must be True, False or a count of 1 or more: {self.overlap!r}"
            )
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout must be more than 0 seconds, got {self.timeout!r}")
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}: {self.priority!r}")
        if isinstance(self.requires, str):
            self.requires = Requirement(self.requires, intervals=2.0)

    @property
    def dependency(self) -> str | None:
        """What this task waits for, as status shows it (None when nothing)."""
        parts = [f"after {self.after}"] if self.after else []
        if isinstance(self.requires, Requirement):
            parts.append(self.requires.describe())
        return "; ".join(parts) or None

    @property
    def limit(self) -> int:
        """How many runs of one (task, key) may overlap."""
        if self.overlap is True:
            return sys.maxsize
        if self.overlap is False:
            return 1
        return int(self.overlap)


class _Host(Protocol):
    """The supervisor, as the context of one of its runs sees it."""

    _progress: dict[Any, tuple[float, float | None, str]]

    def _materialize(self, job: Any) -> TaskStatus: ...


class JobContext:
    """What a running job gets: which (task, key), the fire it serves and its options.

    ``status`` is the job's live :class:`TaskStatus` (created on first access).
    """

    __slots__ = (
        "task",
        "key",
        "options",
        "supervisor",
        "manual",
        "_at",
        "_scheduled",
        "_job",
        "_started",
        "_timer",
        "_timed_out",
        "_retry",
        "_coro",
        "_task",
        "_tick",
    )

    def __init__(
        self,
        task: str,
        key: Hashable,
        scheduled_for: _dt.datetime | float,
        options: Mapping[str, Any],
        supervisor: _Host,
        manual: bool,
        job: Any,
    ) -> None:
        self.task = task
        self.key = key
        if isinstance(scheduled_for, _dt.datetime):
            self._at = scheduled_for.timestamp()
            self._scheduled: _dt.datetime | None = scheduled_for
        else:
            self._at = scheduled_for
            self._scheduled = None
        self.options = options
        self.supervisor = supervisor
        self.manual = manual
        self._job = job
        self._started = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timed_out = False
        self._retry = False
        self._coro: Any = None  # a scheduled run's body, until a runner steps it
        self._task: asyncio.Task[Any] | None = None  # the task that steps it
        self._tick: object = None  # an async provider's tick ran no body: why (see runs.py)

    @property
    def scheduled_for(self) -> _dt.datetime:
        """The fire this run serves (UTC); the start time for :meth:`Supervisor.run_now`."""
        if self._scheduled is None:
            self._scheduled = _dt.datetime.fromtimestamp(self._at, UTC)
        return self._scheduled

    @property
    def status(self) -> TaskStatus:
        return self.supervisor._materialize(self._job)

    def progress(self, done: float, total: float | None = None, note: str = "") -> None:
        """Report progress of this run, for status displays (``Supervisor.progress``)."""
        self.supervisor._progress[self._job] = (done, total, note)

    def __repr__(self) -> str:
        return f"<JobContext {self.task}[{self.key!r}] for {self.scheduled_for.isoformat()}>"
