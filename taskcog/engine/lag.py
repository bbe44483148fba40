"""How late the event loop runs: the first sign that something is blocking it.

:class:`LagMonitor` runs one cheap task that sleeps ``interval`` seconds and records how much
later than asked it woke up. A parser that forgot to use the worker pool, or a slow sync call in
a command, shows up here as lag long before users notice a frozen bot. Samples live in a bounded
ring buffer and only the last ``window`` seconds count.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from .supervision import percentile


@dataclass(frozen=True)
class LagStats:
    """Lag over the recent window, in seconds; the figures are None when there are no samples."""

    samples: int
    p50: float | None
    p99: float | None
    max: float | None
    window: float


class LagMonitor:
    """Samples event-loop lag every ``interval`` seconds and keeps ``window`` seconds of it.

    ``clock_fn`` is the monotonic clock samples are stamped with (default: the running loop's
    ``time()``, so it follows a virtual-time loop too).
    """

    def __init__(
        self,
        interval: float = 0.5,
        window: float = 300.0,
        *,
        clock_fn: Callable[[], float] | None = None,
    ) -> None:
        if interval <= 0 or window <= 0:
            raise ValueError("interval and window must be positive")
        self.interval = interval
        self.window = window
        self._clock_fn = clock_fn
        # Room for a full window of samples at the nominal rate, plus any record() calls.
        self._samples: deque[tuple[float, float]] = deque(
            maxlen=max(16, math.ceil(window / interval) * 2)
        )
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start sampling on the running loop; a second call while running does nothing."""
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="taskcog-lag-monitor")

    async def stop(self) -> None:
        """Stop sampling and wait for the task to end; the samples are kept."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def record(self, lag: float) -> None:
        """Add one sample (the monitor's own task calls this; tests may too)."""
        now = self._now()
        self._samples.append((now, max(0.0, lag)))
        self._prune(now)

    def stats(self) -> LagStats:
        """p50, p99 and max lag over the last ``window`` seconds."""
        self._prune(self._now())
        lags = [lag for _, lag in self._samples]
        return LagStats(
            samples=len(lags),
            p50=percentile(lags, 0.50),
            p99=percentile(lags, 0.99),
            max=max(lags) if lags else None,
            window=self.window,
        )

    def _now(self) -> float:
        if self._clock_fn is not None:
            return self._clock_fn()
        if self._loop is not None and not self._loop.is_closed():
            return self._loop.time()
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        while self._samples and self._samples[0][0] < horizon:
            self._samples.popleft()

    async def _run(self) -> None:
        while True:
            expected = self._now() + self.interval
            await asyncio.sleep(self.interval)
            self.record(self._now() - expected)
