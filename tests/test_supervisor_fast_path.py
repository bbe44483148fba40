"""The runners' fast path on both real loops: a body that returns without suspending is
stepped without raising StopIteration and settled in one call (``_finish_ok``). What that path
skips must still happen: the run counts, its value is ignored, misfires coalesce, and an async
provider that answers at once can still park or drop the job.

The timeout, stop, exception and slow-body rules for bodies that suspend are pinned in
tests/test_supervisor_loops.py on the same two loops.
"""

from __future__ import annotations

import time
from typing import Any, Hashable

import pytest
from test_supervisor_loops import Runs, family, on_grid, running

from taskcog.engine.schedules import IntervalSchedule
from taskcog.engine.supervision import Outcome, State
from taskcog.engine.supervisor import JobContext, JobSpec, TaskDefinition

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])


async def test_a_body_that_returns_a_value_at_once_is_an_ok_run_on_its_grid() -> None:
    runs = Runs()

    async def body(ctx: JobContext) -> int:
        runs.add(ctx)
        return 42  # ignored, as a Task's result would be

    async with running(family(body, [1, 2], spread=False)) as sup:
        await runs.at_least(5, [1, 2])
        for key in (1, 2):
            status = sup.get_status("job", key)
            assert status.last_outcome is Outcome.OK and status.total_failures == 0
            assert status.iterations >= 5
            assert status.state in (State.SLEEPING, State.RUNNING)
            assert on_grid(runs.fires[key], 0.02), runs.fires[key]


async def test_runs_settled_at_once_count_exactly_what_the_bodies_saw() -> None:
    runs = Runs()
    seen: list[int] = []

    async def body(ctx: JobContext) -> None:
        runs.add(ctx)
        if runs.count[ctx.key] == 6:
            seen.append(ctx.status.iterations)  # the status is built from the job's counters

    async with running(family(body, ["k"], spread=False)) as sup:
        await runs.at_least(8, ["k"])
        status = sup.get_status("job", "k")
        assert status.iterations >= 7 and status.last_duration is not None
    assert seen == [5]  # five runs settled before the sixth began


async def test_a_body_that_blocks_past_its_next_fires_runs_once_to_catch_up() -> None:
    """coalesce: the fires missed while a body held the loop become one run, not a burst."""
    runs = Runs()
    every = 0.02

    async def body(ctx: JobContext) -> None:
        runs.add(ctx)
        if runs.count[ctx.key] == 2:
            time.sleep(6 * every)  # noqa: ASYNC251 - holds the loop past five more fires

    async with running(family(body, ["k"], every=every, spread=False)):
        await runs.at_least(4, ["k"])
    fires = runs.fires["k"]
    assert on_grid(fires, every), fires
    gap = (fires[2] - fires[1]).total_seconds() / every
    assert round(gap) >= 5  # the fires it missed ran once, at the latest of them


async def test_an_async_provider_that_answers_at_once_can_park_and_drop_its_job() -> None:
    runs = Runs()
    specs: dict[Hashable, JobSpec | None] = {
        key: JobSpec(True, IntervalSchedule(0.02)) for key in ("stays", "parks", "goes")
    }

    async def provider(key: Hashable) -> JobSpec | None:
        return specs[key]  # never suspends: the tick ends in the runner's first step

    async def body(ctx: JobContext) -> None:
        runs.add(ctx)
        if ctx.key == "stays" and runs.count["stays"] == 2:
            specs["parks"] = JobSpec(False, IntervalSchedule(0.02))
            specs["goes"] = None

    definition = TaskDefinition(
        "job", body, provider=provider, keys=lambda: list(specs), spread=False
    )
    async with running(definition) as sup:
        await runs.at_least(2, ["stays"])
        before: dict[Any, int] = dict(runs.count)
        await runs.more(4, ["stays"])
        assert sup.get_status("job", "parks").state is State.STOPPED
        assert sup.get_status("job", "goes") is None
        # at most the one run each that was already past its tick when the specs changed
        assert runs.count["parks"] <= before["parks"] + 1
        assert runs.count["goes"] <= before["goes"] + 1


async def test_a_timeout_definition_leaves_bodies_that_return_at_once_alone() -> None:
    runs = Runs()

    async def body(ctx: JobContext) -> None:
        runs.add(ctx)

    async with running(family(body, [1], spread=False, timeout=0.01)) as sup:
        await runs.at_least(6, [1])
        status = sup.get_status("job", 1)
        assert status.total_failures == 0 and status.last_outcome is Outcome.OK
