"""The task of a loop: sleep to each tick, run it, and go on to the following tick.

Iterations run one after another (a failed one is retried for the same tick after its
backoff) or, with ``overlap``, are launched without waiting (a failed one holds new launches
for its backoff). A loop parked by an open circuit waits here until it is resumed.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Any

from .. import schedules
from ..clock import Clock
from ..supervision import Outcome, State, TaskStatus
from .timing import CatchUp, SleepHandle, following_tick

__all__ = ("LoopRunner",)


class LoopRunner:
    """The part of :class:`~taskcog.engine.tasks.Loop` that sleeps to ticks and runs them.

    Each iteration is a supervised one (:class:`~taskcog.engine.loop.supervision.LoopSupervision`);
    sleeps add the schedule's jitter (:class:`~taskcog.engine.loop.schedule.LoopSchedule`).
    """

    count: int | None
    overlap: bool | int
    catch_up: CatchUp
    _name: str
    _schedule: schedules.Schedule
    _clock: Clock
    _status: TaskStatus
    _handle: SleepHandle | None
    _sleeping_for_tick: bool
    _current_loop: int
    _last_iteration: _dt.datetime | None
    _next_iteration: _dt.datetime | None
    _parked: bool
    _resume: asyncio.Event | None
    _inflight: set[asyncio.Task[None]]
    _slots: asyncio.Semaphore | None
    _hold_until: _dt.datetime | None
    _stop_next_iteration: bool
    _is_being_cancelled: bool
    _has_failed: bool

    # -- sleeping ------------------------------------------------------------------------------

    async def _sleep_until(self, when: _dt.datetime, *, for_tick: bool = False) -> None:
        self._handle = SleepHandle(when, loop=asyncio.get_running_loop(), clock=self._clock)
        self._sleeping_for_tick = for_tick
        try:
            await self._handle.wait()
        finally:
            self._sleeping_for_tick = False
            self._handle.cancel()

    def _should_leave_sleep(self) -> bool:
        return self._stop_next_iteration or self._parked

    async def _wait_for_tick(self) -> _dt.datetime | None:
        """Sleep until the next tick; None when stopped, parked or the schedule is exhausted."""
        tick = self._next_iteration
        if tick is None:
            return None
        target = self._jittered(tick)
        self._status.state = self._idle()
        self._status.next_run = target
        await self._sleep_until(target, for_tick=True)
        if self._should_leave_sleep():
            return None
        return self._next_iteration  # change_interval may have moved it while we slept

    async def _wait_out_hold(self) -> None:
        """In overlap mode a failed iteration holds new launches until its backoff is over."""
        while self._hold_until is not None and not self._should_leave_sleep():
            hold, self._hold_until = self._hold_until, None
            if hold > self._clock.now():
                self._status.state = State.BACKOFF
                self._status.next_run = hold
                await self._sleep_until(hold)

    async def _stay_parked(self) -> None:
        assert self._resume is not None
        await self._resume.wait()
        self._resume = None
        self._hold_until = None
        if not self._stop_next_iteration:
            self._status.state = self._idle()
            self._next_iteration = self._schedule.first(self._clock.now())

    # -- execution -----------------------------------------------------------------------------

    async def _run_tick(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """Run the body for one scheduled tick, retrying it under supervision; True on success."""
        while True:
            verdict = await self._supervised_iteration(args, kwargs)
            if verdict.outcome is Outcome.OK:
                return True
            if verdict.outcome is Outcome.NEEDS_SETUP:
                return False  # not a failure: no retry, the next tick checks again
            if verdict.circuit_opened or self._should_leave_sleep():
                return False
            retry_at = self._clock.now() + _dt.timedelta(seconds=verdict.retry_in or 0.0)
            self._status.state = State.BACKOFF
            self._status.next_run = retry_at
            await self._sleep_until(retry_at)
            if self._should_leave_sleep():
                return False

    async def _launch(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        """overlap mode: start the iteration without waiting for it; False if parked meanwhile."""
        if self._slots is not None:
            await self._slots.acquire()
            if self._should_leave_sleep():
                self._slots.release()
                return False
        task = asyncio.create_task(self._overlapped(args, kwargs), name=f"{self._name} #run")
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return True

    async def _overlapped(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            verdict = await self._supervised_iteration(args, kwargs)
            if verdict.retry_in is not None:
                hold = self._clock.now() + _dt.timedelta(seconds=verdict.retry_in)
                if self._hold_until is None or hold > self._hold_until:
                    self._hold_until = hold
        finally:
            if self._slots is not None:
                self._slots.release()
            if self._status.state is State.RUNNING and len(self._inflight) <= 1:
                self._status.state = self._idle()

    # -- the task ------------------------------------------------------------------------------

    async def _loop(self, *args: Any, **kwargs: Any) -> None:
        await self._call_loop_function("before_loop")
        self._slots = None if isinstance(self.overlap, bool) else asyncio.Semaphore(self.overlap)
        self._next_iteration = self._schedule.first(self._clock.now())
        await asyncio.sleep(0)  # allows cancelling in before_loop
        finished = False
        try:
            while not self._stop_next_iteration:
                if self._parked:
                    await self._stay_parked()
                    continue
                tick = await self._wait_for_tick()
                if self._parked:
                    continue
                if tick is None:
                    finished = not self._stop_next_iteration
                    break
                self._last_iteration = tick
                self._next_iteration = self._schedule.next_after(tick)
                if self.overlap:
                    await self._wait_out_hold()
                    if self._parked or self._stop_next_iteration:
                        continue
                    done = await self._launch(args, kwargs)
                else:
                    done = await self._run_tick(args, kwargs)
                if not done:
                    continue
                self._current_loop += 1
                if self._current_loop == self.count:
                    finished = True
                    break
                self._next_iteration = following_tick(
                    self._schedule, tick, self._clock.now(), self.catch_up
                )
            if self._inflight:
                await asyncio.gather(*self._inflight, return_exceptions=True)
        except asyncio.CancelledError:
            self._is_being_cancelled = True
            for task in self._inflight:
                task.cancel()
            raise
        except Exception as exc:
            self._has_failed = True
            await self._call_loop_function("error", exc)
            raise
        finally:
            self._status.state = State.FINISHED if finished else State.STOPPED
            self._status.next_run = None
            await self._call_loop_function("after_loop")
            if self._handle:
                self._handle.cancel()
            self._is_being_cancelled = False
            self._current_loop = 0
            self._stop_next_iteration = False
            self._parked = False

    def _idle(self) -> State:
        """Between iterations: waiting for configuration, or sleeping until the next one."""
        return State.NEEDS_SETUP if self._status.needs_setup else State.SLEEPING
