"""The compact job record: one small object per (task, key), and its heap entry.

30k of these are the supervisor's memory, so they are slotted, times are float timestamps and
a job's flags are bits of one small int. The heap entry is a float, so the heap compares in C.
"""

from __future__ import annotations

import datetime as _dt
import zlib
from typing import TYPE_CHECKING, Any, Hashable, Mapping

from ..schedules import Schedule
from ..supervision import RetryPolicy, State, TaskStatus

if TYPE_CHECKING:
    import asyncio

    from .definitions import JobContext, JobSpec, TaskDefinition

UTC = _dt.UTC
_MASK64 = (1 << 64) - 1
_GOLDEN64 = 0x9E3779B97F4A7C15

# Job flags, bits of ``_Job.flags``. A healthy sleeping job has none set. The states every
# healthy job passes through (first fire, served, queued) have the low bits, so its flags stay
# a cached small int (0 to 256) instead of a 28-byte int object per job.
_FIRST = 1  # ``fire`` is a (spread) first fire
_SERVED = 2  # ``fire`` is the fire the latest run served, not the next one to run
_QUEUED = 4  # its due entry waits for a concurrency slot
_PENDING = 8  # a fire came due while the job was busy: run it when a run ends
_RETRYING = 16
_PAUSED = 32
_STOPPED = 64
_DISABLED = 128
_CIRCUIT = 256
_DEAD = 512
_PARKED = _PAUSED | _STOPPED | _DISABLED | _CIRCUIT | _DEAD
_FINISHED = 1024  # the schedule has no more fires

LATENESS_MASK = 4095  # the supervisor keeps the start lateness of the latest 4096 runs


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Default for ``key`` arguments: all keys of the task."""


class _Family:
    """A registered definition and its jobs by key."""

    __slots__ = ("definition", "name", "jobs", "paused", "dead", "limit", "policy", "order")

    def __init__(self, definition: TaskDefinition, policy: RetryPolicy, order: int = 0) -> None:
        self.definition = definition
        self.order = order  # registration order: ties between tasks run in this order
        self.name = definition.name
        self.jobs: dict[Hashable, _Job] = {}
        self.paused = False
        self.dead = False
        self.limit = definition.limit
        self.policy = definition.policy or policy


class _Job:
    """One (task, key), kept small: 30k of these are the supervisor's memory.

    ``entry`` is the live heap (or queue) entry, ``None`` when there is none; older entries
    left in the heap are stale (lazy deletion). ``fire`` is a float timestamp: the next fire
    to run, or with ``_SERVED`` the fire the latest run served. ``last_start`` is a float
    timestamp, ``last_us`` the latest successful run's duration in whole microseconds.
    """

    __slots__ = (
        "family",
        "key",
        "spec",
        "entry",
        "fire",
        "flags",
        "active",
        "state",
        "status",
        "runs",
        "last_start",
        "last_us",
    )

    def __init__(self, family: _Family, key: Hashable) -> None:
        self.family = family
        self.key = key
        self.spec: JobSpec | None = None
        self.entry: _Entry | None = None
        self.fire: float | None = None
        self.flags = _PAUSED if family.paused else 0
        self.active = 0
        self.state = State.STOPPED
        self.status: TaskStatus | None = None
        self.runs = 0
        self.last_start: float | None = None
        self.last_us = 0

    @property
    def schedule(self) -> Schedule | None:
        return self.spec.schedule if self.spec is not None else None

    @property
    def options(self) -> Mapping[str, Any]:
        return self.spec.options if self.spec is not None else {}


class _Entry(float):
    """A heap entry: its value is when the job is due. Live while ``job.entry is self``.

    A float subclass, so the heap compares entries in C and one object is both the due
    time and the pointer back to its job (a ``(when, seq, job)`` tuple costs twice as much).
    """

    __slots__ = ("job",)

    job: _Job


def _spread_fraction(task: str, key: Hashable) -> float:
    """A stable fraction in [0, 1) for (task, key); even for consecutive int keys."""
    if isinstance(key, int):
        h = (key * _GOLDEN64) & _MASK64
    else:
        h = (zlib.crc32(repr(key).encode()) * _GOLDEN64) & _MASK64
    h = (h + (zlib.crc32(task.encode()) << 32)) & _MASK64
    return h / 2.0**64


def _stamp(timestamp: float | None) -> _dt.datetime | None:
    return None if timestamp is None else _dt.datetime.fromtimestamp(timestamp, UTC)


class _Runner:
    """One runner task, and the run it is inside of (None between runs)."""

    __slots__ = ("task", "ctx")

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.ctx: JobContext | None = None
