"""The CPU floor of waking an idle event loop: what any scheduler pays before doing any work.

Run from the repository root::

    .venv/bin/python bench/bench_wake_floor.py                 # 2,4,6,16,50 ms; uvloop, asyncio
    .venv/bin/python bench/bench_wake_floor.py --loop asyncio --periods 3 --seconds 30

A no-op timer re-armed every ``period`` (``loop.call_later``) on a bare event loop: CPU seconds
per wall second and wake-ups per second, 10 s each after a 1 s warm-up. It bounds the scheduler
benchmark: with 30k jobs evenly spread and a p99 lateness target of 5 ms, a scheduler must wake
hundreds of times a second, and this is the CPU that costs on the machine at hand.
``bench_scheduler.py`` uses :func:`measure` for its floor: a bare loop of the same kind woken
as often as taskcog's dispatcher was.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from functools import partial

from event_loops import add_loop_option, chosen_loops, new_event_loop


async def _no_op() -> None:
    pass


def _call_bodies(count: int) -> None:
    """The least any scheduler does per run: create a no-op coroutine and step it to its end."""
    for _ in range(count):
        body = _no_op()
        try:
            body.send(None)
        except StopIteration:
            pass


async def measure(
    period: float, seconds: float, warmup: float = 1.0, calls_per_s: float = 0.0
) -> tuple[float, float]:
    """(CPU s per wall s, wake-ups per s) of the running loop woken by a no-op timer every
    ``period`` seconds, over ``seconds`` after ``warmup``.

    With ``calls_per_s``, each wake-up also calls its share of that many no-op coroutine
    bodies a second (the "floor + bare body calls" reference of ``bench_scheduler.py``)."""
    loop = asyncio.get_running_loop()
    wakes = 0
    due = loop.time() + period
    per_wake = calls_per_s * period
    owed = 0.0

    def tick() -> None:
        nonlocal wakes, due, owed
        wakes += 1
        if per_wake:
            owed += per_wake
            calls = int(owed)
            owed -= calls
            _call_bodies(calls)
        # Re-armed against a fixed grid: uvloop rounds each delay to whole ms, and lateness
        # would add up, so "period after this tick" would not wake 1/period times a second.
        due += period
        loop.call_later(max(0.0, due - loop.time()), tick)

    loop.call_later(period, tick)
    await asyncio.sleep(warmup)
    start_wakes = wakes
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(seconds)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    wall = wall1 - wall0
    return (cpu1 - cpu0) / wall, (wakes - start_wakes) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", default="2,4,6,16,50", help="ms, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="measurement window")
    add_loop_option(parser)
    args = parser.parse_args()
    print("| event loop | timer period | wake-ups / s | CPU s / wall s | CPU µs per wake-up |")
    print("|---|---:|---:|---:|---:|")
    for kind in chosen_loops(args.loop):
        for ms in (float(p) for p in args.periods.split(",")):
            with asyncio.Runner(loop_factory=partial(new_event_loop, kind)) as runner:
                cpu, rate = runner.run(measure(ms / 1000, args.seconds))
            print(f"| {kind} | {ms:g} ms | {rate:.0f} | {cpu:.4f} | {cpu / rate * 1e6:.0f} |")


if __name__ == "__main__":
    main()
