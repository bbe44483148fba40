"""Scale-out on taskiq workers: a history import on the local pool, 1 and 2 worker processes,
and the latency the broker hop adds to a live killfeed step.

Run from the repository root (Redis on 127.0.0.1:6379; keys under a fresh prefix, removed):

    .venv/bin/python bench/bench_workers.py            # 1,000 files, 2,000,000 lines
    .venv/bin/python bench/bench_workers.py --quick    # 100 files, 200,000 lines

Import: the files are parsed into columns in slices of ``--slice`` files (``import_slice``);
the bot decodes every slice's columns (the stats store write is left out). Each worker runs
one slice at a time with one polars thread (``--concurrency 1 --polars-threads 1``), so a worker
is one core; the local pool is the bot's own WorkerPool ("parse" lane, 2 threads, polars free
to use both cores). "bot CPU" is this process's CPU time while the import runs.

Killfeed: an in-process SFTP server; each sample appends 5 kill lines, then the same ingest
step runs on the local backend and through one warm worker (each with its own cursor); the
broker hop is the difference per sample. Then unchanged polls count SFTP requests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_parse import generate_log  # noqa: E402
from sftp_server import PASSWORD, USERNAME, SftpServer  # noqa: E402
from workers_harness import (  # noqa: E402
    SHARED_REDIS,
    bot_backend,
    drop_prefix,
    new_prefix,
    spawn_worker,
    stop_worker,
    wait_live,
)

from taskcog.engine.backends import LocalBackend, SecretBox  # noqa: E402
from taskcog.engine.pool import WorkerPool  # noqa: E402
from taskcog.pipeline.remote.imports import import_slice, slice_frame, slices  # noqa: E402
from taskcog.pipeline.remote.ingest import SourceCache, ingest_step, make_job  # noqa: E402

KEY = SecretBox.new_key()


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_files(folder: Path, files: int, lines: int) -> list[str]:
    data = generate_log(lines, seed=7).splitlines(keepends=True)
    per = len(data) // files
    paths = []
    for n in range(files):
        path = folder / f"2025.{n // 28 % 12 + 1:02d}.{n % 28 + 1:02d}-{n:05d}.csv"
        path.write_bytes(b"".join(data[n * per : (n + 1) * per]))
        paths.append(str(path))
    return paths


async def import_all(
    backend: Any, paths: list[str], per_slice: int, window: int = 8
) -> tuple[int, int]:
    """Every slice through ``backend``, at most ``window`` in flight (as an importer would)."""
    rows = lines = 0
    gate = asyncio.Semaphore(window)

    async def one(files: list[str]) -> None:
        nonlocal rows, lines
        async with gate:
            result = await backend.import_slice({"files": files})
        rows += slice_frame(result).height  # the bot decodes the columns it would store
        lines += result["lines"]

    await asyncio.gather(*(one(s) for s in slices(paths, per_slice)))
    return rows, lines


async def timed(backend: Any, paths: list[str], per_slice: int) -> dict[str, float]:
    wall0, cpu0, child0 = time.perf_counter(), cpu(), children_cpu()
    rows, lines = await import_all(backend, paths, per_slice)
    return {
        "wall": time.perf_counter() - wall0,
        "bot_cpu": cpu() - cpu0,
        "rows": rows,
        "lines": lines,
        "child0": child0,
    }


async def bench_import(paths: list[str], per_slice: int) -> list[tuple[str, dict[str, float]]]:
    results = []
    pool = WorkerPool()
    try:
        local = LocalBackend(lambda job: ingest_step(job, SourceCache(None)), import_slice, pool)
        await import_all(local, paths[:per_slice], per_slice)  # warm polars
        results.append(("local pool (2 threads)", await timed(local, paths, per_slice)))
    finally:
        await pool.shutdown()
    for count in (1, 2):
        prefix = new_prefix()
        ids = {f"w{n}" for n in range(count)}
        procs = [
            spawn_worker(SHARED_REDIS, prefix, KEY, w, "--concurrency", "1", polars_threads=1)
            for w in sorted(ids)
        ]
        try:
            async with bot_backend(SHARED_REDIS, prefix) as backend:
                await wait_live(backend.directory, ids)  # type: ignore[arg-type]
                await import_all(backend, paths[: per_slice * count], per_slice)  # warm
                stats = await timed(backend, paths, per_slice)
                for proc in procs:
                    stop_worker(proc)
                stats["worker_cpu"] = children_cpu() - stats["child0"]
                label = "1 worker process" if count == 1 else f"{count} worker processes"
                results.append((label, stats))
        finally:
            for proc in procs:
                stop_worker(proc)
            await drop_prefix(SHARED_REDIS, prefix)
    return results


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def bench_killfeed(samples: int) -> dict[str, Any]:
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
    proc = spawn_worker(SHARED_REDIS, prefix, KEY, "w0")
    cache = SourceCache(box)
    local = LocalBackend(lambda job: ingest_step(job, cache), import_slice)
    try:
        async with bot_backend(SHARED_REDIS, prefix) as remote:
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
        await drop_prefix(SHARED_REDIS, prefix)
    hop = [r - loc for r, loc in zip(times["taskiq"], times["local"], strict=True)]
    return {"times": times, "hop": hop, "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 files, 200k lines, 100 samples")
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--slice", type=int, default=10, help="files per import slice")
    parser.add_argument("--samples", type=int, default=300)
    args = parser.parse_args()
    if args.quick:
        args.files, args.lines, args.samples = 100, 200_000, 100
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} (shared with others)")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as folder:
        t0 = time.perf_counter()
        paths = write_files(Path(folder), args.files, args.lines)
        size = sum(os.path.getsize(p) for p in paths) / 1e6
        print(f"wrote {len(paths)} files, {args.lines:,} lines, {size:.0f} MB in "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        runs = asyncio.run(bench_import(paths, args.slice))
    base = {label: stats for label, stats in runs}
    one = base["1 worker process"]["wall"]
    local_cpu = base["local pool (2 threads)"]["bot_cpu"]
    print("\n| where | wall (s) | lines/s | speed-up vs 1 worker | bot CPU (s) | bot CPU vs local "
          "| worker CPU (s) |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, s in runs:
        print(
            f"| {label} | {s['wall']:.2f} | {s['lines'] / s['wall']:,.0f} | "
            f"{one / s['wall']:.2f}x | {s['bot_cpu']:.2f} | {s['bot_cpu'] / local_cpu:.2f}x | "
            f"{s.get('worker_cpu', float('nan')):.2f} |"
        )
        assert s["lines"] == args.lines - args.lines % args.files, s
    feed = asyncio.run(bench_killfeed(args.samples))
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
