"""The shared worker pool: lanes, priorities, keys, cancelling, progress, metrics, shutdown.

Worker timing is controlled with gates (threading.Event), never with sleeps.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import pytest

from taskcog.engine.pool import (
    DEFAULT_LANES,
    JobState,
    LaneConfig,
    PoolClosed,
    PoolFull,
    Progress,
    WorkerPool,
)
from taskcog.engine.supervision import percentile
from taskcog.engine.testing import run_virtual

ROOT = Path(__file__).resolve().parents[1]
GATE_TIMEOUT = 10.0  # a safety net so a broken test fails instead of hanging


class Gate:
    """A job body that tells the loop it started, then blocks until the test opens it."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.started = asyncio.Event()
        self._open = threading.Event()

    def __call__(self, value: Any = None) -> Any:
        self._loop.call_soon_threadsafe(self.started.set)
        if not self._open.wait(GATE_TIMEOUT):
            raise TimeoutError("gate never opened")
        return value

    def open(self) -> None:
        self._open.set()


def _pool_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if "-worker-" in t.name or "-process" in t.name}


@pytest.fixture
async def make_pool() -> AsyncIterator[Callable[..., WorkerPool]]:
    """Build pools that are always shut down, and check that no thread outlives the test."""
    before = set(threading.enumerate())
    pools: list[WorkerPool] = []

    def make(*lanes: LaneConfig, **options: Any) -> WorkerPool:
        pool = WorkerPool(lanes or DEFAULT_LANES, **options)
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.shutdown(timeout=GATE_TIMEOUT)
    assert set(threading.enumerate()) - before == set()


def _sys_path_without(folder: Path) -> list[str]:
    return [p for p in sys.path if Path(p or ".").resolve() != folder]


# -- results and errors ----------------------------------------------------------------------


async def test_result_and_exception_reach_the_awaiting_caller(make_pool) -> None:
    pool = make_pool()
    assert await pool.submit("parse", sum, [1, 2, 3]) == 6
    assert await pool.submit("io", lambda a, b=0: a * b, 6, b=7) == 42

    def broken() -> None:
        raise ValueError("bad line 12")

    with pytest.raises(ValueError, match="bad line 12"):
        await pool.submit("db", broken)
    metrics = pool.metrics()
    assert (metrics["parse"].done, metrics["io"].done, metrics["db"].failed) == (1, 1, 1)


async def test_default_lanes_are_parse_io_db_by_urgency() -> None:
    assert [lane.name for lane in sorted(DEFAULT_LANES, key=lambda c: c.priority)] == [
        "parse",
        "io",
        "db",
    ]


async def test_work_runs_off_the_event_loop_thread(make_pool) -> None:
    pool = make_pool()
    assert await pool.submit("parse", threading.get_ident) != threading.get_ident()


async def test_unknown_lane_and_coroutines_are_refused(make_pool) -> None:
    pool = make_pool()

    async def coroutine() -> None:
        return None

    with pytest.raises(ValueError, match="unknown lane 'nope'"):
        await pool.submit("nope", sum, [])
    with pytest.raises(TypeError):
        await pool.submit("parse", coroutine)


# -- lanes, priorities and starvation ---------------------------------------------------------


async def test_ten_thousand_db_jobs_delay_parse_by_at_most_one_running_job(make_pool) -> None:
    pool = make_pool(
        LaneConfig("parse", 1, priority=0),
        LaneConfig("db", 1, max_queue=10_000, priority=2),
        max_threads=1,  # threads are scarce: parse and db compete for the same one
    )
    ran: list[str] = []
    gate = Gate()
    first = pool.submit_nowait("db", lambda: ran.append("db-0") or gate())
    for i in range(1, 10_000):
        pool.submit_nowait("db", ran.append, f"db-{i}")
    await gate.started.wait()
    parse = pool.submit_nowait("parse", ran.append, "parse")
    assert pool.metrics()["db"].queued == 9_999
    gate.open()
    await parse
    await first
    assert ran[:2] == ["db-0", "parse"]
    dropped = pool.cancel("db")
    assert dropped + pool.metrics()["db"].done + pool.metrics()["db"].running == 10_000


