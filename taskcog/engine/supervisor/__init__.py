"""Job families: one task definition, run once per key (usually a guild), on one timeline.

A :class:`TaskDefinition` says *what* runs; its ``provider`` says, per key, *whether and when*
(a :class:`JobSpec`). The :class:`Supervisor` keeps one small record per (task, key), one
timeline of due times for all of them and one dispatcher task. A job has no task of its own: runner
tasks step its body while it runs, so 30k idle jobs cost a few hundred bytes each and no
wake-ups.

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
- **Runners, not a Task per run.** The runs due at one wake-up are queued and one runner task
  steps their bodies one after another, each in its own context copy (:mod:`.runners`). A body
  that finishes without suspending costs a coroutine call; one that suspends keeps its runner
  (so ``current_task()``, ``asyncio.timeout`` and aiohttp's timers behave) and hands the rest of
  the queue to a new runner at once. On asyncio the runner's first step runs inside the
  wake-up, like Python 3.12's eager tasks; uvloop gives no access to its ready queue, so there
  the batch runs one loop iteration later.
- **Millisecond timers.** uvloop's timers tick in whole milliseconds and may fire up to one
  early; the wake-up timer is set one millisecond later there, so an early wake-up never finds
  nothing due and re-arms.
- **Shared wake-ups.** With ``resolution`` > 0 the dispatcher wakes at the last fire that lies
  within ``resolution`` of the earliest one, so close fires share one wake-up.
- **Sorted lanes, not only a heap.** An interval job's next fire comes after every fire already
  queued in its lane, so it is appended to a sorted deque (:mod:`.timeline`); a pop touches the
  lane's head instead of ~15 heap levels gone cold since the last wake-up. Out-of-order entries
  (spread first fires, retries, jitter) go on a heap, merged at each wake-up.
- **Settled in one call.** A body that returns without suspending is stepped with ``next()``
  (no StopIteration raised) and a healthy interval job's run is settled by one call that
  counts it and appends its next fire; anything else takes the general path.
- **Compact jobs.** Times are float timestamps; the timeline holds one float-valued entry per job
  (no tuple, no sequence number); flags are bits of one small int, the bits a healthy job
  passes through being the low ones (a cached int, no object of its own).
- **No datetimes per run.** The time is read once per wake-up (and once per runner pass that
  follows it), as a float (``time.time`` for the system clock); interval fires are a float
  add; a datetime is built only when a body reads ``ctx.scheduled_for``.

Where each part lives: :mod:`.definitions` (what a task is: ``TaskDefinition``, ``JobSpec``,
``JobContext``), :mod:`.jobs` (the compact job record and its timeline entry),
:mod:`.families` (definitions and their keys), :mod:`.timeline` (the due entries),
:mod:`.timer` (the wake-up timer and dispatch), :mod:`.planning` (next fires and misfires),
:mod:`.runs` (launching and settling runs), :mod:`.runners` (the tasks that step scheduled bodies),
:mod:`.status`, :mod:`.control`, and :mod:`.core` (the assembled :class:`Supervisor`, its start
and shutdown). :mod:`.base` declares the state the parts share.
"""

from .core import ShutdownReport, Supervisor
from .definitions import CATCH_UP, PRIORITIES, JobContext, JobSpec, Requirement, TaskDefinition
from .jobs import MISSING
from .timer import IDLE_RECHECK

__all__ = [
    "CATCH_UP",
    "IDLE_RECHECK",
    "MISSING",
    "PRIORITIES",
    "JobContext",
    "JobSpec",
    "Requirement",
    "ShutdownReport",
    "Supervisor",
    "TaskDefinition",
]
