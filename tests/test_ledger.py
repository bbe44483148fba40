"""The killfeed ledger on real SQLite files: cursors, posted ids, batches, pruning, crashes."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from taskcog.engine.pool import LaneConfig, WorkerPool
from taskcog.pipeline.ledger import DEFAULT_RETENTION, AsyncLedger, Ledger

ROOT = Path(__file__).resolve().parent.parent
SCOPE = "111:Main server"
OTHER = "222:Other server"
T0 = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)


class SetClock:
    """A wall clock the test sets; read from pool threads, so a plain attribute."""

    def __init__(self, now: dt.datetime) -> None:
        self.at = now

    def now(self) -> dt.datetime:
        return self.at

    def monotonic(self) -> float:
        return 0.0


@pytest.fixture
def ledger(tmp_path: Path):
    ledger = Ledger(tmp_path / "killfeed.sqlite3")
    yield ledger
    ledger.close()


def test_ledger_uses_wal_and_full_sync(ledger: Ledger) -> None:
    db = sqlite3.connect(ledger.path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
    assert ledger._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_cursor_round_trips_per_scope_and_stream(ledger: Ledger) -> None:
    assert ledger.get_cursor(SCOPE, "kills") is None
    cursor = {"stream": "kills", "path": "/a/2025.05.01.csv", "offset": 120, "mtime": 1.5}
    ledger.set_cursor(SCOPE, "kills", cursor)
    ledger.set_cursor(SCOPE, "server_log", {"stream": "server_log", "offset": 7})
    assert ledger.get_cursor(SCOPE, "kills") == cursor
    assert ledger.get_cursor(OTHER, "kills") is None
    ledger.set_cursor(SCOPE, "kills", {**cursor, "offset": 240})
    assert ledger.get_cursor(SCOPE, "kills")["offset"] == 240


def test_posted_answers_which_ids_are_known_in_that_scope_only(ledger: Ledger) -> None:
    ids = [f"{i:024x}" for i in range(1200)]  # more than one IN (...) query's worth
    ledger.begin_batch(SCOPE, "b1", ids[:700])
    assert ledger.posted(SCOPE, ids) == set()  # pending is not posted
    ledger.commit_batch(SCOPE, "b1", 42, ids[:700])
    assert ledger.posted(SCOPE, ids) == set(ids[:700])
    assert ledger.posted(OTHER, ids) == set()
    assert ledger.posted(SCOPE, iter(["nope", ids[3], ids[3]])) == {ids[3]}
    assert ledger.posted(SCOPE, []) == set()


def test_begin_unposted_checks_and_begins_in_one_transaction(ledger: Ledger) -> None:
    ledger.begin_batch(SCOPE, "old", ["a", "b"])
    ledger.commit_batch(SCOPE, "old", 7, ["a", "b"])
    # a, b posted: the batch holds the others, in order, once each
    assert ledger.begin_unposted(SCOPE, "new", ["c", "a", "d", "c", "b"], 10) == {"a", "b"}
    assert ledger.pending(SCOPE) == [("new", ["c", "d"])]
    # all posted: nothing to begin
    assert ledger.begin_unposted(SCOPE, "none", ["a", "b"], 10) == {"a", "b"}
    # more than one message's worth: only the check, the caller begins batch by batch
    assert ledger.begin_unposted(SCOPE, "big", ["x", "y", "z"], 2) == set()
    assert ledger.pending(SCOPE) == [("new", ["c", "d"])]
    # the other scope's posts do not count here
    assert ledger.begin_unposted(OTHER, "o", ["a"], 10) == set()
    assert ledger.pending(OTHER) == [("o", ["a"])]


def test_pending_batches_are_listed_until_committed_or_dropped(ledger: Ledger) -> None:
    ledger.begin_batch(SCOPE, "first", ["a", "b"])
    ledger.begin_batch(SCOPE, "second", ["c"])
    ledger.begin_batch(OTHER, "elsewhere", ["z"])
    assert ledger.pending(SCOPE) == [("first", ["a", "b"]), ("second", ["c"])]
    ledger.commit_batch(SCOPE, "first", 1001, ["a", "b"])
    ledger.drop_batch(SCOPE, "second")
    assert ledger.pending(SCOPE) == []
    assert ledger.posted(SCOPE, "abc") == {"a", "b"}
    assert ledger.pending(OTHER) == [("elsewhere", ["z"])]
    assert ledger.last_message_id(SCOPE) == 1001 and ledger.last_message_id(OTHER) is None


def test_commit_batch_is_all_or_nothing(ledger: Ledger) -> None:
    ledger.begin_batch(SCOPE, "b", ["a", "b"])
    # The second id cannot be bound, after the first row was inserted: the whole commit rolls
    # back, so the batch stays pending and no id is marked posted.
    with pytest.raises(sqlite3.Error):
        ledger.commit_batch(SCOPE, "b", 7, ["a", object()])  # type: ignore[list-item]
    assert ledger.posted(SCOPE, ["a", "b"]) == set()
    assert ledger.pending(SCOPE) == [("b", ["a", "b"])]
    ledger.commit_batch(SCOPE, "b", 7, ["a", "b"])  # and the ledger is still usable
    assert ledger.posted(SCOPE, ["a", "b"]) == {"a", "b"}


def test_data_survives_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "killfeed.sqlite3"
    ledger = Ledger(path)
    ledger.set_cursor(SCOPE, "kills", {"offset": 99})
    ledger.begin_batch(SCOPE, "open", ["x"])
    ledger.begin_batch(SCOPE, "done", ["y"])
    ledger.commit_batch(SCOPE, "done", 5, ["y"])
    ledger.close()
    ledger.close()  # idempotent
    with pytest.raises(sqlite3.ProgrammingError):
        ledger.posted(SCOPE, ["y"])
    again = Ledger(path)
    try:
        assert again.get_cursor(SCOPE, "kills") == {"offset": 99}
        assert again.pending(SCOPE) == [("open", ["x"])]
        assert again.posted(SCOPE, ["x", "y"]) == {"y"}
    finally:
        again.close()


def test_prune_deletes_only_ids_older_than_the_retention(tmp_path: Path) -> None:
    clock = SetClock(T0)
    ledger = Ledger(tmp_path / "k.sqlite3", clock=clock)
    try:
        ledger.begin_batch(SCOPE, "old", ["old1", "old2"])
        ledger.commit_batch(SCOPE, "old", 1, ["old1", "old2"])
        clock.at = T0 + dt.timedelta(days=10)
        ledger.begin_batch(OTHER, "new", ["new1"])
        ledger.commit_batch(OTHER, "new", 2, ["new1"])
        clock.at = T0 + dt.timedelta(days=15)
        assert ledger.prune(dt.timedelta(days=30)) == 0
        assert ledger.prune(DEFAULT_RETENTION) == 2  # 15 days > 14 > 5 days
        assert ledger.posted(SCOPE, ["old1", "old2"]) == set()
        assert ledger.posted(OTHER, ["new1"]) == {"new1"}
        assert ledger.prune(dt.timedelta(days=1), now=T0 + dt.timedelta(days=12)) == 1
        assert ledger.posted(OTHER, ["new1"]) == set()
    finally:
        ledger.close()


def test_forget_scope_removes_everything_of_that_scope_only(ledger: Ledger) -> None:
    for scope in (SCOPE, OTHER):
        ledger.set_cursor(scope, "kills", {"offset": 1})
        ledger.begin_batch(scope, "p", ["pending-id"])
        ledger.begin_batch(scope, "c", ["posted-id"])
        ledger.commit_batch(scope, "c", 9, ["posted-id"])
    assert ledger.scopes() == sorted([SCOPE, OTHER])
    ledger.forget_scope(SCOPE)
    assert ledger.scopes() == [OTHER]
    assert ledger.get_cursor(SCOPE, "kills") is None
    assert ledger.pending(SCOPE) == [] and ledger.posted(SCOPE, ["posted-id"]) == set()
    assert ledger.stats(OTHER)["posted"] == 1


def test_stats_counts_posted_pending_and_shows_cursors(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "k.sqlite3", clock=SetClock(T0))
    try:
        assert ledger.stats(SCOPE) == {
            "posted": 0,
            "pending": 0,
            "last_posted": None,
            "cursors": {},
        }
        ledger.set_cursor(SCOPE, "kills", {"offset": 3})
        ledger.begin_batch(SCOPE, "a", ["1", "2", "3"])
        ledger.commit_batch(SCOPE, "a", 10, ["1", "2", "3"])
        ledger.begin_batch(SCOPE, "b", ["4"])
        assert ledger.stats(SCOPE) == {
            "posted": 3,
            "pending": 1,
            "last_posted": T0,
            "cursors": {"kills": {"offset": 3}},
        }
    finally:
        ledger.close()


async def test_async_ledger_runs_on_the_db_lane_and_is_safe_from_many_threads(
    tmp_path: Path,
) -> None:
    """Four db workers commit 200 batches at once while others read: no lost or torn rows."""
    pool = WorkerPool([LaneConfig("db", 4, max_queue=2000)])
    ledger = AsyncLedger(Ledger(tmp_path / "k.sqlite3"), pool)
    threads: set[str] = set()
    original = ledger.ledger.commit_batch

    def commit(*args: object) -> None:
        threads.add(threading.current_thread().name)
        original(*args)  # type: ignore[arg-type]

    ledger.ledger.commit_batch = commit  # type: ignore[method-assign]
    try:

        async def one(n: int) -> set[str]:
            ids = [f"{n}-{k}" for k in range(10)]
            await ledger.begin_batch(SCOPE, f"batch-{n}", ids)
            await ledger.commit_batch(SCOPE, f"batch-{n}", n, ids)
            await ledger.set_cursor(SCOPE, "kills", {"offset": n})
            return await ledger.posted(SCOPE, ids)

        results = await asyncio.gather(*(one(n) for n in range(200)))
        assert all(len(found) == 10 for found in results)
        stats = await ledger.stats(SCOPE)
        assert stats["posted"] == 2000 and stats["pending"] == 0
        assert threading.current_thread().name not in threads and len(threads) > 1
        assert pool.metrics()["db"].done >= 800 and pool.metrics()["db"].failed == 0
        assert await ledger.scopes() == [SCOPE]
        assert await ledger.prune(now=T0) == 0
        await ledger.forget_scope(SCOPE)
        assert await ledger.pending(SCOPE) == []
    finally:
        await ledger.close()
        await pool.shutdown()


_CRASH_LOOP = """
import sys
sys.path.insert(0, {root!r})
from taskcog.pipeline.ledger import Ledger
ledger = Ledger({path!r})
n = 0
while True:
    ids = [f"{{n}}-{{k}}" for k in range(10)]
    ledger.begin_batch("s", f"batch-{{n}}", ids)
    print(n, flush=True)
    ledger.commit_batch("s", f"batch-{{n}}", n, ids)
    ledger.set_cursor("s", "kills", {{"batch": n}})
    n += 1
