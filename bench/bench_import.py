"""Benchmark the stats history import: throughput over many files, and RSS growth.

Run from the repository root (a few minutes; ``--rss-lines 0`` skips the RSS run)::

    .venv/bin/python bench/bench_import.py [--files 1000] [--lines 1000000] [--rss-lines 10000000]

``--loop asyncio|uvloop|both`` (default both, uvloop first) is the event loop of the history
task's path, once per loop; ``import_many`` and the anchor run no loop, and the RSS run uses
asyncio's.

Files are generated into a temporary folder (synthetic daily logs, 9 columns, suicides,
vehicle and environmental deaths, a few malformed lines, each file repeating 20 lines of the
day before). The cog's history path (``pipeline.history``: 4 MiB slices read and parsed in the
pool's ``parse`` lane while the ``stats`` lane stores the previous one) and the store's one-call
import (``StatsStore.import_many``: polars parse, ids, dedupe in the batch and
against the database, executemany into SQLite, aggregates grouped in polars and upserted; one
zone's day/week/month rows as a guild that has looked at a board) runs against the anchor in
the same run: a line-by-line ``csv`` + ``sqlite3`` importer of the kind killfeed bots use today.
Prints Markdown tables. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import hashlib
import io
import os
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from event_loops import add_loop_option, chosen_loops, new_event_loop  # noqa: E402

from taskcog.engine.pool import LaneConfig, WorkerPool  # noqa: E402
from taskcog.pipeline.history import HistoryTotals, import_files, plan  # noqa: E402
from taskcog.pipeline.sources import LocalSource  # noqa: E402
from taskcog.pipeline.stats import StatsStore  # noqa: E402
from taskcog.pipeline.stats.synthetic import write_logs  # noqa: E402

KILL_DIR = Path("Deadside/Saved/actual1/deathlogs/world_0")


def history_start(files: int) -> dt.datetime:
    """The first day of ``files`` daily logs that end yesterday: an import is of the server's
    past, so only its last weeks fall in today's, this week's or this month's boards (a fixed
    start date let the logs run on past today, and every later day got period rows)."""
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - dt.timedelta(days=files)


async def _history(store: StatsStore, host: Path) -> int:
    """The cog's own path: plan, 4 MiB slices read and parsed in the ``parse`` lane one ahead
    of the ``stats`` lane storing them with their cursors (``pipeline.history``)."""
    pool = WorkerPool([LaneConfig("parse", 2), LaneConfig("stats", 1)], name="bench")
    try:
        source = LocalSource(str(host))
        planned = await plan(source, store, pool, 1, "main")
        totals = HistoryTotals()
        await import_files(source, planned, store, pool, 1, totals, flag_over=1500.0)
        await pool.submit("stats", store.settle, 1)
        return totals.new
    finally:
        await pool.shutdown()


def history(db: Path, host: Path, loop: str = "asyncio") -> tuple[float, int]:
    store = StatsStore(db)
    store.top(1, "kills", "today", tz="Europe/Berlin")  # the guild's zone: period rows too
    start = time.perf_counter()
    with asyncio.Runner(loop_factory=lambda: new_event_loop(loop)) as runner:
        new = runner.run(_history(store, host))
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed, new


def ours(db: Path, paths: list[Path]) -> tuple[float, int]:
    store = StatsStore(db)
    store.top(1, "kills", "today", tz="Europe/Berlin")  # the guild's zone: period rows too
    start = time.perf_counter()
    chunks = [(p.name, p.read_bytes(), 0, True) for p in paths]
    result = store.import_many(1, "main", chunks)
    store.settle(1)
    elapsed = time.perf_counter() - start
    store.close()
    return elapsed, result.new


def anchor(db: Path, paths: list[Path]) -> tuple[float, int]:
    """What bots do today: csv.reader per line, a hash per line, INSERT OR IGNORE, then an
    UPDATE of the killer's and the victim's totals per new kill; a commit per file."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute(
        "CREATE TABLE kills(id TEXT PRIMARY KEY, at TEXT, killer_id TEXT, victim_id TEXT,"
        " weapon TEXT, distance REAL)"
    )
    con.execute(
        "CREATE TABLE players(id TEXT PRIMARY KEY, name TEXT, kills INTEGER DEFAULT 0,"
        " deaths INTEGER DEFAULT 0, suicides INTEGER DEFAULT 0, longest REAL DEFAULT 0)"
    )
    start = time.perf_counter()
    new = 0
    for path in paths:
        with open(path, newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh, delimiter=";"):
                if len(row) not in (8, 10):
                    continue
                try:
                    dt.datetime.strptime(row[0], "%Y.%m.%d-%H.%M.%S")
                    distance = float(row[6] or 0)
                except ValueError:
                    continue
                key = hashlib.sha1(";".join(row).encode()).hexdigest()
                cur = con.execute(
                    "INSERT OR IGNORE INTO kills VALUES (?, ?, ?, ?, ?, ?)",
                    (key, row[0], row[2], row[4], row[5], distance),
                )
                if cur.rowcount == 0:
                    continue
                new += 1
                for pid, name in ((row[2], row[1]), (row[4], row[3])):
                    if pid:
                        con.execute(
                            "INSERT INTO players(id, name) VALUES (?, ?) ON CONFLICT DO UPDATE"
                            " SET name = excluded.name",
                            (pid, name),
                        )
                if not row[2]:
                    continue
                if row[2] == row[4]:
                    con.execute(
                        "UPDATE players SET suicides = suicides + 1 WHERE id = ?", (row[2],)
                    )
                    continue
                con.execute(
                    "UPDATE players SET kills = kills + 1, longest = max(longest, ?) WHERE id = ?",
                    (distance, row[2]),
                )
                con.execute("UPDATE players SET deaths = deaths + 1 WHERE id = ?", (row[4],))
        con.commit()
    elapsed = time.perf_counter() - start
    con.close()
    return elapsed, new


