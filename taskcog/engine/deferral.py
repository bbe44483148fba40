"""Deferral under load: low-priority runs step aside while the event loop lags.

The "resource-aware scheduling" pattern: when the loop is already late (a parser that forgot
the pool, a flood of gateway events), starting more optional work makes everything later. A
:class:`Deferral` answers one question for the supervisor, *is the loop overloaded now?*, from
a lag figure (by default the lag monitor's p99 over the last 10 s) and an owner-set threshold.

Rules, in one place:

- only ``priority="low"`` runs are deferred; ``high`` and ``normal`` never are;
- a deferred run is re-checked every ``recheck`` seconds (5) and runs once the lag clears;
- one deferral never lasts more than ``longest`` seconds (5 minutes): then the run starts anyway;
- every deferral is counted (``count``), and a job's status counts its own (``deferred``).
"""

from __future__ import annotations

from typing import Callable

DEFAULT_THRESHOLD = 0.100  # p99 lag, seconds
DEFAULT_WINDOW = 10.0  # seconds of lag samples the p99 is taken over
MIN_SAMPLES = 10  # fewer samples than this in the window say nothing about a p99
LONGEST = 300.0  # a deferral never lasts longer than this
RECHECK = 5.0  # how often a deferred run asks again (a timer that close keeps a loop awake)


class Deferral:
    """Decides whether low-priority runs wait; ``lag()`` returns the current lag figure in
    seconds (None: no samples, so not overloaded). ``threshold=None`` turns deferral off."""

    def __init__(
        self,
        lag: Callable[[], float | None],
        threshold: float | None = DEFAULT_THRESHOLD,
        *,
        longest: float = LONGEST,
        recheck: float = RECHECK,
        cache: float = 0.25,
    ) -> None:
        if threshold is not None and not threshold > 0:
            raise ValueError("the lag threshold must be more than 0 seconds (or None: off)")
        if not longest > 0 or not recheck > 0:
            raise ValueError("longest and recheck must be more than 0 seconds")
        self._lag = lag
        self.threshold = threshold
        self.longest = float(longest)
        self.recheck = float(min(recheck, longest))
        self._cache = cache
        self._checked_at = float("-inf")
        self._last: float | None = None
        self.count = 0  # runs deferred so far (each re-check that defers again counts once)

    def lag(self, now: float) -> float | None:
        """The lag figure, read at most once per ``cache`` seconds of ``now``."""
        if now - self._checked_at >= self._cache or now < self._checked_at:
            self._checked_at = now
            self._last = self._lag()
        return self._last

    def overloaded(self, now: float) -> bool:
        """True while the lag is above the threshold (never when deferral is off)."""
        if self.threshold is None:
            return False
        lag = self.lag(now)
        return lag is not None and lag > self.threshold

    def describe(self) -> str:
        if self.threshold is None:
            return "off"
        return f"p99 lag over {self.threshold * 1000:g} ms in the last {DEFAULT_WINDOW:g} s"
