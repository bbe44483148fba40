"""Scheduler benchmark: taskcog's Supervisor against discord.ext.tasks and APScheduler 3.

Each (implementation, N) runs in a fresh subprocess so memory is measured cleanly. Every
implementation runs N no-op jobs on a 60 s interval with first fires spread over the interval
(steady state: N/60 runs per second), on the real clock. After a warm-up it measures:

- CPU: process time / wall time over the measurement window;
- memory per job: (RSS after creating the jobs - RSS before) / N, and again at the end of the
  run (after every job has run at least once when warm-up + window >= interval);
- lateness: actual start - intended time, measured inside the body (taskcog: the fire it
  serves; ext.tasks and APScheduler: the intended time from our own even spread).

Usage::

    python bench/bench_scheduler.py                       # 1000,10000,30000 jobs, ~6 minutes
    python bench/bench_scheduler.py --quick               # small and short, ~1 minute
    python bench/bench_scheduler.py --jobs 30000 --interval 60 --warmup 15 --seconds 45

Prints a Markdown table (and the ratios against both anchors).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import gc
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMPLS = ("taskcog", "taskcog-3ms", "ext.tasks", "apscheduler")
ANCHORS = ("ext.tasks", "apscheduler")
UTC = _dt.UTC


# ---------------------------------------------------------------------------- child side


class Probe:
    """Lateness samples, taken only inside the measurement window."""

    def __init__(self) -> None:
        self.on = False
        self.samples: list[float] = []
        self.runs = 0

    def record(self, intended: float) -> None:
        if self.on:
            self.samples.append(time.time() - intended)
            self.runs += 1


async def _setup_taskcog(n: int, interval: float, probe: Probe, resolution: float = 0.0) -> Any:
    from taskcog.engine.schedules import IntervalSchedule
    from taskcog.engine.supervisor import JobContext, JobSpec, Supervisor, TaskDefinition

    spec = JobSpec(True, IntervalSchedule(interval))

    async def body(ctx: JobContext) -> None:
        probe.record(ctx.scheduled_for.timestamp())

    sup = Supervisor(resolution=resolution)
    sup.add(TaskDefinition("bench", body, provider=lambda key: spec, keys=lambda: range(n)))
    await sup.start()
    while sup.job_count() < n:  # noqa: ASYNC110 - the dispatcher creates them in the background
        await asyncio.sleep(0.01)
    return sup


async def _setup_ext_tasks(n: int, interval: float, probe: Probe) -> Any:
    from discord.ext import tasks

    go = asyncio.Event()
    origin: list[float] = []  # set once every loop exists, so slow setup is not lateness
    step = interval / n
    loops = []

    def make(offset: float) -> Any:
        holder: list[Any] = []

        async def body() -> None:
            probe.record(origin[0] + offset + holder[0].current_loop * interval)

        async def before() -> None:
            await go.wait()
            await asyncio.sleep(max(0.0, origin[0] + offset - time.time()))

        lp = tasks.loop(seconds=interval)(body)
        lp.before_loop(before)
        holder.append(lp)
        return lp

    for i in range(n):
        lp = make(i * step)
        lp.start()
        loops.append(lp)
    await asyncio.sleep(0.1)  # every loop task has started
    origin.append(time.time() + 0.5)
    go.set()
    await asyncio.sleep(0.2)
    return loops


async def _setup_apscheduler(n: int, interval: float, probe: Probe) -> Any:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    async def body(base: float) -> None:
        now = time.time()
        probe.record(base + round((now - base) / interval) * interval)

    sched = AsyncIOScheduler(timezone=UTC)
    t0 = time.time() + 1.0 + n * 1e-4  # after adding the jobs (about 2 s for 30k)
    step = interval / n
    for i in range(n):
        base = t0 + i * step
        start = _dt.datetime.fromtimestamp(base, UTC)
        sched.add_job(
            body,
            IntervalTrigger(seconds=interval, start_date=start, timezone=UTC),
            args=(base,),
            id=str(i),
            misfire_grace_time=3600,
            coalesce=False,
            max_instances=1,
        )
    sched.start()
    await asyncio.sleep(0.5)
    return sched


SETUP = {
    "taskcog": _setup_taskcog,
    "taskcog-3ms": lambda n, interval, probe: _setup_taskcog(n, interval, probe, 0.003),
    "ext.tasks": _setup_ext_tasks,
    "apscheduler": _setup_apscheduler,
}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _child(impl: str, n: int, interval: float, warmup: float, window: float) -> dict:
    # Import everything the implementation needs before the baseline.
    import apscheduler.schedulers.asyncio  # noqa: F401
    import discord.ext.tasks  # noqa: F401
    import psutil

    import taskcog.engine.supervisor  # noqa: F401

    proc = psutil.Process()
    probe = Probe()
    gc.collect()
    rss0 = proc.memory_info().rss
    started = time.perf_counter()
    keep = await SETUP[impl](n, interval, probe)
    setup_s = time.perf_counter() - started
    gc.collect()
    rss_created = proc.memory_info().rss
    await asyncio.sleep(warmup)
    probe.on = True
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(window)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    probe.on = False
    gc.collect()
    rss_end = proc.memory_info().rss
    del keep
    return {
        "impl": impl,
        "n": n,
        "setup_s": setup_s,
        "cpu": (cpu1 - cpu0) / (wall1 - wall0),
        "mem_created": (rss_created - rss0) / n,
        "mem_end": (rss_end - rss0) / n,
        "p50_ms": 1000 * (percentile(probe.samples, 0.50) or 0.0),
        "p99_ms": 1000 * (percentile(probe.samples, 0.99) or 0.0),
        "max_ms": 1000 * max(probe.samples, default=0.0),
        "runs": probe.runs,
        "expected_runs": n * window / interval,
    }


def child_main(args: argparse.Namespace) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    result = loop.run_until_complete(
        _child(args.child, args.n, args.interval, args.warmup, args.seconds)
    )
    print(json.dumps(result), flush=True)
    os._exit(0)  # skip tearing down 30k loops: not part of what we measure


# ---------------------------------------------------------------------------- parent side


def _run_all(args: argparse.Namespace, jobs: list[int]) -> list[dict]:
    todo = [(impl, n) for n in jobs for impl in IMPLS]
    running: list[tuple[tuple[str, int], subprocess.Popen[str]]] = []
    results: list[dict] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    while todo or running:
        while todo and len(running) < args.parallel:
            impl, n = todo.pop(0)
            cmd = [
                sys.executable,
                __file__,
                "--child",
                impl,
                "--n",
                str(n),
                "--interval",
                str(args.interval),
                "--warmup",
                str(args.warmup),
                "--seconds",
                str(args.seconds),
            ]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
            running.append(((impl, n), proc))
        (impl, n), proc = running.pop(0)
        out, _ = proc.communicate()
        if proc.returncode != 0 or not out.strip():
            raise SystemExit(f"{impl} with {n} jobs failed (exit {proc.returncode})")
        result = json.loads(out.strip().splitlines()[-1])
        print(
            f"  {impl:12} n={n:6}: cpu {result['cpu']:.4f}, "
            f"{result['mem_created']:.0f}/{result['mem_end']:.0f} B/job, "
            f"p99 {result['p99_ms']:.2f} ms",
            file=sys.stderr,
            flush=True,
        )
        results.append(result)
    return results


def _table(results: list[dict], jobs: list[int]) -> str:
    by = {(r["impl"], r["n"]): r for r in results}
    lines = [
        "| jobs | implementation | CPU s / wall s | RSS B/job (created) | RSS B/job (end) "
        "| p50 late ms | p99 late ms | max late ms | runs / expected |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in jobs:
        for impl in IMPLS:
            r = by[(impl, n)]
            lines.append(
                f"| {n} | {impl} | {r['cpu']:.4f} | {r['mem_created']:.0f} | {r['mem_end']:.0f} "
                f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} "
                f"| {r['runs']} / {r['expected_runs']:.0f} |"
            )
    lines += [
        "",
        "| jobs | taskcog variant | anchor | CPU: anchor / taskcog "
        "| memory (end): anchor / taskcog |",
        "|---:|---|---|---:|---:|",
    ]
    for n in jobs:
        for variant in ("taskcog", "taskcog-3ms"):
            ours = by[(variant, n)]
            for impl in ANCHORS:
                r = by[(impl, n)]
                cpu = f"{r['cpu'] / ours['cpu']:.1f}x" if ours["cpu"] > 0 else "n/a"
                # Below ~1 MB in total the RSS delta is allocator granularity, not the jobs.
                small = ours["mem_end"] * n < 1_000_000
                mem = "n/a" if small else f"{r['mem_end'] / ours['mem_end']:.1f}x"
                lines.append(f"| {n} | {variant} | {impl} | {cpu} | {mem} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", default="1000,10000,30000", help="comma-separated job counts")
    parser.add_argument("--interval", type=float, default=60.0, help="job interval, seconds")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=45.0, help="measurement window")
    parser.add_argument("--parallel", type=int, default=2, help="subprocesses at once")
    parser.add_argument("--quick", action="store_true", help="1000,5000 jobs, 10 s interval")
    parser.add_argument("--child", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    if args.quick:
        args.jobs, args.interval, args.warmup, args.seconds = "1000,5000", 10.0, 3.0, 10.0
    jobs = [int(x) for x in args.jobs.split(",")]
    started = time.perf_counter()
    results = _run_all(args, jobs)
    print(
        f"Machine: {os.cpu_count()} CPUs (nproc), Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}; interval {args.interval:g}s, "
        f"warm-up {args.warmup:g}s, window {args.seconds:g}s, {args.parallel} at a time; "
        f"took {time.perf_counter() - started:.0f}s\n"
    )
    print(_table(results, jobs))


if __name__ == "__main__":
    main()
