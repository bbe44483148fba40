"""Job families on virtual time: every wait below is a virtual-clock jump, never a real sleep."""

from __future__ import annotations

import asyncio
import datetime as _dt
import itertools
import random
from collections import Counter
from typing import Any, Hashable

import pytest

from taskcog.engine.schedules import DailySchedule, IntervalSchedule
from taskcog.engine.supervision import Outcome, RetryPolicy, State
from taskcog.engine.supervisor import (
    JobContext,
    JobSpec,
    Supervisor,
    TaskDefinition,
)
from taskcog.engine.testing import DEFAULT_EPOCH, VirtualClock, VirtualTimeLoop, run_virtual

EPOCH = DEFAULT_EPOCH


def vt() -> float:
    """Virtual seconds since the epoch of the running VirtualTimeLoop."""
    return asyncio.get_running_loop().time()


def at(seconds: float) -> _dt.datetime:
    return EPOCH + _dt.timedelta(seconds=seconds)


class Boom(Exception):
    pass


class Family:
    """A task definition whose per-key specs a test can change, and a log of its runs."""

    def __init__(
        self,
        name: str = "job",
        keys: list[Hashable] | None = None,
        every: float = 60.0,
        body: Any = None,
        async_provider: bool = False,
        **options: Any,
    ) -> None:
        self.keys = list(keys) if keys is not None else [1, 2, 3]
        self.specs: dict[Hashable, JobSpec | None] = {
            k: JobSpec(True, IntervalSchedule(every)) for k in self.keys
        }
        self.runs: list[tuple[Hashable, float, _dt.datetime, bool]] = []
        self.running: Counter[Hashable] = Counter()
        self.max_running: Counter[Hashable] = Counter()
        self.body = body
        self.async_provider = async_provider
        self.definition = TaskDefinition(
            name=name,
            run=self.run,
            provider=self.provider,
            keys=lambda: list(self.keys),
            **options,
        )

    def provider(self, key: Hashable) -> Any:
        spec = self.specs.get(key)
        if self.async_provider:

            async def later() -> JobSpec | None:
                await asyncio.sleep(0)
                return spec

            return later()
        return spec

    async def run(self, ctx: JobContext) -> None:
        self.runs.append((ctx.key, vt(), ctx.scheduled_for, ctx.manual))
        self.running[ctx.key] += 1
        self.max_running[ctx.key] = max(self.max_running[ctx.key], self.running[ctx.key])
        try:
            if self.body is not None:
                await self.body(ctx)
        finally:
            self.running[ctx.key] -= 1

    def times(self, key: Hashable, manual: bool = False) -> list[float]:
        """Virtual start times, to the microsecond (the resolution of the wall clock)."""
        return [round(t, 6) for k, t, _, m in self.runs if k == key and m == manual]

    def set(self, key: Hashable, enabled: bool = True, every: float = 60.0, **opts: Any) -> None:
        self.specs[key] = JobSpec(enabled, IntervalSchedule(every), opts)


def make(**kwargs: Any) -> Supervisor:
    kwargs.setdefault("clock", VirtualClock())
    kwargs.setdefault("rng", random.Random(1))
    return Supervisor(**kwargs)


def test_interval_jobs_fire_on_their_grid_with_first_fires_spread() -> None:
    fam = Family(keys=list(range(6)))

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(600)
        await sup.shutdown()

    run_virtual(scenario)
    firsts = sorted(fam.times(k)[0] for k in range(6))
    assert all(0 <= t < 60 for t in firsts)
    assert min(b - a for a, b in itertools.pairwise(firsts)) > 3  # consecutive ids spread evenly
    for key in range(6):
        times = fam.times(key)
        assert len(times) == 10
        assert all(abs((b - a) - 60) < 1e-6 for a, b in itertools.pairwise(times))
        for _, t, scheduled, _ in (r for r in fam.runs if r[0] == key):
            assert abs((at(t) - scheduled).total_seconds()) < 2e-6


def test_global_job_fires_at_once_and_spread_can_be_turned_off() -> None:
    glob = Family("global", keys=[None])
    flat = Family("flat", keys=[1, 2], spread=False)

    async def scenario() -> None:
        sup = make()
        sup.add(glob.definition)
        sup.add(flat.definition)
        await sup.start()
        await asyncio.sleep(1)
        await sup.shutdown()

    run_virtual(scenario)
    assert glob.times(None) == [0.0]
    assert flat.times(1) == [0.0] and flat.times(2) == [0.0]


