"""Planning: when a job fires next, from its schedule, the fire it last served and the misfire
policy (``coalesce``, ``skip`` or ``all``). Times are float timestamps; interval schedules are
stepped without building datetimes."""

from __future__ import annotations

import datetime as _dt

from ..schedules import IntervalSchedule
from ..supervision import State
from .base import _SupervisorBase
from .jobs import _FINISHED, _FIRST, _PARKED, _SERVED, UTC, _Job, _spread_fraction

_MAX_ADVANCE = 10_000  # fires stepped through one by one before jumping straight to "now"


class PlanMixin(_SupervisorBase):
    """Works out a job's next fire and hands it to the heap (``_push``)."""

    def _replan(self, job: _Job, spread: bool = True) -> None:
        """Schedule a job that has no live entry, from where it left off."""
        if job.flags & _PARKED or job.spec is None or self._closing or not self._is_ready:
            return
        if job.active and job.family.limit == 1:
            return  # the running iteration plans the next fire when it ends
        catch_up = job.family.definition.catch_up
        fire = job.fire
        if fire is None:
            self._plan(job, self._first_fire(job, spread), catch_up, first=True)
        elif job.flags & _SERVED:
            self._plan(job, self._next_after(job, fire), catch_up)
        else:
            self._plan(job, fire, catch_up, first=bool(job.flags & _FIRST))

    def _first_fire(self, job: _Job, spread: bool = True) -> float | None:
        assert job.spec is not None
        schedule = job.spec.schedule
        first = schedule.first(self._clock.now())
        if first is None:
            return None
        if spread and job.key is not None and job.family.definition.spread:
            if schedule.kind == "every":
                seconds = float(getattr(schedule, "seconds", 0.0))
                if seconds > 0:
                    offset = _spread_fraction(job.family.name, job.key) * seconds
                    first = first + _dt.timedelta(seconds=offset)
        return first.timestamp()

    def _next_after(self, job: _Job, fire: float) -> float | None:
        """The schedule's next fire after ``fire`` (timestamps); intervals skip datetimes."""
        assert job.spec is not None
        schedule = job.spec.schedule
        if schedule.__class__ is IntervalSchedule:
            return fire + schedule._seconds
        nxt = schedule.next_after(_dt.datetime.fromtimestamp(fire, UTC))
        return None if nxt is None else nxt.timestamp()

    def _plan(self, job: _Job, candidate: float | None, policy: str, first: bool = False) -> None:
        """Push the next fire, applying the misfire policy if ``candidate`` is already past."""
        if candidate is None:
            if job.spec is not None and job.spec.schedule.kind == "after":
                self._await_leader(job)  # no clock of its own: its leader's success triggers it
                return
            self._invalidate(job)
            job.fire = None
            job.flags = (job.flags & ~(_SERVED | _FIRST)) | _FINISHED
            if not job.active:
                self._set_state(job, State.FINISHED)
            return
        now = self._wake_now
        if now is None:
            now = self._timestamp()
        if candidate > now or policy == "all":
            self._push(job, candidate, first=first)
            return
        if policy == "skip":
            grace = job.family.definition.misfire_grace
            if now - candidate <= grace:
                self._push(job, candidate, first=first)
                return
            _, nxt = self._advance(job, candidate, now - grace)
            self._plan(job, nxt, "all")
            return
        last, _ = self._advance(job, candidate, now)
        self._push(job, last, first=first and last == candidate)

    def _advance(self, job: _Job, fire: float, limit: float) -> tuple[float, float | None]:
        """(last fire at or before ``limit``, first fire after it), starting at ``fire``."""
        last = fire
        for _ in range(_MAX_ADVANCE):
            nxt = self._next_after(job, last)
            if nxt is None or nxt > limit or nxt <= last:
                return last, nxt
            last = nxt
        return limit, self._next_after(job, limit)
