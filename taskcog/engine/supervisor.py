"""Job families: one task definition, run once per key (usually a guild), on one timer heap.

A :class:`TaskDefinition` says *what* runs; its ``provider`` says, per key, *whether and when*
(a :class:`JobSpec`). The :class:`Supervisor` keeps one small record per (task, key), one heap
of ``(when, seq, job)`` for all of them and one dispatcher task. A job is an asyncio task only
while it runs, so 30k idle jobs cost a few hundred bytes each and no wake-ups.

Rules, in one place:

- **Ticks.** At each fire the provider is read again: options and schedule changes apply at that
  tick, ``enabled=False`` parks the job (state ``stopped``), ``None`` drops it. A parked,
  disabled job is only re-read by :meth:`Supervisor.refresh` and :meth:`Supervisor.sync_keys`
  (the cog calls ``refresh`` when a setting changes), so idle disabled jobs cost nothing.
- **No double runs.** A (task, key) never runs twice at once unless ``overlap`` allows it; a fire
  that finds it busy (e.g. during :meth:`Supervisor.run_now`) runs when it finishes.
- **Failures** follow :mod:`.supervision` (``record_outcome``): each job backs off on its own heap
  entry, so a failing key never delays another. A retry stands in for the fires it covered:
  after it the job resumes at the first fire after *now* (no burst of catch-up runs). After
  ``failure_threshold`` failures the circuit opens, ``on_circuit_open`` is called once, and the
  job is parked until :meth:`Supervisor.restart` or :meth:`Supervisor.start_job`.
- **Misfires** (the loop stalled, a run overran, the job was paused): ``coalesce`` runs once for
  all missed fires, ``skip`` drops fires more than ``misfire_grace`` late, ``all`` runs each.
- **First fires.** ``schedule.first(now)``; for interval schedules of keyed (non-``None``) jobs
  the first fire is spread over one interval by a stable hash of (task, key) (Fibonacci hashing
  of int keys, so consecutive ids spread evenly), so 30k guilds don't all fire at start.
- **Concurrency.** At most ``max_concurrency`` scheduled runs at once; due jobs beyond that
  wait in due order and their lateness is recorded. ``run_now`` is not queued behind them.
- **Status.** A job's :class:`TaskStatus` is created when it first needs one (its first failure,
  a body reading ``ctx.status``, ``run_now``); until then ``status()`` builds a fresh one from the
  job's counters. This keeps a healthy job at a few hundred bytes.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import heapq
import inspect
import itertools
import logging
import math
import random
import sys
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Hashable, Iterable, Mapping

from .clock import SYSTEM_CLOCK, Clock
from .schedules import Schedule
from .supervision import Outcome, RetryPolicy, State, TaskStatus, Verdict, record_outcome

log = logging.getLogger(__name__)

UTC = _dt.UTC
CATCH_UP = ("coalesce", "skip", "all")
_MASK64 = (1 << 64) - 1
_GOLDEN64 = 0x9E3779B97F4A7C15
_MAX_ADVANCE = 10_000  # fires stepped through one by one before jumping straight to "now"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Default for ``key`` arguments: all keys of the task."""

_SKIPPED = object()  # an async provider said "disabled": the tick ran no body
_DROPPED = object()  # an async provider said "no job for this key"


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

    @property
    def limit(self) -> int:
        """How many runs of one (task, key) may overlap."""
        if self.overlap is True:
            return sys.maxsize
        if self.overlap is False:
            return 1
        return int(self.overlap)


@dataclass
class ShutdownReport:
    """What :meth:`Supervisor.shutdown` did with the jobs that were running."""

    finished: list[tuple[str, Hashable]]
    cut_off: list[tuple[str, Hashable]]
    duration: float


class JobContext:
    """What a running job gets: which (task, key), the fire it serves and its options.

    ``status`` is the job's live :class:`TaskStatus` (created on first access).
    """

    __slots__ = (
        "task",
        "key",
        "scheduled_for",
        "options",
        "supervisor",
        "manual",
        "_job",
        "_started",
        "_timer",
        "_timed_out",
        "_retry",
    )

    def __init__(
        self,
        task: str,
        key: Hashable,
        scheduled_for: _dt.datetime,
        options: Mapping[str, Any],
        supervisor: Supervisor,
        manual: bool,
        job: _Job,
    ) -> None:
        self.task = task
        self.key = key
        self.scheduled_for = scheduled_for
        self.options = options
        self.supervisor = supervisor
        self.manual = manual
        self._job = job
        self._started = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timed_out = False
        self._retry = False

    @property
    def status(self) -> TaskStatus:
        return self.supervisor._materialize(self._job)

    def progress(self, done: float, total: float | None = None, note: str = "") -> None:
        """Report progress of this run, for status displays (``Supervisor.progress``)."""
        self._job.progress = (done, total, note)

    def __repr__(self) -> str:
        return f"<JobContext {self.task}[{self.key!r}] for {self.scheduled_for.isoformat()}>"