def test_provider_changes_apply_at_the_next_tick() -> None:
    seen: list[tuple[float, Any]] = []

    async def body(ctx: JobContext) -> None:
        seen.append((vt(), ctx.options.get("colour")))

    fam = Family(keys=[None], body=body)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(30)
        fam.set(None, every=10, colour="red")  # no refresh: the tick at 60 picks it up
        await asyncio.sleep(55)
        await sup.shutdown()

    run_virtual(scenario)
    assert seen == [(0, None), (60, "red"), (70, "red"), (80, "red")]


def test_refresh_applies_a_new_schedule_at_once() -> None:
    fam = Family(keys=[None], every=3600)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(100)
        fam.set(None, every=10)
        await sup.refresh("job", None)
        await asyncio.sleep(25)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(None) == [0, 100, 110, 120]


def test_disabled_job_is_stopped_until_refresh_and_disabling_parks_it_at_the_tick() -> None:
    fam = Family(keys=[1, 2], spread=False)
    fam.set(2, enabled=False)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(200)
        assert sup.get_status("job", 2).state is State.STOPPED
        assert fam.times(2) == []
        fam.set(1, enabled=False)  # applied at job 1's next tick (240)
        fam.set(2, enabled=True)
        await sup.refresh("job", 2)
        await asyncio.sleep(100)
        assert sup.get_status("job", 1).state is State.STOPPED
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(1) == [0, 60, 120, 180]
    assert fam.times(2) == [200, 260]


def test_async_provider_is_read_at_each_tick() -> None:
    fam = Family(keys=[1], spread=False, async_provider=True)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(90)
        fam.set(1, enabled=False)
        await asyncio.sleep(100)
        assert sup.get_status("job", 1).state is State.STOPPED
        fam.specs[1] = None  # provider: no job for this key any more
        await sup.refresh("job", 1)
        assert sup.get_status("job", 1) is None
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(1) == [0, 60]


def test_same_job_never_runs_twice_at_once_even_with_run_now() -> None:
    async def slow(ctx: JobContext) -> None:
        await asyncio.sleep(150)

    fam = Family(keys=[1], spread=False, body=slow, catch_up="skip")

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(10)
        status = await sup.run_now("job", 1)  # waits for the run that started at 0
        assert vt() == 300
        assert status.iterations == 2
        await asyncio.sleep(400)
        await sup.shutdown(timeout=0)

    run_virtual(scenario)
    assert fam.max_running[1] == 1
    assert fam.times(1, manual=True) == [150]


def test_overlap_allows_concurrent_runs_up_to_the_limit() -> None:
    async def slow(ctx: JobContext) -> None:
        await asyncio.sleep(150)

    fam = Family(keys=[1], spread=False, body=slow, overlap=2)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(400)
        await sup.shutdown(timeout=0)

    run_virtual(scenario)
    assert fam.max_running[1] == 2
    # 0 and 60 overlap; 120 finds both slots busy and starts when the first ends (150).
    assert fam.times(1)[:3] == [0, 60, 150]


def test_failing_key_backs_off_alone_and_others_stay_on_time() -> None:
    async def body(ctx: JobContext) -> None:
        if ctx.key == "bad":
            raise Boom("always")
        await asyncio.sleep(0.25)

    fam = Family(keys=["bad", 1, 2, 3, 4], body=body)
    policy = RetryPolicy(base=1.0, cap=30.0, failure_threshold=10_000)

    async def scenario() -> None:
        sup = make(policy=policy)
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(3600)
        bad = sup.get_status("job", "bad")
        assert bad.consecutive_failures > 100 and bad.last_outcome is Outcome.ERROR
        assert bad.last_error is not None and bad.last_error.message == "always"
        for key in (1, 2, 3, 4):
            status = sup.get_status("job", key)
            assert status.consecutive_failures == 0 and status.iterations >= 59
        await sup.shutdown()

    run_virtual(scenario)
    for key in (1, 2, 3, 4):
        for _, t, scheduled, _ in (r for r in fam.runs if r[0] == key):
            assert abs((at(t) - scheduled).total_seconds()) <= 1e-6
    assert len(fam.times("bad")) > 100