def rss_run(folder: Path, lines: int, files: int, players: int) -> tuple[float, float, float, int]:
    """Import ``lines`` lines in ``files`` files; (RSS before, peak growth MB, seconds, new)."""
    write_logs(
        folder / "rss" / KILL_DIR,
        files,
        lines // files,
        players=players,
        repeat=20,
        start=history_start(files),
    )
    process = psutil.Process()
    before = process.memory_info().rss
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        elapsed, new = history(folder / "rss.db", folder / "rss")
    finally:
        done.set()
    sampler.join()
    return before / 2**20, (peak - before) / 2**20, elapsed, new


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--players", type=int, default=500)
    parser.add_argument("--rss-lines", type=int, default=10_000_000)
    parser.add_argument("--rss-files", type=int, default=2000)
    parser.add_argument("--rss-players", type=int, default=500)
    add_loop_option(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t = time.perf_counter()
        paths = write_logs(
            folder / "logs" / KILL_DIR,
            args.files,
            args.lines // args.files,
            players=args.players,
            repeat=20,
            start=history_start(args.files),
        )
        total = sum(len(p.read_bytes().splitlines()) for p in paths)
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(
            f"generated {len(paths)} files, {total:,} lines, {size:.0f} MiB in "
            f"{time.perf_counter() - t:.1f} s; cpu count {os.cpu_count()}, "
            f"load {os.getloadavg()[0]:.1f}\n"
        )
        loops = chosen_loops(args.loop)
        paths_by_loop = {
            loop: history(folder / f"history-{loop}.db", folder / "logs", loop) for loop in loops
        }
        ours_s, ours_new = ours(folder / "ours.db", paths)
        anchor_s, anchor_new = anchor(folder / "anchor.db", paths)
        print("| importer | lines | events stored | seconds | lines/s | vs anchor |")
        print("|---|---|---|---|---|---|")
        for loop, (path_s, path_new) in paths_by_loop.items():
            print(
                f"| taskcog history task (`pipeline.history`: parse lane + stats lane), {loop} "
                f"| {total:,} | {path_new:,} | {path_s:.2f} | {total / path_s:,.0f} "
                f"| {anchor_s / path_s:.2f}x |"
            )
        print(
            f"| taskcog `import_many` (one call, one thread) | {total:,} | {ours_new:,} "
            f"| {ours_s:.2f} | "
            f"{total / ours_s:,.0f} | {anchor_s / ours_s:.2f}x |"
        )
        print(
            f"| anchor: `csv` + `sqlite3` line by line | {total:,} | {anchor_new:,} | "
            f"{anchor_s:.2f} | {total / anchor_s:,.0f} | 1.00x |"
        )
        if args.rss_lines:
            before, growth, seconds, new = rss_run(
                folder, args.rss_lines, args.rss_files, args.rss_players
            )
            print(
                "\n| RSS run | lines | files | events stored | seconds | lines/s |"
                " RSS before | peak growth |"
            )
            print("|---|---|---|---|---|---|---|---|")
            print(
                f"| history task path, {args.rss_players:,} players"
                f" | {args.rss_lines:,} | {args.rss_files:,} | "
                f"{new:,} | {seconds:.1f} | {args.rss_lines / seconds:,.0f} | "
                f"{before:.0f} MB | {growth:.0f} MB |"
            )
        _ = io


if __name__ == "__main__":
    main()
