"""A history import must not freeze the bot: event-loop lag, and the live killfeed's latency,
while an import runs, against the same figures with the bot idle (anchors in the same run).

What runs is what the bot runs: the worker pool with the cog's lanes and priorities, the real
stats store (SQLite) and its import (``taskcog.pipeline.history``) reading local kill files,
and the live killfeed's ``ingest_once`` (real parser, ledger, sink into a simcord channel, and
the stats observer storing every kill first) tailing another folder.

- **lag**: :class:`~taskcog.engine.lag.ThreadLagMonitor` probes from a helper thread (every
  5 ms on average) how long the loop takes to answer; targets p99 <= 10 ms and max <= 50 ms.
- **append -> post**: one kill appended to the live file, then ``ingest_once``; the time until
  its message is sent. The feed runs as the cog's killfeed task runs it: the ledger with
  ``memo=True`` (this process is its one writer) and the server's ``ServerPoller`` (the folder
  listing kept between ticks). Idle first, then the same trials while the import runs;
  target <= 2x.

Run from the repository root::

    .venv/bin/python bench/bench_import_live.py            # 200 files, 1,000,000 lines
    .venv/bin/python bench/bench_import_live.py --quick    # 40 files, 100,000 lines

Prints a Markdown table (docs/benchmarks.md, "History import under load"). Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_tail import KillLines, _TimedChannel, append  # noqa: E402

from taskcog.engine.lag import ThreadLagMonitor  # noqa: E402
from taskcog.engine.pool import LaneConfig, WorkerPool  # noqa: E402
from taskcog.pipeline.history import HistoryTotals, import_files, plan  # noqa: E402
from taskcog.pipeline.killfeed import ingest_once  # noqa: E402
from taskcog.pipeline.ledger import AsyncLedger, Ledger  # noqa: E402
from taskcog.pipeline.sinks.discord import KillfeedSink  # noqa: E402
from taskcog.pipeline.sources import LocalSource  # noqa: E402
from taskcog.pipeline.sources.shared import ServerPoller  # noqa: E402
from taskcog.pipeline.stats import StatsStore  # noqa: E402
from taskcog.red.cog import POOL_NICE  # noqa: E402

# The cog's pool (taskcog/red/cog.py LANE_PRIORITY, stores/settings.py DEFAULT_POOL) and the
# priorities of taskcog/red/statsfeed.py.
LANES = [
    LaneConfig("parse", 2, priority=0),
    LaneConfig("io", 4, priority=1),
    LaneConfig("db", 1, priority=2),
    LaneConfig("stats", 1, priority=3),
]
LIVE, HISTORY = 1, 5
GUILD = 1


def write_history(folder: Path, files: int, lines: int) -> int:
    kills = KillLines()
    world = folder / "deathlogs" / "world_0"
    world.mkdir(parents=True)
    for n in range(files):
        day, hour = divmod(n, 24)
        name = f"2025.{1 + day // 28:02d}.{1 + day % 28:02d}-{hour:02d}.00.00.csv"
        (world / name).write_bytes(kills.next(lines))
    return files * lines


class FullCollections:
    """Full (generation 2) garbage collections and how long each stopped the process (ms):
    the import runs with the heap alive at its start frozen (``engine.heap``)."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._start = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._start) * 1000)

    def take(self) -> tuple[int, float]:
        """(collections, longest ms) since the last take."""
        pauses, self.pauses = self.pauses, []
        return len(pauses), max(pauses, default=0.0)

    def close(self) -> None:
        gc.callbacks.remove(self._on)


def spread(samples: list[float]) -> tuple[float, float, float]:
    p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1] if len(samples) > 1 else 0
    return statistics.median(samples), p90, max(samples)


def lag_ms(monitor: ThreadLagMonitor) -> tuple[float, float, float, int]:
    stats = monitor.stats()
    return (stats.p50 or 0) * 1000, (stats.p99 or 0) * 1000, (stats.max or 0) * 1000, stats.samples


