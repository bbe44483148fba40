"""Benchmark the Deadside kill-log parser: throughput, and event-loop lag while parsing.

Run from the repository root::

    /work/venv/bin/python bench/bench_parse.py [--lines 1000000] [--seed 7]

Prints Markdown tables (paste them into docs/benchmarks.md, ``## Parsing``). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskcog.pipeline.parsers.deadside import (  # noqa: E402
    parse_kills,
    parse_kills_columns,
    to_events,
)

# Weighted like the real logs: many relocations and a few common guns, a long tail of weapons.
_CAUSES = [
    ("suicide_by_relocation", 30),
    ("IZH-43", 20),
    ("BB-19", 10),
    ("MR5", 9),
    ("falling", 7),
    ("AK-SU", 6),
    ("UAG", 5),
    ("AK-SM", 4),
    ("Skar", 4),
    ("Mosin-K", 3),
    ("Sawed-Off Shotgun", 2),
    ("Folding Knife", 2),
    ("Woodcutter's Axe", 1),
    ("land_vehicle", 1),
    ("boat", 1),
    ("M99", 2),
]
_SELF_CAUSES = {"suicide_by_relocation", "falling"}


def generate_log(lines: int, seed: int = 7, *, malformed_every: int = 0) -> bytes:
    """``lines`` realistic kill-log lines (9 columns, some 7), deterministic for a seed.

    With ``malformed_every=k``, every k-th line is broken in one of several ways.
    """
    rng = random.Random(seed)
    players = []
    for _ in range(2000):
        tag = f"{rng.getrandbits(24):06x}"
        name = f"Survivor {tag}" if rng.random() < 0.25 else f"Survivor_{tag}"
        players.append((name, f"0002{rng.getrandbits(112):028x}", rng.choice(("PS5", "XSX"))))
    causes = [c for c, _ in _CAUSES]
    weights = [w for _, w in _CAUSES]
    t = 1_743_000_000
    out = []
    for i in range(lines):
        t += rng.randint(0, 40)
        stamp = time.strftime("%Y.%m.%d-%H.%M.%S", time.gmtime(t))
        cause = rng.choices(causes, weights)[0]
        victim = rng.choice(players)
        if cause in _SELF_CAUSES:
            killer, distance = victim, "0"
        elif rng.random() < 0.003:
            killer, cause, distance = ("", "", ""), "", "1"
        else:
            killer, distance = rng.choice(players), str(rng.randint(0, 400))
        fields = [stamp, killer[0], killer[1], victim[0], victim[1], cause, distance]
        if i % 10:
            fields += [killer[2], victim[2]]
        line = ";".join(fields) + ";"
        if malformed_every and i % malformed_every == malformed_every - 1:
            line = _break(line, rng)
        out.append(line)
    return ("\n".join(out) + "\n").encode("utf-8", "surrogateescape")


def _break(line: str, rng: random.Random) -> str:
    how = rng.randrange(5)
    if how == 0:
        return line.rsplit(";", 3)[0] + ";"  # too few columns
    if how == 1:
        return "2025.13.40-25.61.61" + line[19:]  # bad timestamp
    if how == 2:
        parts = line.split(";")
        parts[6] = "far"
        return ";".join(parts)  # bad distance
    if how == 3:
        return line + "extra;"  # wrong column count
    return line[:40] + "\udcff\udcfe\x00garbage"  # binary garbage: invalid UTF-8 and a NUL


def _best_run(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Wall and process CPU seconds of the fastest of ``repeat`` runs (CPU counts all threads)."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        run = (time.perf_counter() - wall, time.process_time() - cpu)
        best = min(best, run)
    return best


def _csv_reader(data: bytes) -> int:
    rows = 0
    for _ in csv.reader(io.StringIO(data.decode("utf-8")), delimiter=";"):
        rows += 1
    return rows


def throughput(data: bytes, lines: int, repeat: int) -> list[tuple[str, float, float]]:
    """Lines per second of each parser on the same bytes, and CPU seconds per million lines."""
    columns = parse_kills_columns(data)
    assert columns.lines == lines, (columns.lines, lines)
    runs = [
        ("fast path: `parse_kills_columns` (polars)", lambda: parse_kills_columns(data)),
        (
            "fast path + `to_events` for every row",
            lambda: to_events(parse_kills_columns(data)),
        ),
        ("pure Python: `parse_kills(fast=False)`", lambda: parse_kills(data, fast=False)),
        ("stdlib `csv.reader` (split only, no validation)", lambda: _csv_reader(data)),
    ]
    results = []
    for name, fn in runs:
        wall, cpu = _best_run(fn, repeat)
        results.append((name, lines / wall, cpu * 1e6 / lines))
    return results


async def _lag_while(
    run: Callable[[], Any], executor: Any, at_least: float
) -> tuple[float, float, float, int]:
    """p99 and max lateness (ms) of a 10 ms ticker while ``run`` works in a worker thread.

    ``run`` is repeated until ``at_least`` seconds have passed, so a fast parse still gives
    enough ticks for a p99. Also returns the seconds of one run and how many runs there were.
    """
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            due = loop.time() + 0.010
            await asyncio.sleep(0.010)
            lags.append(max(0.0, loop.time() - due) * 1000)

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    runs = 0
    while runs == 0 or time.perf_counter() - start < at_least:
        await executor(run)
        runs += 1
    elapsed = time.perf_counter() - start
    done.set()
    await tick
    lags.sort()
    p99 = lags[min(len(lags) - 1, int(len(lags) * 0.99))]
    return p99, lags[-1], elapsed / runs, runs


def _executor() -> tuple[str, Callable[[Callable[[], Any]], Any], Callable[[], Any]]:
    """The shared WorkerPool's "parse" lane when it exists, else a plain thread pool."""
    try:
        from taskcog.engine.pool import WorkerPool
    except ImportError:
        threads = ThreadPoolExecutor(max_workers=1)

        async def submit_threads(fn: Callable[[], Any]) -> Any:
            return await asyncio.get_running_loop().run_in_executor(threads, fn)

        async def close_threads() -> None:
            threads.shutdown()

        return "`concurrent.futures.ThreadPoolExecutor`", submit_threads, close_threads
    pool = WorkerPool()

    async def submit(fn: Callable[[], Any]) -> Any:
        return await pool.submit("parse", fn)

    return '`taskcog.engine.pool.WorkerPool`, lane "parse"', submit, pool.shutdown


