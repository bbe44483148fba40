"""Scheduler benchmark: taskcog's Supervisor against discord.ext.tasks and APScheduler 3.11, on
uvloop (what Red runs on Linux) and on asyncio's default loop.

Each (implementation, loop, N) runs in a fresh subprocess, so memory is measured cleanly; one at
a time by default, so no child shares the machine with another (``--parallel 2`` halves the
time, but on this 2-core VM a neighbour raised taskcog-3ms's CPU by 40% or more and ext.tasks'
by 10-20%: the pairs skewed the ratios; docs/benchmarks.md, session 10). Every implementation
runs N no-op jobs on one interval with first fires spread over it (steady state: N/interval
runs per second), on the real clock:
``taskcog`` (``Supervisor(resolution=0)``), ``taskcog-3ms`` (``resolution=0.003``, what the cog
uses), ``ext.tasks`` (N ``discord.ext.tasks.Loop``) and ``apscheduler`` (``AsyncIOScheduler``
interval jobs). After a warm-up it measures, over the window:

- CPU: process time / wall time;
- memory per job: (RSS after creating the jobs - RSS before) / N, and again at the end of the
  run (after every job has run at least once when warm-up + window >= interval). An RSS delta
  is noisy: below ~1 MB in total it is the allocator's granularity, not the jobs;
- lateness: actual start - intended time, measured inside the body (taskcog: the fire it
  serves; ext.tasks and APScheduler: the intended time from our own even spread). The maximum
  is also given without the runs more than 10 ms late that the process spent at least half of
  waiting for a CPU (``stalls.py``: the machine's stall, not the scheduler's), with the longest
  garbage collection in the window. Every child calls ``gc.freeze()`` after its setup.

In the same run:

- the wake-up floor: for each loop and taskcog variant, a bare loop of the same kind woken by a
  no-op timer as often as taskcog's dispatcher woke in its window (``Supervisor.wakeups``),
  with the same warm-up and window (``bench_wake_floor.measure``), and taskcog's CPU / floor;
  and as a second reference "floor + body calls": the same bare loop also creating and stepping
  one no-op coroutine per run taskcog made (the least any scheduler does per run);
- the idle cost: 30,000 ``taskcog-3ms`` jobs every 6 h with none due during the run.

Usage, from the repository root::

    .venv/bin/python bench/bench_scheduler.py            # 30k jobs every 30 s, both loops, ~12 min
    .venv/bin/python bench/bench_scheduler.py --quick    # 2000 jobs every 10 s, both loops, ~2 min
    .venv/bin/python bench/bench_scheduler.py --idle     # only the idle scenario, both loops
    .venv/bin/python bench/bench_scheduler.py --loop uvloop --jobs 1000,10000,30000 --interval 60

Prints Markdown: one table per loop (uvloop first), the ratios against the anchors, the floor,
the idle cost, then each of the issue's targets as met or missed with the measured values.
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
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_wake_floor import measure
from event_loops import add_loop_option, chosen_loops, new_event_loop, uvloop_version
from stalls import EVERY, StallWatch

ROOT = Path(__file__).resolve().parent.parent
IMPLS = ("taskcog", "taskcog-3ms", "ext.tasks", "apscheduler")
VARIANTS = ("taskcog", "taskcog-3ms")
ANCHORS = ("ext.tasks", "apscheduler")
COG = "taskcog-3ms"  # the variant the cog runs, which the targets are about
COG_RESOLUTION = 0.003  # the cog's Supervisor(resolution=...)
IDLE_JOBS = 30_000
IDLE_INTERVAL = 6 * 3600.0
TARGET_JOBS = 30_000
UTC = _dt.UTC

# The targets for the 30k configuration (CPU as a fraction of the anchor's, per loop).
CPU_VS_ANCHOR = (
    ("uvloop", "ext.tasks", 0.5),
    ("uvloop", "apscheduler", 0.25),
    ("asyncio", "ext.tasks", 0.5),
)
MAX_P99_MS = 5.0
MAX_LATE_MS = 10.0
MAX_BYTES_PER_JOB = 300.0
MAX_FLOOR_RATIO = 1.5
MAX_IDLE_CPU = 0.002
BIG_LATE = MAX_LATE_MS / 1000
MEASURABLE_BYTES = 1_000_000  # below this in total, an RSS delta is allocator granularity


# ---------------------------------------------------------------------------- child side


class Probe:
    """Lateness samples, taken only inside the measurement window; the late runs over
    ``MAX_LATE_MS`` are also kept with when they started, to compare with the machine's stalls.

    The samples go into an array of doubles allocated before the memory baseline (room for
    ``capacity``), so the probe's own memory is not counted as the scheduler's: a list of
    float objects added about 32 B per job to every implementation's "RSS at the end"."""

    def __init__(self, capacity: int = 0) -> None:
        self.on = False
        self._samples = array("d", bytes(8 * capacity))
        self.runs = 0
        self.big: list[tuple[float, float]] = []  # (perf_counter at start, lateness)
        self.watch = StallWatch()

    def record(self, intended: float) -> None:
        if self.on:
            late = time.time() - intended
            if self.runs < len(self._samples):
                self._samples[self.runs] = late
            else:
                self._samples.append(late)
            self.runs += 1
            if late > BIG_LATE:
                self.big.append((time.perf_counter(), late))
                self.watch.note()
            elif not self.runs % EVERY:
                self.watch.note()

    @property
    def samples(self) -> list[float]:
        return self._samples[: self.runs].tolist()