async def run(files: int, lines: int, trials: int, nice: int = POOL_NICE) -> str:
    import discord
    import simcord
    from discord.ext import commands

    tmp = Path(tempfile.mkdtemp(prefix="taskcog-bench-import-"))
    total = write_history(tmp / "history", files, lines)
    live_dir = tmp / "live" / "deathlogs" / "world_0"
    live_dir.mkdir(parents=True)
    live_file = live_dir / "2026.01.01-00.00.00.csv"
    live_lines = KillLines()
    live_lines.count = 10_000_000  # other ids than the history's
    append(live_file, live_lines.next(1))
    pool = WorkerPool(LANES, name="bench", nice=nice)
    store = StatsStore(tmp / "stats.sqlite3")
    ledger = Ledger(tmp / "killfeed.sqlite3")
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all())
    collections = FullCollections()
    try:
        async with simcord.run(bot) as env:
            handle = env.create_guild().create_text_channel("killfeed")
            channel = _TimedChannel(bot.get_channel(handle.id))
            async_ledger = AsyncLedger(ledger, pool, memo=True)  # as the cog (red/cog.py)
            scope = f"{GUILD}:live"
            sink = KillfeedSink(channel, async_ledger, scope)  # type: ignore[arg-type]
            live = LocalSource(str(tmp / "live"))
            poller = ServerPoller(live)  # as the cog's killfeed task (red/stores/servers.py)

            async def observe(events: list) -> None:
                await pool.submit("stats", store.add_events, GUILD, "eu1", events, priority=LIVE)

            async def one_trial(n: int) -> float:
                append(live_file, live_lines.next(1, victim=f"Bench victim {n}"))
                start = time.perf_counter()
                report = await ingest_once(
                    live, sink, async_ledger, pool, scope, poller=poller, observe=observe
                )
                assert report.posted == 1, report
                return ((channel.sent_at or start) - start) * 1000

            await ingest_once(
                live, sink, async_ledger, pool, scope, poller=poller, observe=observe
            )
            await one_trial(-1)  # warm threads and caches
            monitor = ThreadLagMonitor(interval=0.005, window=3600)
            monitor.start()
            collections.take()
            idle = [await one_trial(n) for n in range(trials)]
            await asyncio.sleep(1.0)
            idle_lag = lag_ms(monitor)
            idle_gc = collections.take()
            await monitor.stop()

            source = LocalSource(str(tmp / "history"))
            totals = HistoryTotals()
            monitor = ThreadLagMonitor(interval=0.005, window=3600)
            monitor.start()
            started = time.perf_counter()

            async def do_import() -> None:
                planned = await plan(source, store, pool, GUILD, "eu1", priority=HISTORY)
                totals.files_total = len(planned.pending)
                totals.bytes_total = planned.left_bytes
                await import_files(
                    source,
                    planned,
                    store,
                    pool,
                    GUILD,
                    totals,
                    flag_over=1500.0,
                    priority=HISTORY,
                )

            importing = asyncio.ensure_future(do_import())
            busy: list[float] = []
            n = trials
            while not importing.done():
                busy.append(await one_trial(n))
                n += 1
                await asyncio.sleep(0.05)
            await importing
            took = time.perf_counter() - started
            busy_lag = lag_ms(monitor)
            busy_gc = collections.take()
            await monitor.stop()
    finally:
        collections.close()
        await pool.shutdown()
        store.close()
        ledger.close()
    assert totals.new + totals.known == total, (totals.new, totals.known, total)
    i_med, i_p90, i_max = spread(idle)
    b_med, b_p90, b_max = spread(busy)
    ratio = b_med / i_med if i_med else float("inf")
    lag_ok = busy_lag[1] <= 10 and busy_lag[2] <= 50
    out = [
        f"History import of {files:,} files, {total:,} lines ({totals.lines / took:,.0f} "
        f"lines/s end to end, while the live feed polled) with the bot's pool (threads at "
        f"nice {nice}) and the real store; {os.cpu_count()} CPUs, {sys.version.split()[0]}, "
        f"GIL switch interval {sys.getswitchinterval() * 1000:g} ms.",
        "",
        "| | idle (anchor) | during the import | ratio | target |",
        "|---|---:|---:|---:|---|",
        f"| append -> post, median ms | {i_med:,.1f} | {b_med:,.1f} | {ratio:.2f}x | <= 2x |",
        f"| append -> post, p90 ms | {i_p90:,.1f} | {b_p90:,.1f} | "
        f"{b_p90 / i_p90 if i_p90 else 0:.2f}x | |",
        f"| append -> post, max ms | {i_max:,.1f} | {b_max:,.1f} | | |",
        f"| trials | {len(idle)} | {len(busy)} | | |",
        f"| loop lag p50 ms | {idle_lag[0]:,.2f} | {busy_lag[0]:,.2f} | | |",
        f"| loop lag p99 ms | {idle_lag[1]:,.2f} | {busy_lag[1]:,.2f} | | <= 10 ms |",
        f"| loop lag max ms | {idle_lag[2]:,.2f} | {busy_lag[2]:,.2f} | | <= 50 ms |",
        f"| lag samples | {idle_lag[3]} | {busy_lag[3]} | | |",
        f"| full GC collections | {idle_gc[0]} | {busy_gc[0]} | | |",
        f"| longest full GC ms | {idle_gc[1]:,.2f} | {busy_gc[1]:,.2f} | | |",
        "",
        f"Targets: lag {'met' if lag_ok else 'MISSED'}; latency within 2x "
        f"{'met' if ratio <= 2 else 'MISSED'}.",
    ]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 files, 100,000 lines")
    parser.add_argument("--files", type=int, default=None)
    parser.add_argument("--lines", type=int, default=None, help="lines per file")
    parser.add_argument("--trials", type=int, default=21, help="idle latency trials")
    parser.add_argument(
        "--nice", type=int, default=POOL_NICE, help=f"pool threads' niceness (cog: {POOL_NICE})"
    )
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=None,
        help="sys.setswitchinterval() for the whole run, seconds (default: Python's 0.005)",
    )
    args = parser.parse_args()
    if args.switch_interval is not None:
        sys.setswitchinterval(args.switch_interval)
    files = args.files or (40 if args.quick else 200)
    lines = args.lines or (2_500 if args.quick else 5_000)
    print(asyncio.run(run(files, lines, args.trials, args.nice)))


if __name__ == "__main__":
    main()