def test_circuit_opens_alerts_once_and_restart_recovers() -> None:
    alerts: list[tuple[str, Hashable, int, str]] = []
    healthy = False

    async def body(ctx: JobContext) -> None:
        if not healthy:
            raise Boom("down")

    async def on_open(task: str, key: Hashable, status: Any, exc: BaseException) -> None:
        alerts.append((task, key, status.consecutive_failures, str(exc)))

    fam = Family(keys=[7], body=body, spread=False)

    async def scenario() -> None:
        nonlocal healthy
        sup = make(policy=RetryPolicy(base=1, cap=4, failure_threshold=3), on_circuit_open=on_open)
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(3600)
        status = sup.get_status("job", 7)
        assert status.state is State.CIRCUIT_OPEN and status.next_run is None
        assert len(fam.times(7)) == 3  # then parked: no more runs for an hour
        healthy = True
        sup.restart("job", 7)
        await asyncio.sleep(130)
        status = sup.get_status("job", 7)
        assert status.state is State.SLEEPING and status.restarts == 1
        assert status.consecutive_failures == 0 and status.last_outcome is Outcome.OK
        await sup.shutdown()

    run_virtual(scenario)
    assert alerts == [("job", 7, 3, "down")]
    times = fam.times(7)
    assert times[0] == 0 and times[1] <= 1 and times[2] <= times[1] + 2
    assert times[3:] == [3600, 3660, 3720]


def test_circuit_closes_with_start_job_too() -> None:
    async def fail(ctx: JobContext) -> None:
        raise Boom()

    fam = Family(keys=[1], spread=False, body=fail)

    async def scenario() -> None:
        sup = make(policy=RetryPolicy(base=1, cap=1, failure_threshold=2))
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(100)
        assert sup.get_status("job", 1).state is State.CIRCUIT_OPEN
        sup.start_job("job", 1)
        await asyncio.sleep(0.5)
        assert fam.times(1)[2] == 100
        await sup.shutdown()

    run_virtual(scenario)


def test_concurrency_is_bounded_and_queued_jobs_run_in_order() -> None:
    active = 0
    peak = 0

    async def body(ctx: JobContext) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(10)
        active -= 1

    fam = Family(keys=list(range(6)), body=body, spread=False)

    async def scenario() -> None:
        sup = make(max_concurrency=2)
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(35)
        late = sup.lateness()
        assert late["max"] == 20  # the last pair waited two runs for a slot
        await sup.shutdown()

    run_virtual(scenario)
    assert peak == 2
    assert sorted(t for _, t, _, _ in fam.runs) == [0, 0, 10, 10, 20, 20]
    assert [k for k, _, _, _ in fam.runs] == list(range(6))


def test_run_now_runs_a_disabled_job_and_leaves_its_schedule_alone() -> None:
    fam = Family(keys=[1, 2], spread=False)
    fam.set(2, enabled=False)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(30)
        status = await sup.run_now("job", 2)
        assert status.iterations == 1 and status.state is State.STOPPED
        status = await sup.run_now("job", 1)
        assert status.iterations == 2
        with pytest.raises(KeyError):
            await sup.run_now("job", 99)
        await asyncio.sleep(100)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(2, manual=True) == [30] and fam.times(2) == []
    assert fam.times(1) == [0, 60, 120] and fam.times(1, manual=True) == [30]


def test_pause_and_resume_per_key_and_per_task() -> None:
    fam = Family(keys=[1, 2], spread=False, catch_up="skip")

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(30)
        sup.pause("job", 1)
        assert sup.is_paused("job", 1) and sup.get_status("job", 1).state is State.STOPPED
        await asyncio.sleep(100)  # t=130
        sup.resume("job", 1)  # its fires at 60 and 120 were missed long ago: skipped
        await asyncio.sleep(60)  # t=190
        sup.pause("job")
        fam.set(3)
        fam.keys.append(3)
        await sup.add_key(3)
        await asyncio.sleep(200)  # t=390
        assert fam.times(3) == []  # keys added to a paused task start paused
        sup.resume("job")
        await asyncio.sleep(31)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(1) == [0, 180, 420]
    assert fam.times(2) == [0, 60, 120, 180, 420]
    assert fam.times(3) == [390]


