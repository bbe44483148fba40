"""The future the idle dispatcher parks on, and the timer callback that wakes it."""

from __future__ import annotations

import asyncio
from typing import Callable

# The exact callback asyncio.sleep uses: simcord (and any virtual clock that inspects timers)
# recognises a task parked on it as sleeping, not stuck.
_set_result_unless_cancelled = getattr(asyncio.futures, "_set_result_unless_cancelled", None) or (
    lambda fut, result: None if fut.cancelled() else fut.set_result(result)
)


class _Waker(asyncio.Future):  # type: ignore[type-arg]
    """The future the idle dispatcher task is parked on.

    Its wake-up timer calls ``_set_result_unless_cancelled(waker, None)`` like a plain sleep.
    Run by the loop itself (no task current), ``set_result`` dispatches the due jobs right
    there and re-arms the timer instead of resolving: one loop iteration per wake-up, not
    two (timer, then task step), and the dispatcher stays parked on a sleep-shaped timer.
    Run from inside a task (a virtual-time harness such as simcord firing timers itself), it
    resolves as usual and the dispatcher task dispatches, as a sleeping task would.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, on_time: Callable[[], None]) -> None:
        super().__init__(loop=loop)
        self._on_time = on_time

    def set_result(self, result: object) -> None:
        if asyncio.current_task(self.get_loop()) is None:
            self._on_time()
        else:
            super().set_result(result)
