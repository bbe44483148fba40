"""The supervisor on Red's real event loops: asyncio's own and uvloop (what Red runs on Linux).

tests/test_supervisor.py pins the rules on virtual time; here they must hold on real timers.
Every wait is for something a job body reports (an event, a count reached); short intervals are
only what makes fires happen, and ``asyncio.timeout(SAFETY)`` only bounds a test that hangs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as _dt
import itertools
from collections import Counter, defaultdict
from typing import Any, AsyncIterator, Awaitable, Callable, Hashable, Iterable

import pytest

from taskcog.engine.schedules import IntervalSchedule
from taskcog.engine.supervision import Outcome, RetryPolicy, State
from taskcog.engine.supervisor import JobContext, JobSpec, Supervisor, TaskDefinition

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])

SAFETY = 5.0  # seconds: only ever reached by a test that hangs
QUICK_RETRY = RetryPolicy(base=0.01, cap=0.02, failure_threshold=1000)
TIMER_SLACK = 0.003  # a timer may fire early by the loop's clock resolution (1 ms on uvloop)
UTC = _dt.UTC


class Boom(Exception):
    pass


class Runs:
    """Runs of each key as bodies report them, and futures a test awaits until enough ran."""

    def __init__(self) -> None:
        self.count: Counter[Hashable] = Counter()
        self.fires: defaultdict[Hashable, list[_dt.datetime]] = defaultdict(list)
        self._waiting: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def add(self, ctx: JobContext) -> None:
        self.count[ctx.key] += 1
        self.fires[ctx.key].append(ctx.scheduled_for)
        for check, future in self._waiting:
            if not future.done() and check():
                future.set_result(None)

    async def until(self, check: Callable[[], bool]) -> None:
        if check():
            return
        entry = (check, asyncio.get_running_loop().create_future())
        self._waiting.append(entry)
        try:
            await entry[1]
        finally:
            self._waiting.remove(entry)

    async def at_least(self, runs: int, keys: Iterable[Hashable]) -> None:
        """Until each of ``keys`` has run ``runs`` times in all."""
        keys = list(keys)
        await self.until(lambda: all(self.count[k] >= runs for k in keys))

    async def more(self, runs: int, keys: Iterable[Hashable]) -> None:
        """Until each of ``keys`` has run ``runs`` more times than now."""
        keys = list(keys)
        target = {k: self.count[k] + runs for k in keys}
        await self.until(lambda: all(self.count[k] >= target[k] for k in keys))


def family(
    run: Callable[[JobContext], Awaitable[Any]],
    keys: Iterable[Hashable],
    every: float = 0.02,
    name: str = "job",
    **options: Any,
) -> TaskDefinition:
    spec = JobSpec(True, IntervalSchedule(every))
    keys = list(keys)
    return TaskDefinition(name, run, provider=lambda key: spec, keys=lambda: keys, **options)


@contextlib.asynccontextmanager
async def running(*definitions: TaskDefinition, **options: Any) -> AsyncIterator[Supervisor]:
    """A started supervisor with ``definitions``, shut down (cutting off what runs) after."""
    options.setdefault("policy", QUICK_RETRY)
    sup = Supervisor(**options)
    for definition in definitions:
        sup.add(definition)
    await sup.start()
    try:
        async with asyncio.timeout(SAFETY):
            yield sup
    finally:
        await sup.shutdown(timeout=0)
    assert asyncio.all_tasks() == {asyncio.current_task()}  # nothing left behind


def on_grid(fires: list[_dt.datetime], every: float) -> bool:
    """Consecutive fires are whole intervals apart (coalescing may skip one, never shift)."""
    for a, b in itertools.pairwise(fires):
        steps = (b - a).total_seconds() / every
        if round(steps) < 1 or abs(steps - round(steps)) > 1e-3:
            return False
    return True


def stuck(sup: Supervisor, key: Hashable, task: str = "job") -> bool:
    status = sup.get_status(task, key)
    return status is not None and status.state is State.RUNNING


# ---------------------------------------------------------------------- scheduled runs


async def test_many_keys_fire_repeatedly_on_their_grid_each_with_a_current_task() -> None:
    keys = range(200)
    every = 0.05
    runs = Runs()
    problems: list[str] = []

    async def body(ctx: JobContext) -> None:
        me = asyncio.current_task()
        if me is None:
            problems.append(f"{ctx.key}: no current task")
            return
        now = _dt.datetime.now(UTC)
        if ctx.scheduled_for > now:
            problems.append(f"{ctx.key}: ran {ctx.scheduled_for - now} early")
        if ctx.key % 2:  # half of them suspend: both the eager and the stepped path
            await asyncio.sleep(0)
            if asyncio.current_task() is not me:
                problems.append(f"{ctx.key}: another current task after suspending")
        runs.add(ctx)

    started = _dt.datetime.now(UTC)
    async with running(family(body, keys, every=every)) as sup:
        await runs.at_least(3, keys)
        lateness = sup.lateness()
    assert problems == []
    for key in keys:
        fires = runs.fires[key]
        assert started <= fires[0] <= started + _dt.timedelta(seconds=every + 0.5)  # spread
        assert on_grid(fires, every), (key, fires)
        assert sup.get_status("job", key).last_outcome is Outcome.OK
    assert lateness["p50"] is not None and lateness["p50"] < 0.05


# ---------------------------------------------------------------------- timeouts


async def test_asyncio_timeout_inside_a_body_fires_there_and_the_run_is_ok() -> None:
    runs = Runs()
    caught: list[float] = []

    async def body(ctx: JobContext) -> None:
        if ctx.key == "caught":
            loop = asyncio.get_running_loop()
            began = loop.time()
            try:
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(1)
            except TimeoutError:
                caught.append(loop.time() - began)
        elif ctx.key == "escaped":
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)
        runs.add(ctx)

    keys = ["caught", "escaped", 1, 2, 3]
    async with running(family(body, keys, spread=False)) as sup:
        await runs.at_least(3, ["caught", 1, 2, 3])
        await runs.until(lambda: sup.get_status("job", "escaped").transient_errors >= 2)
        caught_status = sup.get_status("job", "caught")
        escaped = sup.get_status("job", "escaped")
    assert len(caught) >= 3 and all(0.01 - TIMER_SLACK <= t < 0.5 for t in caught)
    assert caught_status.last_outcome is Outcome.OK and caught_status.total_failures == 0
    # Its own timeout escaping a body is an error of that body, not the supervisor's cut.
    assert escaped.last_error is not None and escaped.last_error.type == "TimeoutError"
    assert escaped.last_error.outcome is Outcome.TRANSIENT and escaped.total_failures == 0
    assert runs.count["escaped"] == 0


async def test_the_definition_timeout_cuts_a_hanging_body_and_the_job_runs_again() -> None:
    runs = Runs()
    cut: list[float] = []
    seen_by_retry: list[tuple[Outcome | None, int]] = []

    async def body(ctx: JobContext) -> None:
        if ctx.key == "hang":
            if not cut:
                loop = asyncio.get_running_loop()
                began = loop.time()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    cut.append(loop.time() - began)
                    raise
            else:
                status = ctx.status
                seen_by_retry.append((status.last_outcome, status.consecutive_failures))
        runs.add(ctx)

    async with running(family(body, ["hang", "ok"], spread=False, timeout=0.05)) as sup:
        await runs.at_least(2, ["hang"])
        ok_runs_while_hanging = runs.count["ok"]
        hang = sup.get_status("job", "hang")
    assert len(cut) == 1 and 0.05 - TIMER_SLACK <= cut[0] < 1.0
    assert seen_by_retry[0] == (Outcome.TIMEOUT, 1)  # the retry saw the cut in the status
    assert hang.total_failures == 1 and hang.consecutive_failures == 0
    assert hang.last_error is not None and hang.last_error.outcome is Outcome.TIMEOUT
    assert hang.last_error.message == "job timed out after 0.05s"
    assert hang.last_outcome is Outcome.OK
    assert ok_runs_while_hanging >= 2  # 0.02 s interval over the 0.05 s hang


# ---------------------------------------------------------------------- control


async def test_stop_job_cancels_the_running_body_and_start_job_resumes_it() -> None:
    runs = Runs()
    inside = asyncio.Event()
    cancelled = asyncio.Event()

    async def body(ctx: JobContext) -> None:
        runs.add(ctx)
        if ctx.key == "target" and runs.count["target"] == 1:
            inside.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

    async with running(family(body, ["target", "clock"], spread=False)) as sup:
        await inside.wait()
        sup.stop_job("job", "target")
        await cancelled.wait()
        await runs.more(10, ["clock"])  # ten fires of 0.02 s: the target would have run
        assert runs.count["target"] == 1
        status = sup.get_status("job", "target")
        assert status.state is State.STOPPED and status.last_outcome is Outcome.CANCELLED
        sup.start_job("job", "target")
        await runs.at_least(3, ["target"])
        status = sup.get_status("job", "target")
    assert status.last_outcome is Outcome.OK and status.total_failures == 0


async def test_run_now_pause_and_resume_on_a_real_loop() -> None:
    runs = Runs()

    async def body(ctx: JobContext) -> None:
        runs.add(ctx)

    hourly = family(body, [1], every=3600, name="hourly")  # spread: no fire within the test
    often = family(body, ["a", "b"], spread=False, name="often")
    async with running(hourly, often) as sup:
        status = await sup.run_now("hourly", 1)
        assert status.iterations == 1 and status.last_outcome is Outcome.OK
        assert runs.count[1] == 1
        await runs.at_least(2, ["a", "b"])
        sup.pause("often", "a")
        await runs.more(5, ["b"])
        paused_at = runs.count["a"]
        await runs.more(5, ["b"])
        assert runs.count["a"] == paused_at and sup.is_paused("often", "a")
        sup.resume("often", "a")
        await runs.more(2, ["a"])
    assert runs.count[1] == 1


# ---------------------------------------------------------------------- isolation


async def test_a_raising_key_never_affects_the_other_keys() -> None:
    runs = Runs()
    good = list(range(10))

    async def body(ctx: JobContext) -> None:
        if ctx.key == "raises at once":
            raise Boom("at once")
        if ctx.key == "raises later":
            await asyncio.sleep(0)
            raise Boom("later")
        runs.add(ctx)

    keys = ["raises at once", "raises later", *good]
    async with running(family(body, keys, spread=False)) as sup:

        def failed_thrice() -> bool:
            statuses = [sup.get_status("job", key) for key in keys[:2]]
            return all(s is not None and s.total_failures >= 3 for s in statuses)

        await runs.until(failed_thrice)
        await runs.more(5, good)
        statuses = {key: sup.get_status("job", key) for key in keys}
    for key, message in (("raises at once", "at once"), ("raises later", "later")):
        status = statuses[key]
        assert status.last_error is not None and status.last_error.type == "Boom"
        assert status.last_error.message == message
        assert status.last_error.outcome is Outcome.ERROR
        assert status.total_failures >= 3 and status.consecutive_failures >= 3
    for key in good:
        status = statuses[key]
        assert status.total_failures == 0 and status.last_error is None
        assert status.last_outcome is Outcome.OK
        assert on_grid(runs.fires[key], 0.02), runs.fires[key]


async def test_a_stuck_body_never_delays_the_other_jobs() -> None:
    runs = Runs()
    release = asyncio.Event()
    stuck_inside = asyncio.Event()
    late: list[float] = []

    async def body(ctx: JobContext) -> None:
        if ctx.key == "slow":
            stuck_inside.set()
            await release.wait()
        else:
            late.append((_dt.datetime.now(UTC) - ctx.scheduled_for).total_seconds())
        runs.add(ctx)

    fast = list(range(5))
    async with running(family(body, ["slow", *fast], spread=False)) as sup:
        await stuck_inside.wait()
        await runs.more(10, fast)
        assert stuck(sup, "slow") and runs.count["slow"] == 0  # still in its first run
        release.set()
        await runs.at_least(2, ["slow"])  # the fires it missed: one catch-up, then its grid
    assert max(late) < 0.25 and sorted(late)[len(late) // 2] < 0.05
    for key in fast:
        assert on_grid(runs.fires[key], 0.02), runs.fires[key]


async def test_a_context_variable_set_by_one_body_never_reaches_another() -> None:
    var: contextvars.ContextVar[Hashable] = contextvars.ContextVar("var", default=None)
    runs = Runs()
    seen: list[tuple[Hashable, Hashable, Hashable]] = []

    async def body(ctx: JobContext) -> None:
        before = var.get()
        var.set(ctx.key)
        await asyncio.sleep(0)  # the others of the same wake-up run meanwhile
        seen.append((ctx.key, before, var.get()))
        runs.add(ctx)

    async def quick(ctx: JobContext) -> None:  # sets it without ever suspending
        seen.append((ctx.key, var.get(), None))
        var.set(ctx.key)
        runs.add(ctx)

    keys = ["a", "b", "c"]
    async with running(
        family(quick, ["quick"], spread=False, name="quick"),
        family(body, keys, spread=False),
    ):
        await runs.at_least(3, [*keys, "quick"])
    assert var.get() is None
    assert len(seen) >= 12
    assert all(before is None for _, before, _ in seen), seen
    assert all(after == key for key, _, after in seen if key != "quick"), seen


async def test_run_now_from_a_body_leaks_no_context_variable_into_scheduled_runs() -> None:
    var: contextvars.ContextVar[str | None] = contextvars.ContextVar("var", default=None)
    runs = Runs()
    manual: list[tuple[_dt.datetime, _dt.datetime]] = []
    scheduled: list[tuple[_dt.datetime, str | None]] = []

    async def caller(ctx: JobContext) -> None:
        var.set("set by the caller's body")
        await ctx.supervisor.run_now("often", None)

    async def often(ctx: JobContext) -> None:
        if ctx.manual:
            began = _dt.datetime.now(UTC)
            await asyncio.sleep(0.06)  # its work: fires of 0.02 s come due meanwhile
            manual.append((began, _dt.datetime.now(UTC)))
            return
        scheduled.append((ctx.scheduled_for, var.get()))
        runs.add(ctx)

    async with running(
        family(caller, [None], every=3600, name="caller"),
        family(often, [None], name="often"),
    ):
        await runs.until(lambda: bool(manual))  # checked at each scheduled run
        await runs.more(2, [None])
    ((began, ended),) = manual
    assert any(began < fire < ended for fire, _ in scheduled)  # one waited for the manual run
    assert [value for _, value in scheduled if value is not None] == []


# ---------------------------------------------------------------------- circuit and shutdown


async def test_the_circuit_opens_alerts_and_restart_runs_the_job_again() -> None:
    runs = Runs()
    alerted: asyncio.Future[tuple[str, Hashable, str]] = asyncio.Future()
    healthy = False

    async def body(ctx: JobContext) -> None:
        if not healthy:
            raise Boom("down")
        runs.add(ctx)

    async def on_circuit_open(task: str, key: Hashable, status: Any, exc: BaseException) -> None:
        await asyncio.sleep(0)  # an async callback runs as the supervisor's own task
        alerted.set_result((task, key, str(exc)))

    policy = RetryPolicy(base=0.01, cap=0.02, failure_threshold=3)
    async with running(
        family(body, ["flaky"], spread=False), policy=policy, on_circuit_open=on_circuit_open
    ) as sup:
        assert await alerted == ("job", "flaky", "down")
        status = sup.get_status("job", "flaky")
        assert status.state is State.CIRCUIT_OPEN and status.consecutive_failures == 3
        healthy = True
        sup.restart("job", "flaky")
        await runs.at_least(2, ["flaky"])
        status = sup.get_status("job", "flaky")
    assert status.restarts == 1 and status.consecutive_failures == 0
    assert status.total_failures == 3 and status.last_outcome is Outcome.OK


async def test_shutdown_waits_for_a_running_body_and_reports_the_cut_off_one() -> None:
    started = {"short": asyncio.Event(), "long": asyncio.Event()}
    ended: list[str] = []

    async def body(ctx: JobContext) -> None:
        started[ctx.key].set()
        try:
            await asyncio.sleep(0.05 if ctx.key == "short" else 60)
        except asyncio.CancelledError:
            ended.append(f"{ctx.key} cancelled")
            raise
        ended.append(f"{ctx.key} finished")

    sup = Supervisor(policy=QUICK_RETRY)
    sup.add(family(body, ["short", "long"], every=3600, spread=False))
    async with asyncio.timeout(SAFETY):
        await sup.start()
        await started["short"].wait()
        await started["long"].wait()
        report = await sup.shutdown(timeout=0.2)
    assert report.finished == [("job", "short")]
    assert report.cut_off == [("job", "long")]
    assert 0.2 - TIMER_SLACK <= report.duration < 1.0
    assert ended == ["short finished", "long cancelled"]
    assert not sup.running
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert sup.get_status("job", "short").last_outcome is Outcome.OK
    assert sup.get_status("job", "long").last_outcome is Outcome.CANCELLED


# ---------------------------------------------------------------------- runners


async def test_a_body_that_cancels_its_own_task_and_returns_never_cancels_the_next_body() -> None:
    """Bodies due together share a runner; a cancel a body asks for and never awaits ends that
    run as cancelled (as a Task of its own would) and does not reach the next body."""
    runs = Runs()

    async def body(ctx: JobContext) -> None:
        if ctx.key == 0:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
            return  # never suspends: the cancel is never delivered to this body
        await asyncio.sleep(0)  # the next body suspends: a leaked cancel would land here
        runs.add(ctx)

    async with running(family(body, [0, 1], every=0.05, spread=False)) as sup:
        await runs.at_least(2, [1])
        assert sup.get_status("job", 0).last_outcome is Outcome.CANCELLED
        assert sup.get_status("job", 1).last_outcome is Outcome.OK
        assert sup.get_status("job", 1).consecutive_failures == 0


async def test_a_queued_run_of_a_stopped_job_is_dropped_without_running() -> None:
    """stop_job from one body drops the other job's run queued behind it in the same batch."""
    ran: list[Hashable] = []
    stopped = asyncio.Event()

    async def body(ctx: JobContext) -> None:
        ran.append(ctx.key)
        if ctx.key == 0 and not stopped.is_set():
            ctx.supervisor.stop_job("job", 1)  # type: ignore[attr-defined]
            stopped.set()

    async with running(family(body, [0, 1], every=0.05, spread=False)) as sup:
        await stopped.wait()
        await asyncio.sleep(0)
        assert 1 not in ran
        assert sup.get_status("job", 1).last_outcome is Outcome.CANCELLED