def test_stop_job_cancels_now_and_start_job_runs_at_once() -> None:
    outcomes: list[str] = []

    async def body(ctx: JobContext) -> None:
        try:
            await asyncio.sleep(50)
            outcomes.append("done")
        except asyncio.CancelledError:
            outcomes.append("cancelled")
            raise

    fam = Family(keys=[1], spread=False, body=body)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(10)
        sup.stop_job("job", 1)
        await asyncio.sleep(0)
        status = sup.get_status("job", 1)
        assert status.state is State.STOPPED and status.next_run is None
        await asyncio.sleep(500)
        assert fam.times(1) == [0]
        sup.start_job("job", 1)
        await asyncio.sleep(200)
        await sup.shutdown(timeout=60)  # the run from 690 finishes at 740

    run_virtual(scenario)
    assert outcomes == ["cancelled", "done", "done", "done", "done"]
    assert fam.times(1) == [0, 510, 570, 630, 690]


def test_add_key_and_remove_key_follow_guild_join_and_leave() -> None:
    fam = Family(keys=[1], spread=False)
    glob = Family("global", keys=[None])

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        sup.add(glob.definition)
        await sup.start()
        await asyncio.sleep(30)
        fam.set(2)
        await sup.add_key(2)
        assert sup.job_count("job") == 2 and sup.job_count("global") == 1
        await asyncio.sleep(60.5)
        await sup.remove_key(1)
        assert sup.get_status("job", 1) is None
        await asyncio.sleep(60)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(1) == [0, 60]
    assert fam.times(2) == [30, 90, 150]


def test_sync_keys_adds_and_drops_jobs() -> None:
    fam = Family(keys=[1, 2], spread=False)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(10)
        fam.keys = [2, 3]
        fam.set(3)
        await sup.sync_keys()
        assert {s.key for s in sup.status("job")} == {2, 3}
        await asyncio.sleep(1)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(3) == [10]


def test_remove_and_remove_owner_cancel_their_jobs() -> None:
    cancelled: list[str] = []

    def family(name: str, owner: str | None) -> Family:
        async def body(ctx: JobContext) -> None:
            try:
                await asyncio.sleep(100)
            except asyncio.CancelledError:
                cancelled.append(ctx.task)
                raise

        return Family(name, keys=[1], body=body, owner=owner, spread=False)

    a, b, c = family("a", "Stats"), family("b", "Stats"), family("c", None)

    async def scenario() -> None:
        sup = make()
        for fam in (a, b, c):
            sup.add(fam.definition)
        with pytest.raises(ValueError):
            sup.add(a.definition)
        await sup.start()
        await asyncio.sleep(30)
        assert sorted(sup.remove_owner("Stats")) == ["a", "b"]
        sup.remove("c")
        await asyncio.sleep(0)
        assert sup.definitions() == {} and sup.status() == []
        assert len(asyncio.all_tasks()) == 2  # this test and the dispatcher
        await sup.shutdown()

    run_virtual(scenario)
    assert sorted(cancelled) == ["a", "b", "c"]


def test_shutdown_lets_short_jobs_finish_and_cuts_off_long_ones() -> None:
    async def body(ctx: JobContext) -> None:
        await asyncio.sleep({"short": 5, "long": 500}.get(ctx.key, 0))

    fam = Family(keys=["short", "long", "idle"], body=body, spread=False)
    fam.set("idle", every=3600)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(61)  # short runs again (60-65); long is still in its first run
        report = await sup.shutdown(timeout=10)
        assert report.finished == [("job", "short")]
        assert report.cut_off == [("job", "long")]
        assert report.duration == 10
        assert not sup.running
        assert asyncio.all_tasks() == {asyncio.current_task()}
        assert sup.get_status("job", "long").last_outcome is Outcome.CANCELLED

    run_virtual(scenario)


def test_nothing_runs_before_ready_resolves() -> None:
    fam = Family(keys=[1, 2], spread=False)

    async def scenario() -> None:
        gate = asyncio.Event()
        sup = make(ready=gate.wait)
        sup.add(fam.definition)
        await sup.start()
        assert sup.running
        await asyncio.sleep(1000)
        assert fam.runs == [] and sup.job_count() == 0
        gate.set()
        await asyncio.sleep(1)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(1) == [1000] and fam.times(2) == [1000]


