"""``@tasks.loop`` on Red's real event loops: asyncio's own and uvloop (what Red runs on Linux).

tests/test_loop.py pins the rules on virtual time; here they must hold on real timers. Every
wait is for something the body or a hook reports; ``asyncio.timeout(SAFETY)`` only bounds a
test that hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as _dt
import itertools
from typing import Any, AsyncIterator

import pytest

from taskcog.engine import tasks
from taskcog.engine.supervision import Outcome, RetryPolicy, State, TaskStatus

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])

SAFETY = 5.0  # seconds: only ever reached by a test that hangs
QUICK_RETRY = RetryPolicy(base=0.01, cap=0.02)
UTC = _dt.UTC
TIMER_SLACK = 0.003  # a timer may fire early by the loop's clock resolution (1 ms on uvloop)


class Boom(Exception):
    pass


def this_tick(job: tasks.Loop[Any]) -> _dt.datetime:
    """The tick the running iteration serves: the loop plans the next one before the body."""
    nxt = job.next_iteration
    assert nxt is not None and job.seconds is not None
    return nxt - _dt.timedelta(seconds=job.seconds)


def on_grid(ticks: list[_dt.datetime], every: float) -> bool:
    """Consecutive ticks are whole intervals apart (coalescing may skip one, never shift)."""
    for a, b in itertools.pairwise(ticks):
        steps = (b - a).total_seconds() / every
        if round(steps) < 1 or abs(steps - round(steps)) > 1e-3:
            return False
    return True


@contextlib.asynccontextmanager
async def bounded(*loops: tasks.Loop[Any]) -> AsyncIterator[None]:
    """Bound the test by SAFETY, and leave none of ``loops`` running after it."""
    try:
        async with asyncio.timeout(SAFETY):
            yield
    finally:
        for job in loops:
            job.cancel()
            task = job.get_task()
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)


async def test_count_runs_the_body_three_times_in_the_loop_task_then_ends() -> None:
    ticks: list[_dt.datetime] = []
    seen: list[tuple[int, bool]] = []
    early: list[float] = []
    ended: list[int] = []

    @tasks.loop(seconds=0.01, count=3)
    async def job() -> None:
        tick = this_tick(job)
        ticks.append(tick)
        early.append((tick - _dt.datetime.now(UTC)).total_seconds())
        seen.append((job.current_loop, asyncio.current_task() is job.get_task()))

    @job.after_loop
    async def after() -> None:
        ended.append(len(ticks))

    async with bounded(job):
        await job.start()
    assert seen == [(0, True), (1, True), (2, True)]
    assert on_grid(ticks, 0.01) and max(early) <= TIMER_SLACK
    assert ended == [3] and job.current_loop == 0 and not job.is_running()
    assert job.status.state is State.FINISHED and job.status.iterations == 3


async def test_change_interval_reschedules_the_pending_sleep_at_once() -> None:
    ticks: list[_dt.datetime] = []
    first = asyncio.get_running_loop().create_future()
    fourth = asyncio.get_running_loop().create_future()

    @tasks.loop(seconds=3600)
    async def job() -> None:
        ticks.append(this_tick(job))
        if len(ticks) == 1:
            first.set_result(None)
        elif len(ticks) == 4:
            fourth.set_result(None)

    async with bounded(job):
        job.start()
        await first  # the first run is at once; the next one is an hour away
        job.change_interval(seconds=0.01)
        assert job.seconds == 0.01
        await fourth
        job.stop()
        await job.get_task()
    assert on_grid(ticks, 0.01)  # the new interval counts from the tick that last ran
    assert job.status.state is State.STOPPED


async def test_stop_lets_the_running_iteration_finish_and_runs_no_more() -> None:
    events: list[str] = []
    inside = asyncio.Event()
    gate = asyncio.Event()

    @tasks.loop(seconds=0.01)
    async def job() -> None:
        events.append("start")
        if events.count("start") == 2:
            inside.set()
            await gate.wait()
        events.append("end")

    @job.after_loop
    async def after() -> None:
        events.append(f"after cancelled={job.is_being_cancelled()}")

    async with bounded(job):
        job.start()
        await inside.wait()
        job.stop()
        assert job.next_iteration is None
        gate.set()
        await job.get_task()
    assert events == ["start", "end", "start", "end", "after cancelled=False"]
    assert not job.get_task().cancelled() and not job.is_running()
    assert job.status.state is State.STOPPED and job.status.last_outcome is Outcome.OK


async def test_stop_during_a_long_sleep_ends_the_loop_at_once() -> None:
    ran = asyncio.Event()

    @tasks.loop(hours=1)
    async def job() -> None:
        ran.set()

    async with bounded(job):
        job.start()
        await ran.wait()
        job.stop()
        await job.get_task()  # not an hour later: SAFETY would cut it
    assert job.status.iterations == 1 and job.status.state is State.STOPPED


async def test_cancel_cancels_the_body_and_runs_after_loop() -> None:
    events: list[str] = []
    inside = asyncio.Event()

    @tasks.loop(seconds=0.01)
    async def job() -> None:
        inside.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            events.append("body cancelled")
            raise

    @job.after_loop
    async def after() -> None:
        events.append(f"after cancelled={job.is_being_cancelled()}")

    async with bounded(job):
        job.start()
        await inside.wait()
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job.get_task()
    assert events == ["body cancelled", "after cancelled=True"]
    assert not job.is_running() and not job.is_being_cancelled()
    assert job.status.state is State.STOPPED and job.status.last_outcome is Outcome.CANCELLED


async def test_a_failing_body_backs_off_and_recovers_under_supervision() -> None:
    calls = 0
    errors: list[tuple[str, bool]] = []
    recovered = asyncio.get_running_loop().create_future()

    @tasks.loop(seconds=0.01, retry_policy=QUICK_RETRY)
    async def job() -> None:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise Boom(f"boom {calls}")
        if not recovered.done():
            recovered.set_result(None)

    @job.error
    async def on_error(exc: BaseException) -> None:
        errors.append((str(exc), job.failed()))

    async with bounded(job):
        job.start()
        await recovered
        assert job.is_running() and not job.failed()
        job.stop()
        await job.get_task()
    assert errors == [("boom 1", True), ("boom 2", True)]
    status = job.status
    assert status.total_failures == 2 and status.consecutive_failures == 0
    assert status.last_outcome is Outcome.OK
    assert status.last_error is not None and status.last_error.message == "boom 2"


async def test_the_circuit_opens_parks_the_loop_and_start_resumes_it() -> None:
    healthy = False
    opened = asyncio.get_running_loop().create_future()
    recovered = asyncio.get_running_loop().create_future()

    async def on_circuit_open(loop: tasks.Loop[Any], status: TaskStatus, exc: Exception) -> None:
        await asyncio.sleep(0)  # may be async
        opened.set_result((status.consecutive_failures, str(exc)))

    @tasks.loop(
        seconds=0.01,
        failure_threshold=3,
        retry_policy=QUICK_RETRY,
        on_circuit_open=on_circuit_open,
    )
    async def job() -> None:
        if not healthy:
            raise Boom("down")
        if not recovered.done():
            recovered.set_result(None)

    @job.error
    async def quiet(exc: BaseException) -> None:
        pass

    async with bounded(job):
        job.start()
        assert await opened == (3, "down")
        assert job.is_running() and job.failed()
        assert job.status.state is State.CIRCUIT_OPEN and job.next_iteration is None
        healthy = True
        job.start()  # closes the circuit and resumes the same task
        await recovered
        assert not job.failed()
        job.stop()
        await job.get_task()
    assert job.status.restarts == 1 and job.status.total_failures == 3


async def test_asyncio_timeout_inside_the_body_fires_there_and_the_iteration_is_ok() -> None:
    loop = asyncio.get_running_loop()
    caught: list[float] = []
    errors: list[BaseException] = []

    @tasks.loop(seconds=0.01, count=3)
    async def job() -> None:
        began = loop.time()
        try:
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        except TimeoutError:
            caught.append(loop.time() - began)

    @job.error
    async def on_error(exc: BaseException) -> None:
        errors.append(exc)

    async with bounded(job):
        await job.start()
    assert len(caught) == 3 and all(0.01 - TIMER_SLACK <= t < 0.5 for t in caught)
    assert errors == [] and job.status.total_failures == 0
    assert job.status.last_outcome is Outcome.OK and job.status.iterations == 3


async def test_the_loop_timeout_cuts_a_hanging_body_and_retries_the_tick() -> None:
    loop = asyncio.get_running_loop()
    cut: list[float] = []
    errors: list[tuple[str, Outcome | None]] = []

    @tasks.loop(seconds=0.01, count=1, timeout=0.02, retry_policy=QUICK_RETRY)
    async def job() -> None:
        if not cut:
            began = loop.time()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cut.append(loop.time() - began)
                raise

    @job.error
    async def on_error(exc: BaseException) -> None:
        errors.append((type(exc).__name__, job.status.last_outcome))

    async with bounded(job):
        await job.start()  # count=1: it ends once the retried tick succeeds
    assert len(cut) == 1 and 0.02 - TIMER_SLACK <= cut[0] < 0.5
    assert errors == [("TimeoutError", Outcome.TIMEOUT)]
    assert job.status.total_failures == 1 and job.status.last_outcome is Outcome.OK
    assert job.status.iterations == 2 and job.status.state is State.FINISHED
