"""Where the engine reads the time.

The engine computes every wait as a *delay* from ``Clock.now()`` and sleeps with the running
loop's timers. Swapping the clock is therefore enough to run it on virtual time: the engine's
own :class:`~taskcog.engine.testing.VirtualTimeLoop`, or simcord's, whose ``discord.utils.utcnow``
the cog passes in.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Callable, Protocol

UTC = _dt.UTC


class Clock(Protocol):
    """Wall-clock and monotonic time as the engine sees it."""

    def now(self) -> _dt.datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps; used to measure durations."""
        ...


class SystemClock:
    """Real time: ``datetime.now(UTC)`` and the running loop's monotonic clock."""

    def __init__(self, now: Callable[[], _dt.datetime] | None = None) -> None:
        self._now = now

    def now(self) -> _dt.datetime:
        if self._now is not None:
            return self._now()
        return _dt.datetime.now(UTC)

    def monotonic(self) -> float:
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            import time

            return time.monotonic()


SYSTEM_CLOCK = SystemClock()