def test_ten_thousand_jobs_fire_on_time_from_one_dispatcher() -> None:
    n = 10_000
    count: Counter[int] = Counter()
    worst = 0.0

    async def body(ctx: JobContext) -> None:
        nonlocal worst
        count[ctx.key] += 1
        worst = max(worst, abs((ctx.supervisor._clock.now() - ctx.scheduled_for).total_seconds()))

    async def scenario() -> None:
        sup = make(max_concurrency=64)
        sup.add(
            TaskDefinition(
                "many",
                body,
                provider=lambda key: spec,
                keys=lambda: range(n),
            )
        )
        await sup.start()
        await asyncio.sleep(30.0000005)  # between fires (they land on whole microseconds)
        assert len(asyncio.all_tasks()) == 2  # us and the dispatcher: idle jobs are no tasks
        await asyncio.sleep(90)  # two full intervals of fires spread over 0..60
        await sup.shutdown()

    spec = JobSpec(True, IntervalSchedule(60))
    run_virtual(scenario)
    assert len(count) == n and set(count.values()) == {2}
    assert worst <= 1e-6


def test_hanging_job_is_cut_by_its_timeout_and_others_continue() -> None:
    async def body(ctx: JobContext) -> None:
        if ctx.key == "hang":
            await asyncio.Event().wait()

    fam = Family(keys=["hang", "ok"], body=body, spread=False, timeout=5)

    async def scenario() -> None:
        sup = make(policy=RetryPolicy(base=1, cap=1, failure_threshold=100))
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(5.0000005)  # just after the cut
        status = sup.get_status("job", "hang")
        assert status.last_outcome is Outcome.TIMEOUT and status.state is State.BACKOFF
        assert status.last_duration == 5 and status.consecutive_failures == 1
        await asyncio.sleep(120)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times("ok") == [0, 60, 120]


@pytest.mark.parametrize(
    "policy, expected",
    [
        ("coalesce", [0, 200, 240]),  # one catch-up run for 60, 120, 180, then the grid
        ("skip", [0, 240]),  # straight back to the grid
        ("all", [0, 200, 200, 200, 240]),  # 60, 120, 180 replayed, then 240 on time
    ],
)
def test_catch_up_policy_after_an_overrun(policy: str, expected: list[float]) -> None:
    async def body(ctx: JobContext) -> None:
        if vt() == 0:
            await asyncio.sleep(200)

    fam = Family(keys=[1], body=body, spread=False, catch_up=policy)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(250)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(1) == expected


@pytest.mark.parametrize("policy, runs", [("coalesce", 2), ("skip", 1), ("all", 4)])
def test_catch_up_policy_after_the_loop_stalls(policy: str, runs: int) -> None:
    fam = Family(keys=[1], spread=False, catch_up=policy)

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(30)
        loop.advance(200)  # a blocking call held the loop from 30 to 230
        await asyncio.sleep(5)
        await sup.shutdown()

    run_virtual(scenario)
    scheduled = [s for _, _, s, _ in fam.runs]
    assert len(fam.runs) == runs
    if policy == "coalesce":
        assert scheduled == [at(0), at(180)]  # the catch-up serves the latest missed fire


def test_daily_schedule_and_status_views() -> None:
    fam = Family(keys=[1])
    fam.specs[1] = JobSpec(True, DailySchedule([_dt.time(9, 0)]), {"x": 1})

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(0)
        status = sup.get_status("job", 1)
        assert status.state is State.SLEEPING and status.next_run == at(9 * 3600)
        await asyncio.sleep(2 * 86400)
        assert [s.key for s in sup.status()] == [1]
        assert sup.status("job", 1)[0].iterations == 2
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(1) == [9 * 3600, 33 * 3600]


# ---------------------------------------------------------------------- the cost model


def test_a_quick_body_runs_in_the_wake_up_that_fires_it() -> None:
    """One loop iteration per fire: the timer dispatches in place and a body that never
    suspends is started and settled right there (no task step or done callback later)."""
    fam = Family(keys=[None])
    iterations = 0

    async def scenario() -> None:
        nonlocal iterations
        loop = asyncio.get_running_loop()
        run_once = loop._run_once  # type: ignore[attr-defined]

        def counting() -> None:
            nonlocal iterations
            iterations += 1
            run_once()

        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(30)
        loop._run_once = counting  # type: ignore[attr-defined]
        await asyncio.sleep(600)  # ten fires
        loop._run_once = run_once  # type: ignore[attr-defined]
        assert sup.get_status("job", None).iterations == 11
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(None) == [60 * i for i in range(11)]
    assert iterations <= 10 + 2  # + this test's own wake-up (timer, then its task step)


