"""What a lane and a running job report: lane counters with recent durations, job progress."""

from __future__ import annotations

import inspect
import logging
import threading
import weakref
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger("red.taskcog.engine.pool")  # under Red's "red" logger tree

ProgressCallback = Callable[[float, "float | None", str], None]

_DURATION_WINDOW = 512


@dataclass(frozen=True)
class LaneMetrics:
    """A lane's counters and its recent job durations (seconds; None before any job ran)."""

    name: str
    workers: int
    queued: int
    running: int
    done: int
    failed: int
    cancelled: int
    rejected: int
    p50: float | None
    p95: float | None


class Progress:
    """Handed to a job whose function accepts a ``progress`` keyword; thread-safe.

    The function calls ``progress(done, total, note)`` as often as it likes; the latest value is
    delivered to the submitter's callback on the event loop thread. Updates that arrive while a
    delivery is pending are coalesced into the newest one, so the loop is never flooded and the
    callback sees values in the order they were reported.
    """

    def __init__(
        self,
        callback: ProgressCallback | None = None,
        post: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self._callback = callback
        self._post = post
        self._lock = threading.Lock()
        self._latest: tuple[float, float | None, str] | None = None
        self._scheduled = False
        self.cancelled = False
        """Set when the job is cancelled or the pool shuts down; a long job may stop early."""

    @property
    def latest(self) -> tuple[float, float | None, str] | None:
        """The most recent ``(done, total, note)``, or None before the first report."""
        with self._lock:
            return self._latest

    def __call__(self, done: float, total: float | None = None, note: str = "") -> None:
        with self._lock:
            self._latest = (done, total, note)
            if self._scheduled or self._callback is None or self._post is None:
                return
            self._scheduled = True
        self._post(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            self._scheduled = False
            latest = self._latest
        if latest is None or self._callback is None:
            return
        try:
            self._callback(*latest)
        except Exception:  # noqa: BLE001 - a broken display must not break the job
            log.exception("progress callback failed")


def _accepts_progress(fn: Callable[..., Any]) -> bool:
    # inspect.signature costs ~0.1 ms; a feed polling 100 servers every 2 s submits hundreds
    # of jobs a second, so the answer is kept per underlying function.
    target = getattr(fn, "__func__", fn)
    try:
        return _ACCEPTS[target]
    except (KeyError, TypeError):
        pass
    answer = _signature_has_progress(fn)
    try:
        _ACCEPTS[target] = answer
    except TypeError:  # not weak-referenceable: just don't keep it
        pass
    return answer


_ACCEPTS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _signature_has_progress(fn: Callable[..., Any]) -> bool:
    try:
        parameter = inspect.signature(fn).parameters.get("progress")
    except (TypeError, ValueError):  # some builtins have no signature
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )
