"""Task families and their keys: registering definitions, and creating, updating or dropping
the job of each key from what ``keys()`` and the provider say.

At each fire the provider is read again (that tick is in :mod:`.runs`); a parked, disabled job
is only re-read by :meth:`~FamilyMixin.refresh` and :meth:`~FamilyMixin.sync_keys`, so idle
disabled jobs cost nothing.
"""

from __future__ import annotations

import logging
from typing import Hashable

from ..supervision import RetryPolicy, State
from .base import _maybe_await, _resolve, _SupervisorBase
from .definitions import JobSpec, TaskDefinition, _global_keys
from .jobs import (
    _DEAD,
    _DISABLED,
    _FIRST,
    _PARKED,
    _PENDING,
    _RETRYING,
    _SERVED,
    MISSING,
    _Family,
    _Job,
)

log = logging.getLogger("red.taskcog.engine.supervisor")


class FamilyMixin(_SupervisorBase):
    """The registry of task definitions and the jobs of their keys."""

    def add(self, definition: TaskDefinition) -> None:
        """Register a task. Its jobs are created once the supervisor is ready.

        Raises ValueError if the name is taken.
        """
        if definition.name in self._families:
            raise ValueError(f"a task named {definition.name!r} is already registered")
        self._declare(definition)  # refuses a dependency cycle
        self._registered += 1
        family = _Family(definition, self._policy, self._registered)
        self._families[definition.name] = family
        self._link(family)
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
        self._unlink(family)
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