async def test_a_busy_lane_never_takes_another_lanes_workers(make_pool) -> None:
    pool = make_pool(
        LaneConfig("parse", 1, priority=0),
        LaneConfig("db", 2, max_queue=5_000, priority=2),
    )
    gates = [Gate(), Gate()]
    for gate in gates:
        pool.submit_nowait("db", gate)
    for _ in range(4_000):
        pool.submit_nowait("db", int)
    await asyncio.gather(*(gate.started.wait() for gate in gates))
    # Both db workers are stuck and thousands wait, yet parse runs straight away.
    assert await pool.submit("parse", str.upper, "killfeed") == "KILLFEED"
    assert pool.metrics()["db"].running == 2
    for gate in gates:
        gate.open()


async def test_job_priority_orders_work_within_a_lane(make_pool) -> None:
    pool = make_pool(LaneConfig("io", 1))
    gate = Gate()
    pool.submit_nowait("io", gate)
    ran: list[str] = []
    jobs = [
        pool.submit_nowait("io", ran.append, "late", priority=5),
        pool.submit_nowait("io", ran.append, "normal"),
        pool.submit_nowait("io", ran.append, "urgent", priority=-1),
    ]
    await gate.started.wait()
    gate.open()
    await asyncio.gather(*jobs)
    assert ran == ["urgent", "normal", "late"]


# -- per-key serialization --------------------------------------------------------------------


async def test_same_key_runs_one_at_a_time_in_submit_order(make_pool) -> None:
    pool = make_pool(LaneConfig("parse", 4))
    gate = Gate()
    ran: list[tuple[str, int]] = []
    head = pool.submit_nowait("parse", gate, key="server-a")
    followers = [
        pool.submit_nowait("parse", ran.append, ("server-a", i), key="server-a")
        for i in range(1, 6)
    ]
    await gate.started.wait()
    # Three workers are free, but server-a's next parse waits for the running one...
    assert [job.state for job in followers] == [JobState.QUEUED] * 5
    # ...while another server proceeds.
    await pool.submit("parse", ran.append, ("server-b", 0), key="server-b")
    assert ran == [("server-b", 0)]
    gate.open()
    await asyncio.gather(head, *followers)
    assert [i for key, i in ran if key == "server-a"] == [1, 2, 3, 4, 5]


async def test_same_key_never_overlaps_under_load(make_pool) -> None:
    pool = make_pool(LaneConfig("parse", 4))
    lock = threading.Lock()
    active: dict[str, int] = {}
    overlaps: list[str] = []
    order: dict[str, list[int]] = {}

    def parse(server: str, i: int) -> None:
        with lock:
            active[server] = active.get(server, 0) + 1
            if active[server] > 1:
                overlaps.append(server)
            order.setdefault(server, []).append(i)
        sum(range(2_000))  # a little real work so jobs genuinely run side by side
        with lock:
            active[server] -= 1

    jobs = [
        pool.submit_nowait("parse", parse, server, i, key=server)
        for i in range(100)
        for server in ("a", "b", "c")
    ]
    await asyncio.gather(*jobs)
    assert overlaps == []
    assert order == {server: list(range(100)) for server in ("a", "b", "c")}


# -- bounded queues ---------------------------------------------------------------------------


async def test_full_lane_rejects_at_once_with_one_clear_line(make_pool) -> None:
    pool = make_pool(LaneConfig("parse", 1, max_queue=2))
    gate = Gate()
    pool.submit_nowait("parse", gate)  # running: does not count towards the queue
    queued = [pool.submit_nowait("parse", int) for _ in range(2)]
    with pytest.raises(PoolFull) as raised:
        await pool.submit("parse", int)
    assert str(raised.value) == "lane 'parse' is full (2 queued); try again later"
    assert pool.metrics()["parse"].rejected == 1
    gate.open()
    await asyncio.gather(*queued)
    assert await pool.submit("parse", int, "7") == 7  # room again once the queue drains


