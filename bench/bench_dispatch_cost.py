"""What one scheduled run costs, by how many runs share a wake-up: the supervisor's CPU per run
and the bare loop's wake-up floor at the same wake-up rate, on uvloop and asyncio.

Run from the repository root (about 4 minutes; one fresh subprocess per row, one at a time)::

    .venv/bin/python bench/bench_dispatch_cost.py
    .venv/bin/python bench/bench_dispatch_cost.py --loop uvloop --resolutions 0.003,0.3

30,000 no-op interval jobs every 30 s (1,000 runs/s, first fires spread), as in
``bench_scheduler.py``; ``resolution`` decides how many runs share a wake-up (the cog uses
0.003 s: about 4.5). Per row: CPU s per wall s of the whole process, the CPU of the dispatch
itself (time inside the supervisor's wake-up callback; on asyncio it includes each batch's
eager first runner step, on uvloop the runner steps come after it), and a bare loop woken as
often (``bench_wake_floor.measure``) in its own subprocess. The per-run columns divide by the
runs of the window. It shows how much of the scheduler's CPU is a per-wake-up price rather than
per-run work: the same Python costs several times more per run when a wake-up has only a few.
Not a test; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_scheduler import Probe, _setup_taskcog, percentile  # noqa: E402
from bench_wake_floor import measure  # noqa: E402
from event_loops import add_loop_option, chosen_loops, new_event_loop  # noqa: E402

JOBS = 30_000
INTERVAL = 30.0


async def _supervisor(resolution: float, warmup: float, window: float) -> dict:
    from taskcog.engine.supervisor.timer import TimerMixin

    inside = [0.0]
    clock = time.perf_counter
    wake_up = TimerMixin._wake_up

    def timed(self: TimerMixin) -> None:
        t0 = clock()
        wake_up(self)
        inside[0] += clock() - t0

    TimerMixin._wake_up = timed  # type: ignore[method-assign]
    probe = Probe(int(JOBS * window / INTERVAL * 1.2) + 1000)
    sup = await _setup_taskcog(JOBS, INTERVAL, probe, resolution=resolution)
    gc.collect()
    gc.freeze()
    await asyncio.sleep(warmup)
    probe.on = True
    inside[0] = 0.0
    wakes0 = sup.wakeups
    cpu0, wall0 = time.process_time(), clock()
    await asyncio.sleep(window)
    cpu1, wall1 = time.process_time(), clock()
    probe.on = False
    wall = wall1 - wall0
    samples = probe.samples
    return {
        "cpu": (cpu1 - cpu0) / wall,
        "dispatch": inside[0] / wall,
        "wakeups_per_s": (sup.wakeups - wakes0) / wall,
        "runs_per_s": probe.runs / wall,
        "p99_ms": 1000 * (percentile(samples, 0.99) or 0.0),
        "max_ms": 1000 * max(samples, default=0.0),
    }


def child(args: argparse.Namespace) -> None:
    loop = new_event_loop(args.loop)
    asyncio.set_event_loop(loop)
    if args.child == "floor":
        cpu, rate = loop.run_until_complete(measure(args.period, args.seconds, args.warmup))
        result = {"cpu": cpu, "wakeups_per_s": rate}
    else:
        result = loop.run_until_complete(_supervisor(args.resolution, args.warmup, args.seconds))
    print(json.dumps(result), flush=True)


def run_child(*extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *extra], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolutions", default="0.003,0.03,0.3", help="seconds, commas")
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window")
    add_loop_option(parser)
    parser.add_argument("--child", choices=("supervisor", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--resolution", type=float, default=0.003, help=argparse.SUPPRESS)
    parser.add_argument("--period", type=float, default=0.005, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    window = ["--warmup", repr(args.warmup), "--seconds", repr(args.seconds)]
    print(f"{JOBS:,} jobs every {INTERVAL:g} s; {args.seconds:g} s window after {args.warmup:g} s")
    print()
    print(
        "| loop | resolution | runs per wake-up | wake-ups / s | CPU s / s | floor CPU s / s "
        "| CPU / floor | µs per run, all | µs per run above the floor | µs per run in dispatch "
        "| p99 / max late (ms) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in chosen_loops(args.loop):
        for resolution in (float(r) for r in args.resolutions.split(",")):
            sup = run_child(
                "--child", "supervisor", "--loop", kind, "--resolution", repr(resolution), *window
            )
            period = 1.0 / max(sup["wakeups_per_s"], 1e-9)
            floor = run_child(
                "--child", "floor", "--loop", kind, "--period", repr(period), *window
            )
            runs = sup["runs_per_s"]
            print(
                f"| {kind} | {resolution:g} s | {runs / sup['wakeups_per_s']:.1f} "
                f"| {sup['wakeups_per_s']:.0f} | {sup['cpu']:.4f} | {floor['cpu']:.4f} "
                f"| {sup['cpu'] / floor['cpu']:.2f}x | {sup['cpu'] / runs * 1e6:.1f} "
                f"| {(sup['cpu'] - floor['cpu']) / runs * 1e6:.1f} "
                f"| {sup['dispatch'] / runs * 1e6:.1f} "
                f"| {sup['p99_ms']:.2f} / {sup['max_ms']:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
