"""Dependencies between tasks, and deferral of low-priority runs under load.

- **after**: a job runs each time another task's job for the same key (or its global job)
  completes successfully. Declared for a whole task (``TaskDefinition.after``, on top of its
  own schedule) or per job by an ``after <task>`` schedule (:class:`AfterSchedule`, which has
  no clock of its own). Triggered runs go through the normal dispatch, so concurrency,
  overlap, requirements and deferral apply to them; an ``after`` schedule runs at most once
  per its ``min_gap``.
- **requires**: a scheduled run starts only if the required task succeeded within the
  requirement's freshness; otherwise it is skipped, with the reason in the job's status
  (``skipped``, ``last_skip``). A skip is not a failure: no backoff, no circuit.
- **cycles** are refused when declared: :meth:`add` raises ``ValueError`` naming the cycle,
  and an ``after`` schedule that would close one waits in *needs setup* saying so (commands
  check :meth:`dependency_cycle` first, so users get a one-line refusal).
- **deferral**: with a :class:`~taskcog.engine.deferral.Deferral` set, ``priority="low"`` runs
  wait while the loop lags (re-checked every few seconds, never more than 5 minutes at a
  time); high and normal runs never wait.

Cost: the hooks elsewhere are one test of an empty container when nothing is declared.
"""

from __future__ import annotations

import datetime as _dt
from typing import Hashable

from ..deferral import Deferral
from ..schedules import IntervalSchedule, format_duration
from ..supervision import Outcome, State
from .base import _SupervisorBase
from .definitions import Requirement, TaskDefinition
from .jobs import _DEAD, _FINISHED, _FIRST, _PARKED, _RETRYING, _SERVED, UTC, _Family, _Job, _stamp

_ANY = object()  # dependency_cycle over every key


