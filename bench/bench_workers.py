"""Scale-out on taskiq workers: a history import on the local pool, 1 and 2 worker processes,
and the latency the broker hop adds to a live killfeed step.

Run from the repository root (Redis on 127.0.0.1:6379 and NATS on 127.0.0.1:4222; names
under a fresh prefix, removed):

    .venv/bin/python bench/bench_workers.py            # 1,000 files, 2,000,000 lines, 8 servers
    .venv/bin/python bench/bench_workers.py --quick    # 100 files, 200,000 lines
    .venv/bin/python bench/bench_workers.py --loop uvloop   # the bot's side on uvloop only
    .venv/bin/python bench/bench_workers.py --broker nats   # NATS JetStream only
    .venv/bin/python bench/bench_workers.py --broker nats --broker-url nats://127.0.0.1:4333

``--loop asyncio|uvloop|both`` is the bot's event loop (default both: uvloop, the loop Red
runs, first); the workers run on uvloop, as ``python -m taskcog.worker`` does. ``--broker
redis|nats|both`` (default both) is the broker; the local-pool rows are measured again in each
run, as that run's anchor. ``--broker-url`` measures another server of that kind (e.g. a
NATS server started with ``GOGC=800``, as docs/benchmarks.md recommends).

Import, twice per place: (1) *read + parse*: the history slices (``pipeline.remote.imports``,
4 MiB of byte ranges each) read and parsed into columns with event ids, the bot decoding every
slice's columns but not storing them: the work that moves to the workers; (2) *end to end*:
the cog's real history path (``pipeline.history``: plan, slices, the stats store written by
the bot in order with the cursors). Each worker runs one slice at a time with one polars
thread (``--concurrency 1 --polars-threads 1``), so a worker is one core; the local pool is a
WorkerPool with the cog's "parse" (2 threads) and "stats" (1) lanes. "bot CPU" is this
process's CPU time while the import runs, "worker CPU" the workers' (psutil).

Killfeed: an in-process SFTP server; each sample appends 5 kill lines, then the same ingest
step runs on the local backend and through one warm worker (each with its own cursor); the
broker hop is the difference per sample. Then unchanged polls count SFTP requests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_parse import generate_log  # noqa: E402
from event_loops import add_loop_option, chosen_loops, new_event_loop  # noqa: E402
from sftp_server import PASSWORD, USERNAME, SftpServer  # noqa: E402
from workers_harness import (  # noqa: E402
    BROKERS,
    bot_backend,
    drop_prefix,
    new_prefix,
    spawn_worker,
    stop_worker,
    wait_live,
)

from taskcog.engine.backends import LocalBackend, SecretBox  # noqa: E402
from taskcog.engine.backends.common import pick, safe_url  # noqa: E402
from taskcog.engine.pool import LaneConfig, WorkerPool  # noqa: E402
from taskcog.pipeline.history import (  # noqa: E402
    CHUNK_BYTES,
    LOCAL_WINDOW,
    HistoryTotals,
    import_files,
    plan,
)
from taskcog.pipeline.remote.imports import (  # noqa: E402
    Part,
    SliceResult,
    import_step,
    local_slice,
    remote_slice,
    split,
)
from taskcog.pipeline.remote.ingest import SourceCache, ingest_step, make_job  # noqa: E402
from taskcog.pipeline.sources import LocalSource  # noqa: E402
from taskcog.pipeline.stats import StatsStore  # noqa: E402
from taskcog.red.tasks.history import REMOTE_WINDOW  # noqa: E402

KEY = SecretBox.new_key()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


KILL_DIR = Path("Deadside/Saved/actual1/deathlogs/world_0")


def write_files(host: Path, files: int, lines: int, servers: int) -> list[Path]:
    """``files`` daily kill files, ``lines`` lines in all, dealt round-robin to ``servers``
    game servers (``host/s0``, ``host/s1``, ...)."""
    data = generate_log(lines, seed=7).splitlines(keepends=True)
    per = len(data) // files
    paths = []
    for n in range(files):
        folder = host / f"s{n % servers}" / KILL_DIR
        folder.mkdir(parents=True, exist_ok=True)
        day = n // servers
        name = f"{2000 + day // 336}.{day // 28 % 12 + 1:02d}.{day % 28 + 1:02d}-00.00.00.csv"
        (folder / name).write_bytes(b"".join(data[n * per : (n + 1) * per]))
        paths.append(folder / name)
    return paths


Runner = Any  # (server index, parts) -> SliceResult


def balanced_guild(servers: int) -> int:
    """A guild id whose servers' keys rendezvous-hash evenly onto workers w0 and w1, so the
    2-worker run measures the workers, not the luck of the hash (8 servers at random split
    5:3 or worse more often than not; a real network's split is binomial)."""
    for guild in range(1, 10_000):
        routed = [pick(f"{guild}:s{n}", ["w0", "w1"]) for n in range(servers)]
        if abs(routed.count("w0") - routed.count("w1")) <= servers % 2:
            return guild
    return 1


async def parse_all(
    run: Runner, todo: list[tuple[int, list[Part]]], window: int
) -> tuple[int, int]:
    """Every slice through ``run``, ``window`` in flight per server; the bot decodes the
    columns it would store (the store write itself is left out here)."""
    rows = lines = 0
    gates: dict[int, asyncio.Semaphore] = {}

    async def one(server: int, parts: list[Part]) -> None:
        nonlocal rows, lines
        async with gates.setdefault(server, asyncio.Semaphore(window)):
            result = await run(server, parts)
        # As the store does: the ids of kills over the cog's default flag distance (1,500 m)
        rows += await asyncio.to_thread(lambda: result.columns(ids_over=1500.0).height)
        lines += result.lines

    await asyncio.gather(*(one(server, parts) for server, parts in todo))
    return rows, lines


async def store_all(
    run: Runner | None, host: Path, servers: int, pool: WorkerPool, db: Path, window: int
) -> tuple[int, int]:
    """The cog's history path (``pipeline.history``): plan, slices, the stats store in order;
    servers one at a time on the local pool, all at once on workers (as the cog does)."""
    store = StatsStore(db)
    totals = HistoryTotals()

    async def one(n: int) -> None:
        source = LocalSource(str(host / f"s{n}"))
        planned = await plan(source, store, pool, 1, f"s{n}")
        remote = None if run is None else (lambda parts, n=n: run(n, parts))
        await import_files(
            source, planned, store, pool, 1, totals, flag_over=1500.0, run_slice=remote,
            window=window,
        )  # fmt: skip

    if run is None:
        for n in range(servers):
            await one(n)
    else:
        await asyncio.gather(*(one(n) for n in range(servers)))
    return totals.new, totals.lines


def procs_cpu(procs: list[Any]) -> float:
    total = 0.0
    for proc in procs:
        times = psutil.Process(proc.pid).cpu_times()
        total += times.user + times.system
    return total


async def timed(work: Any, procs: list[Any] = ()) -> dict[str, float]:  # type: ignore[assignment]
    wall0, cpu0, workers0 = time.perf_counter(), cpu(), procs_cpu(list(procs))
    rows, lines = await work
    return {
        "wall": time.perf_counter() - wall0,
        "bot_cpu": cpu() - cpu0,
        "worker_cpu": procs_cpu(list(procs)) - workers0 if procs else float("nan"),
        "rows": rows,
        "lines": lines,
    }


async def bench_import(
    host: Path, servers: int, store: bool, url: str, repeat: int = 1
) -> tuple[list[tuple[str, str, dict[str, float]]], str]:
    """The read + parse on the local pool, 1 worker and 2 workers, ``repeat`` times in turn
    (each round all three, so a drift of the machine's speed hits them alike); then, with
    ``store``, each place's end-to-end run once."""
    todo: list[tuple[int, list[Part]]] = []
    for n in range(servers):
        folder = host / f"s{n}" / KILL_DIR
        files = [(str(p), 0, p.stat().st_size, False) for p in sorted(folder.iterdir())]
        todo += [(n, parts) for parts in split(files, CHUNK_BYTES)]
    results = []
    guild = balanced_guild(servers)
    pool = WorkerPool([LaneConfig("parse", 2), LaneConfig("stats", 1)], name="bench")
    sources = [LocalSource(str(host / f"s{n}")) for n in range(servers)]
    groups: dict[int, tuple[str, list[Any]]] = {}  # workers -> (prefix, processes)
    local = "local pool (2 threads)"
    labels = {1: "1 worker process", 2: "2 worker processes"}
    try:
        async with contextlib.AsyncExitStack() as stack:

            async def here(n: int, parts: list[Part]) -> SliceResult:
                return await local_slice(sources[n], parts, pool, key=None, priority=None)

            places: dict[str, tuple[Runner, list[Any]]] = {local: (here, [])}
            bases = []
            for n in range(servers):
                spec = {"kind": "local", "base_path": str(host / f"s{n}")}
                base = make_job(f"{guild}:s{n}", spec, {}, None, None)
                base.pop("cursor"), base.pop("max_bytes")
                bases.append(base)
            for count in (1, 2):  # both groups live at once, each under its own prefix
                prefix = new_prefix()
                ids = [f"w{n}" for n in range(count)]
                procs = [
                    spawn_worker(url, prefix, KEY, w, "--concurrency", "1", polars_threads=1)
                    for w in ids
                ]
                groups[count] = (prefix, procs)
                backend = await stack.enter_async_context(bot_backend(url, prefix))
                await wait_live(backend.directory, set(ids))  # type: ignore[arg-type]

                async def there(n: int, parts: list[Part], backend: Any = backend) -> SliceResult:
                    return await remote_slice(backend, bases[n], parts)

                places[labels[count]] = (there, procs)
            for run, _procs in places.values():  # warm polars and every worker
                await parse_all(
                    run, [next(t for t in todo if t[0] == n) for n in range(servers)], 8
                )
            for _round in range(repeat):
                for label, (run, procs) in places.items():
                    window = 2 if label == local else 8
                    results.append(
                        ("parse", label, await timed(parse_all(run, todo, window), procs))
                    )
            if store:
                for label, (run, procs) in places.items():
                    db = host.parent / f"{label.split()[0]}.db"
                    remote = None if label == local else run
                    window = LOCAL_WINDOW if label == local else REMOTE_WINDOW
                    work = store_all(remote, host, servers, pool, db, window)
                    results.append(("store", label, await timed(work, procs)))
    finally:
        for prefix, procs in groups.values():
            for proc in procs:
                stop_worker(proc)
            await drop_prefix(url, prefix)
        await pool.shutdown()
    routed = [pick(str(b["key"]), ["w0", "w1"]) for b in bases]
    spread = ", ".join(f"{w}: {routed.count(w)} servers" for w in ("w0", "w1"))
    return results, spread


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def bench_killfeed(samples: int, url: str) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    kills = tmp / "game" / "deathlogs" / "world_0"
    kills.mkdir(parents=True)
    log = kills / "2025.05.01-00.00.00.csv"
    log.write_bytes(generate_log(1000, seed=3))
    lines = generate_log(samples * 5 + 5, seed=11).splitlines(keepends=True)
    server = await SftpServer(tmp, max_read=None).start()
    box = SecretBox(KEY)
    spec = {
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": server.port,
        "username": USERNAME,
        "base_path": "/game",
        "fingerprint": server.fingerprint,
    }
    secret = {"password": PASSWORD}
    prefix = new_prefix()
    proc = spawn_worker(url, prefix, KEY, "w0")
    cache = SourceCache(box)
    local = LocalBackend(lambda job: ingest_step(job, cache), lambda job: import_step(job, cache))
    try:
        async with bot_backend(url, prefix) as remote:
            await wait_live(remote.directory, {"w0"})  # type: ignore[arg-type]
            backends = {"local": local, "taskiq": remote}
            cursors: dict[str, Any] = {}
            for name, backend in backends.items():
                first = await backend.ingest(make_job("1:b", spec, secret, None, box))
                cursors[name] = first.next_cursor
            await asyncio.sleep(2)  # let the folder mtime settle (see pipeline/remote/ingest)
            for name, backend in backends.items():
                step = await backend.ingest(make_job("1:b", spec, secret, cursors[name], box))
                cursors[name] = step.next_cursor
            times: dict[str, list[float]] = {"local": [], "taskiq": []}
            for n in range(samples):
                with log.open("ab") as handle:
                    handle.write(b"".join(lines[n * 5 : n * 5 + 5]))
                order = ["local", "taskiq"] if n % 2 else ["taskiq", "local"]
                for name in order:
                    job = make_job("1:b", spec, secret, cursors[name], box)
                    t0 = time.perf_counter()
                    result = await backends[name].ingest(job)
                    times[name].append((time.perf_counter() - t0) * 1000)
                    assert len(result.events) == 5 and result.error is None, result
                    cursors[name] = result.next_cursor
            requests = []
            for _ in range(20):
                job = make_job("1:b", spec, secret, cursors["taskiq"], box)
                requests.append((await remote.ingest(job)).requests)
    finally:
        stop_worker(proc)
        await cache.close()
        await server.stop()
        await drop_prefix(url, prefix)
    hop = [r - loc for r, loc in zip(times["taskiq"], times["local"], strict=True)]
    return {"times": times, "hop": hop, "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 files, 200k lines, 100 samples")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--parse-only", action="store_true", help="skip the store runs")
    parser.add_argument("--servers", type=int, default=8, help="game servers the files are on")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of the read + parse runs (median)"
    )
    parser.add_argument("--broker", choices=["redis", "nats", "both"], default="both")
    parser.add_argument(
        "--broker-url",
        help="another server of that --broker kind than the local service, e.g. a NATS server "
        "started with GOGC=800 (see docs/benchmarks.md)",
    )
    add_loop_option(parser)
    args = parser.parse_args()
    if args.quick:
        args.files, args.lines, args.samples = 100, 200_000, 100
    brokers = sorted(BROKERS) if args.broker == "both" else [args.broker]
    if args.broker_url and args.broker == "both":
        parser.error("--broker-url needs --broker redis or --broker nats")
    for loop in chosen_loops(args.loop):
        for broker in brokers:
            url = args.broker_url or BROKERS[broker]
            print(f"\n## the bot on {loop}, workers through {broker} ({safe_url(url)})\n")
            measure(args, loop, url)


