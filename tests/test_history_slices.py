"""History-import slices: byte ranges cut anywhere still read every line exactly once, and a
slice parsed on a worker (taskiq's ``InMemoryBroker`` running the worker's step, over a real
asyncssh SFTP server with an encrypted password) stores exactly what a local import stores,
including across a cancel and a resume."""

from __future__ import annotations

import asyncio
import base64
import io
import math
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from sftp_server import PASSWORD, SftpServer, sftp_spec
from taskiq import InMemoryBroker

from taskcog.engine.backends import IMPORT_SLICE, SecretBox, TaskiqBackend
from taskcog.engine.pool import LaneConfig, WorkerPool
from taskcog.pipeline.history import HistoryTotals, import_files, plan
from taskcog.pipeline.parsers.deadside import parse_kills_columns
from taskcog.pipeline.parsers.deadside.grammar import BOM
from taskcog.pipeline.remote.codec import RemoteError
from taskcog.pipeline.remote.imports import (
    Part,
    SliceResult,
    import_step,
    parse_slice,
    read_part,
    remote_slice,
    split,
)
from taskcog.pipeline.remote.ingest import SourceCache, make_job
from taskcog.pipeline.sources import LocalSource
from taskcog.pipeline.stats import StatsStore
from taskcog.pipeline.stats.synthetic import write_logs

KILL_DIR = Path("Deadside/Saved/actual1/deathlogs/world_0")
KEY = SecretBox.new_key()


def text_lines(n: int) -> list[bytes]:
    """Lines of very different lengths (1 to ~40 bytes), so cuts land everywhere."""
    return [(b"x" * (n * 7 % 37) + f"{n}".encode()) + b"\n" for n in range(n)]


async def read_all(
    source: LocalSource, path: str, done: int, size: int, newest: bool, budget: int
):
    bodies, cursor = [], done
    for parts in split([(path, done, size, newest)], budget):
        for part in parts:
            body, at, _size = await read_part(source, part)
            bodies.append(body)
            if at is not None:
                assert at >= cursor  # committed in order, a file's cursor only moves on
                cursor = at
    return b"".join(bodies), cursor


