"""The event-loop lag monitor, driven on virtual time: blocking is simulated with advance()."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from taskcog.engine.lag import LagMonitor
from taskcog.engine.testing import VirtualTimeLoop, run_virtual

# 40 on-time wake-ups, 50 slightly late, 9 late and one very late: shuffled below.
LAGS = [0.0] * 40 + [0.125] * 50 + [0.25] * 9 + [2.0]


def _block_at(loop: VirtualTimeLoop, when: float, seconds: float) -> None:
    """Simulate a blocking call of ``seconds`` starting at virtual time ``when``."""
    loop.call_at(when, loop.advance, seconds)


def _feed(loop: VirtualTimeLoop, interval: float, lags: list[float]) -> float:
    """Block exactly when each of the monitor's timers is due; returns the last wake-up time."""
    due = loop.time() + interval
    for lag in lags:
        if lag:
            _block_at(loop, due, lag)
        due += lag + interval
    return due - interval


def test_blocking_the_loop_shows_up_as_lag_percentiles() -> None:
    lags = LAGS[:]
    random.Random(7).shuffle(lags)

    async def scenario() -> list[object]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        monitor = LagMonitor(interval=1.0, window=1000.0)
        monitor.start()
        last_wake = _feed(loop, 1.0, lags)
        await asyncio.sleep(last_wake + 0.5)
        stats = monitor.stats()
        await monitor.stop()
        return [stats.samples, stats.p50, stats.p99, stats.max]

    assert run_virtual(scenario) == [100, 0.125, 0.25, 2.0]


def test_old_samples_leave_the_window() -> None:
    async def scenario() -> tuple[object, object]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop)
        monitor = LagMonitor(interval=1.0, window=30.0)
        monitor.start()
        last_wake = _feed(loop, 1.0, [2.0, 0.5, 0.0])
        await asyncio.sleep(last_wake + 0.5 - loop.time())
        busy = monitor.stats()
        # 40 more quiet seconds: the window (30 s) now holds only the on-time wake-ups.
        await asyncio.sleep(40.0)
        quiet = monitor.stats()
        await monitor.stop()
        return busy, quiet

    busy, quiet = run_virtual(scenario)
    assert (busy.samples, busy.max) == (3, 2.0)
    assert (quiet.samples, quiet.p50, quiet.p99, quiet.max) == (30, 0.0, 0.0, 0.0)


def test_no_samples_means_no_figures() -> None:
    stats = LagMonitor(clock_fn=lambda: 0.0).stats()
    assert (stats.samples, stats.p50, stats.p99, stats.max) == (0, None, None, None)


def test_recorded_samples_expire_by_the_given_clock() -> None:
    now = [0.0]
    monitor = LagMonitor(interval=1.0, window=10.0, clock_fn=lambda: now[0])
    monitor.record(0.5)
    now[0] = 5.0
    monitor.record(0.1)
    assert monitor.stats().max == 0.5
    now[0] = 10.5  # the first sample (t=0) is now older than the window
    assert (monitor.stats().samples, monitor.stats().max) == (1, 0.1)


def test_buffer_is_bounded_however_many_samples_arrive() -> None:
    monitor = LagMonitor(interval=0.5, window=10.0, clock_fn=lambda: 0.0)
    for _ in range(10_000):
        monitor.record(0.01)
    assert monitor.stats().samples <= 40


def test_stop_leaves_no_task_and_keeps_samples() -> None:
    async def scenario() -> tuple[int, bool, int]:
        monitor = LagMonitor(interval=1.0)
        monitor.start()
        monitor.start()  # a second start is a no-op, not a second task
        await asyncio.sleep(3.5)
        tasks_running = len(asyncio.all_tasks()) - 1
        await monitor.stop()
        await monitor.stop()
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return tasks_running, monitor.running, len(leftover)

    tasks_running, running, leftover = run_virtual(scenario)
    assert (tasks_running, running, leftover) == (1, False, 0)