class _Family:
    """A registered definition and its jobs by key."""

    __slots__ = ("definition", "name", "jobs", "paused", "dead", "limit", "policy")

    def __init__(self, definition: TaskDefinition, policy: RetryPolicy) -> None:
        self.definition = definition
        self.name = definition.name
        self.jobs: dict[Hashable, _Job] = {}
        self.paused = False
        self.dead = False
        self.limit = definition.limit
        self.policy = definition.policy or policy


class _Job:
    """One (task, key). ``seq`` is the live heap/queue entry (0 = none): lazy deletion."""

    __slots__ = (
        "family",
        "key",
        "seq",
        "queued",
        "when",
        "fire",
        "last_fire",
        "schedule",
        "options",
        "state",
        "paused",
        "stopped",
        "disabled",
        "circuit",
        "retrying",
        "pending",
        "dead",
        "active",
        "status",
        "runs",
        "last_start",
        "last_duration",
        "progress",
        "waiters",
    )

    def __init__(self, family: _Family, key: Hashable) -> None:
        self.family = family
        self.key = key
        self.seq = 0
        self.queued = False
        self.when = 0.0
        self.fire: _dt.datetime | None = None  # the next fire not yet run
        self.last_fire: _dt.datetime | None = None  # the fire the latest run served
        self.schedule: Schedule | None = None
        self.options: Mapping[str, Any] = {}
        self.state = State.STOPPED
        self.paused = family.paused
        self.stopped = False
        self.disabled = False
        self.circuit = False
        self.retrying = False
        self.pending = False
        self.dead = False
        self.active = 0
        self.status: TaskStatus | None = None
        self.runs = 0
        self.last_start: _dt.datetime | None = None
        self.last_duration: float | None = None
        self.progress: tuple[float, float | None, str] | None = None
        self.waiters: list[asyncio.Future[None]] | None = None

    @property
    def parked(self) -> bool:
        return self.paused or self.stopped or self.disabled or self.circuit or self.dead


def _spread_fraction(task: str, key: Hashable) -> float:
    """A stable fraction in [0, 1) for (task, key); even for consecutive int keys."""
    if isinstance(key, int):
        h = (key * _GOLDEN64) & _MASK64
    else:
        h = (zlib.crc32(repr(key).encode()) * _GOLDEN64) & _MASK64
    h = (h + (zlib.crc32(task.encode()) << 32)) & _MASK64
    return h / 2.0**64


