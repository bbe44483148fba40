"""When a loop's next tick is due after an overrun, and the one timer the loop sleeps on.

:func:`following_tick` is pure: it applies the ``catch_up`` misfire policy to a
:class:`~taskcog.engine.schedules.Schedule`. :class:`SleepHandle` is a single cancellable,
re-schedulable wait, so ``stop()`` and ``change_interval()`` take effect during a sleep.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Literal

from .. import schedules
from ..clock import SYSTEM_CLOCK, Clock

__all__ = ("CatchUp", "SleepHandle", "following_tick")

CatchUp = Literal["coalesce", "skip", "all"]


# --- Scheduling: when the next iteration is due (pure) ----------------------------------------

_MAX_SCAN = 10_000


def following_tick(
    schedule: schedules.Schedule,
    last_tick: _dt.datetime,
    now: _dt.datetime,
    catch_up: CatchUp = "coalesce",
) -> _dt.datetime | None:
    """The tick to run after ``last_tick`` when it is ``now``, under the misfire policy.

    ``all`` returns the earliest missed tick (ticks are replayed one by one), ``coalesce`` the
    latest missed one (a single catch-up run, after which the next tick is in the future),
    ``skip`` the first future tick. None means the schedule has no more ticks.
    """
    candidate = schedule.next_after(last_tick)
    if candidate is None or candidate > now or catch_up == "all":
        return candidate
    missed = candidate
    for _ in range(_MAX_SCAN):
        upcoming = schedule.next_after(missed)
        if upcoming is None or upcoming > now or upcoming <= missed:
            break
        missed = upcoming
    else:  # a very long outage on a short interval: stop scanning, re-anchor on now
        missed, upcoming = now, schedule.next_after(now)
    return missed if catch_up == "coalesce" else upcoming


# --- Sleeping: one cancellable, re-schedulable timer ------------------------------------------


class SleepHandle:
    """A wait until ``dt`` on the running loop's timers, the delay computed from ``clock``."""

    __slots__ = ("future", "loop", "handle", "clock")

    def __init__(
        self, dt: _dt.datetime, *, loop: asyncio.AbstractEventLoop, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.loop = loop
        self.clock = clock
        self.future: asyncio.Future[None] = loop.create_future()
        self.handle = loop.call_later(self._delay(dt), self._wrapped_set_result, self.future)

    def _delay(self, dt: _dt.datetime) -> float:
        return max(0.0, (dt - self.clock.now()).total_seconds())

    @staticmethod
    def _wrapped_set_result(future: asyncio.Future[None]) -> None:
        if not future.done():
            future.set_result(None)

    def recalculate(self, dt: _dt.datetime) -> None:
        """Move the wake-up to ``dt`` (computed from the clock's now)."""
        self.handle.cancel()
        self.handle = self.loop.call_later(self._delay(dt), self._wrapped_set_result, self.future)

    def wake(self) -> None:
        """End the wait now."""
        self.handle.cancel()
        self._wrapped_set_result(self.future)

    def wait(self) -> asyncio.Future[None]:
        return self.future

    def done(self) -> bool:
        return self.future.done()

    def cancel(self) -> None:
        self.handle.cancel()
        self.future.cancel()
