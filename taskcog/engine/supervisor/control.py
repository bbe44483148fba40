"""Control of single jobs: run now, pause and resume, stop and start, restart after a circuit
opened."""

from __future__ import annotations

import asyncio
from typing import Hashable

from ..supervision import State, TaskStatus
from .base import _maybe_await, _SupervisorBase
from .jobs import (
    _CIRCUIT,
    _DEAD,
    _FINISHED,
    _FIRST,
    _PARKED,
    _PAUSED,
    _PENDING,
    _RETRYING,
    _SERVED,
    _STOPPED,
    MISSING,
    _Job,
)


class ControlMixin(_SupervisorBase):
    """What an owner (or the cog's commands) can do to a job or a whole task."""

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
        now = self._timestamp()
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
        """Close an open circuit and reset the backoff. The job goes on at its next fire on
        its schedule (now only if a fire is due now): a restart is not a run."""
        job = self._job(task, key)
        job.flags &= ~_STOPPED
        self._close_circuit(job)
        status = self._materialize(job)
        status.restarts += 1
        fire = job.fire
        parked = job.flags & _PARKED or job.spec is None or self._closing or not self._is_ready
        if fire is None or parked or (job.active and job.family.limit == 1):
            self._forget_fires(job)
            self._replan(job, spread=False)
            return
        candidate = self._next_after(job, fire) if job.flags & _SERVED else fire
        now = self._now()
        if candidate is not None and candidate < now:
            last, nxt = self._advance(job, candidate, now)
            candidate = last if last == now else nxt
        self._invalidate(job)
        self._plan(job, candidate, "all")

    def _forget_fires(self, job: _Job) -> None:
        job.fire = None
        job.flags &= ~(_SERVED | _FIRST | _FINISHED)

    def _close_circuit(self, job: _Job) -> None:
        job.flags &= ~(_CIRCUIT | _RETRYING)
        if job.status is not None:
            job.status.consecutive_failures = 0
            job.status.transient_streak = 0