# -- cancelling -------------------------------------------------------------------------------


async def test_cancel_queued_job_by_handle(make_pool) -> None:
    pool = make_pool(LaneConfig("io", 1))
    gate = Gate()
    running = pool.submit_nowait("io", gate, "done")
    queued = pool.submit_nowait("io", int)
    assert queued.cancel() is True
    assert queued.state is JobState.CANCELLED
    with pytest.raises(asyncio.CancelledError):
        await queued
    gate.open()
    assert await running == "done"
    assert pool.metrics()["io"].cancelled == 1


async def test_cancel_queued_work_by_key_and_by_lane(make_pool) -> None:
    pool = make_pool(LaneConfig("parse", 1), LaneConfig("db", 1))
    gates = [Gate(), Gate()]
    pool.submit_nowait("parse", gates[0], key="a")
    pool.submit_nowait("db", gates[1])
    ran: list[str] = []
    a_jobs = [pool.submit_nowait("parse", ran.append, "a", key="a") for _ in range(3)]
    b_job = pool.submit_nowait("parse", ran.append, "b", key="b")
    db_jobs = [pool.submit_nowait("db", ran.append, "db") for _ in range(4)]
    await asyncio.gather(*(gate.started.wait() for gate in gates))
    assert pool.cancel("parse", key="a") == 3
    assert pool.cancel("db") == 4
    assert [job.state for job in a_jobs + db_jobs] == [JobState.CANCELLED] * 7
    for gate in gates:
        gate.open()
    await b_job
    assert ran == ["b"]
    # The key is free again: a new job for it runs normally.
    assert await pool.submit("parse", str, 1, key="a") == "1"


async def test_cancelling_the_awaiting_task_drops_its_queued_job(make_pool) -> None:
    pool = make_pool(LaneConfig("io", 1))
    gate = Gate()
    pool.submit_nowait("io", gate)
    ran: list[str] = []
    waiter = asyncio.ensure_future(pool.submit("io", ran.append, "never"))
    await asyncio.sleep(0)
    assert pool.metrics()["io"].queued == 1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert pool.metrics()["io"].queued == 0
    gate.open()
    assert await pool.submit("io", ran.append, "next") is None
    assert ran == ["next"]


async def test_running_job_is_not_interrupted_but_sees_the_cancel_flag(make_pool) -> None:
    pool = make_pool()
    gate = Gate()

    def long_parse(progress: Progress) -> str:
        gate()
        return "stopped early" if progress.cancelled else "ran to the end"

    job = pool.submit_nowait("parse", long_parse)
    await gate.started.wait()
    assert job.cancel() is False
    assert job.state is JobState.RUNNING
    gate.open()
    assert await job == "stopped early"


# -- progress ---------------------------------------------------------------------------------


async def test_progress_reaches_the_loop_thread_in_order(make_pool) -> None:
    pool = make_pool()
    loop_thread = threading.get_ident()
    seen: list[tuple[float, float | None, str]] = []
    threads: set[int] = set()

    def on_progress(done: float, total: float | None, note: str) -> None:
        threads.add(threading.get_ident())
        seen.append((done, total, note))

    def parse(lines: int, progress: Progress) -> int:
        for i in range(1, lines + 1):
            progress(i, lines, "parsing")
        progress(lines, lines, "done")
        return lines

    assert await pool.submit("parse", parse, 500, progress=on_progress) == 500
    assert threads == {loop_thread}
    assert seen[-1] == (500, 500, "done")  # the last report arrives before the result
    assert [done for done, _, _ in seen] == sorted(done for done, _, _ in seen)


async def test_progress_updates_are_coalesced_while_the_loop_is_busy(make_pool) -> None:
    pool = make_pool()
    reported = threading.Event()
    seen: list[float] = []

    def parse(progress: Progress) -> None:
        for i in range(1, 1001):
            progress(i, 1000)
        reported.set()

    job = pool.submit_nowait("parse", parse, progress=lambda done, total, note: seen.append(done))
    assert reported.wait(GATE_TIMEOUT)  # hold the loop while all 1000 reports pile up
    await job
    assert seen == [1000]


