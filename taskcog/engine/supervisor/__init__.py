"""Job families: one task definition, run once per key (usually a guild), on one timer heap.

A :class:`TaskDefinition` says *what* runs; its ``provider`` says, per key, *whether and when*
(a :class:`JobSpec`). The :class:`Supervisor` keeps one small record per (task, key), one heap
of due times for all of them and one dispatcher task. A job is an asyncio task only while it
runs, so 30k idle jobs cost a few hundred bytes each and no wake-ups.

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

Cost model (what ``bench/bench_scheduler.py`` measures; see ``docs/benchmarks.md``):

- **One loop iteration per wake-up.** The dispatcher task stays parked on a future whose
  wake-up timer is the one ``asyncio.sleep`` uses; when it fires, the due jobs are dispatched
  right there, in the timer callback, and the timer is re-armed (the future is never resolved).
- **Eager first step.** A run is a real asyncio Task (so ``current_task()``, ``asyncio.timeout``,
  aiohttp's timers and contextvars behave), but its first step runs at once, inside the
  dispatch, like Python 3.12's eager tasks. A body that finishes without suspending is settled
  inline: no extra loop iteration and no done callback.
- **Shared wake-ups.** With ``resolution`` > 0 the dispatcher wakes at the last fire that lies
  within ``resolution`` of the earliest one, so close fires share one wake-up.
- **Compact jobs.** Times are float timestamps; the heap holds one float-valued entry per job
  (no tuple, no sequence number); flags are bits of one small int.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import random
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Hashable

from ..clock import SYSTEM_CLOCK, Clock
from ..supervision import Outcome, RetryPolicy, State, TaskStatus
from .base import _maybe_await, _resolve
from .definitions import CATCH_UP, JobContext, JobSpec, TaskDefinition, _global_keys
from .jobs import (
    _CIRCUIT,
    _DEAD,
    _DISABLED,
    _FINISHED,
    _FIRST,
    _PARKED,
    _PAUSED,
    _PENDING,
    _RETRYING,
    _SERVED,
    _STOPPED,
    MISSING,
    _Entry,
    _Family,
    _Job,
    _stamp,
)
from .planning import PlanMixin
from .runs import RunMixin
from .timer import IDLE_RECHECK, TimerMixin, _Waker

log = logging.getLogger("red.taskcog.engine.supervisor")


@dataclass
class ShutdownReport:
    """What :meth:`Supervisor.shutdown` did with the jobs that were running."""

    finished: list[tuple[str, Hashable]]
    cut_off: list[tuple[str, Hashable]]
    duration: float


class Supervisor(RunMixin, PlanMixin, TimerMixin):
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
        it wakes at the last fire within ``resolution`` of the earliest, so a lone fire still
        runs on time, and runs are never early. 0 = wake exactly at each fire."""
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be 1 or more")
        if not resolution >= 0:
            raise ValueError("resolution must be 0 or more seconds")
        self._resolution = float(resolution)
        self._stall = 0.001 + self._resolution
        self._clock = clock
        self._max = max_concurrency
        self._policy = policy
        self._on_circuit_open = on_circuit_open
        self._ready = ready
        self._rng = rng or random.Random()
        self._name = name
        self._families: dict[str, _Family] = {}
        self._registered = 0
        self._heap: list[_Entry] = []
        self._stale = 0
        self._waiting: deque[_Entry] = deque()
        self._draining = False
        self._running: dict[asyncio.Task[Any], JobContext] = {}
        self._active = 0
        self._aux: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready_queue: deque[Any] | None = None  # the loop's call_soon queue, for eager steps
        self._dispatcher: asyncio.Task[None] | None = None
        self._is_ready = False
        self._ready_event: asyncio.Event | None = None
        self._closing = False
        self._waker: _Waker | None = None
        self._context: contextvars.Context | None = None  # the dispatcher task's
        self._timer: asyncio.TimerHandle | None = None
        self._armed = -math.inf  # the due time the timer is set for; -inf while dispatching
        self._wake_now: float | None = None  # the time read at this wake-up, while dispatching
        self._lateness: deque[float] = deque(maxlen=4096)
        self._progress: dict[_Job, tuple[float, float | None, str]] = {}
        self._waiters: dict[_Job, list[asyncio.Future[None]]] = {}
        self._on_done_cb = self._on_done
        self.failure: BaseException | None = None

    # ------------------------------------------------------------------ registry

    def add(self, definition: TaskDefinition) -> None:
        """Register a task. Its jobs are created once the supervisor is ready.

        Raises ValueError if the name is taken.
        """
        if definition.name in self._families:
            raise ValueError(f"a task named {definition.name!r} is already registered")
        self._registered += 1
        family = _Family(definition, self._policy, self._registered)
        self._families[definition.name] = family
        if self._is_ready and not self._closing:
            self._spawn(self._populate(family), f"{self._name}-populate-{definition.name}")

    def set_policy(self, policy: RetryPolicy) -> None:
        """Use ``policy`` from now on for every task that has no policy of its own.

        A job already in backoff keeps the wait it was given; its next failure follows the new
        rules (e.g. a lower failure threshold opens its circuit sooner).
        """
        self._policy = policy
        for family in self._families.values():
            family.policy = family.definition.policy or policy

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
        ready_queue = getattr(self._loop, "_ready", None)
        self._ready_queue = ready_queue if isinstance(ready_queue, deque) else None
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
            self._timer = None
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
            was_live = not job.flags & _DISABLED and job.spec is not None
        old = job.schedule
        if not self._apply(job, spec):
            return
        if old is None or old != spec.schedule:
            job.fire = None  # a new schedule starts afresh
            job.flags &= ~(_SERVED | _FIRST)
        elif not was_live:
            self._forget_unrun_fire(job)
        if self._is_ready and not self._closing and not job.flags & _PARKED:
            if old is None or old != spec.schedule or not was_live:
                self._replan(job)
            elif job.entry is None and not job.active:
                self._replan(job)

    def _forget_unrun_fire(self, job: _Job) -> None:
        """A job comes back (same schedule): plan from the last fire it served, as if the
        planned one had never been; a first fire is worked out again from now."""
        if job.fire is None or job.flags & _SERVED:
            return
        if job.flags & _FIRST:
            job.fire = None
            job.flags &= ~_FIRST
        elif job.flags & _RETRYING:
            job.flags |= _SERVED  # the fire being retried was served
        # Otherwise the unrun fire is next_after(last served): planning it is the same.

    async def _populate(self, family: _Family) -> None:
        """Create a task's jobs once ready (and plan jobs created by calls made before)."""
        keys = await _maybe_await(family.definition.keys())
        for key in list(keys):
            if family.dead or self._closing:
                return
            if key not in family.jobs:
                await self._refresh(family, key)
        for job in list(family.jobs.values()):
            if job.entry is None and not job.active:
                self._replan(job)

    def _apply(self, job: _Job, spec: JobSpec) -> bool:
        """Take a fresh spec; False (and the job parked) when it is disabled."""
        job.spec = spec
        if not spec.enabled:
            job.flags = (job.flags | _DISABLED) & ~_PENDING
            self._invalidate(job)
            if not job.active:
                self._set_state(job, State.STOPPED)
            return False
        job.flags &= ~_DISABLED
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
            if self._apply(job, spec) and not job.flags & _PARKED:
                self._replan(job)
        options = spec.options if spec is not None else job.options
        while job.active >= family.limit:
            await self._wait_idle(job)
        if job.flags & _DEAD:
            raise KeyError(f"task {task!r} no longer has a job for key {key!r}")
        now = self._clock.now().timestamp()
        run = self._start_run(job, now, options, now, now, manual=True)
        await asyncio.wait((run,))
        return self._materialize(job)

    def pause(self, task: str, key: Hashable = MISSING) -> None:
        """Hold fires of one job, or of every job of a task (also keys added later).

        A running iteration finishes; missed fires follow ``catch_up`` on resume."""
        family = self._family(task)
        if key is MISSING:
            family.paused = True
        for job in self._jobs(family, key):
            job.flags = (job.flags | _PAUSED) & ~_PENDING
            self._invalidate(job)
            if not job.active:
                self._set_state(job, State.STOPPED)

    def resume(self, task: str, key: Hashable = MISSING) -> None:
        """Undo :meth:`pause` for one job or for the whole task."""
        family = self._family(task)
        if key is MISSING:
            family.paused = False
        for job in self._jobs(family, key):
            if job.flags & _PAUSED:
                job.flags &= ~_PAUSED
                self._replan(job)

    def is_paused(self, task: str, key: Hashable) -> bool:
        return bool(self._job(task, key).flags & _PAUSED)

    def stop_job(self, task: str, key: Hashable) -> None:
        """Stop now: cancel a running iteration and fire no more until start_job/restart."""
        job = self._job(task, key)
        job.flags = (job.flags | _STOPPED) & ~_PENDING
        self._invalidate(job)
        self._cancel_runs(job)
        self._set_state(job, State.STOPPED)

    def start_job(self, task: str, key: Hashable) -> None:
        """Start a stopped job (or one whose circuit is open) now: ``schedule.first(now)``."""
        job = self._job(task, key)
        job.flags &= ~_STOPPED
        if job.flags & _CIRCUIT:
            self._close_circuit(job)
        self._forget_fires(job)
        self._replan(job, spread=False)

    def restart(self, task: str, key: Hashable) -> None:
        """Close an open circuit, reset the backoff and schedule from the spec again."""
        job = self._job(task, key)
        job.flags &= ~_STOPPED
        self._close_circuit(job)
        status = self._materialize(job)
        status.restarts += 1
        self._forget_fires(job)
        self._replan(job, spread=False)

    def _forget_fires(self, job: _Job) -> None:
        job.fire = None
        job.flags &= ~(_SERVED | _FIRST | _FINISHED)

    def _close_circuit(self, job: _Job) -> None:
        job.flags &= ~(_CIRCUIT | _RETRYING)
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
        return self._progress.get(self._job(task, key))

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
        status.next_run = _stamp(job.entry)
        return status

    def _build_status(self, job: _Job) -> TaskStatus:
        status = TaskStatus(name=job.family.name, key=job.key, state=job.state)
        status.iterations = job.runs
        status.last_start = _stamp(job.last_start)
        if job.runs and job.last_start is not None:
            duration = job.last_us / 1e6
            status.last_end = _stamp(job.last_start + duration)
            status.last_duration = duration
            status.last_outcome = Outcome.OK
            status.durations.append(duration)
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
        flags = job.flags
        if flags & _CIRCUIT:
            return State.CIRCUIT_OPEN
        if flags & _PARKED:
            return State.STOPPED
        if job.entry is not None:
            return State.BACKOFF if flags & _RETRYING else State.SLEEPING
        return State.FINISHED if flags & _FINISHED else State.SLEEPING

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

    # ------------------------------------------------------------------ running

    def _drop(self, job: _Job) -> None:
        """Remove a job for good (key gone, task removed, provider said None)."""
        job.flags = (job.flags | _DEAD) & ~_PENDING
        self._invalidate(job)
        family = job.family
        if family.jobs.get(job.key) is job:
            del family.jobs[job.key]
        self._cancel_runs(job)
        self._progress.pop(job, None)
        for future in self._waiters.pop(job, None) or ():
            _resolve(future)


__all__ = [
    "CATCH_UP",
    "IDLE_RECHECK",
    "MISSING",
    "JobContext",
    "JobSpec",
    "ShutdownReport",
    "Supervisor",
    "TaskDefinition",
]
