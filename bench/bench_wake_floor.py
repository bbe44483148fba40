"""The CPU floor of waking an idle asyncio loop: what any scheduler pays before doing any work.

    python bench/bench_wake_floor.py            # periods 2, 4, 6, 16, 50 ms; 10 s each

A no-op timer re-armed every ``period`` on a bare event loop: CPU seconds per wall second and
wake-ups per second. It bounds the scheduler benchmark: with 30k jobs evenly spread and a p99
lateness target of 5 ms, a scheduler must wake at least ~200 times a second, and this is the
CPU that costs on the machine at hand (see docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import asyncio
import time


async def measure(period: float, seconds: float) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    wakes = 0

    def tick() -> None:
        nonlocal wakes
        wakes += 1
        loop.call_later(period, tick)

    loop.call_later(period, tick)
    await asyncio.sleep(1.0)  # warm up
    start_wakes = wakes
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    wall = wall1 - wall0
    return (cpu1 - cpu0) / wall, (wakes - start_wakes) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", default="2,4,6,16,50", help="ms, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    print("| timer period | wake-ups / s | CPU s / wall s | CPU µs per wake-up |")
    print("|---:|---:|---:|---:|")
    for ms in (float(p) for p in args.periods.split(",")):
        cpu, rate = asyncio.run(measure(ms / 1000, args.seconds))
        print(f"| {ms:g} ms | {rate:.0f} | {cpu:.4f} | {cpu / rate * 1e6:.0f} |")


if __name__ == "__main__":
    main()
