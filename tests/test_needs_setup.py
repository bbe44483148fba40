"""A task waiting for configuration is not failing: NeedsSetup in the engine, on virtual time."""

from __future__ import annotations

import asyncio
import random

from taskcog.engine import tasks
from taskcog.engine.schedules import IntervalSchedule
from taskcog.engine.supervision import NeedsSetup, Outcome, RetryPolicy, State
from taskcog.engine.supervisor import JobContext, JobSpec, Supervisor, TaskDefinition
from taskcog.engine.testing import VirtualClock, run_virtual


def test_a_job_that_needs_setup_waits_on_its_schedule_without_failing_or_alerting() -> None:
    configured = False
    runs: list[float] = []
    alerts: list[str] = []

    async def body(ctx: JobContext) -> None:
        runs.append(asyncio.get_running_loop().time())
        if not configured:
            raise NeedsSetup("no channel is set: use taskset channel job #channel")

    async def scenario() -> None:
        nonlocal configured
        sup = Supervisor(
            clock=VirtualClock(),
            rng=random.Random(1),
            policy=RetryPolicy(failure_threshold=3),
            on_circuit_open=lambda task, key, status, exc: alerts.append(task),
        )
        spec = JobSpec(True, IntervalSchedule(60))
        sup.add(TaskDefinition("job", body, provider=lambda key: spec, spread=False))
        await sup.start()
        await asyncio.sleep(10 * 60 + 1)  # 11 runs, far past the threshold of 3
        status = sup.get_status("job", None)
        assert status is not None
        assert status.state is State.NEEDS_SETUP
        assert status.last_outcome is Outcome.NEEDS_SETUP
        assert status.needs_setup == "no channel is set: use taskset channel job #channel"
        assert status.consecutive_failures == 0 and status.total_failures == 0
        assert status.last_error is None
        configured = True  # the missing piece is set: the next tick runs, no restart
        await asyncio.sleep(60)
        status = sup.get_status("job", None)
        assert status.last_outcome is Outcome.OK and status.needs_setup is None
        assert status.state is State.SLEEPING
        await sup.shutdown()

    run_virtual(scenario)
    assert alerts == []
    assert [round(t) for t in runs] == [60 * i for i in range(12)]  # on schedule, no backoff


def test_needs_setup_after_failures_clears_the_failure_count() -> None:
    outcomes = iter([RuntimeError("boom"), RuntimeError("boom"), NeedsSetup("set it up")])

    async def body(ctx: JobContext) -> None:
        raise next(outcomes)

    async def scenario() -> None:
        sup = Supervisor(
            clock=VirtualClock(), rng=random.Random(1), policy=RetryPolicy(failure_threshold=5)
        )
        spec = JobSpec(False, IntervalSchedule(3600))  # disabled: only the runs below run
        sup.add(TaskDefinition("job", body, provider=lambda key: spec, spread=False))
        await sup.start()
        for _ in range(3):
            await sup.run_now("job", None)
        status = sup.get_status("job", None)
        assert status.consecutive_failures == 0 and status.total_failures == 2
        assert status.needs_setup == "set it up"
        await sup.shutdown()

    run_virtual(scenario)


def test_a_loop_that_needs_setup_never_opens_its_circuit() -> None:
    calls = 0

    async def main() -> None:
        @tasks.loop(seconds=1, failure_threshold=2, clock=VirtualClock())
        async def job() -> None:
            nonlocal calls
            calls += 1
            if calls < 6:
                raise NeedsSetup("add a game server first")

        job.start()
        await asyncio.sleep(4.5)
        assert job.status.state is State.NEEDS_SETUP
        assert job.status.needs_setup == "add a game server first"
        assert job.status.total_failures == 0 and job.is_running()
        await asyncio.sleep(2)
        assert job.status.last_outcome is Outcome.OK and job.status.needs_setup is None
        job.cancel()

    run_virtual(main)
    assert calls >= 6