async def _setup_taskcog(
    n: int, interval: float, probe: Probe, resolution: float = 0.0, schedule: Any = None
) -> Any:
    from taskcog.engine.schedules import IntervalSchedule
    from taskcog.engine.supervisor import JobContext, JobSpec, Supervisor, TaskDefinition

    spec = JobSpec(True, schedule or IntervalSchedule(interval))

    async def body(ctx: JobContext) -> None:
        probe.record(ctx.scheduled_for.timestamp())

    sup = Supervisor(resolution=resolution)
    sup.add(TaskDefinition("bench", body, provider=lambda key: spec, keys=lambda: range(n)))
    await sup.start()
    while sup.job_count() < n:  # noqa: ASYNC110 - the dispatcher creates them in the background
        await asyncio.sleep(0.01)
    return sup


async def _setup_idle(n: int, interval: float, probe: Probe) -> Any:
    """The cog's configuration (resolution 0.003, first fires spread) with nothing due.

    The Supervisor spreads a keyed interval job's first fire over [first, first + interval)
    (``TaskDefinition(spread=True)``), and an interval's first fire is "now": about
    N * (warm-up + window) / interval jobs would fire during the run. A first fire one interval
    on puts every first fire between 6 h and 12 h away."""
    from taskcog.engine.schedules import IntervalSchedule

    class FirstFireOneIntervalOn(IntervalSchedule):
        __slots__ = ()

        def first(self, now: _dt.datetime) -> _dt.datetime:
            return super().first(now) + self.interval

    schedule = FirstFireOneIntervalOn(interval)
    return await _setup_taskcog(n, interval, probe, COG_RESOLUTION, schedule)


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
    "taskcog-3ms": lambda n, interval, probe: _setup_taskcog(n, interval, probe, COG_RESOLUTION),
    "ext.tasks": _setup_ext_tasks,
    "apscheduler": _setup_apscheduler,
    "idle": _setup_idle,
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
    expected = n * window / interval if impl != "idle" else 0
    probe = Probe(int(expected * 1.2) + 1000)  # before the baseline: not the scheduler's memory
    gc.collect()
    rss0 = proc.memory_info().rss
    started = time.perf_counter()
    keep = await SETUP[impl](n, interval, probe)
    setup_s = time.perf_counter() - started
    gc.collect()
    rss_created = proc.memory_info().rss
    gc.freeze()  # every implementation alike: setup's objects leave the collector's scans
    watch = probe.watch
    watch.start()
    await asyncio.sleep(warmup)
    watch.gc_max, watch.gc_count = 0.0, 0
    watch.note()
    probe.on = True
    wakeups0 = getattr(keep, "wakeups", None)  # taskcog only
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(window)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    probe.on = False
    watch.note()
    watch.stop()
    wakeups = None if wakeups0 is None else keep.wakeups - wakeups0
    # Before the samples become a list of float objects (~40 B per run, 30,000 runs): that
    # list is the bench's, not the scheduler's (it was counted in "RSS at the end" up to
    # session 9, ~35-40 B/job for every implementation alike).
    gc.collect()
    rss_end = proc.memory_info().rss
    samples = probe.samples
    stalled = [late for at, late in probe.big if _waited(watch, at, late)]
    unexplained = [late for at, late in probe.big if not _waited(watch, at, late)]
    calm = max((s for s in samples if s <= BIG_LATE), default=0.0)
    del keep
    wall = wall1 - wall0
    return {
        "setup_s": setup_s,
        "cpu": (cpu1 - cpu0) / wall,
        "mem_created": (rss_created - rss0) / n,
        "mem_end": (rss_end - rss0) / n,
        "p50_ms": 1000 * (percentile(samples, 0.50) or 0.0),
        "p99_ms": 1000 * (percentile(samples, 0.99) or 0.0),
        "max_ms": 1000 * max(samples, default=0.0),
        "max_ex_ms": 1000 * max([calm, *unexplained]),
        "big": len(probe.big),
        "big_cpu_wait": len(stalled),
        "gc_max_ms": 1000 * watch.gc_max,
        "gc_count": watch.gc_count,
        "runs": probe.runs,
        "expected_runs": 0 if impl == "idle" else n * window / interval,
        "wakeups": wakeups,
        "wakeups_per_s": None if wakeups is None else wakeups / wall,
    }