def test_a_body_sees_itself_as_the_current_task_before_and_after_suspending() -> None:
    seen: list[tuple[str, bool, bool]] = []

    async def body(ctx: JobContext) -> None:
        me = asyncio.current_task()
        assert me is not None and me is not ctx.supervisor._dispatcher
        async with asyncio.timeout(10):  # bound to this task in the eager first step
            await asyncio.sleep(1)
        seen.append(("sleep", asyncio.current_task() is me, me.done()))
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(2):
                await asyncio.Event().wait()
        seen.append(("timeout", asyncio.current_task() is me, me.done()))

    fam = Family(keys=[None], body=body)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(70)
        status = sup.get_status("job", None)
        assert status.iterations == 2 and status.last_outcome is Outcome.OK
        assert status.last_duration == 3 and status.state is State.SLEEPING
        await sup.shutdown()

    run_virtual(scenario)
    assert seen == [("sleep", True, False), ("timeout", True, False)] * 2
    assert fam.times(None) == [0, 60]


def test_context_variables_set_by_a_body_stay_in_that_run() -> None:
    import contextvars

    var: contextvars.ContextVar[Any] = contextvars.ContextVar("var", default=None)
    seen: list[Any] = []

    async def body(ctx: JobContext) -> None:
        seen.append(var.get())
        var.set(ctx.key)
        if ctx.key == "slow":
            await asyncio.sleep(1)
            seen.append(var.get())

    fam = Family(keys=["quick", "slow", "other"], body=body, spread=False)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(61.5)
        await sup.shutdown()

    run_virtual(scenario)
    assert seen == [None, None, None, "slow"] * 2


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_body_that_raises_before_or_after_suspending_backs_off(when: str) -> None:
    async def body(ctx: JobContext) -> None:
        if when == "after":
            await asyncio.sleep(0.5)
        raise Boom(when)

    fam = Family(keys=[1], body=body, spread=False)

    async def scenario() -> None:
        sup = make(policy=RetryPolicy(base=10, cap=10, failure_threshold=100))
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(1)
        status = sup.get_status("job", 1)
        assert status.state is State.BACKOFF and status.consecutive_failures == 1
        assert status.last_error is not None and status.last_error.message == when
        assert status.next_run is not None and status.next_run <= at(11)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(1) == [0]


def test_a_run_cancelled_while_suspended_is_recorded_and_the_job_goes_on() -> None:
    async def body(ctx: JobContext) -> None:
        await asyncio.sleep(30)

    fam = Family(keys=[1], body=body, spread=False)

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(10)
        [task] = list(sup._running)
        task.cancel()
        await asyncio.wait([task])
        await asyncio.sleep(0)  # its done callback
        status = sup.get_status("job", 1)
        assert status.last_outcome is Outcome.CANCELLED and status.state is State.SLEEPING
        await asyncio.sleep(100)
        assert sup.get_status("job", 1).last_outcome is Outcome.OK
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(1) == [0, 60]


def test_a_timed_out_body_that_swallows_the_cut_still_counts_as_a_timeout() -> None:
    async def body(ctx: JobContext) -> None:
        try:
            await asyncio.sleep(100)
        except asyncio.CancelledError:
            return  # swallowed: the supervisor still knows it cut this run

    fam = Family(keys=[1], body=body, spread=False, timeout=5)

    async def scenario() -> None:
        sup = make(policy=RetryPolicy(base=1, cap=1, failure_threshold=100))
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(5.0000005)  # just after the cut
        status = sup.get_status("job", 1)
        assert status.last_outcome is Outcome.TIMEOUT and status.consecutive_failures == 1
        assert status.last_duration == 5
        await sup.shutdown()

    run_virtual(scenario)


def test_resolution_shares_wake_ups_without_running_early_or_too_late() -> None:
    from taskcog.engine.schedules import OnceSchedule

    fires = {"a": 100.0, "b": 100.001, "c": 100.0025, "d": 100.010, "e": 200.0}
    fam = Family(keys=list(fires))
    for key, t in fires.items():
        fam.specs[key] = JobSpec(True, OnceSchedule(at(t)))

    async def scenario() -> None:
        sup = make(resolution=0.003)
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(300)
        await sup.shutdown()

    run_virtual(scenario)
    started = {k: round(t, 5) for k, t, _, _ in fam.runs}
    # a, b and c share one wake-up at c's fire; d (7.5 ms later) and e run on time.
    assert started == {"a": 100.0025, "b": 100.0025, "c": 100.0025, "d": 100.01, "e": 200.0}
    assert all(-1e-6 <= started[k] - fires[k] <= 0.003 + 1e-6 for k in fires)


