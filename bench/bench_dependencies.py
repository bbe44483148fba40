"""What dependency and deferral hooks cost on the supervisor's hot path.

N no-op jobs on one interval run for a stretch of virtual time (``VirtualTimeLoop``: no real
sleeping, so the figure is the supervisor's own CPU per run). Scenarios, in the same run:

- ``plain``: no dependency, no priority: the anchor;
- ``other-gated``: a separate low-priority task and a deferral rule exist, so the launch hook's
  set is not empty (what the cog runs with: housekeeping is low);
- ``low``: every job is low priority, deferral on, the loop calm (each launch asks the rule);
- ``required``: every job ``requires`` a global task that is fresh (each launch checks it);
- ``watched``: a task runs ``after`` every job's task (each success is noted, one trigger).

Usage, from the repository root::

    .venv/bin/python bench/bench_dependencies.py            # 5000 jobs, 3 repeats
    .venv/bin/python bench/bench_dependencies.py --jobs 20000 --repeats 5

Prints a Markdown table: CPU microseconds per run (best of the repeats) and the ratio to
``plain``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskcog.engine.deferral import Deferral  # noqa: E402
from taskcog.engine.schedules import AfterSchedule, IntervalSchedule  # noqa: E402
from taskcog.engine.supervisor import (
    JobSpec,
    Requirement,
    Supervisor,
    TaskDefinition,
)  # noqa: E402
from taskcog.engine.testing import VirtualClock, run_virtual  # noqa: E402

INTERVAL = 10.0
SPAN = 100.0


async def _noop(ctx: Any) -> None:
    return None


def _family(name: str, keys: list[Any], schedule: Any, **kw: Any) -> TaskDefinition:
    spec = JobSpec(True, schedule)
    return TaskDefinition(name=name, run=_noop, provider=lambda key: spec, keys=lambda: keys, **kw)


def _scenario(kind: str, n: int) -> tuple[float, int]:
    """(CPU seconds, runs) for one scenario."""
    runs = 0

    async def counted(ctx: Any) -> None:
        nonlocal runs
        runs += 1

    async def main() -> float:
        sup = Supervisor(clock=VirtualClock())
        every = IntervalSchedule(INTERVAL)
        kw: dict[str, Any] = {}
        if kind in ("other-gated", "low"):
            sup.set_deferral(Deferral(lambda: 0.0, threshold=0.1))
        if kind == "other-gated":
            sup.add(_family("sweep", [None], IntervalSchedule(3600), priority="low"))
        if kind == "low":
            kw["priority"] = "low"
        if kind == "required":
            sup.add(_family("feed", [None], IntervalSchedule(1)))
            kw["requires"] = Requirement("feed", within=3600)
        jobs = TaskDefinition(
            name="jobs",
            run=counted,
            provider=lambda key: JobSpec(True, every),
            keys=lambda: range(n),
            **kw,
        )
        sup.add(jobs)
        if kind == "watched":
            sup.add(_family("digest", [0], AfterSchedule("jobs", min_gap=0)))
        await sup.start()
        await asyncio.sleep(INTERVAL)  # every job planned and run once: the steady state
        start = time.process_time()
        await asyncio.sleep(SPAN)
        spent = time.process_time() - start
        await sup.shutdown()
        return spent

    spent = run_virtual(main)
    return spent, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    kinds = ["plain", "other-gated", "low", "required", "watched"]
    best: dict[str, float] = {}
    for _ in range(args.repeats):
        for kind in kinds:  # interleaved, so a busy moment hits every scenario alike
            spent, runs = _scenario(kind, args.jobs)
            per_run = spent / max(1, runs * SPAN / (SPAN + INTERVAL)) * 1e6
            best[kind] = min(best.get(kind, float("inf")), per_run)
    print(f"{args.jobs} jobs every {INTERVAL:g}s for {SPAN:g}s of virtual time;", end=" ")
    print(f"best of {args.repeats}")
    print()
    print("| scenario | CPU µs per run | vs plain |")
    print("|---|---:|---:|")
    for kind in kinds:
        print(f"| {kind} | {best[kind]:.2f} | {best[kind] / best['plain']:.2f} |")


if __name__ == "__main__":
    main()