def _waited(watch: StallWatch, at: float, late: float) -> bool:
    """True if the process spent at least half of a late run's lateness waiting for a CPU."""
    wait = watch.cpu_wait(at - late, at)
    return wait is not None and wait >= late / 2


async def _floor_child(period: float, warmup: float, window: float, calls: float) -> dict:
    cpu, rate = await measure(period, window, warmup, calls_per_s=calls)
    return {"cpu": cpu, "wakeups_per_s": rate}


def child_main(args: argparse.Namespace) -> None:
    loop = new_event_loop(args.loop)
    asyncio.set_event_loop(loop)
    if args.child == "floor":
        work = _floor_child(args.period, args.warmup, args.seconds, args.calls)
    else:
        work = _child(args.child, args.n, args.interval, args.warmup, args.seconds)
    print(json.dumps(loop.run_until_complete(work)), flush=True)
    os._exit(0)  # skip tearing down 30k loops: not part of what we measure


# ---------------------------------------------------------------------------- parent side


@dataclass(frozen=True)
class _Run:
    """One child process: an implementation (or "idle", or "floor" for ``variant``)."""

    child: str
    loop: str
    n: int
    interval: float
    variant: str = ""
    period: float = 0.0
    calls: float = 0.0  # floor only: no-op coroutine bodies called per second

    @property
    def label(self) -> str:
        if self.child != "floor":
            return self.child
        return f"{'floor+calls' if self.calls else 'floor'}/{self.variant}"

    def command(self, args: argparse.Namespace) -> list[str]:
        cmd = [sys.executable, __file__, "--child", self.child, "--loop", self.loop]
        cmd += ["--n", str(self.n), "--interval", repr(self.interval)]
        cmd += ["--warmup", repr(args.warmup), "--seconds", repr(args.seconds)]
        if self.child == "floor":
            cmd += ["--period", repr(self.period), "--calls", repr(self.calls)]
        return cmd


Results = dict[tuple[str, str, int], dict]  # (label, loop, n) -> what the child measured


def _progress(run: _Run, r: dict) -> str:
    head = f"  {run.loop:8} {run.label:18} n={run.n:6}: cpu {r['cpu']:.4f}"
    if run.child == "floor":
        return f"{head}, {r['wakeups_per_s']:.0f} wake-ups/s"
    if run.child == "idle":
        return f"{head}, {r['wakeups']} wake-ups and {r['runs']} runs in the window"
    text = f"{head}, {r['mem_created']:.0f}/{r['mem_end']:.0f} B/job, p99 {r['p99_ms']:.2f} ms"
    text += f", runs {r['runs']}/{r['expected_runs']:.0f}"
    if r["wakeups_per_s"] is not None:
        text += f", {r['wakeups_per_s']:.0f} wake-ups/s"
    return text


