"""Dispatch: one timeline of due times (:mod:`.timeline`), one wake-up timer, one dispatcher task.

The dispatcher task stays parked on a :class:`_Waker` whose wake-up timer is the one
``asyncio.sleep`` uses. When it fires, the due jobs are dispatched right there, in the timer
callback, and the timer is re-armed: one loop iteration per wake-up. With ``resolution`` > 0 it
wakes at the last fire within ``resolution`` of the earliest, so close fires share a wake-up.
Starting a due job is :mod:`.runs`; when a job fires next is :mod:`.planning`.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from typing import Awaitable, Callable

from ..supervision import State
from .base import _SupervisorBase
from .jobs import _FINISHED, _FIRST, _PENDING, _QUEUED, _RETRYING, _SERVED, _Entry, _Job
from .waker import _set_result_unless_cancelled, _Waker

log = logging.getLogger("red.taskcog.engine.supervisor")

IDLE_RECHECK = 3600.0


class TimerMixin(_SupervisorBase):
    """The dispatcher task, the timeline of due entries and the wake-up timer."""

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
        # Runs start in this context, whatever context queued or settled them.
        self._context = contextvars.copy_context()
        assert self._ready_event is not None and self._loop is not None
        self._ready_event.set()
        for family in list(self._families.values()):
            await self._populate(family)
        # Park; the waker's timer usually dispatches in place (see _Waker). Shutdown cancels.
        while True:
            waker = self._waker = _Waker(self._loop, self._wake_up)
            self._arm()
            idle = self._idle_wait
            await (waker if idle is None else idle(waker))
            self._wake_up()

    def set_idle_wait(self, wrap: Callable[[asyncio.Future[None]], Awaitable[None]]) -> None:
        """Let a virtual-time harness wrap the dispatcher's idle wait.

        simcord passes ``lambda f: env.external_wait(f, reason=...)``: the wake-up timer then
        fires only when the test advances the clock, never from the wall clock in the middle of
        a settle. A dispatcher parked already re-parks through ``wrap`` at once (no job runs
        that is not due).
        """
        self._idle_wait = wrap
        waker = self._waker
        if waker is not None and not waker.done() and not self._closing:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            asyncio.Future.set_result(waker, None)  # not _Waker.set_result: that dispatches

    def _now(self) -> float:
        """The time, as a timestamp: the one read at this wake-up while dispatching (or at the
        start of a runner's pass over the runs it queued, which is part of the wake-up)."""
        now = self._wake_now
        return now if now is not None else self._timestamp()

    def _push(
        self, job: _Job, fire: float, when: float | None = None, first: bool = False
    ) -> None:
        """Give the job its one live entry (any older entry becomes stale)."""
        if when is None:
            when = fire
            assert job.spec is not None
            jitter = job.spec.schedule._jitter
            if jitter:
                when += self._rng.uniform(0.0, jitter)
        flags = job.flags
        if job.entry is not None and not flags & _QUEUED:
            self._stale += 1
        entry = job.entry = _Entry(when)
        entry.job = job
        # Without jitter or backoff the entry doubles as the fire: one float object, not two.
        job.fire = entry if when == fire else fire
        job.flags = (flags & ~(_QUEUED | _SERVED | _FIRST | _FINISHED)) | (_FIRST if first else 0)
        self._timeline.push(entry)
        if not job.active:
            if job.flags & _RETRYING:
                self._set_state(job, State.BACKOFF)
            elif job.status is None:  # the common case, without a call
                job.state = State.SLEEPING
            elif job.status.needs_setup:
                self._set_state(job, State.NEEDS_SETUP)
            else:
                self._set_state(job, State.SLEEPING)
        if when < self._armed:
            self._arm()

    def _invalidate(self, job: _Job) -> None:
        if job.entry is not None:
            if not job.flags & _QUEUED:
                self._stale += 1
            job.entry = None
            job.flags &= ~_QUEUED

    def _arm(self) -> None:
        """Set the wake-up timer for the next due entry (or the idle re-check)."""
        waker = self._waker
        if waker is None or waker.done() or self._closing:
            return
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        timeline = self._timeline
        head = timeline.first()
        if head is not None:
            self._armed = head
            target = head
            if self._resolution:  # wake at the last entry due within the resolution
                target = timeline.last_within(head, head + self._resolution)
            # A loop whose timers tick in whole milliseconds (uvloop) may fire up to one tick
            # early; waking that early finds nothing due and costs a second wake-up.
            delay = target - self._timestamp() + self._granularity
        else:
            # Never wait on a bare future: an idle dispatcher re-checks hourly. A timer that is a
            # plain sleep wake-up is what virtual-time harnesses (simcord) know how to advance.
            self._armed = math.inf
            delay = IDLE_RECHECK
        # The timer runs in the dispatcher task's context, not that of whoever armed it, so
        # the due jobs are dispatched (and their runners start) there.
        self._timer = self._loop.call_later(
            max(0.0, delay), _set_result_unless_cancelled, waker, None, context=self._context
        )

    def _wake_up(self) -> None:
        self.wakeups += 1
        self._timer = None
        self._armed = -math.inf
        try:
            self._wake_now = self._timestamp()
            self._batching = True  # queue this wake-up's runs, then start one runner for all
            self._fire_due(self._wake_now)
        except Exception:  # a bug here must not silently stop every job
            log.exception("%s: dispatching failed", self._name)
        finally:
            self._batching = False
            self._kick()
            self._wake_now = None
            self._arm()

    def _fire_due(self, now: float) -> None:
        timeline = self._timeline
        if self._stale > 1024 and self._stale * 2 > len(timeline):
            timeline.keep(lambda e: e.job.entry is e)
            self._stale = 0
        self._drain()
        # Runs launched here may push entries already due: take again until none is.
        while due := timeline.take(now):
            last = len(due) - 1
            i = 0
            while i <= last:
                entry = due[i]
                i += 1
                if i <= last and due[i] == entry:
                    j = i
                    while j <= last and due[j] == entry:
                        j += 1
                    self._due_together(due[i - 1 : j], now)
                    i = j
                    continue
                job = entry.job
                if job.entry is not entry:
                    self._stale -= 1
                elif job.active or self._active >= self._max:
                    self._due(job, entry, now)  # busy, or no free slot
                else:  # self._due(job, entry, now), without a call
                    job.entry = None
                    job.flags &= ~_QUEUED
                    self._launch(job, entry, now)

    def _due_together(self, ties: list[_Entry], now: float) -> None:
        """Entries due at the same instant run in a stable order: by task, then by key
        (the timeline alone would pick an arbitrary one first)."""
        live = [e for e in ties if e.job.entry is e]
        self._stale -= len(ties) - len(live)
        try:
            live.sort(key=lambda e: (e.job.family.order, e.job.key))
        except TypeError:  # keys that do not compare: keep the timeline's order
            pass
        for tied in live:
            if tied.job.entry is tied:
                self._due(tied.job, tied, now)

    def _due(self, job: _Job, entry: _Entry, now: float) -> None:
        """A live entry came due. It stays the job's entry while it waits for a slot."""
        if job.active >= job.family.limit:
            job.entry = None
            job.flags |= _PENDING
            return
        if self._active >= self._max:
            job.flags |= _QUEUED
            self._waiting.append(entry)
            return
        job.entry = None
        job.flags &= ~_QUEUED
        self._launch(job, entry, now)

    def _drain(self) -> None:
        """Start queued due jobs while slots are free (not re-entrant: runs that finish at
        once free their slot inside this loop)."""
        waiting = self._waiting
        if self._draining or not waiting or self._active >= self._max:
            return
        self._draining = True
        try:
            now = self._now()
            while waiting and self._active < self._max:
                entry = waiting.popleft()
                job = entry.job
                if job.entry is entry:
                    job.flags &= ~_QUEUED
                    self._due(job, entry, now)
        finally:
            self._draining = False
