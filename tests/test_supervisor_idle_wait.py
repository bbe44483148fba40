"""``Supervisor.set_idle_wait``: a virtual-time harness wraps the dispatcher's idle wait
(simcord's ``external_wait``). The parked dispatcher re-parks through the wrapper at once,
without running anything that is not due, and every later park goes through it too."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_supervisor_loops import Runs, family, on_grid, running

pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])


class Wrapper:
    """Counts the parks it wraps and awaits them as they are."""

    def __init__(self) -> None:
        self.parks = 0
        self.parked = asyncio.Event()

    async def __call__(self, waker: asyncio.Future[None]) -> None:
        self.parks += 1
        self.parked.set()
        await waker


async def test_a_parked_dispatcher_re_parks_through_the_wrapper_without_running_early() -> None:
    runs = Runs()

    async def body(ctx: Any) -> None:
        runs.add(ctx)

    async with running(family(body, ["k"], every=3600.0, spread=False)) as sup:
        await runs.at_least(1, ["k"])  # the first run, at once; the next is an hour away
        before = sup.get_status("job", "k")
        wrap = Wrapper()
        sup.set_idle_wait(wrap)
        await asyncio.wait_for(wrap.parked.wait(), 5)
        after = sup.get_status("job", "k")
        assert wrap.parks == 1
        assert after.iterations == before.iterations == 1  # nothing ran that was not due
        assert after.next_run == before.next_run


async def test_jobs_keep_their_grid_while_parked_in_the_wrapper() -> None:
    """On a real loop the wake-up timer dispatches in place and re-arms (see ``_Waker``), so
    the dispatcher stays in its one wrapped park while the runs go on."""
    runs = Runs()

    async def body(ctx: Any) -> None:
        runs.add(ctx)

    async with running(family(body, [1, 2], every=0.02, spread=False)) as sup:
        await runs.at_least(2, [1, 2])
        first = Wrapper()
        sup.set_idle_wait(first)
        start = sum(runs.count.values())
        await runs.at_least(8, [1, 2])
        assert sum(runs.count.values()) - start >= 6 and first.parks == 1
        assert on_grid(runs.fires[1], 0.02) and on_grid(runs.fires[2], 0.02)
        second = Wrapper()  # a new wrapper takes over the park at once
        sup.set_idle_wait(second)
        await asyncio.wait_for(second.parked.wait(), 5)
        await runs.at_least(12, [1, 2])
        assert second.parks == 1 and first.parks == 1
