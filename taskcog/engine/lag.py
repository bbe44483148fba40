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
import random
import threading
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
        rng: random.Random | None = None,
    ) -> None:
        """``rng``: sleep random (exponential) gaps of mean ``interval`` instead of fixed ones,
        as :class:`ThreadLagMonitor` does, so periodic blocking cannot hide."""
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
        self._random = rng

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

    def stats(self, window: float | None = None) -> LagStats:
        """p50, p99 and max lag over the last ``window`` seconds (default: the whole window
        kept; deferral asks for the last 10 s)."""
        now = self._now()
        self._prune(now)
        if window is None or window >= self.window:
            window = self.window
            lags = [lag for _, lag in self._samples]
        else:
            horizon = now - window
            lags = [lag for at, lag in self._samples if at >= horizon]
        return LagStats(
            samples=len(lags),
            p50=percentile(lags, 0.50),
            p99=percentile(lags, 0.99),
            max=max(lags) if lags else None,
            window=window,
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
            gap = self.interval
            if self._random is not None:
                gap = min(4 * gap, self._random.expovariate(1.0 / gap))
            expected = self._now() + gap
            await asyncio.sleep(gap)
            self.record(self._now() - expected)


class ThreadLagMonitor(LagMonitor):
    """The same measurement, taken from a small helper thread instead of a loop task.

    The thread schedules a probe with ``call_soon_threadsafe`` and the probe records how long
    the loop took to run it. Nothing sleeps on the loop, so it cannot keep a test harness's "is
    the bot idle?" check busy, and a loop that is blocked still gets measured the moment it
    frees up. ``stop()`` joins the thread.

    Probes go out at random times, ``interval`` apart on average (exponential gaps, capped at
    four intervals): a fixed gap after each answer locks in step with periodic blocking (a loop
    blocked 150 ms of every 170 ms was reported at a steady 90 ms), while random probes see
    the loop as it is on average, so the reported lag matches the blocking.
    """

    def __init__(
        self, interval: float = 0.25, window: float = 300.0, *, rng: random.Random | None = None
    ) -> None:
        super().__init__(interval, window, clock_fn=time.monotonic)
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._rng = rng or random.Random()
        self.on_sample: Callable[[float], None] | None = None

    def _gap(self) -> float:
        """Seconds to the next probe: exponential with mean ``interval``, capped."""
        return min(4 * self.interval, self._rng.expovariate(1.0 / self.interval))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._halt.clear()
        self._thread = threading.Thread(
            target=self._probe_forever, name="taskcog-lag-monitor", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._halt.set()
        thread.join(timeout=4 * self.interval + 1.0)

    def _probe_forever(self) -> None:
        loop = self._loop
        assert loop is not None
        answered = threading.Event()
        while not self._halt.wait(self._gap()):
            answered.clear()
            sent = time.perf_counter()

            def probe(sent: float = sent) -> None:
                lag = time.perf_counter() - sent
                self.record(lag)
                answered.set()
                if self.on_sample is not None:
                    self.on_sample(lag)

            try:
                loop.call_soon_threadsafe(probe)
            except RuntimeError:  # the loop closed under us
                return
            # One probe in flight at a time: a blocked loop is measured once, not queued up.
            while not answered.wait(0.05):
                if self._halt.is_set() or loop.is_closed():
                    return