def test_fires_in_a_dst_zone_keep_their_local_time() -> None:
    from taskcog.engine.schedules import CronSchedule

    served: list[_dt.datetime] = []

    async def body(ctx: JobContext) -> None:
        served.append(ctx.scheduled_for)

    fam = Family(keys=[None], body=body)
    fam.specs[None] = JobSpec(True, CronSchedule("0 9 * * *", "Europe/Berlin"))

    async def scenario() -> None:
        sup = make()
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(4 * 86400)
        await sup.shutdown()

    run_virtual(scenario, epoch=_dt.datetime(2026, 3, 27, tzinfo=_dt.UTC))
    utc = [s.astimezone(_dt.UTC).hour for s in served]
    assert [s.day for s in served] == [27, 28, 29, 30]
    assert utc == [8, 8, 7, 7]  # 09:00 Berlin: CET, then CEST from 29 March


def test_a_healthy_job_stays_under_three_hundred_bytes() -> None:
    import gc
    import tracemalloc

    n = 5000
    spec = JobSpec(True, IntervalSchedule(60))
    keys = [10**12 + i for i in range(n)]  # guild-id sized keys, made before measuring

    async def body(ctx: JobContext) -> None:
        return None

    async def scenario() -> tuple[int, int]:
        sup = make()
        gc.collect()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        sup.add(TaskDefinition("many", body, provider=lambda key: spec, keys=lambda: keys))
        await sup.start()
        await asyncio.sleep(1)
        created = tracemalloc.get_traced_memory()[0] - base
        await asyncio.sleep(60)  # every job has run once
        gc.collect()
        after = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        assert sup.status("many", keys[0])[0].iterations == 1
        await sup.shutdown()
        return created, after

    created, after = run_virtual(scenario)
    assert created / n < 300 and after / n < 300, (created / n, after / n)


def test_restart_closes_the_circuit_without_running_until_the_next_fire() -> None:
    healthy = False

    async def body(ctx: JobContext) -> None:
        if not healthy:
            raise Boom("down")

    fam = Family(keys=[7], body=body, spread=False)

    async def scenario() -> None:
        nonlocal healthy
        sup = make(policy=RetryPolicy(base=1, cap=4, failure_threshold=3))
        sup.add(fam.definition)
        await sup.start()
        await asyncio.sleep(3630)  # parked since ~3 s; now between two fires of its grid
        assert sup.get_status("job", 7).state is State.CIRCUIT_OPEN
        healthy = True
        sup.restart("job", 7)
        status = sup.get_status("job", 7)
        assert status.state is State.SLEEPING and status.consecutive_failures == 0
        assert status.next_run == at(3660)  # its next fire, not now
        await asyncio.sleep(100)
        await sup.shutdown()

    run_virtual(scenario)
    assert fam.times(7)[3:] == [3660, 3720]  # no run at the restart itself


def test_lateness_reports_only_the_latest_4096_runs() -> None:
    """The ring of latenesses wraps: runs older than the latest 4096 no longer count."""

    async def body(ctx: JobContext) -> None:
        if ctx.key == 0:
            await asyncio.sleep(30)  # holds the only slot: key 1 starts 30 s late

    spec = JobSpec(True, IntervalSchedule(3600))
    slow = TaskDefinition(
        "slow", body, provider=lambda key: spec, keys=lambda: [0, 1], spread=False
    )
    fast = TaskDefinition(
        "fast", body, provider=lambda key: spec, keys=lambda: range(1, 4097), spread=False
    )

    async def scenario() -> None:
        sup = make(max_concurrency=1)
        sup.add(slow)
        await sup.start()
        await asyncio.sleep(31)
        assert sup.lateness()["p99"] == sup.lateness()["max"] == 30  # of the 2 runs so far
        sup.add(fast)
        await asyncio.sleep(1)  # 4096 runs on time push the late one out of the ring
        assert sup.lateness() == {"p50": 0.0, "p99": 0.0, "max": 0.0}
        await sup.shutdown()

    run_virtual(scenario)