def _run_all(args: argparse.Namespace, plan: list[_Run]) -> Results:
    """Run the plan ``args.parallel`` at a time; each taskcog variant's result queues its
    floor child, woken as often as that variant's dispatcher was."""
    todo = list(plan)
    running: list[tuple[_Run, subprocess.Popen[str]]] = []
    results: Results = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        while todo or running:
            while todo and len(running) < args.parallel:
                run = todo.pop(0)
                proc = subprocess.Popen(
                    run.command(args), stdout=subprocess.PIPE, text=True, env=env
                )
                running.append((run, proc))
            finished = [item for item in running if item[1].poll() is not None]
            if not finished:
                time.sleep(0.1)
                continue
            for item in finished:
                running.remove(item)
                run, proc = item
                out, _ = proc.communicate()
                if proc.returncode != 0 or not out.strip():
                    raise SystemExit(
                        f"{run.label} on {run.loop} with {run.n} jobs failed "
                        f"(exit {proc.returncode})"
                    )
                result = json.loads(out.strip().splitlines()[-1])
                results[(run.label, run.loop, run.n)] = result
                print(_progress(run, result), file=sys.stderr, flush=True)
                if run.child in VARIANTS and result["wakeups_per_s"]:
                    period = 1.0 / result["wakeups_per_s"]  # = window / wake-ups
                    calls = result["runs"] / args.seconds  # body calls per second
                    for c in (0.0, calls):
                        floor = _Run("floor", run.loop, run.n, run.interval, run.child, period, c)
                        todo.append(floor)
    finally:
        for _, proc in running:  # only after a failure: stop the children still running
            proc.kill()
            proc.wait()
    return results


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs > 0 else "n/a"