# -- metrics ----------------------------------------------------------------------------------


async def test_metrics_count_jobs_and_report_duration_percentiles(make_pool) -> None:
    pool = make_pool(LaneConfig("db", 1))
    gate = Gate()
    blocked = pool.submit_nowait("db", gate)
    waiting = [pool.submit_nowait("db", int) for _ in range(3)]
    await gate.started.wait()
    live = pool.metrics()["db"]
    assert (live.running, live.queued, live.done, live.workers) == (1, 3, 0, 1)
    assert (live.p50, live.p95) == (None, None)
    waiting[0].cancel()
    gate.open()
    await asyncio.gather(blocked, *waiting[1:])
    with pytest.raises(ZeroDivisionError):
        await pool.submit("db", divmod, 1, 0)
    final = pool.metrics()["db"]
    assert (final.done, final.failed, final.cancelled, final.running, final.queued) == (
        3,
        1,
        1,
        0,
        0,
    )
    assert final.p50 is not None and final.p95 is not None
    assert 0 <= final.p50 <= final.p95


# -- processes --------------------------------------------------------------------------------


async def test_process_job_runs_a_picklable_function_in_another_process(make_pool) -> None:
    pool = make_pool(process_workers=1)
    # Builtins pickle by name; so would any module-level function (see the next test).
    results = await asyncio.gather(
        pool.submit("parse", os.getpid, process=True),
        pool.submit("parse", pow, 3, 3, process=True),
    )
    assert results[0] != os.getpid()
    assert results[1] == 27
    assert pool.metrics()["parse"].done == 2


async def test_a_dead_worker_process_fails_its_job_and_the_next_job_gets_a_fresh_pool(
    make_pool,
) -> None:
    pool = make_pool(process_workers=1)
    with pytest.raises(BrokenProcessPool):
        await pool.submit("parse", os._exit, 3, process=True)  # like the OOM killer, mid-job
    assert await pool.submit("parse", pow, 2, 3, process=True) == 8


async def test_shutdown_terminates_a_stuck_process_job(make_pool) -> None:
    pool = make_pool(process_workers=1)
    assert await pool.submit("parse", pow, 1, 1, process=True) == 1  # the process is up
    job = pool.submit_nowait("parse", time.sleep, 3600, process=True)
    await pool.shutdown(timeout=0.2)
    with pytest.raises(PoolClosed):
        await job


async def test_process_job_can_run_taskcog_code_when_it_is_not_on_sys_path(
    make_pool, monkeypatch
) -> None:
    # Red loads cogs by file spec, so the cog folder is not on sys.path for spawned children.
    monkeypatch.setattr(sys, "path", _sys_path_without(ROOT))
    monkeypatch.chdir(ROOT.parent)
    pool = make_pool(process_workers=1)
    assert await pool.submit("parse", percentile, [3.0, 1.0, 2.0], 0.5, process=True) == 2.0


async def test_process_job_needs_process_workers(make_pool) -> None:
    pool = make_pool()
    with pytest.raises(ValueError, match="process_workers"):
        await pool.submit("parse", os.getpid, process=True)


# -- resize -----------------------------------------------------------------------------------


async def test_resize_grows_and_pauses_a_lane(make_pool) -> None:
    pool = make_pool(LaneConfig("io", 1))
    gates = [Gate(), Gate()]
    jobs = [pool.submit_nowait("io", gate, i) for i, gate in enumerate(gates)]
    await gates[0].started.wait()
    assert jobs[1].state is JobState.QUEUED
    pool.resize("io", 2)
    await gates[1].started.wait()  # the second worker picked it up
    assert pool.metrics()["io"].workers == 2
    pool.resize("io", 0)  # paused: running jobs finish, new ones wait
    for gate in gates:
        gate.open()
    assert await asyncio.gather(*jobs) == [0, 1]
    paused = pool.submit_nowait("io", int, "5")
    await asyncio.sleep(0)
    assert paused.state is JobState.QUEUED
    pool.resize("io", 1)
    assert await paused == 5