IDLE_RECHECK = 3600.0
# The exact callback asyncio.sleep uses: simcord (and any virtual clock that inspects timers)
# recognises a task parked on it as sleeping, not stuck.
_set_result_unless_cancelled = getattr(asyncio.futures, "_set_result_unless_cancelled", None) or (
    lambda fut, result: None if fut.cancelled() else fut.set_result(result)
)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class Supervisor:
    """Runs every job of every registered task definition from one heap and one dispatcher."""

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        max_concurrency: int = 32,
        policy: RetryPolicy = RetryPolicy(),
        on_circuit_open: (
            Callable[[str, Hashable, TaskStatus, BaseException], Awaitable[None] | None] | None
        ) = None,
        ready: Callable[[], Awaitable[None]] | None = None,
        rng: random.Random | None = None,
        name: str = "taskcog",
        resolution: float = 0.0,
    ) -> None:
        """``resolution``: the dispatcher may wake up to this many seconds after a fire so
        that fires close together share one wake-up (fewer wake-ups, less CPU at 30k jobs);
        runs are never early. 0 = wake exactly at each fire."""
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be 1 or more")
        if not resolution >= 0:
            raise ValueError("resolution must be 0 or more seconds")
        self._resolution = float(resolution)
        self._clock = clock
        self._max = max_concurrency
        self._policy = policy
        self._on_circuit_open = on_circuit_open
        self._ready = ready
        self._rng = rng or random.Random()
        self._name = name
        self._families: dict[str, _Family] = {}
        self._heap: list[tuple[float, int, _Job]] = []
        self._next_seq = itertools.count(1).__next__
        self._stale = 0
        self._waiting: deque[tuple[_Job, int]] = deque()
        self._running: dict[asyncio.Task[Any], JobContext] = {}
        self._active = 0
        self._aux: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._is_ready = False
        self._ready_event: asyncio.Event | None = None
        self._closing = False
        self._waker: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._armed = -math.inf  # when the dispatcher will wake; -inf while it is awake
        self._lateness: deque[float] = deque(maxlen=4096)
        self._on_done_cb = self._on_done
        self.failure: BaseException | None = None

    # ------------------------------------------------------------------ registry

    def add(self, definition: TaskDefinition) -> None:
        """Register a task. Its jobs are created once the supervisor is ready.

        Raises ValueError if the name is taken.
        """
        if definition.name in self._families:
            raise ValueError(f"a task named {definition.name!r} is already registered")
        family = _Family(definition, self._policy)
        self._families[definition.name] = family
        if self._is_ready and not self._closing:
            self._spawn(self._populate(family), f"{self._name}-populate-{definition.name}")

    def remove(self, name: str) -> None:
        """Unregister a task and cancel its running jobs. Raises KeyError if unknown."""
        family = self._families.pop(name)
        family.dead = True
        for job in list(family.jobs.values()):
            self._drop(job)

    def remove_owner(self, owner: str) -> list[str]:
        """Remove every task registered by ``owner``; returns their names."""
        names = [n for n, f in self._families.items() if f.definition.owner == owner]
        for name in names:
            self.remove(name)
        return names

    def definitions(self) -> dict[str, TaskDefinition]:
        return {name: family.definition for name, family in self._families.items()}

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Spawn the dispatcher and return at once; it awaits ``ready`` before any job runs."""
        if self._dispatcher is not None:
            raise RuntimeError("this supervisor was already started")
        self._loop = asyncio.get_running_loop()
        self._ready_event = asyncio.Event()
        self._dispatcher = self._loop.create_task(
            self._dispatch(), name=f"{self._name}-dispatcher"
        )

    @property
    def running(self) -> bool:
        """True from :meth:`start` until :meth:`shutdown` (or a failed ``ready``)."""
        return self._dispatcher is not None and not self._dispatcher.done() and not self._closing

    async def shutdown(self, timeout: float = 10.0) -> ShutdownReport:  # noqa: ASYNC109
        """Stop dispatching, let running jobs finish for up to ``timeout`` seconds, then cancel
        the rest. Leaves no task behind."""
        started = self._clock.monotonic()
        self._closing = True
        self._waiting.clear()
        if self._timer is not None:
            self._timer.cancel()
        ours = [t for t in (self._dispatcher, *self._aux) if t is not None and not t.done()]
        for task in ours:
            task.cancel()
        if ours:
            await asyncio.wait(ours)
        running = dict(self._running)
        done: set[asyncio.Task[Any]] = set()
        pending: set[asyncio.Task[Any]] = set()
        if running:
            done, pending = await asyncio.wait(running, timeout=max(0.0, timeout))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        finished = [(running[t].task, running[t].key) for t in running if t in done]
        cut_off = [(running[t].task, running[t].key) for t in running if t in pending]
        return ShutdownReport(finished, cut_off, self._clock.monotonic() - started)

    async def _dispatch(self) -> None:
        try:
            if self._ready is not None:
                await self._ready()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failure = exc
            log.exception("%s: waiting for readiness failed; no job will run", self._name)
            return
        self._is_ready = True
        assert self._ready_event is not None
        self._ready_event.set()
        for family in list(self._families.values()):
            await self._populate(family)
        while True:
            try:
                self._fire_due()
            except Exception:  # a bug here must not silently stop every job
                log.exception("%s: dispatching failed", self._name)
            await self._sleep()

    def _spawn(self, coro: Awaitable[Any], name: str) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro, name=name)  # type: ignore[arg-type]
        self._aux.add(task)
        task.add_done_callback(self._aux_done)

    def _aux_done(self, task: asyncio.Task[Any]) -> None:
        self._aux.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: background step failed", self._name, exc_info=task.exception())

    # ------------------------------------------------------------------ keys and specs

    async def sync_keys(self, task: str | None = None) -> None:
        """Re-read ``keys()`` and every job's provider: add new keys, drop gone ones, apply
        changed specs (this is also how disabled jobs come back)."""
        families = [self._family(task)] if task is not None else list(self._families.values())
        for family in families:
            keys = list(await _maybe_await(family.definition.keys()))
            wanted = set(keys)
            for key in [k for k in family.jobs if k not in wanted]:
                self._drop(family.jobs[key])
            for key in keys:
                if not family.dead:
                    await self._refresh(family, key)

    async def add_key(self, key: Hashable) -> None:
        """A guild appeared: create its job in every keyed task whose provider wants it."""
        for family in list(self._families.values()):
            if family.definition.keys is not _global_keys and key not in family.jobs:
                await self._refresh(family, key)

    async def remove_key(self, key: Hashable) -> None:
        """A guild left: drop its job from every task (running runs are cancelled)."""
        for family in list(self._families.values()):
            job = family.jobs.get(key)
            if job is not None:
                self._drop(job)

    async def refresh(self, task: str, key: Hashable) -> None:
        """Re-read the provider now and reschedule if the schedule or enabled flag changed."""
        await self._refresh(self._family(task), key)

    async def _refresh(self, family: _Family, key: Hashable) -> None:
        try:
            spec = await _maybe_await(family.definition.provider(key))
        except Exception:
            log.exception("%s: provider of %s failed for key %r", self._name, family.name, key)
            return
        if family.dead:
            return
        job = family.jobs.get(key)
        if spec is None:
            if job is not None:
                self._drop(job)
            return
        if job is None:
            job = family.jobs[key] = _Job(family, key)
            was_live = False
        else:
            was_live = not job.disabled and job.schedule is not None
        old = job.schedule
        if not self._apply(job, spec):
            return
        changed = old is None or old != spec.schedule or not was_live
        if changed:
            job.fire = None
            job.last_fire = None if old is None or old != spec.schedule else job.last_fire
        if self._is_ready and not self._closing and not job.parked:
            if changed or (not job.seq and not job.active):
                self._replan(job)

    async def _populate(self, family: _Family) -> None:
        """Create a task's jobs once ready (and plan jobs created by calls made before)."""
        keys = await _maybe_await(family.definition.keys())
        for key in list(keys):
            if family.dead or self._closing:
                return
            if key not in family.jobs:
                await self._refresh(family, key)
        for job in list(family.jobs.values()):
            if not job.seq and not job.active:
                self._replan(job)

    def _apply(self, job: _Job, spec: JobSpec) -> bool:
        """Take a fresh spec; False (and the job parked) when it is disabled."""
        job.schedule = spec.schedule
        job.options = spec.options
        if not spec.enabled:
            job.disabled = True
            job.pending = False
            self._invalidate(job)
            if not job.active:
                self._set_state(job, State.STOPPED)
            return False
        job.disabled = False
        return True

    # ------------------------------------------------------------------ control

    async def run_now(self, task: str, key: Hashable) -> TaskStatus:
        """Run (task, key) once now, outside its schedule, even if disabled or stopped.

        Waits for a running iteration first (unless overlap allows more) and for the run itself.
        Raises KeyError if the task is unknown or the provider has no job for that key.
        """
        if self._ready_event is None:
            raise RuntimeError("start the supervisor before running jobs")
        await self._ready_event.wait()
        family = self._family(task)
        spec = await _maybe_await(family.definition.provider(key))
        job = family.jobs.get(key)
        if job is None:
            if spec is None:
                raise KeyError(f"task {task!r} has no job for key {key!r}")
            job = family.jobs[key] = _Job(family, key)
            if self._apply(job, spec) and not job.parked:
                self._replan(job)
        options = spec.options if spec is not None else job.options
        while job.active >= family.limit:
            await self._wait_idle(job)
        if job.dead:
            raise KeyError(f"task {task!r} no longer has a job for key {key!r}")
        now_dt = self._clock.now()
        run = self._start_run(job, now_dt, options, now_dt, manual=True)
        await asyncio.wait((run,))
        return self._materialize(job)

    def pause(self, task: str, key: Hashable = MISSING) -> None:
        """Hold fires of one job, or of every job of a task (also keys added later).

        A running iteration finishes; missed fires follow ``catch_up`` on resume."""
        family = self._family(task)
        if key is MISSING:
            family.paused = True
        for job in self._jobs(family, key):
            job.paused = True
            job.pending = False
            self._invalidate(job)
            if not job.active:
                self._set_state(job, State.STOPPED)

    def resume(self, task: str, key: Hashable = MISSING) -> None:
        """Undo :meth:`pause` for one job or for the whole task."""
        family = self._family(task)
        if key is MISSING:
            family.paused = False
        for job in self._jobs(family, key):
            if job.paused:
                job.paused = False
                self._replan(job)

    def is_paused(self, task: str, key: Hashable) -> bool:
        return self._job(task, key).paused

    def stop_job(self, task: str, key: Hashable) -> None:
        """Stop now: cancel a running iteration and fire no more until start_job/restart."""
        job = self._job(task, key)
        job.stopped = True
        job.pending = False
        self._invalidate(job)
        self._cancel_runs(job)
        self._set_state(job, State.STOPPED)

    def start_job(self, task: str, key: Hashable) -> None:
        """Start a stopped job (or one whose circuit is open) now: ``schedule.first(now)``."""
        job = self._job(task, key)
        job.stopped = False
        if job.circuit:
            self._close_circuit(job)
        job.fire = job.last_fire = None
        self._replan(job, spread=False)

    def restart(self, task: str, key: Hashable) -> None:
        """Close an open circuit, reset the backoff and schedule from the spec again."""
        job = self._job(task, key)
        job.stopped = False
        self._close_circuit(job)
        status = self._materialize(job)
        status.restarts += 1
        job.fire = job.last_fire = None
        self._replan(job, spread=False)

    def _close_circuit(self, job: _Job) -> None:
        job.circuit = False
        job.retrying = False
        if job.status is not None:
            job.status.consecutive_failures = 0
            job.status.transient_streak = 0

    # ------------------------------------------------------------------ status

    def status(self, task: str | None = None, key: Hashable = MISSING) -> list[TaskStatus]:
        """Status of every job (of one task, or one key). Jobs that never needed a status
        object get a fresh one built from their counters."""
        families = [self._family(task)] if task is not None else list(self._families.values())
        out = []
        for family in families:
            for job in self._jobs(family, key, strict=False):
                out.append(self._view(job))
        return out

    def get_status(self, task: str, key: Hashable) -> TaskStatus | None:
        family = self._families.get(task)
        job = family.jobs.get(key) if family is not None else None
        return self._view(job) if job is not None else None

    def progress(self, task: str, key: Hashable) -> tuple[float, float | None, str] | None:
        """The latest ``ctx.progress(...)`` of the job's current or last run."""
        return self._job(task, key).progress

    def lateness(self) -> dict[str, float | None]:
        """Start lateness (seconds) of the latest 4096 scheduled runs: p50, p99, max."""
        values = sorted(self._lateness)
        if not values:
            return {"p50": None, "p99": None, "max": None}
        pick = lambda q: values[min(len(values) - 1, round(q * (len(values) - 1)))]  # noqa: E731
        return {"p50": pick(0.5), "p99": pick(0.99), "max": values[-1]}

    def job_count(self, task: str | None = None) -> int:
        if task is not None:
            return len(self._family(task).jobs)
        return sum(len(f.jobs) for f in self._families.values())

    def _view(self, job: _Job) -> TaskStatus:
        status = job.status if job.status is not None else self._build_status(job)
        status.state = job.state
        status.next_run = _dt.datetime.fromtimestamp(job.when, UTC) if job.seq else None
        return status

    def _build_status(self, job: _Job) -> TaskStatus:
        status = TaskStatus(name=job.family.name, key=job.key, state=job.state)
        status.iterations = job.runs
        status.last_start = job.last_start
        if job.runs and job.last_duration is not None and job.last_start is not None:
            status.last_end = job.last_start + _dt.timedelta(seconds=job.last_duration)
            status.last_duration = job.last_duration
            status.last_outcome = Outcome.OK
            status.durations.append(job.last_duration)
        return status

    def _materialize(self, job: _Job) -> TaskStatus:
        if job.status is None:
            job.status = self._build_status(job)
        return self._view(job)

    def _set_state(self, job: _Job, state: State) -> None:
        job.state = state
        if job.status is not None:
            job.status.state = state

    def _idle_state(self, job: _Job) -> State:
        if job.circuit:
            return State.CIRCUIT_OPEN
        if job.parked:
            return State.STOPPED
        if job.seq:
            return State.BACKOFF if job.retrying else State.SLEEPING
        return State.FINISHED if job.schedule is not None and job.fire is None else State.SLEEPING

    # ------------------------------------------------------------------ lookups

    def _family(self, task: str) -> _Family:
        try:
            return self._families[task]
        except KeyError:
            raise KeyError(f"no task named {task!r}") from None

    def _job(self, task: str, key: Hashable) -> _Job:
        job = self._family(task).jobs.get(key)
        if job is None:
            raise KeyError(f"task {task!r} has no job for key {key!r}")
        return job

    def _jobs(self, family: _Family, key: Hashable, strict: bool = True) -> list[_Job]:
        if key is MISSING:
            return list(family.jobs.values())
        job = family.jobs.get(key)
        if job is None:
            if strict:
                raise KeyError(f"task {family.name!r} has no job for key {key!r}")
            return []
        return [job]

    # ------------------------------------------------------------------ the heap

    def _push(self, job: _Job, fire: _dt.datetime, when: float | None = None) -> None:
        """Give the job its one live entry (any older entry becomes stale)."""
        if when is None:
            when = fire.timestamp()
            jitter = job.schedule.jitter if job.schedule is not None else 0.0
            if jitter:
                when += self._rng.uniform(0.0, jitter)
        if job.seq and not job.queued:
            self._stale += 1
        job.queued = False
        seq = job.seq = self._next_seq()
        job.fire = fire
        job.when = when
        heapq.heappush(self._heap, (when, seq, job))
        if not job.active:
            self._set_state(job, State.BACKOFF if job.retrying else State.SLEEPING)
        if when < self._armed:
            self._wake()

    def _invalidate(self, job: _Job) -> None:
        if job.seq:
            if not job.queued:
                self._stale += 1
            job.seq = 0
            job.queued = False

    def _wake(self) -> None:
        self._armed = -math.inf
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._waker is not None and not self._waker.done():
            self._waker.set_result(None)

    async def _sleep(self) -> None:
        assert self._loop is not None
        waker = self._waker = self._loop.create_future()
        heap = self._heap
        if heap:
            head = heap[0][0]
            delay = head - self._clock.now().timestamp() + self._resolution
            self._armed = head
        else:
            # Never wait on a bare future: an idle dispatcher re-checks hourly. A timer that is a
            # plain sleep wake-up is what virtual-time harnesses (simcord) know how to advance.
            delay = IDLE_RECHECK
            self._armed = math.inf
        self._timer = self._loop.call_later(
            max(0.0, delay), _set_result_unless_cancelled, waker, None
        )
        try:
            await waker
        finally:
            self._armed = -math.inf
            self._waker = None

    def _fire_due(self) -> None:
        heap = self._heap
        if self._stale > 1024 and self._stale * 2 > len(heap):
            self._heap = heap = [e for e in heap if e[2].seq == e[1]]
            heapq.heapify(heap)
            self._stale = 0
        now_dt = self._clock.now()
        now = now_dt.timestamp()
        pop = heapq.heappop
        while heap and heap[0][0] <= now:
            _, seq, job = pop(heap)
            if job.seq != seq:
                self._stale -= 1
                continue
            self._due(job, now_dt, now)

    def _due(self, job: _Job, now_dt: _dt.datetime, now: float) -> None:
        """A live entry came due. Its seq stays set while it waits for a slot."""
        if job.active >= job.family.limit:
            job.seq = 0
            job.pending = True
            return
        if self._active >= self._max:
            job.queued = True
            self._waiting.append((job, job.seq))
            return
        job.seq = 0
        job.queued = False
        self._launch(job, now_dt, now)

    # ------------------------------------------------------------------ planning

    def _replan(self, job: _Job, spread: bool = True) -> None:
        """Schedule a job that has no live entry, from where it left off."""
        if job.parked or job.schedule is None or self._closing or not self._is_ready:
            return
        if job.active and job.family.limit == 1:
            return  # the running iteration plans the next fire when it ends
        definition = job.family.definition
        if job.fire is not None:
            self._plan(job, job.fire, definition.catch_up)
        elif job.last_fire is not None:
            self._plan(job, job.schedule.next_after(job.last_fire), definition.catch_up)
        else:
            self._plan(job, self._first_fire(job, spread), definition.catch_up)

    def _first_fire(self, job: _Job, spread: bool = True) -> _dt.datetime | None:
        schedule = job.schedule
        assert schedule is not None
        first = schedule.first(self._clock.now())
        if (
            first is not None
            and spread
            and job.key is not None
            and job.family.definition.spread
            and schedule.kind == "every"
        ):
            seconds = float(getattr(schedule, "seconds", 0.0))
            if seconds > 0:
                offset = _spread_fraction(job.family.name, job.key) * seconds
                first = first + _dt.timedelta(seconds=offset)
        return first

    def _plan(self, job: _Job, candidate: _dt.datetime | None, policy: str) -> None:
        """Push the next fire, applying the misfire policy if ``candidate`` is already past."""
        if candidate is None:
            self._invalidate(job)
            job.fire = None
            if not job.active:
                self._set_state(job, State.FINISHED)
            return
        now = self._clock.now().timestamp()
        if candidate.timestamp() > now or policy == "all":
            self._push(job, candidate)
            return
        if policy == "skip":
            grace = job.family.definition.misfire_grace
            if now - candidate.timestamp() <= grace:
                self._push(job, candidate)
                return
            _, nxt = self._advance(job, candidate, now - grace)
            self._plan(job, nxt, "all")
            return
        last, _ = self._advance(job, candidate, now)
        self._push(job, last)

    def _advance(
        self, job: _Job, fire: _dt.datetime, limit: float
    ) -> tuple[_dt.datetime, _dt.datetime | None]:
        """(last fire at or before ``limit``, first fire after it), starting at ``fire``."""
        schedule = job.schedule
        assert schedule is not None
        last = fire
        for _ in range(_MAX_ADVANCE):
            nxt = schedule.next_after(last)
            if nxt is None or nxt.timestamp() > limit or nxt <= last:
                return last, nxt
            last = nxt
        limit_dt = _dt.datetime.fromtimestamp(limit, UTC)
        return limit_dt, schedule.next_after(limit_dt)

    # ------------------------------------------------------------------ running

    def _launch(self, job: _Job, now_dt: _dt.datetime, now: float) -> None:
        """Start a scheduled run: read the provider (the tick), apply misfires, run the body."""
        family = job.family
        definition = family.definition
        try:
            spec = definition.provider(job.key)
        except Exception as exc:
            self._tick_failed(job, exc)
            return
        if spec.__class__ is not JobSpec:
            if spec is None:
                self._drop(job)
                return
            if inspect.isawaitable(spec):
                fire = job.fire
                assert fire is not None
                self._start_run(job, fire, job.options, now_dt, manual=False, pending_spec=spec)
                return
        if not isinstance(spec, JobSpec):
            self._tick_failed(job, TypeError(f"provider returned {type(spec).__name__}"))
            return
        if not self._apply(job, spec):
            return
        fire = job.fire
        assert fire is not None
        late = now - job.when
        if late > 0.001 and not job.retrying and definition.catch_up != "all":
            # The loop stalled past more than this fire: apply the misfire policy now.
            if definition.catch_up == "skip":
                if late > definition.misfire_grace:
                    self._plan(job, fire, "skip")
                    return
            else:
                fire, _ = self._advance(job, fire, now)
        try:
            self._start_run(job, fire, job.options, now_dt, manual=False)
        except Exception as exc:  # e.g. ``run`` is not a coroutine function
            self._tick_failed(job, exc)

    def _start_run(
        self,
        job: _Job,
        fire: _dt.datetime,
        options: Mapping[str, Any],
        now_dt: _dt.datetime,
        manual: bool,
        pending_spec: Awaitable[Any] | None = None,
    ) -> asyncio.Task[Any]:
        family = job.family
        definition = family.definition
        ctx = JobContext(family.name, job.key, fire, options, self, manual, job)
        ctx._retry = job.retrying
        if pending_spec is not None:
            coro = self._tick_then_run(ctx, pending_spec)
        else:
            coro = definition.run(ctx)
        assert self._loop is not None
        task = self._loop.create_task(coro)
        ctx._started = self._clock.monotonic()
        if definition.timeout is not None:
            ctx._timer = self._loop.call_later(definition.timeout, self._cut, task, ctx)
        job.active += 1
        job.last_start = now_dt
        job.progress = None
        if job.status is not None:
            job.status.last_start = now_dt
        self._set_state(job, State.RUNNING)
        self._running[task] = ctx
        task.add_done_callback(self._on_done_cb)
        if not manual:
            self._active += 1
            job.last_fire = fire
            job.fire = None
            self._lateness.append(now_dt.timestamp() - job.when)
            if family.limit > 1 and pending_spec is None and not job.retrying:
                assert job.schedule is not None
                self._plan(job, job.schedule.next_after(fire), definition.catch_up)
        return task

    async def _tick_then_run(self, ctx: JobContext, pending_spec: Awaitable[Any]) -> Any:
        """The tick of a job whose provider is async: read the spec, then run the body."""
        spec = await pending_spec
        job = ctx._job
        if spec is None:
            return _DROPPED
        if not self._apply(job, spec):
            return _SKIPPED
        ctx.options = job.options
        if job.family.limit > 1 and not job.retrying and not job.parked:
            assert job.schedule is not None
            self._plan(
                job, job.schedule.next_after(ctx.scheduled_for), job.family.definition.catch_up
            )
        return await job.family.definition.run(ctx)

    def _cut(self, task: asyncio.Task[Any], ctx: JobContext) -> None:
        ctx._timed_out = True
        task.cancel()

    def _cancel_runs(self, job: _Job) -> None:
        for task, ctx in list(self._running.items()):
            if ctx._job is job:
                task.cancel()

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        ctx = self._running.pop(task, None)
        if ctx is None:
            return
        job = ctx._job
        job.active -= 1
        if not ctx.manual:
            self._active -= 1
        if ctx._timer is not None:
            ctx._timer.cancel()
        duration = self._clock.monotonic() - ctx._started
        exc: BaseException | None = None
        timed_out = False
        if task.cancelled():
            if not ctx._timed_out:
                status = self._materialize(job)
                status.last_outcome = Outcome.CANCELLED
                status.last_end = self._clock.now()
                status.last_duration = duration
                self._after_run(job)
                return
            timeout = job.family.definition.timeout
            exc = TimeoutError(f"{ctx.task} timed out after {timeout:g}s")
            timed_out = True
        else:
            exc = task.exception()
            if exc is None and ctx._timed_out:  # the body swallowed the cut and returned
                timeout = job.family.definition.timeout
                exc = TimeoutError(f"{ctx.task} timed out after {timeout:g}s")
                timed_out = True
            if exc is None:
                result = task.result()
                if result is _DROPPED:
                    self._drop(job)
                    self._after_run(job)
                    return
                if result is _SKIPPED:
                    self._after_run(job)
                    return
        if exc is None and job.status is None:
            job.runs += 1
            job.last_duration = duration
            verdict: Verdict | None = None
        else:
            status = self._materialize(job)
            status.iterations += 1
            status.last_end = self._clock.now()
            status.last_duration = duration
            status.durations.append(duration)
            verdict = record_outcome(
                status,
                exc,
                clock=self._clock,
                policy=job.family.policy,
                timed_out=timed_out,
                rng=self._rng,
            )
            if exc is not None:
                log.debug("%s[%r] failed: %r", ctx.task, ctx.key, exc)
        if not (self._closing or job.dead):
            self._settle(job, ctx, verdict)
        self._after_run(job)

    def _tick_failed(self, job: _Job, exc: BaseException) -> None:
        """The provider raised at a tick: a failed iteration of that job."""
        status = self._materialize(job)
        status.iterations += 1
        verdict = record_outcome(
            status, exc, clock=self._clock, policy=job.family.policy, rng=self._rng
        )
        fire = job.fire or self._clock.now()
        job.last_fire, job.fire = fire, None
        ctx = JobContext(job.family.name, job.key, fire, job.options, self, False, job)
        ctx._retry = job.retrying
        self._settle(job, ctx, verdict)
        if not job.active:
            self._set_state(job, self._idle_state(job))

    def _settle(self, job: _Job, ctx: JobContext, verdict: Verdict | None) -> None:
        """Decide the job's next entry after a run (retry, circuit, or the next fire)."""
        if verdict is not None and verdict.circuit_opened:
            job.circuit = True
            job.retrying = False
            job.pending = False
            self._invalidate(job)
            self._alert(job, verdict.exception)
            return
        if ctx.manual or job.parked:
            return
        if verdict is not None and verdict.retry_in is not None:
            job.retrying = True
            when = self._clock.now().timestamp() + verdict.retry_in
            self._push(job, ctx.scheduled_for, when)
            return
        schedule = job.schedule
        assert schedule is not None
        if ctx._retry:
            # The retry stood in for the fires it covered: resume at the first one after now.
            job.retrying = False
            now = self._clock.now().timestamp()
            nxt = schedule.next_after(ctx.scheduled_for)
            if nxt is not None and nxt.timestamp() <= now:
                _, nxt = self._advance(job, nxt, now)
            self._plan(job, nxt, "all")
        elif job.family.limit == 1:
            self._plan(job, schedule.next_after(ctx.scheduled_for), job.family.definition.catch_up)

    def _after_run(self, job: _Job) -> None:
        if not job.active:
            self._set_state(job, self._idle_state(job))
        waiters = job.waiters
        if waiters:
            job.waiters = None
            for future in waiters:
                _resolve(future)
        if self._closing:
            return
        if job.pending and not job.parked and job.active < job.family.limit:
            job.pending = False
            if self._active < self._max:
                now_dt = self._clock.now()
                self._launch(job, now_dt, now_dt.timestamp())
            else:
                job.seq = self._next_seq()
                job.queued = True
                self._waiting.append((job, job.seq))
        waiting = self._waiting
        if waiting and self._active < self._max:
            now_dt = self._clock.now()
            now = now_dt.timestamp()
            while waiting and self._active < self._max:
                queued, seq = waiting.popleft()
                if queued.seq != seq:
                    continue
                queued.seq = 0
                queued.queued = False
                self._due(queued, now_dt, now)

    async def _wait_idle(self, job: _Job) -> None:
        assert self._loop is not None
        future = self._loop.create_future()
        job.waiters = (job.waiters or []) + [future]
        await future

    def _drop(self, job: _Job) -> None:
        """Remove a job for good (key gone, task removed, provider said None)."""
        job.dead = True
        job.pending = False
        self._invalidate(job)
        family = job.family
        if family.jobs.get(job.key) is job:
            del family.jobs[job.key]
        self._cancel_runs(job)
        waiters = job.waiters
        if waiters:
            job.waiters = None
            for future in waiters:
                _resolve(future)

    def _alert(self, job: _Job, exc: BaseException | None) -> None:
        self._set_state(job, State.CIRCUIT_OPEN)
        log.warning("%s[%r]: circuit open after repeated failures", job.family.name, job.key)
        callback = self._on_circuit_open
        if callback is None or self._closing:
            return
        status = self._materialize(job)
        error = exc if exc is not None else RuntimeError("circuit open")
        try:
            result = callback(job.family.name, job.key, status, error)
        except Exception:
            log.exception("%s: on_circuit_open failed", self._name)
            return
        if inspect.isawaitable(result):
            self._spawn(_maybe_await(result), f"{self._name}-alert")