class DependencyMixin(_SupervisorBase):
    """after/requires between tasks, cycle refusal, and deferral of low-priority runs."""

    def _init_dependencies(self) -> None:
        self._followers: dict[str, list[str]] = {}  # leader -> tasks declared after it
        self._after_jobs: dict[str, dict[Hashable, set[_Job]]] = {}  # leader -> key -> jobs
        self._gated: set[str] = set()  # tasks whose runs pass _gate (requires, low priority)
        self._watched: set[str] = set()  # tasks whose successes something waits for
        self._last_ok: dict[tuple[str, Hashable], float] = {}
        self._deferral: Deferral | None = None
        self._deferred_since: dict[_Job, float] = {}

    # ------------------------------------------------------------------ public

    def set_deferral(self, deferral: Deferral | None) -> None:
        """Defer low-priority runs by this rule from now on (None: never defer)."""
        self._deferral = deferral

    @property
    def deferral(self) -> Deferral | None:
        return self._deferral

    def deferred_now(self) -> int:
        """How many low-priority jobs are waiting for the lag to clear right now."""
        return len(self._deferred_since)

    def dependency_cycle(self, task: str, leader: str, key: Hashable = _ANY) -> str | None:
        """``"a -> b -> a"`` if making ``task`` (its job for ``key``) depend on ``leader``
        would close a cycle, else None."""
        path = self._path(leader, task, key)
        return " -> ".join([task, *path]) if path is not None else None

    def last_success(self, task: str, key: Hashable) -> _dt.datetime | None:
        family = self._families.get(task)
        job = family.jobs.get(key) if family is not None else None
        ok = self._last_success(job) if job is not None else None
        return None if ok is None else _dt.datetime.fromtimestamp(ok, UTC)

    # ------------------------------------------------------------------ declaring

    def _declare(self, definition: TaskDefinition) -> None:
        """Refuse a definition whose dependencies close a cycle (before it is added)."""
        requires = definition.requires
        for leader in (definition.after, requires.task if requires else None):
            if leader is None:
                continue
            cycle = self.dependency_cycle(definition.name, leader)
            if cycle is not None:
                raise ValueError(f"dependency cycle refused: {cycle}")

    def _link(self, family: _Family) -> None:
        definition = family.definition
        if definition.after:
            self._followers.setdefault(definition.after, []).append(family.name)
            self._watched.add(definition.after)
        if isinstance(definition.requires, Requirement):
            self._watched.add(definition.requires.task)
            self._gated.add(family.name)
        if definition.priority == "low":
            self._gated.add(family.name)

    def _unlink(self, family: _Family) -> None:
        definition = family.definition
        if definition.after in self._followers:
            followers = [n for n in self._followers[definition.after] if n != family.name]
            if followers:
                self._followers[definition.after] = followers
            else:
                del self._followers[definition.after]
        self._gated.discard(family.name)
        self._after_jobs.pop(family.name, None)
        for job in family.jobs.values():
            self._deferred_since.pop(job, None)

    def _edges(self, name: str, key: Hashable) -> list[str]:
        family = self._families.get(name)
        if family is None:
            return []
        definition = family.definition
        out = [definition.after] if definition.after else []
        if isinstance(definition.requires, Requirement):
            out.append(definition.requires.task)
        jobs = family.jobs.values() if key is _ANY else [family.jobs.get(key)]
        for job in jobs:
            schedule = job.schedule if job is not None else None
            if schedule is not None and schedule.kind == "after":
                out.append(schedule.task)  # type: ignore[attr-defined]
        return out

    def _path(self, start: str, goal: str, key: Hashable) -> list[str] | None:
        """The dependency path from ``start`` to ``goal`` (both included), or None."""
        todo: list[list[str]] = [[start]]
        seen = {start}
        while todo:
            path = todo.pop()
            if path[-1] == goal:
                return path
            for nxt in self._edges(path[-1], key):
                if nxt not in seen or nxt == goal:
                    seen.add(nxt)
                    todo.append([*path, nxt])
        return None

    # ------------------------------------------------------------------ after

    def _await_leader(self, job: _Job) -> None:
        """An ``after`` job has no fire of its own: index it under its leader and sleep."""
        self._invalidate(job)
        job.fire = None
        job.flags &= ~(_SERVED | _FIRST | _FINISHED)
        leader = job.schedule.task  # type: ignore[union-attr]
        cycle = self.dependency_cycle(job.family.name, leader, job.key)
        if cycle is not None:
            status = self._materialize(job)
            status.needs_setup = f"dependency cycle: {cycle}; give it another schedule"
            if not job.active:
                self._set_state(job, State.NEEDS_SETUP)
            return
        self._after_jobs.setdefault(leader, {}).setdefault(job.key, set()).add(job)
        self._watched.add(leader)
        if not job.active:
            self._set_state(job, State.SLEEPING)

    def _succeeded(self, job: _Job) -> None:
        """A run of ``job`` succeeded: note when, and trigger what runs after it."""
        name = job.family.name
        if name not in self._watched or self._closing:
            return
        now = self._clock.now().timestamp()
        self._last_ok[(name, job.key)] = now
        for follower in self._followers.get(name, ()):
            family = self._families.get(follower)
            if family is not None:
                for other in self._keyed(family, job.key):
                    self._trigger(other, now, name)
        by_key = self._after_jobs.get(name)
        if not by_key:
            return
        keys = list(by_key) if job.key is None else [job.key, None]
        for key in keys:
            for other in list(by_key.get(key, ())):
                schedule = other.schedule
                if other.flags & _DEAD or schedule is None or schedule.kind != "after":
                    by_key[key].discard(other)
                elif schedule.task == name:  # type: ignore[attr-defined]
                    self._trigger(other, now, name)
                else:
                    by_key[key].discard(other)

    @staticmethod
    def _keyed(family: _Family, key: Hashable) -> list[_Job]:
        if key is None:
            return list(family.jobs.values())  # a global leader drives every key
        job = family.jobs.get(key, family.jobs.get(None))
        return [job] if job is not None else []

    def _trigger(self, job: _Job, now: float, leader: str) -> None:
        if not self._is_ready or job.flags & _PARKED or job.spec is None:
            return
        gap = getattr(job.spec.schedule, "min_gap", 0.0)
        if gap and job.last_start is not None and now - job.last_start + 1.0 < gap:
            self._note_skip(
                job, now, f"{leader} succeeded, but this ran less than {format_duration(gap)} ago"
            )
            return
        self._push(job, now, now)

    # ------------------------------------------------------------------ requires and deferral

    def _gate(self, job: _Job, now: float) -> bool:
        """Before a scheduled run starts: True if it was skipped or deferred instead."""
        definition = job.family.definition
        fire = job.fire
        assert fire is not None
        requires = definition.requires
        if isinstance(requires, Requirement):
            reason = self._unmet(requires, job.key, now)
            if reason is not None:
                self._skip(job, fire, now, reason)
                return True
        if definition.priority == "low" and self._deferral is not None:
            return self._defer(job, fire, now)
        return False

    def _unmet(self, requires: Requirement, key: Hashable, now: float) -> str | None:
        family = self._families.get(requires.task)
        if family is None:
            return f"{requires.task} is not registered"
        leader = family.jobs.get(key, family.jobs.get(None))
        if leader is None:
            return f"{requires.task} has no job here"
        window = requires.within
        if window is None:
            gap = self._interval_of(leader, now)
            window = requires.intervals * gap if gap and requires.intervals else None
        ok = self._last_success(leader)
        if ok is None:
            return f"{requires.task} has not succeeded yet"
        age = now - ok
        if window is not None and age > window:
            return (
                f"{requires.task} last succeeded {format_duration(age)} ago, "
                f"not within {format_duration(window)}"
            )
        return None

    def _interval_of(self, job: _Job, now: float) -> float | None:
        schedule = job.schedule
        if schedule is None:
            return None
        if schedule.__class__ is IntervalSchedule:
            return float(schedule.seconds)  # type: ignore[attr-defined]
        first = schedule.next_after(_dt.datetime.fromtimestamp(now, UTC))
        second = schedule.next_after(first) if first is not None else None
        return (second - first).total_seconds() if second is not None else None

    def _last_success(self, job: _Job) -> float | None:
        ok = self._last_ok.get((job.family.name, job.key))
        if ok is not None:
            return ok
        status = job.status
        if status is not None:
            if status.last_outcome is Outcome.OK and status.last_end is not None:
                return status.last_end.timestamp()
            return None
        if job.runs and job.last_start is not None and not job.active:
            return job.last_start + job.last_us / 1e6
        return None

    def _note_skip(self, job: _Job, now: float, reason: str) -> None:
        status = self._materialize(job)
        status.skipped += 1
        status.last_skip = reason
        status.last_skip_at = _stamp(now)

    def _skip(self, job: _Job, fire: float, now: float, reason: str) -> None:
        """The run is skipped: record why and plan the first fire after now."""
        self._note_skip(job, now, reason)
        job.flags &= ~_RETRYING
        nxt = self._next_after(job, fire)
        if nxt is not None and nxt <= now:
            _, nxt = self._advance(job, nxt, now)
        self._plan(job, nxt, "all")

    def _defer(self, job: _Job, fire: float, now: float) -> bool:
        deferral = self._deferral
        assert deferral is not None
        since = self._deferred_since.get(job)
        if not deferral.overloaded(now):
            if since is not None:  # the lag cleared: one run stands in for the fires it covered
                del self._deferred_since[job]
                job.fire, _ = self._advance(job, fire, now)
            return False
        if since is None:
            since = self._deferred_since[job] = now
            deferral.count += 1
            self._materialize(job).deferred += 1
        elif now - since >= deferral.longest:
            del self._deferred_since[job]  # never more than 5 minutes at a time
            job.fire, _ = self._advance(job, fire, now)
            return False
        self._push(job, fire, min(now + deferral.recheck, since + deferral.longest))
        return True

    def _dependency_text(self, job: _Job) -> str | None:
        text = job.family.definition.dependency
        schedule = job.schedule
        if schedule is not None and schedule.kind == "after":
            own = f"after {schedule.task}"  # type: ignore[attr-defined]
            text = f"{own}; {text}" if text else own
        return text