# -- shutdown ---------------------------------------------------------------------------------


async def test_shutdown_waits_for_running_work(make_pool) -> None:
    pool = make_pool()
    gate = Gate()
    job = pool.submit_nowait("parse", gate, "finished")
    await gate.started.wait()
    closing = asyncio.ensure_future(pool.shutdown(timeout=GATE_TIMEOUT))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not closing.done() and pool.closed
    gate.open()
    await closing
    assert await job == "finished"
    assert not _pool_threads()


async def test_shutdown_gives_up_on_stuck_work_after_timeout(make_pool) -> None:
    pool = make_pool(name="stuck")
    gate = Gate()
    job = pool.submit_nowait("parse", gate)
    await gate.started.wait()
    await pool.shutdown(timeout=0.05)
    with pytest.raises(PoolClosed, match="while this job ran"):
        await job
    # The thread cannot be killed; it leaves as soon as its function returns.
    stuck = [t for t in threading.enumerate() if t.name.startswith("stuck-worker")]
    assert len(stuck) == 1
    gate.open()
    stuck[0].join(GATE_TIMEOUT)
    assert not stuck[0].is_alive()


async def test_shutdown_fails_queued_jobs_with_pool_closed(make_pool) -> None:
    pool = make_pool(LaneConfig("parse", 1))
    gate = Gate()
    running = pool.submit_nowait("parse", gate, "kept")
    queued = [pool.submit_nowait("parse", int, key="a") for _ in range(3)]
    await gate.started.wait()
    closing = asyncio.ensure_future(pool.shutdown())
    await asyncio.sleep(0)
    gate.open()
    await closing
    assert await running == "kept"
    for job in queued:
        with pytest.raises(PoolClosed, match="shut down before this job ran"):
            await job
    assert pool.metrics()["parse"].cancelled == 3


async def test_shutdown_can_drain_queued_work_instead(make_pool) -> None:
    pool = make_pool(LaneConfig("parse", 1))
    gate = Gate()
    pool.submit_nowait("parse", gate)
    queued = [pool.submit_nowait("parse", int, str(i)) for i in range(5)]
    await gate.started.wait()
    closing = asyncio.ensure_future(pool.shutdown(cancel_queued=False))
    await asyncio.sleep(0)
    with pytest.raises(PoolClosed):
        pool.submit_nowait("parse", int)
    gate.open()
    await closing
    assert [await job for job in queued] == [0, 1, 2, 3, 4]


async def test_submit_after_shutdown_raises_pool_closed(make_pool) -> None:
    pool = make_pool()
    assert await pool.submit("io", int) == 0
    await pool.shutdown()
    await pool.shutdown()  # twice is fine
    with pytest.raises(PoolClosed):
        await pool.submit("io", int)


async def test_twenty_create_shutdown_cycles_leave_no_thread() -> None:
    before = set(threading.enumerate())
    for cycle in range(20):
        pool = WorkerPool(name=f"cycle{cycle}")
        gate = Gate()
        running = pool.submit_nowait("db", gate)
        results = await asyncio.gather(
            *(pool.submit(lane, int, "1") for lane in ("parse", "io", "parse", "io"))
        )
        assert results == [1, 1, 1, 1]
        await gate.started.wait()
        closing = asyncio.ensure_future(pool.shutdown())
        await asyncio.sleep(0)
        gate.open()
        await closing
        await running
    assert set(threading.enumerate()) == before


def test_pool_results_arrive_before_virtual_time_moves_on() -> None:
    async def scenario() -> tuple[float, int]:
        loop = asyncio.get_running_loop()
        pool = WorkerPool()
        timer = asyncio.ensure_future(asyncio.sleep(3600))  # tempts the loop to jump ahead
        total = await pool.submit("parse", lambda: sum(range(200_000)))
        at = loop.time()
        timer.cancel()
        await pool.shutdown()
        return at, total

    at, total = run_virtual(scenario)
    assert (at, total) == (0.0, sum(range(200_000)))
