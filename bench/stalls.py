"""Telling a scheduler's lateness from the machine's, for ``bench_scheduler.py``.

On a busy machine a run can start late because the whole process waited for a CPU, whatever
scheduler it runs. Linux counts that wait per thread (``run_delay`` in
``/proc/self/schedstat``: time spent runnable but not running). :class:`StallWatch` samples it
from the lateness probe (every 100th run, and at every run more than 10 ms late; no timer of
its own, so it adds no wake-up), and :meth:`StallWatch.cpu_wait` says how long the process
waited for a CPU around a late run. ``bench_scheduler.py`` reports the maximum lateness both as
measured and without the late runs the process spent at least half of waiting for a CPU.
Garbage collection pauses are recorded too (``gc.callbacks``), so a hiccup can be told apart
from GC.
"""

from __future__ import annotations

import bisect
import gc
import os
import time
from typing import Any

SCHEDSTAT = "/proc/self/schedstat"
EVERY = 100  # runs between two samples: about 10 a second at 1,000 runs a second


class StallWatch:
    """Samples the process's wait for a CPU (from the probe, no timer of its own: it adds no
    wake-up) and times garbage collections."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.waits: list[float] = []
        self.gc_max = 0.0  # the longest collection while watching, seconds
        self.gc_count = 0
        self._gc_start = 0.0
        try:
            self._fd: int | None = os.open(SCHEDSTAT, os.O_RDONLY)
        except OSError:
            self._fd = None

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)

    def stop(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def note(self) -> None:
        """Sample the time spent runnable but waiting for a CPU so far (one ``pread``)."""
        if self._fd is None:
            return
        try:
            wait = int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            return
        self.times.append(time.perf_counter())
        self.waits.append(wait)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        else:
            self.gc_count += 1
            self.gc_max = max(self.gc_max, time.perf_counter() - self._gc_start)

    def cpu_wait(self, start: float, end: float) -> float | None:
        """Seconds spent waiting for a CPU from the last sample at or before ``start`` to the
        first at or after ``end`` (``time.perf_counter`` values); None without both."""
        lo = bisect.bisect_right(self.times, start) - 1
        hi = bisect.bisect_left(self.times, end)
        if lo < 0 or hi >= len(self.times):
            return None
        return self.waits[hi] - self.waits[lo]