def _loop_table(by: Results, kind: str, jobs: list[int]) -> str:
    lines = [
        f"{kind}:",
        "",
        "| jobs | implementation | CPU s / wall s | RSS B/job (created) | RSS B/job (end) "
        f"| p50 late ms | p99 late ms | max late ms | runs > {MAX_LATE_MS:g} ms late "
        "(process waiting for a CPU) | max late ms without those | longest GC ms "
        "| runs / expected |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in jobs:
        for impl in IMPLS:
            r = by[(impl, kind, n)]
            lines.append(
                f"| {n} | {impl} | {r['cpu']:.4f} | {r['mem_created']:.0f} | {r['mem_end']:.0f} "
                f"| {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} "
                f"| {r['big']} ({r['big_cpu_wait']}) | {r['max_ex_ms']:.1f} "
                f"| {r['gc_max_ms']:.1f} | {r['runs']} / {r['expected_runs']:.0f} |"
            )
    lines.append(
        f"\n(A run more than {MAX_LATE_MS:g} ms late counts as the machine's when the process"
        " spent at least half of its lateness waiting for a CPU (`run_delay` in"
        " /proc/self/schedstat); GC: the longest collection in the window, after `gc.freeze()`"
        " of the setup for every implementation.)"
    )
    return "\n".join(lines)


def _ratio_table(by: Results, loops: list[str], jobs: list[int]) -> str:
    lines = [
        "| loop | jobs | taskcog variant | anchor | CPU: taskcog / anchor "
        "| memory (end): taskcog / anchor |",
        "|---|---:|---|---|---:|---:|",
    ]
    for kind in loops:
        for n in jobs:
            for variant in VARIANTS:
                ours = by[(variant, kind, n)]
                for anchor in ANCHORS:
                    r = by[(anchor, kind, n)]
                    small = ours["mem_end"] * n < MEASURABLE_BYTES
                    mem = "n/a" if small else _ratio(ours["mem_end"], r["mem_end"])
                    cpu = _ratio(ours["cpu"], r["cpu"])
                    lines.append(f"| {kind} | {n} | {variant} | {anchor} | {cpu} | {mem} |")
    lines.append(
        "\n(Under 1.00x, taskcog uses less than the anchor. Memory is n/a where taskcog's RSS"
        " delta is under 1 MB in total: that is allocator granularity, not the jobs.)"
    )
    return "\n".join(lines)


def _floor_table(by: Results, loops: list[str], jobs: list[int]) -> str:
    lines = [
        "| loop | jobs | taskcog variant | wake-ups / s | floor wake-ups / s "
        "| floor CPU s / wall s | floor + body calls CPU s / wall s | taskcog CPU s / wall s "
        "| CPU: taskcog / floor | CPU: taskcog / (floor + body calls) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in loops:
        for n in jobs:
            for variant in VARIANTS:
                ours = by[(variant, kind, n)]
                floor = by.get((f"floor/{variant}", kind, n))
                calls = by.get((f"floor+calls/{variant}", kind, n))
                if floor is None or calls is None:  # no wake-ups in the window
                    cells, ratios = "n/a | n/a | n/a", "n/a | n/a"
                else:
                    cells = (
                        f"{floor['wakeups_per_s']:.0f} | {floor['cpu']:.4f} | {calls['cpu']:.4f}"
                    )
                    ratios = _ratio(ours["cpu"], floor["cpu"])
                    ratios += f" | {_ratio(ours['cpu'], calls['cpu'])}"
                lines.append(
                    f"| {kind} | {n} | {variant} | {ours['wakeups_per_s']:.0f} | {cells} "
                    f"| {ours['cpu']:.4f} | {ratios} |"
                )
    lines.append(
        "\n(floor: a bare loop of the same kind woken by a no-op timer as often as taskcog's"
        " dispatcher was; floor + body calls: the same loop also creating and stepping one no-op"
        " coroutine per run taskcog made, the least any scheduler does per run. The target is"
        " against the floor; the second column is a reference, not the target.)"
    )
    return "\n".join(lines)


def _idle_table(by: Results, loops: list[str]) -> str:
    lines = [
        f"Idle: {IDLE_JOBS} {COG} jobs every {IDLE_INTERVAL / 3600:g} h, every first fire at"
        " least one interval away (nothing due during the run):",
        "",
        "| loop | jobs | CPU s / wall s | wake-ups in window | runs in window "
        "| RSS B/job (created) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in loops:
        r = by[("idle", kind, IDLE_JOBS)]
        lines.append(
            f"| {kind} | {IDLE_JOBS} | {r['cpu']:.5f} | {r['wakeups']} | {r['runs']} "
            f"| {r['mem_created']:.0f} |"
        )
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _targets(by: Results, loops: list[str], jobs: list[int]) -> str:
    """Each target as met or missed, with the values it was judged on."""
    lines = []
    if not jobs:
        lines += ["Targets:", ""]
    else:
        n = TARGET_JOBS if TARGET_JOBS in jobs else max(jobs)
        where = "" if n == TARGET_JOBS else f" (the issue sets them for {TARGET_JOBS})"
        lines += [f"Targets, {COG} (what the cog runs) at {n} jobs{where}:", ""]
        for kind, anchor, limit in CPU_VS_ANCHOR:
            ours, theirs = by.get((COG, kind, n)), by.get((anchor, kind, n))
            name = f"- {kind}: CPU <= {limit:g}x {anchor}"
            if ours is None or theirs is None:
                lines.append(f"{name}: not measured (--loop)")
                continue
            ratio = ours["cpu"] / theirs["cpu"]
            lines.append(
                f"{name}: {ours['cpu']:.4f} / {theirs['cpu']:.4f} = {ratio:.2f}x: "
                f"{_verdict(ratio <= limit)}"
            )
        for kind in loops:
            r = by[(COG, kind, n)]
            lines.append(
                f"- {kind}: p99 lateness <= {MAX_P99_MS:g} ms: {r['p99_ms']:.2f} ms: "
                f"{_verdict(r['p99_ms'] <= MAX_P99_MS)}"
            )
            note = ""
            if r["big_cpu_wait"]:
                note = (
                    f" ({r['max_ex_ms']:.2f} ms without the {r['big_cpu_wait']} late runs the"
                    " process spent waiting for a CPU)"
                )
            lines.append(
                f"- {kind}: max lateness <= {MAX_LATE_MS:g} ms: {r['max_ms']:.2f} ms: "
                f"{_verdict(r['max_ms'] <= MAX_LATE_MS)}{note}"
            )
        for kind in loops:
            r = by[(COG, kind, n)]
            noisy = r["mem_end"] * n < MEASURABLE_BYTES
            note = " (under 1 MB in total: allocator granularity, not conclusive)" if noisy else ""
            lines.append(
                f"- {kind}: memory <= {MAX_BYTES_PER_JOB:g} B/job (RSS at the end): "
                f"{r['mem_end']:.0f}: {_verdict(r['mem_end'] <= MAX_BYTES_PER_JOB)}{note}"
            )
        for kind in loops:
            r, floor = by[(COG, kind, n)], by.get((f"floor/{COG}", kind, n))
            name = f"- {kind}: CPU <= {MAX_FLOOR_RATIO:g}x the wake-up floor"
            if floor is None:
                lines.append(f"{name}: no wake-ups in the window, no floor")
                continue
            ratio = r["cpu"] / floor["cpu"]
            calls = by.get((f"floor+calls/{COG}", kind, n))
            ref = ""
            if calls is not None:
                ref = (
                    f" (floor + bare body calls: {calls['cpu']:.4f},"
                    f" {calls['cpu'] / floor['cpu']:.2f}x the floor;"
                    f" taskcog / that = {r['cpu'] / calls['cpu']:.2f}x)"
                )
            lines.append(
                f"{name}: {r['cpu']:.4f} / {floor['cpu']:.4f} = {ratio:.2f}x: "
                f"{_verdict(ratio <= MAX_FLOOR_RATIO)}{ref}"
            )
    for kind in loops:
        r = by[("idle", kind, IDLE_JOBS)]
        name = f"- idle, {kind}: CPU <= {MAX_IDLE_CPU:g} s/s with {IDLE_JOBS} jobs, none due"
        if r["runs"]:
            lines.append(f"{name}: invalid, {r['runs']} runs fired in the window")
            continue
        lines.append(f"{name}: {r['cpu']:.5f}: {_verdict(r['cpu'] <= MAX_IDLE_CPU)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", default="30000", help="comma-separated job counts")
    parser.add_argument("--interval", type=float, default=30.0, help="job interval, seconds")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window")
    parser.add_argument(
        "--parallel", type=int, default=1, help="subprocesses at once (default 1: each alone)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="2000 jobs every 10 s, 3 s warm-up, 10 s window"
    )
    parser.add_argument("--idle", action="store_true", help="only the idle scenario")
    add_loop_option(parser)
    parser.add_argument("--child", choices=(*SETUP, "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--period", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return
    if args.quick:
        args.jobs, args.interval, args.warmup, args.seconds = "2000", 10.0, 3.0, 10.0
    loops = chosen_loops(args.loop)
    jobs = [] if args.idle else [int(x) for x in args.jobs.split(",")]
    plan = [_Run(impl, kind, n, args.interval) for kind in loops for n in jobs for impl in IMPLS]
    plan += [_Run("idle", kind, IDLE_JOBS, IDLE_INTERVAL) for kind in loops]
    started = time.perf_counter()
    by = _run_all(args, plan)
    interval = f"interval {args.interval:g}s, " if jobs else ""
    print(
        f"Machine: {os.cpu_count()} CPUs (nproc), Python {platform.python_version()}, "
        f"uvloop {uvloop_version()}, {platform.system()} {platform.machine()}; {interval}"
        f"warm-up {args.warmup:g}s, window {args.seconds:g}s, {args.parallel} at a time; "
        f"took {time.perf_counter() - started:.0f}s\n"
    )
    if jobs:
        for kind in loops:
            print(_loop_table(by, kind, jobs) + "\n")
        print(_ratio_table(by, loops, jobs) + "\n")
        print(_floor_table(by, loops, jobs) + "\n")
    print(_idle_table(by, loops) + "\n")
    print(_targets(by, loops, jobs))


if __name__ == "__main__":
    main()
