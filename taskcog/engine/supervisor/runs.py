"""Runs: launching a due job (its tick) and settling what a run did.

A scheduled run is queued for the runners (:mod:`.runners`); a manual run
(:meth:`Supervisor.run_now`) is a Task of its own that the caller awaits. Either way a task's
first step may run at once inside the dispatch, like Python 3.12's eager tasks (only on loops
that expose their ready queue, i.e. not uvloop). Failures follow
:func:`~taskcog.engine.supervision.record_outcome`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import types
from typing import Any, Awaitable, Mapping

from ..supervision import Outcome, State, Verdict, record_outcome
from .base import _maybe_await, _resolve, _SupervisorBase
from .definitions import JobContext, JobSpec
from .jobs import (
    _CIRCUIT,
    _DEAD,
    _DISABLED,
    _FIRST,
    _PARKED,
    _PENDING,
    _QUEUED,
    _RETRYING,
    _SERVED,
    LATENESS_MASK,
    _Entry,
    _Job,
    _stamp,
)

log = logging.getLogger("red.taskcog.engine.supervisor")

_Coroutine = types.CoroutineType
_SKIPPED = object()  # an async provider said "disabled": the tick ran no body
_DROPPED = object()  # an async provider said "no job for this key"


class RunMixin(_SupervisorBase):
    """Starts runs of due (or manually run) jobs and decides what follows each one."""

    def _launch(self, job: _Job, when: float, now: float) -> None:
        """Start a scheduled run: read the provider (the tick), apply misfires, run the body."""
        if self._gated and job.family.name in self._gated and self._gate(job, now):
            return  # skipped (a requirement unmet) or deferred (low priority under lag)
        definition = job.family.definition
        try:
            spec = definition.provider(job.key)
        except Exception as exc:
            self._tick_failed(job, exc)
            return
        if spec.__class__ is not JobSpec:
            if spec is None:
                self._drop(job)
                return
            if inspect.isawaitable(spec):
                fire = job.fire
                assert fire is not None and job.spec is not None
                self._start_run(
                    job, fire, job.spec.options, when, now, manual=False, pending_spec=spec
                )
                return
            if not isinstance(spec, JobSpec):
                self._tick_failed(job, TypeError(f"provider returned {type(spec).__name__}"))
                return
        if spec.enabled and not job.flags & _DISABLED:
            job.spec = spec  # self._apply(job, spec), without a call
        elif not self._apply(job, spec):
            return
        fire = job.fire
        assert fire is not None
        late = now - when
        # Late by more than a shared wake-up allows: the loop stalled, maybe past more fires.
        if late > self._stall and not job.flags & _RETRYING and definition.catch_up != "all":
            # The loop stalled past more than this fire: apply the misfire policy now.
            if definition.catch_up == "skip":
                if late > definition.misfire_grace:
                    self._plan(job, fire, "skip")
                    return
            else:
                fire, _ = self._advance(job, fire, now)
        if job.status is not None or self._progress or job.flags & _RETRYING or job.active:
            try:
                self._start_run(job, fire, spec.options, when, now, manual=False)
            except Exception as exc:  # e.g. ``run`` is not a coroutine function
                self._tick_failed(job, exc)
            return
        # A healthy idle job: _start_run's scheduled branch, without the call.
        family = job.family
        ctx = JobContext(family.name, job.key, fire, spec.options, self, False, job)
        try:
            coro = definition.run(ctx)
            if coro.__class__ is not _Coroutine and not asyncio.iscoroutine(coro):
                raise TypeError(f"a coroutine was expected, got {coro!r}")
        except Exception as exc:
            self._tick_failed(job, exc)
            return
        job.active = 1
        job.last_start = now
        job.state = State.RUNNING
        self._active += 1
        job.fire = fire
        job.flags = (job.flags | _SERVED) & ~_FIRST
        self._lateness[self._late_runs & LATENESS_MASK] = now - when
        self._late_runs += 1
        if family.limit > 1:
            self._plan(job, self._next_after(job, fire), definition.catch_up)
        ctx._coro = coro
        self._queue.append(ctx)
        if not self._batching:
            self._kick()

    def _start_run(
        self,
        job: _Job,
        fire: float,
        options: Mapping[str, Any],
        when: float,
        now: float,
        manual: bool,
        pending_spec: Awaitable[Any] | None = None,
    ) -> asyncio.Task[Any] | None:
        """Launch one run: a Task for a manual run (returned), else queued for a runner."""
        family = job.family
        definition = family.definition
        ctx = JobContext(family.name, job.key, fire, options, self, manual, job)
        retrying = bool(job.flags & _RETRYING)
        ctx._retry = retrying
        if pending_spec is not None:
            coro = self._tick_then_run(ctx, pending_spec)
        else:
            coro = definition.run(ctx)
        if coro.__class__ is not _Coroutine and not asyncio.iscoroutine(coro):
            raise TypeError(f"a coroutine was expected, got {coro!r}")
        job.active += 1
        job.last_start = now
        if self._progress:
            self._progress.pop(job, None)
        if job.status is not None:
            job.status.last_start = _stamp(now)
            self._set_state(job, State.RUNNING)
        else:
            job.state = State.RUNNING
        if not manual:
            self._active += 1
            job.fire = fire
            job.flags = (job.flags | _SERVED) & ~_FIRST
            self._lateness[self._late_runs & LATENESS_MASK] = now - when
            self._late_runs += 1
            if family.limit > 1 and pending_spec is None and not retrying:
                self._plan(job, self._next_after(job, fire), definition.catch_up)
            ctx._coro = coro
            self._queue.append(ctx)  # self._enqueue(ctx), without a call
            if not self._batching:
                self._kick()
            return None
        loop = self._loop
        assert loop is not None
        task = loop.create_task(coro)
        ctx._started = self._monotonic()
        ctx._task = task
        self._running[task] = ctx
        self._step_now(task)
        if task.done():
            self._task_done(task, ctx)  # finished without suspending: settle inline
            return task
        # Settled in the dispatcher's context: runs it launches must not inherit the caller's.
        context = self._context.copy() if self._context is not None else None
        task.add_done_callback(lambda done: self._task_done(done, ctx), context=context)
        if definition.timeout is not None:
            ctx._timer = loop.call_later(definition.timeout, self._cut, ctx)
        return task

    def _step_now(self, task: asyncio.Task[Any]) -> None:
        """Run a new task's first step now instead of on the next loop iteration (an eager
        start, as Python 3.12's eager tasks do). The task is a real Task, so the body sees
        itself as ``current_task()``. Only outside any running task, and only when its step
        is the last callback queued; otherwise it simply starts on the next iteration."""
        ready = self._ready_queue
        if not ready or asyncio.current_task(self._loop) is not None:
            return
        handle = ready[-1]
        if getattr(getattr(handle, "_callback", None), "__self__", None) is task:
            ready.pop()
            handle._run()

    async def _tick_then_run(self, ctx: JobContext, pending_spec: Awaitable[Any]) -> Any:
        """The tick of a job whose provider is async: read the spec, then run the body."""
        spec = await pending_spec
        job = ctx._job
        if spec is None:
            ctx._tick = _DROPPED
            return None
        if not self._apply(job, spec):
            ctx._tick = _SKIPPED
            return None
        ctx.options = spec.options
        if job.family.limit > 1 and not job.flags & (_RETRYING | _PARKED):
            self._plan(job, self._next_after(job, ctx._at), job.family.definition.catch_up)
        return await job.family.definition.run(ctx)

    def _task_done(self, task: asyncio.Task[Any], ctx: JobContext) -> None:
        """A manual run's task ended."""
        if task.cancelled():
            self._finish(ctx, None, True)
        else:
            self._finish(ctx, task.exception(), False)

    def _finish(self, ctx: JobContext, error: BaseException | None, cancelled: bool) -> None:
        """Settle a run that ended: its counters and status, then what the job does next."""
        if ctx._task is not None and self._running.get(ctx._task) is ctx:
            del self._running[ctx._task]
        job = ctx._job
        job.active -= 1
        if not ctx.manual:
            self._active -= 1
        if ctx._timer is not None:
            ctx._timer.cancel()
        duration = self._monotonic() - ctx._started
        exc: BaseException | None = None
        timed_out = False
        if cancelled:
            if not ctx._timed_out:
                status = self._materialize(job)
                status.iterations += 1  # it ran, and was cut off: it still counts as a run
                status.last_outcome = Outcome.CANCELLED
                status.last_end = self._clock.now()
                status.last_duration = duration
                if not (self._closing or job.flags & _PARKED):
                    self._settle(job, ctx, None)  # cancelled by someone else: carry on
                self._after_run(job)
                return
            timeout = job.family.definition.timeout
            exc = TimeoutError(f"{ctx.task} timed out after {timeout:g}s")
            timed_out = True
        else:
            exc = error
            if exc is None and ctx._timed_out:  # the body swallowed the cut and returned
                timeout = job.family.definition.timeout
                exc = TimeoutError(f"{ctx.task} timed out after {timeout:g}s")
                timed_out = True
            if exc is None:
                if ctx._tick is _DROPPED:
                    self._drop(job)
                    self._after_run(job)
                    return
                if ctx._tick is _SKIPPED:
                    self._after_run(job)
                    return
        if exc is None and job.status is None:
            job.runs += 1
            job.last_us = round(duration * 1e6)
            verdict: Verdict | None = None
        else:
            status = self._materialize(job)
            status.iterations += 1
            status.last_end = self._clock.now()
            status.last_duration = duration
            status.durations.append(duration)
            verdict = record_outcome(
                status,
                exc,
                clock=self._clock,
                policy=job.family.policy,
                timed_out=timed_out,
                rng=self._rng,
            )
            if exc is not None:
                log.debug("%s[%r] failed: %r", ctx.task, ctx.key, exc)
        if not (self._closing or job.flags & _DEAD):
            self._settle(job, ctx, verdict)
        self._after_run(job)
        if exc is None and self._watched:
            self._succeeded(job)  # what runs after it, and when it last succeeded

    def _tick_failed(self, job: _Job, exc: BaseException) -> None:
        """The provider raised at a tick: a failed iteration of that job."""
        status = self._materialize(job)
        status.iterations += 1
        verdict = record_outcome(
            status, exc, clock=self._clock, policy=job.family.policy, rng=self._rng
        )
        fire = job.fire
        if fire is None or job.flags & _SERVED:
            fire = self._now()
        job.fire = fire
        job.flags = (job.flags | _SERVED) & ~_FIRST
        ctx = JobContext(job.family.name, job.key, fire, job.options, self, False, job)
        ctx._retry = bool(job.flags & _RETRYING)
        self._settle(job, ctx, verdict)
        if not job.active:
            self._set_state(job, self._idle_state(job))

    def _settle(self, job: _Job, ctx: JobContext, verdict: Verdict | None) -> None:
        """Decide the job's next entry after a run (retry, circuit, or the next fire)."""
        if verdict is not None and verdict.circuit_opened:
            job.flags = (job.flags | _CIRCUIT) & ~(_RETRYING | _PENDING)
            self._invalidate(job)
            self._alert(job, verdict.exception)
            return
        if ctx.manual or job.flags & _PARKED:
            return
        if verdict is not None and verdict.retry_in is not None:
            job.flags |= _RETRYING
            self._push(job, ctx._at, self._now() + verdict.retry_in)
            return
        if ctx._retry:
            # The retry stood in for the fires it covered: resume at the first one after now.
            job.flags &= ~_RETRYING
            now = self._now()
            nxt = self._next_after(job, ctx._at)
            if nxt is not None and nxt <= now:
                _, nxt = self._advance(job, nxt, now)
            self._plan(job, nxt, "all")
        elif job.family.limit == 1:
            self._plan(job, self._next_after(job, ctx._at), job.family.definition.catch_up)

    def _after_run(self, job: _Job) -> None:
        if not job.active:
            if job.status is None:
                job.state = self._idle_state(job)
            else:
                self._set_state(job, self._idle_state(job))
        if self._waiters:
            waiters = self._waiters.pop(job, None)
            for future in waiters or ():
                _resolve(future)
        if self._closing:
            return
        flags = job.flags
        if flags & _PENDING and not flags & _PARKED and job.active < job.family.limit:
            job.flags &= ~_PENDING
            fire = job.fire
            assert fire is not None
            if self._active < self._max:
                self._launch(job, fire, self._now())
            else:
                entry = job.entry = _Entry(fire)
                entry.job = job
                job.flags |= _QUEUED
                self._waiting.append(entry)
        if self._waiting:
            self._drain()

    async def _wait_idle(self, job: _Job) -> None:
        assert self._loop is not None
        future = self._loop.create_future()
        self._waiters.setdefault(job, []).append(future)
        await future

    def _alert(self, job: _Job, exc: BaseException | None) -> None:
        self._set_state(job, State.CIRCUIT_OPEN)
        log.warning("%s[%r]: circuit open after repeated failures", job.family.name, job.key)
        callback = self._on_circuit_open
        if callback is None or self._closing:
            return
        status = self._materialize(job)
        error = exc if exc is not None else RuntimeError("circuit open")
        try:
            result = callback(job.family.name, job.key, status, error)
        except Exception:
            log.exception("%s: on_circuit_open failed", self._name)
            return
        if inspect.isawaitable(result):
            self._spawn(_maybe_await(result), f"{self._name}-alert")
