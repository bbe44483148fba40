"""``frozen_heap``: the objects alive when heavy work starts are left out of full garbage
collections while it runs (shared by nested and concurrent holders), and handed back, so any
that became garbage meanwhile are still freed; a history import runs inside it, and gives it
back whether it finishes, fails or is cancelled."""

from __future__ import annotations

import asyncio
import gc
import weakref
from pathlib import Path

import pytest

from taskcog.engine.heap import frozen_heap
from taskcog.engine.pool import LaneConfig, WorkerPool
from taskcog.pipeline.history import HistoryTotals, import_files, plan
from taskcog.pipeline.sources import LocalSource
from taskcog.pipeline.stats import StatsStore
from taskcog.pipeline.stats.synthetic import write_logs

KILL_DIR = Path("Deadside/Saved/actual1/deathlogs/world_0")


class Node:
    """An object that can sit in a reference cycle and be watched through a weakref."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> weakref.ref:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_nested_holders_share_one_freeze_given_back_by_the_last() -> None:
    before = gc.get_freeze_count()
    with frozen_heap():
        frozen = gc.get_freeze_count()
        assert frozen > before
        with frozen_heap():
            assert gc.get_freeze_count() == frozen  # not frozen again: one freeze
        assert gc.get_freeze_count() == frozen  # the outer holder still holds it
    assert gc.get_freeze_count() == before


def test_garbage_from_the_frozen_heap_is_freed_after_not_during() -> None:
    watched = cycle()  # alive (in a cycle only it keeps) when the freeze starts
    with frozen_heap():
        gc.collect()
        assert watched() is not None  # frozen: a full collection does not walk it
    gc.collect()
    assert watched() is None  # handed back: freed, not leaked


def test_new_garbage_is_collected_while_frozen() -> None:
    with frozen_heap():
        watched = cycle()
        gc.collect()
        assert watched() is None


@pytest.fixture
async def history(tmp_path: Path):
    folder = tmp_path / "host" / KILL_DIR
    folder.mkdir(parents=True)
    write_logs(folder, 4, 100, players=20)
    pool = WorkerPool([LaneConfig("parse", 2), LaneConfig("stats", 1)])
    store = StatsStore(tmp_path / "s.db")
    source = LocalSource(str(tmp_path / "host"))
    yield source, store, pool
    await pool.shutdown()
    store.close()


async def run_import(source, store, pool, on_chunk) -> HistoryTotals:
    planned = await plan(source, store, pool, 1, "eu")
    totals = HistoryTotals()
    await import_files(
        source, planned, store, pool, 1, totals, flag_over=1500.0, chunk_bytes=4000,
        on_chunk=on_chunk,
    )  # fmt: skip
    return totals


async def test_a_history_import_runs_frozen_and_gives_the_heap_back(history) -> None:
    source, store, pool = history
    before = gc.get_freeze_count()
    seen: list[int] = []

    async def on_chunk() -> None:
        seen.append(gc.get_freeze_count())

    totals = await run_import(source, store, pool, on_chunk)
    assert totals.new > 0 and len(seen) > 1
    assert all(count > before for count in seen)
    assert gc.get_freeze_count() == before


@pytest.mark.parametrize("stop", [RuntimeError("disk full"), asyncio.CancelledError()])
async def test_a_failed_or_stopped_import_gives_the_heap_back(history, stop) -> None:
    source, store, pool = history
    before = gc.get_freeze_count()

    async def on_chunk() -> None:
        assert gc.get_freeze_count() > before
        raise stop

    with pytest.raises(type(stop)):
        await run_import(source, store, pool, on_chunk)
    assert gc.get_freeze_count() == before
