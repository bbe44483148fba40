"""Deferral under load: a synthetic blocked loop (virtual time), measured by the lag monitor;
low-priority runs wait, high-priority runs do not, and everything catches up when it clears."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from taskcog.engine.deferral import Deferral
from taskcog.engine.lag import LagMonitor
from taskcog.engine.schedules import IntervalSchedule
from taskcog.engine.supervisor import JobContext, JobSpec, Supervisor, TaskDefinition
from taskcog.engine.testing import VirtualClock, VirtualTimeLoop, run_virtual


def _task(name: str, priority: str, log: list[float], every: float = 10.0) -> TaskDefinition:
    async def run(ctx: JobContext) -> None:
        log.append(asyncio.get_running_loop().time())

    return TaskDefinition(
        name=name,
        run=run,
        provider=lambda key: JobSpec(True, IntervalSchedule(every)),
        priority=priority,
    )


def _block(loop: VirtualTimeLoop, start: float, end: float, pattern: str) -> float:
    """Block the loop from ``start`` to ``end``: ``periodic`` 150 ms of every 170 ms, or
    ``random`` blocks of 20-200 ms; returns the largest block."""
    rng = random.Random(11)
    t, largest = start, 0.0
    while t < end:
        block = 0.150 if pattern == "periodic" else rng.uniform(0.020, 0.200)
        loop.call_at(t, loop.advance, block)
        largest = max(largest, block)
        t += block + (0.020 if pattern == "periodic" else rng.uniform(0.005, 0.050))
    return largest


def _scenario(pattern: str) -> dict[str, Any]:
    high: list[float] = []
    low: list[float] = []

    async def scenario() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        monitor = LagMonitor(interval=0.05, window=60.0, rng=random.Random(5))
        monitor.start()
        sup = Supervisor(clock=VirtualClock())
        deferral = Deferral(lambda: monitor.stats(window=10.0).p99, threshold=0.100)
        sup.set_deferral(deferral)
        sup.add(_task("feed", "high", high))
        sup.add(_task("sweep", "low", low))
        await sup.start()
        largest = _block(loop, 25.0, 85.0, pattern)
        await asyncio.sleep(60)
        during = monitor.stats(window=10.0)
        waiting = sup.deferred_now()
        await asyncio.sleep(60)
        result = {
            "largest": largest,
            "p99": during.p99,
            "waiting": waiting,
            "count": deferral.count,
            "status": sup.get_status("sweep", None),
        }
        await sup.shutdown()
        await monitor.stop()
        return result

    result = run_virtual(scenario)
    result["high"], result["low"] = high, low
    return result


@pytest.mark.parametrize("pattern", ["periodic", "random"])
def test_low_priority_waits_while_the_loop_lags_and_catches_up_when_it_clears(
    pattern: str,
) -> None:
    r = _scenario(pattern)
    # The lag the monitor reports is the blocking it was given.
    assert 0.8 * r["largest"] <= r["p99"] <= r["largest"] + 0.01, r
    # High priority kept its rhythm through the lag: one run every 10 s, none skipped.
    during_high = [t for t in r["high"] if 30 <= t < 85]
    assert len(during_high) >= 5, r["high"]
    assert all(b - a < 10.5 for a, b in zip(r["high"], r["high"][1:], strict=False)), r["high"]
    # Low priority waited while it lagged (nothing from 30 s to the end of the lag) ...
    assert not [t for t in r["low"] if 30 <= t < 85], r["low"]
    assert r["waiting"] == 1 and r["count"] >= 1 and r["status"].deferred >= 1
    # ... and ran again once the last 10 s were calm (within one re-check), then on schedule.
    resumed = [t for t in r["low"] if t >= 85]
    assert resumed and resumed[0] <= 85 + 10 + 5.5, r["low"]
    assert resumed[1] - resumed[0] > 1, r["low"]  # one catch-up run, not one per missed fire
    assert r["status"].consecutive_failures == 0


def test_a_deferral_never_lasts_more_than_five_minutes() -> None:
    low: list[float] = []
    high: list[float] = []

    async def scenario() -> int:
        sup = Supervisor(clock=VirtualClock())
        deferral = Deferral(lambda: 0.5, threshold=0.1)  # the loop lags, always
        sup.set_deferral(deferral)
        sup.add(_task("feed", "high", high, every=60))
        sup.add(_task("sweep", "low", low, every=600))
        await sup.start()
        await asyncio.sleep(1000)
        await sup.shutdown()
        return deferral.count

    count = run_virtual(scenario)
    assert low == [300.0, 900.0]  # each fire waited its 5 minutes, then ran anyway
    assert high[:3] == [0.0, 60.0, 120.0]
    assert count == 2  # one deferral per fire, however often it was re-checked


def test_without_lag_or_with_deferral_off_nothing_waits() -> None:
    low: list[float] = []

    async def scenario() -> int:
        sup = Supervisor(clock=VirtualClock())
        deferral = Deferral(lambda: 0.5, threshold=None)  # off
        sup.set_deferral(deferral)
        sup.add(_task("sweep", "low", low))
        await sup.start()
        await asyncio.sleep(25)
        await sup.shutdown()
        return deferral.count

    assert run_virtual(scenario) == 0 and low == [0.0, 10.0, 20.0]
    with pytest.raises(ValueError):
        TaskDefinition(name="x", run=None, provider=None, priority="urgent")  # type: ignore
