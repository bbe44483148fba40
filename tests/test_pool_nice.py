"""The pool's threads can run below the event loop's CPU priority (``WorkerPool(nice=...)``),
as the cog's do: an import that keeps every core busy must leave the loop a core."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from taskcog.engine.pool import LaneConfig, WorkerPool

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="per-thread niceness is Linux's"
)


def niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@linux_only
@pytest.mark.asyncio
async def test_pool_threads_run_niced_and_the_loop_thread_does_not() -> None:
    before = niceness()
    pool = WorkerPool([LaneConfig("parse", 2), LaneConfig("stats", 1)], name="t", nice=10)
    try:
        seen = {await pool.submit(lane, niceness) for lane in ("parse", "stats", "parse")}
    finally:
        await pool.shutdown()
    assert seen == {min(19, before + 10)}
    assert niceness() == before  # only the pool's threads


@linux_only
@pytest.mark.asyncio
async def test_a_plain_pool_keeps_the_process_priority() -> None:
    pool = WorkerPool([LaneConfig("parse", 1)], name="t")
    try:
        assert await pool.submit("parse", niceness) == niceness()
    finally:
        await pool.shutdown()


def test_niceness_out_of_range_is_refused() -> None:
    for bad in (-1, 20):
        with pytest.raises(ValueError, match="nice must be 0 to 19"):
            WorkerPool([LaneConfig("parse", 1)], nice=bad)
