"""Status views: a job's :class:`TaskStatus`, its progress and the start lateness of runs.

A job's status object is created when it first needs one (its first failure, a body reading
``ctx.status``, ``run_now``); until then a view is built fresh from the job's counters, which
keeps a healthy job at a few hundred bytes.
"""

from __future__ import annotations

from typing import Hashable

from ..supervision import Outcome, State, TaskStatus
from .base import _SupervisorBase
from .jobs import _CIRCUIT, _FINISHED, _PARKED, _RETRYING, LATENESS_MASK, MISSING, _Job, _stamp


class StatusMixin(_SupervisorBase):
    """Views of jobs for status displays; a job's state and its status object."""

    def status(self, task: str | None = None, key: Hashable = MISSING) -> list[TaskStatus]:
        """Status of every job (of one task, or one key). Jobs that never needed a status
        object get a fresh one built from their counters."""
        families = [self._family(task)] if task is not None else list(self._families.values())
        out = []
        for family in families:
            for job in self._jobs(family, key, strict=False):
                out.append(self._view(job))
        return out

    def troubled(self) -> list[TaskStatus]:
        """Every job that is failing, parked by its circuit or waiting for setup. Cheap with
        many jobs: only a job that ever failed or needed setup carries a status record."""
        out = []
        for family in self._families.values():
            for job in family.jobs.values():
                status = job.status
                if status is None:
                    continue
                if (
                    status.state in (State.CIRCUIT_OPEN, State.NEEDS_SETUP)
                    or status.consecutive_failures
                    or status.transient_streak
                ):
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
        values = sorted(self._lateness[: min(self._late_runs, LATENESS_MASK + 1)])
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
        status.depends_on = self._dependency_text(job)
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
        if job.status is not None and job.status.needs_setup and not flags & _FINISHED:
            return State.NEEDS_SETUP
        if job.entry is not None:
            return State.BACKOFF if flags & _RETRYING else State.SLEEPING
        return State.FINISHED if flags & _FINISHED else State.SLEEPING