async def lag(data: bytes) -> tuple[str, list[tuple[str, float, float, float]]]:
    name, submit, close = _executor()
    rows = []
    try:
        for label, fn in (
            ("idle (ticker alone)", lambda: time.sleep(0.5)),
            ("pure Python in a thread", lambda: parse_kills(data, fast=False)),
            ("fast path in a thread", lambda: parse_kills_columns(data)),
        ):
            rows.append((label, *await _lag_while(fn, submit, at_least=3.0)))
    finally:
        await close()
    return name, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = generate_log(args.lines, args.seed)
    print(f"{args.lines:,} generated lines, {len(data) / 1e6:.1f} MB, seed {args.seed}\n")

    results = throughput(data, args.lines, args.repeat)
    csv_rate = results[-1][1]
    print("| parser | lines/s | vs csv.reader | CPU s per 1M lines |")
    print("|---|---:|---:|---:|")
    for name, rate, cpu in results:
        print(f"| {name} | {rate:,.0f} | {rate / csv_rate:.2f}x | {cpu:.2f} |")

    executor, rows = asyncio.run(lag(data))
    print(f"\nEvent-loop lag of a 10 ms ticker; worker: {executor}\n")
    print("| while | p99 lag (ms) | max lag (ms) | one parse (s) | parses |")
    print("|---|---:|---:|---:|---:|")
    for label, p99, worst, seconds, runs in rows:
        print(f"| {label} | {p99:.1f} | {worst:.1f} | {seconds:.2f} | {runs} |")


if __name__ == "__main__":
    main()