"""


@pytest.mark.parametrize("batches_before_kill", [1, 25, 120])
def test_sigkill_mid_batch_leaves_each_batch_wholly_pending_or_wholly_posted(
    tmp_path: Path, batches_before_kill: int
) -> None:
    """A writer process is SIGKILLed at an arbitrary point; the file is consistent after."""
    path = str(tmp_path / "k.sqlite3")
    script = _CRASH_LOOP.format(root=str(ROOT), path=path)
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None
        for _ in range(batches_before_kill):
            last = int(writer.stdout.readline())
    finally:
        writer.kill()
        writer.wait(timeout=10)
    ledger = Ledger(path)
    try:
        pending = dict(ledger.pending("s"))
        assert len(pending) <= 1
        begun = last
        while ledger.posted("s", [f"{begun + 1}-0"]) or f"batch-{begun + 1}" in pending:
            begun += 1  # the writer got further than the last line we read
        for n in range(begun + 1):
            ids = [f"{n}-{k}" for k in range(10)]
            posted = ledger.posted("s", ids)
            if f"batch-{n}" in pending:
                assert n == begun and posted == set(), "a pending batch has posted ids"
            else:
                assert posted == set(ids), f"batch {n} is neither pending nor fully posted"
        cursor = ledger.get_cursor("s", "kills")
        assert cursor is None or cursor["batch"] <= begun
    finally:
        ledger.close()