def test_negative_lag_is_recorded_as_zero() -> None:
    monitor = LagMonitor(clock_fn=lambda: 0.0)
    monitor.record(-0.001)
    assert monitor.stats().max == 0.0


def test_invalid_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        LagMonitor(interval=0)


async def test_real_blocking_call_is_measured_on_a_plain_loop() -> None:
    monitor = LagMonitor(interval=0.01, window=60.0)
    recorded = asyncio.Event()
    record = monitor.record
    monitor.record = lambda lag: (record(lag), recorded.set())  # type: ignore[method-assign]
    monitor.start()
    await asyncio.sleep(0)  # let the monitor arm its first timer
    time.sleep(0.05)  # noqa: ASYNC251 - deliberately block the loop, as a buggy cog would
    await recorded.wait()
    await monitor.stop()
    assert monitor.stats().max >= 0.04


def test_thread_monitor_measures_a_blocked_loop_and_leaves_no_thread() -> None:
    import threading

    from taskcog.engine.lag import ThreadLagMonitor

    async def scenario() -> tuple[float, int]:
        monitor = ThreadLagMonitor(interval=0.01)
        seen = asyncio.Event()
        monitor.on_sample = lambda lag: seen.set() if lag >= 0.15 else None
        monitor.start()
        await asyncio.sleep(0.03)  # let a probe be in flight
        time.sleep(0.2)  # noqa: ASYNC251 - a parser that forgot the worker pool
        await asyncio.wait_for(seen.wait(), 5)
        stats = monitor.stats()
        await monitor.stop()
        return stats.max, sum(t.name == "taskcog-lag-monitor" for t in threading.enumerate())

    worst, threads = asyncio.run(scenario())
    assert worst >= 0.15
    assert threads == 0


def _blocked_loop_lag(pattern: str, seconds: float = 2.0) -> tuple[float, float, int]:
    """Run a ThreadLagMonitor (10 ms mean gap) on a loop blocked as ``pattern`` says, for about
    ``seconds``; return (the largest block, the reported max lag, samples)."""
    from taskcog.engine.lag import ThreadLagMonitor

    rng = random.Random(3)
    largest = 0.0

    async def scenario() -> tuple[float, float, int]:
        nonlocal largest
        monitor = ThreadLagMonitor(interval=0.01, rng=random.Random(5))
        monitor.start()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            block = 0.030 if pattern == "periodic" else rng.uniform(0.005, 0.040)
            largest = max(largest, block)
            time.sleep(block)  # noqa: ASYNC251 - the blocking under test
            await asyncio.sleep(0.005 if pattern == "periodic" else rng.uniform(0.001, 0.01))
        stats = monitor.stats()
        await monitor.stop()
        return largest, stats.max or 0.0, stats.samples

    return asyncio.run(scenario())


def test_thread_monitor_sees_periodic_blocking_as_it_is() -> None:
    # Blocked 30 ms of every 35 ms: a probe sent at a fixed gap after each answer would lock in
    # step and see the same partial block every time; random probes see up to the whole block.
    largest, worst, samples = _blocked_loop_lag("periodic", seconds=4.0)
    assert samples >= 60
    assert worst >= 0.9 * largest, (worst, largest, samples)
    assert worst <= largest + 0.02  # nothing invented beyond the blocking (and a busy CI)


def test_thread_monitor_sees_random_blocking_as_it_is() -> None:
    largest, worst, samples = _blocked_loop_lag("random")
    assert samples >= 30
    assert worst >= 0.6 * largest, (worst, largest, samples)
    assert worst <= largest + 0.02


def test_thread_monitor_probe_gaps_are_random_with_the_asked_mean() -> None:
    from taskcog.engine.lag import ThreadLagMonitor

    monitor = ThreadLagMonitor(interval=0.25, rng=random.Random(1))
    gaps = [monitor._gap() for _ in range(5000)]
    uncapped = [gap for gap in gaps if gap < 1.0]
    assert len(set(uncapped)) == len(uncapped) > 4900  # no fixed step to lock in with
    assert 0.2 < sum(gaps) / len(gaps) < 0.26 and max(gaps) <= 1.0