def measure(args: argparse.Namespace, loop: str, url: str) -> None:
    """One full run with the bot's side on ``loop``, through the broker at ``url``."""

    def run(coro):
        with asyncio.Runner(loop_factory=lambda: new_event_loop(loop)) as runner:
            return runner.run(coro)

    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} (shared with others)")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        t0 = time.perf_counter()
        host = Path(folder) / "host"
        paths = write_files(host, args.files, args.lines, args.servers)
        size = sum(os.path.getsize(p) for p in paths) / 1e6
        print(f"wrote {len(paths)} files, {args.lines:,} lines, {size:.0f} MB in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        runs, spread = run(bench_import(host, args.servers, not args.parse_only, url, args.repeat))
    print(f"{args.servers} game servers ({args.files // args.servers} files each), guild id "
          f"chosen so that with 2 workers rendezvous hashing routes {spread}")  # fmt: skip
    lines = args.lines - args.lines % args.files
    for kind, title in (
        ("parse", "read + parse into columns (the work that moves to the workers; decoded "
                  "by the bot, not stored)"),
        ("store", "end to end: the real history path into the stats store (bot writes)"),
    ):  # fmt: skip
        rows = [(label, s) for k, label, s in runs if k == kind]
        if not rows:
            continue
        by: dict[str, list[dict[str, float]]] = {}
        for label, s in rows:
            assert s["lines"] == lines, (kind, label, s)
            by.setdefault(label, []).append(s)
        med = {
            label: {key: statistics.median(s[key] for s in got) for key in got[0]}
            for label, got in by.items()
        }
        one = med["1 worker process"]["wall"]
        local_cpu = med["local pool (2 threads)"]["bot_cpu"]
        rounds = len(by["1 worker process"])
        print(f"\n{title}" + (f", median of {rounds} rounds:" if rounds > 1 else ":"))
        print("| where | wall (s) | lines/s | speed-up vs 1 worker | bot CPU (s) "
              "| bot CPU vs local | worker CPU (s) |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, s in med.items():
            print(
                f"| {label} | {s['wall']:.2f} | {s['lines'] / s['wall']:,.0f} | "
                f"{one / s['wall']:.2f}x | {s['bot_cpu']:.2f} | "
                f"{s['bot_cpu'] / local_cpu:.2f}x | {s['worker_cpu']:.2f} |"
            )
        if rounds > 1:
            pairs = zip(by["1 worker process"], by["2 worker processes"], strict=True)
            ratios = [a["wall"] / b["wall"] for a, b in pairs]
            walls = ", ".join(f"{label} " + " / ".join(f"{s['wall']:.2f}" for s in got)
                              for label, got in by.items())  # fmt: skip
            print(f"each round's speed-up 1 -> 2 workers: "
                  f"{', '.join(f'{r:.2f}x' for r in ratios)}; walls (s): {walls}")  # fmt: skip
    feed = run(bench_killfeed(args.samples, url))
    print(f"\nkillfeed step, {args.samples} samples of 5 appended lines (ms):")
    print("| path | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    for name in ("local", "taskiq"):
        t = feed["times"][name]
        print(f"| {name} backend | {pct(t, .5):.2f} | {pct(t, .99):.2f} | {max(t):.2f} |")
    hop = feed["hop"]
    print(
        f"| added by the broker hop | {pct(hop, .5):.2f} | {pct(hop, .99):.2f} | {max(hop):.2f} |"
    )
    req = feed["requests"]
    print(f"\nSFTP requests per unchanged poll on the warm worker: median "
          f"{statistics.median(req):.0f}, max {max(req)} ({len(req)} polls)")  # fmt: skip


if __name__ == "__main__":
    main()
