"""A virtual-time event loop for deterministic tests of schedules, loops and jobs.

``VirtualTimeLoop`` is a real selector event loop whose clock only moves when nothing is
runnable: instead of blocking in ``select`` for the next timer, it jumps straight to it. Hours of
schedule run in milliseconds, in order, with no ``sleep``-and-hope. While work submitted to a
thread (``run_in_executor``) is in flight it waits for real, so pool results still arrive before
virtual time moves on.

``VirtualClock(loop)`` is the matching wall clock: ``epoch + loop.time()``.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
from typing import Any, Callable

UTC = _dt.UTC
DEFAULT_EPOCH = _dt.datetime(2026, 1, 1, tzinfo=UTC)


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual and jumps to the next timer when idle."""

    def __init__(self, epoch: _dt.datetime = DEFAULT_EPOCH) -> None:
        super().__init__()
        self.epoch = epoch
        self._virtual = 0.0
        self._real_pending = 0
        real_select = self._selector.select

        def select(timeout: float | None = None) -> list[Any]:
            ready = real_select(0)
            if ready or timeout == 0:
                return ready
            if self._real_pending:
                # A thread is working for us: wait for it for real, a little at a time.
                wait = 0.05 if timeout is None else min(timeout, 0.05)
                ready = real_select(wait)
                if ready or timeout is None:
                    return ready
                return ready
            if timeout is None:
                return real_select(None)
            self._virtual += timeout
            return []

        self._selector.select = select  # type: ignore[method-assign]

    def time(self) -> float:
        return self._virtual

    def advance(self, seconds: float) -> None:
        """Move the clock forward by hand (e.g. to simulate a long blocking body)."""
        self._virtual += seconds

    def run_in_executor(self, executor: Any, func: Callable[..., Any], *args: Any) -> Any:
        future = super().run_in_executor(executor, func, *args)
        self._real_pending += 1

        def _done(_: Any) -> None:
            self._real_pending -= 1

        future.add_done_callback(_done)
        return future

    def track_real(self, future: asyncio.Future[Any]) -> None:
        """Mark a future completed by another thread so virtual time waits for it."""
        self._real_pending += 1
        future.add_done_callback(lambda _: setattr(self, "_real_pending", self._real_pending - 1))


class VirtualClock:
    """Wall clock for a :class:`VirtualTimeLoop`: ``epoch + loop.time()``."""

    def __init__(self, loop: VirtualTimeLoop | None = None) -> None:
        self._loop = loop

    @property
    def loop(self) -> VirtualTimeLoop:
        loop = self._loop or asyncio.get_running_loop()
        assert isinstance(loop, VirtualTimeLoop), "VirtualClock needs a VirtualTimeLoop"
        return loop

    def now(self) -> _dt.datetime:
        loop = self.loop
        return loop.epoch + _dt.timedelta(seconds=loop.time())

    def monotonic(self) -> float:
        return self.loop.time()


def run_virtual(coro_fn: Callable[[], Any], epoch: _dt.datetime = DEFAULT_EPOCH) -> Any:
    """Run ``coro_fn()`` to completion on a fresh VirtualTimeLoop and close it."""
    loop = VirtualTimeLoop(epoch)
    try:
        return loop.run_until_complete(coro_fn())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()
