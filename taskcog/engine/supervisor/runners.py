"""Runners: short-lived tasks that step due job bodies one after another.

A scheduled run is a coroutine that a runner steps, not a Task of its own: a body that finishes
without suspending costs a coroutine call instead of a Task, its scheduling and its done
callback (``bench/bench_scheduler.py`` measures it; it matters most on uvloop, where a new Task
cannot be stepped eagerly). The dispatcher queues every run due at one wake-up and starts one
runner for the batch; on the default asyncio loop that runner's first step runs at once, inside
the wake-up.

Each body still behaves as if it had a task of its own:

- it runs in its own copy of the context (the runner steps it with ``Context.run``, as a Task
  does), so a ``ContextVar`` it sets stays in that run;
- ``asyncio.current_task()`` is its runner, which serves only that body from its first
  suspension to its end, so ``asyncio.timeout()`` in a body and the per-iteration ``timeout=``
  cancel exactly that body;
- an exception ends only its own run;
- a body that suspends never holds up the others: the runner hands the rest of the queue to a
  new runner at once and stays with the suspended body.

A body that returns at once is stepped with ``next()`` (no StopIteration raised for it) and a
healthy interval job's run is settled by :meth:`RunnerMixin._finish_ok` in one call; every
other outcome goes through :meth:`~.runs.RunMixin._finish`.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, Coroutine

from ..schedules import IntervalSchedule
from ..supervision import State
from .base import _SupervisorBase
from .definitions import JobContext
from .jobs import (
    _FINISHED,
    _FIRST,
    _PARKED,
    _PENDING,
    _QUEUED,
    _RETRYING,
    _SERVED,
    _Entry,
    _Runner,
)

_CancelledError = asyncio.CancelledError
_DONE = object()  # what stepping a body gives when it returned
# Flags that take a finished run off the fast path (see _finish_ok).
_SLOW_FLAGS = _PARKED | _PENDING | _RETRYING | _FIRST | _QUEUED
_SLEEPING = State.SLEEPING


class RunnerMixin(_SupervisorBase):
    """The queue of launched scheduled runs and the runner tasks that step them."""

    def _enqueue(self, ctx: JobContext) -> None:
        """Queue a launched run; outside a dispatch, make sure a runner will take it."""
        self._queue.append(ctx)
        if not self._batching:
            self._kick()

    def _kick(self) -> None:
        """Start a runner if the queue has runs and no runner is free to take them."""
        if self._queue and self._free == 0:
            parked = self._parked
            if parked is not None:  # wake the runner that waits for work
                self._parked = None
                self._free += 1
                parked.set_result(None)
                return
            runner = _Runner()
            self._runners.add(runner)
            self._free += 1
            assert self._loop is not None
            # In (a copy of) the dispatcher's context, whoever queued the run: a body's
            # run_now, say, must not pass its context variables on.
            context = self._context.copy() if self._context is not None else None
            task = runner.task = self._loop.create_task(self._run_queue(runner), context=context)
            self._step_now(task)

    async def _run_queue(self, runner: _Runner) -> None:
        queue = self._queue
        task = runner.task
        assert task is not None
        monotonic = self._monotonic
        running = self._running
        copy_context = contextvars.copy_context
        own = False  # this pass set the time every run of it plans with (see _now)
        try:
            while True:
                if self._wake_now is None:  # as a wake-up does: one reading per pass
                    self._wake_now = self._timestamp()
                    own = True
                while queue:
                    ctx = queue.popleft()
                    runner.ctx = ctx
                    ctx._task = task
                    running[task] = ctx
                    ctx._started = monotonic()
                    coro = ctx._coro
                    ctx._coro = None
                    step = copy_context().run
                    error: BaseException | None = None
                    cancelled = False
                    try:
                        # next() with a default: a body that returns raises no StopIteration
                        signal = step(next, coro.__await__(), _DONE)
                    except _CancelledError:
                        cancelled = True
                    except Exception as exc:
                        error = exc
                    else:
                        if signal is not _DONE:  # suspended: stay with it, let another
                            if own:  # runner take the rest; the time goes stale: reread it
                                self._wake_now = None
                                own = False
                            self._free -= 1
                            self._kick()
                            try:
                                error, cancelled = await self._follow(ctx, coro, step, signal)
                            finally:
                                self._free += 1
                    runner.ctx = None
                    if task.cancelling():
                        if own:
                            self._wake_now = None
                            own = False
                        if await self._absorb_cancel(task, delivered=cancelled):
                            if error is None:  # as a Task that cancels itself and returns ends
                                cancelled = True
                    elif error is None and not cancelled:
                        self._finish_ok(ctx)  # the common case: settled in one call
                        continue
                    self._finish(ctx, error, cancelled)
                if own:
                    self._wake_now = None
                    own = False
                if not await self._park(runner):
                    return
        finally:
            if own:
                self._wake_now = None
            self._free -= 1
            self._runners.discard(runner)

    def _finish_ok(self, ctx: JobContext) -> None:
        """A scheduled run's body returned: a healthy interval job settled in one call (count
        it, push its next fire); anything else (status, timer, retry, overlap, hooks, a tick
        that ran no body, shutdown) goes through :meth:`_finish`."""
        job = ctx._job
        spec = job.spec
        schedule = spec.schedule if spec is not None else None
        if (
            job.status is not None
            or job.active != 1
            or job.flags & _SLOW_FLAGS
            or ctx._timer is not None
            or ctx._timed_out
            or ctx._retry
            or ctx._tick is not None
            or schedule.__class__ is not IntervalSchedule
            or schedule._jitter  # type: ignore[union-attr]
            or job.family.limit != 1
            or self._closing
            or self._waiters
            or self._watched
        ):
            self._finish(ctx, None, False)
            return
        self._running.pop(ctx._task, None)  # type: ignore[arg-type]
        job.active = 0
        self._active -= 1
        job.runs += 1
        job.last_us = round((self._monotonic() - ctx._started) * 1e6)
        nxt = ctx._at + schedule._seconds  # type: ignore[union-attr]
        now = self._wake_now
        if now is None:
            now = self._timestamp()
        if nxt > now and job.entry is None:  # self._push(job, nxt), without the call
            entry = job.entry = job.fire = _Entry(nxt)
            entry.job = job
            job.flags &= ~(_SERVED | _FINISHED)
            self._timeline.push(entry)
            job.state = _SLEEPING
            if nxt < self._armed:
                self._arm()
        elif nxt > now:
            self._push(job, nxt)
        else:
            self._plan(job, nxt, job.family.definition.catch_up)
            job.state = self._idle_state(job)
        if self._waiting:
            self._drain()

    async def _park(self, runner: _Runner) -> bool:
        """The queue is empty: wait for the next batch (True), or end this runner (False).

        One runner waits, so a wake-up costs a resolved future instead of a new Task. Not on
        loops whose ready queue we can reach (asyncio): there a fresh runner's first step runs
        inside the wake-up, which is cheaper still."""
        if self._ready_queue is not None or self._closing or self._parked is not None:
            return False
        assert self._loop is not None
        self._free -= 1
        parked = self._parked = self._loop.create_future()
        try:
            await parked
        except BaseException:
            if self._parked is parked:  # cancelled while waiting: undo the park
                self._parked = None
                self._free += 1  # the finally of _run_queue takes it back
            raise
        return True

    def _release_parked(self) -> None:
        """Shutting down: the waiting runner ends."""
        parked = self._parked
        if parked is not None:
            self._parked = None
            self._free += 1
            parked.set_result(None)

    async def _follow(
        self,
        ctx: JobContext,
        coro: Coroutine[Any, Any, Any],
        step: Any,
        signal: Any,
    ) -> tuple[BaseException | None, bool]:
        """Step a suspended body to its end as its Task would: wait for what it awaits, resume
        it, and deliver a cancellation of the runner to it. Returns (error, cancelled).
        """
        timeout = ctx._job.family.definition.timeout
        if timeout is not None:
            assert self._loop is not None
            left = timeout - (self._monotonic() - ctx._started)
            ctx._timer = self._loop.call_later(max(0.0, left), self._cut, ctx)
        while True:
            throw: BaseException | None = None
            if signal is None:  # a bare yield, as asyncio.sleep(0) does
                try:
                    await asyncio.sleep(0)
                except _CancelledError as exc:
                    throw = exc
            elif getattr(signal, "_asyncio_future_blocking", False):
                signal._asyncio_future_blocking = False
                try:
                    await signal  # cancelling the runner cancels this future, as for a Task
                except _CancelledError as exc:
                    if not signal.cancelled():  # cancelled after the future was done
                        throw = exc
                except Exception:
                    pass  # the body reads the future's outcome itself when resumed
            else:
                throw = RuntimeError(f"Task got bad yield: {signal!r}")
            try:
                signal = step(coro.throw, throw) if throw is not None else step(coro.send, None)
            except StopIteration:
                return None, False
            except _CancelledError:
                return None, True
            except Exception as exc:
                return exc, False

    @staticmethod
    async def _absorb_cancel(task: asyncio.Task[Any], delivered: bool) -> bool:
        """A cancellation aimed at the body just finished must not reach the next one.
        True if one was still pending (requested while the body ran, never delivered)."""
        pending = False
        if not delivered:
            # It would be thrown in at the runner's next suspension, inside another body.
            try:
                await asyncio.sleep(0)
            except _CancelledError:
                pending = True
        while task.cancelling():
            task.uncancel()
        return pending

    def _cut(self, ctx: JobContext) -> None:
        """The run's ``timeout`` passed: cancel it where it is."""
        task = ctx._task
        if task is not None and self._running.get(task) is ctx:
            ctx._timed_out = True
            task.cancel()

    def _cancel_runs(self, job: Any) -> None:
        """Cancel the job's running bodies and drop its queued runs (as cancelled)."""
        for task, ctx in list(self._running.items()):
            if ctx._job is job:
                task.cancel()
        if self._queue:
            for ctx in [ctx for ctx in self._queue if ctx._job is job]:
                self._queue.remove(ctx)
                self._drop_queued(ctx)

    def _drop_queued(self, ctx: JobContext) -> None:
        """A queued run that will never start: close its coroutine, settle it as cancelled."""
        coro = ctx._coro
        ctx._coro = None
        if coro is not None:
            coro.close()
        ctx._started = self._monotonic()
        self._finish(ctx, None, True)