async def test_parts_read_every_line_once_wherever_the_file_is_cut(tmp_path: Path) -> None:
    lines = text_lines(24)
    unterminated = b"tail-without-newline"
    data = BOM + b"".join(lines) + unterminated
    (tmp_path / "f.csv").write_bytes(data)
    source, path = LocalSource(str(tmp_path)), str(tmp_path / "f.csv")
    starts = [0] + [len(BOM) + len(b"".join(lines[:i])) for i in range(1, len(lines) + 1)]
    for budget in [*range(1, 16), *range(16, len(data) + 3, 23)]:
        for done in starts[:: max(1, len(starts) // 3)]:
            expected = data[done:].removeprefix(BOM)
            # A finished file: its last line counts even without a newline.
            body, cursor = await read_all(source, path, done, len(data), False, budget)
            assert body == expected + b"\n", (budget, done)
            assert cursor == len(data)
            # The newest file: its unterminated last line waits for the next run.
            body, cursor = await read_all(source, path, done, len(data), True, budget)
            assert body == expected[: -len(unterminated)], (budget, done)
            assert cursor == len(data) - len(unterminated)


def test_split_shares_slices_between_small_files_and_cuts_big_ones() -> None:
    files = [("a", 0, 10, False), ("b", 4, 30, False), ("c", 0, 95, True)]
    slices = split(files, 40)
    assert [[(p.path, p.start, p.end) for p in s] for s in slices] == [
        [("a", 0, 10), ("b", 4, 30)],
        [("c", 0, 40)],
        [("c", 40, 80)],
        [("c", 80, 95)],
    ]
    assert [p.first for s in slices for p in s] == [True, True, True, False, False]
    assert [p.final for s in slices for p in s] == [True, True, False, False, False]
    assert Part.from_list(slices[1][0].to_list()) == slices[1][0]


def memory_backend(cache: SourceCache) -> TaskiqBackend:
    """A TaskiqBackend whose broker runs the worker's slice step in this process."""
    broker = InMemoryBroker()

    async def slice_(job: dict[str, Any]) -> dict[str, Any]:
        return await import_step(job, cache)

    broker.register_task(slice_, task_name=IMPORT_SLICE)
    return TaskiqBackend(broker, answer_timeout=5)


async def test_a_slice_on_a_worker_over_sftp_equals_the_local_parse(tmp_path: Path) -> None:
    folder = tmp_path / KILL_DIR
    folder.mkdir(parents=True)
    paths = write_logs(folder, 3, 120, players=20)
    server = await SftpServer(tmp_path).start()
    spec = sftp_spec(server)
    box = SecretBox(KEY)
    cache = SourceCache(box)
    backend = memory_backend(cache)
    await backend.start()
    try:
        base = make_job("1:eu", spec, {"password": PASSWORD}, None, box)
        assert PASSWORD not in repr(base)  # the password travels as a Fernet token only
        files = [(str(KILL_DIR / p.name), 0, p.stat().st_size, False) for p in paths]
        got = []
        for parts in split(files, 5000):  # ranges cut mid-line, stitched on the worker
            got.append(await remote_slice(backend, base, parts))
        whole = b"".join(p.read_bytes() for p in paths)
        expected = parse_slice([whole]).frame
        assert expected is not None and expected.height > 300
        # The worker sends k, not the id: the bot recomputes the ids the store needs (those
        # of kills over the flag distance), and only those.
        far = pl.col("distance") > 100.0
        frames = [SliceResult(r.cursors, data=r.data).columns(ids_over=100.0) for r in got]
        assert sum(f.height for f in frames) == expected.height
        some = expected.with_columns(id=pl.when(far).then(pl.col("id")))
        assert 0 < expected.filter(far).height < expected.height
        assert pl.concat(frames).equals(some)
        frames = [r.columns(ids_over=-math.inf) for r in got]
        every = expected.with_columns(id=pl.when(pl.col("distance").is_not_null()).then("id"))
        assert pl.concat(frames).equals(every)
        assert sum(r.lines for r in got) == parse_kills_columns(whole, final=True).lines
        assert [c for r in got for c in r.cursors][-1] == (files[-1][0], files[-1][2])
        assert server.logins == 1  # one connection for every slice, kept by the worker

        # A worker without the key refuses in one line and reads nothing.
        keyless = memory_backend(SourceCache(None))
        await keyless.start()
        with pytest.raises(RemoteError, match="no secret key"):
            await remote_slice(keyless, base, split(files[:1])[0])
        await keyless.close()
    finally:
        await backend.close()
        await cache.close()
        await server.stop()


@pytest.fixture
async def pool():
    pool = WorkerPool([LaneConfig("parse", 2), LaneConfig("stats", 1)])
    yield pool
    await pool.shutdown()


async def history_into(
    store: StatsStore,
    source: Any,
    pool: WorkerPool,
    run_slice: Any = None,
    stop_after: int = 0,
    flag_over: float = 1500.0,
) -> HistoryTotals:
    planned = await plan(source, store, pool, 1, "eu")
    totals = HistoryTotals()
    totals.files_total = len(planned.pending)
    commits = 0

    async def step() -> None:
        nonlocal commits
        commits += 1
        if commits == stop_after:
            raise asyncio.CancelledError  # what `[p]tasks stop history` does to the run

    window = 4 if run_slice else 2
    await import_files(
        source, planned, store, pool, 1, totals, flag_over=flag_over, chunk_bytes=6000,
        on_chunk=step, run_slice=run_slice, window=window,
    )  # fmt: skip
    return totals


async def test_a_worker_older_than_its_bot_still_sends_readable_columns(tmp_path: Path) -> None:
    """Upgrading the bot first: a worker from before session 11 sends base64 text with the id
    and without ``k``; the bot reads it as the same columns. Text that is not base64 is a
    one-line error."""
    whole = b"".join(p.read_bytes() for p in write_logs(tmp_path, 2, 60, players=10))
    expected = parse_slice([whole]).frame
    assert expected is not None and expected.height > 50
    buffer = io.BytesIO()
    expected.drop("k").write_ipc_stream(buffer, compression="zstd")
    sent = {"frame": base64.b64encode(buffer.getvalue()).decode()}

    async def old_worker(job: dict[str, Any]) -> dict[str, Any]:
        lines = expected.height
        return {"cursors": [], "bytes": 0, "lines": lines, "malformed": 0, **sent}

    broker = InMemoryBroker()
    broker.register_task(old_worker, task_name=IMPORT_SLICE)
    backend = TaskiqBackend(broker, answer_timeout=5)
    await backend.start()
    try:
        got = await remote_slice(backend, {}, [])
        assert got.columns(ids_over=1500.0).equals(expected)
        sent["frame"] = "not base64!"
        with pytest.raises(RemoteError, match="does not read"):
            await remote_slice(backend, {}, [])
    finally:
        await backend.close()


async def test_history_on_a_worker_stores_what_a_local_import_stores(tmp_path: Path, pool) -> None:
    folder = tmp_path / "host" / KILL_DIR
    folder.mkdir(parents=True)
    write_logs(folder, 8, 150, players=25)
    source = LocalSource(str(tmp_path / "host"))
    local = StatsStore(tmp_path / "local.db")
    local_totals = await history_into(local, source, pool)

    backend = memory_backend(SourceCache(None))
    await backend.start()
    base = make_job("1:eu", {"kind": "local", "base_path": str(tmp_path / "host")}, {}, None, None)

    async def remote(parts: list[Part]):
        return await remote_slice(backend, base, parts)

    try:
        store = StatsStore(tmp_path / "remote.db")
        with pytest.raises(asyncio.CancelledError):
            await history_into(store, source, pool, remote, stop_after=2)
        stopped = store.count_ranked(1, "kills", "all")
        resumed = await history_into(store, source, pool, remote)
        assert 0 < resumed.new < local_totals.new  # the rest, not everything again
        again = await history_into(store, source, pool, remote)
        assert (again.new, again.known, again.lines) == (0, 0, 0)
        assert stopped <= store.count_ranked(1, "kills", "all")
        for board in ("kills", "deaths", "kd", "distance", "streak", "weapon"):
            assert store.top(1, board, "all", limit=25) == local.top(1, board, "all", limit=25)
        assert store.player(1, local.top(1, "kills", "all")[0].player_id) == local.player(
            1, local.top(1, "kills", "all")[0].player_id
        )
    finally:
        await backend.close()


async def test_a_plan_of_more_files_than_a_lane_queues_asks_the_store_once(tmp_path: Path) -> None:
    """A server with thousands of kill files: the plan must not queue one store call per file
    (a lane's queue is bounded: it raised PoolFull)."""
    folder = tmp_path / "host" / KILL_DIR
    write_logs(folder, 40, 5, players=5)
    source = LocalSource(str(tmp_path / "host"))
    store = StatsStore(tmp_path / "s.db")
    tight = WorkerPool([LaneConfig("parse", 1, max_queue=4), LaneConfig("stats", 1, max_queue=4)])
    try:
        first = await history_into(store, source, tight)
        assert first.new > 0 and first.files_total == 40
        planned = await plan(source, store, tight, 1, "eu")
        assert len(planned.files) == 40 and planned.pending == []
    finally:
        await tight.shutdown()
