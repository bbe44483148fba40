"""The supervision rules every taskcog loop and job shares.

One iteration is run by :func:`run_iteration`; what it did is written into a
:class:`TaskStatus`; what happens next (retry now, back off, open the circuit, wait for a rate
limit) is decided by :class:`RetryPolicy`. The Loop and the job-family supervisor only decide
*when* to run; this module decides what a failure means, so both behave the same way.

Rules, in one place:

- A successful iteration resets the backoff and the consecutive-failure count.
- A Discord 429 (any exception with ``status == 429`` and a ``retry_after``) waits
  ``retry_after`` seconds and is not a failure.
- A transient error (HTTP 5xx, ``OSError``/``ConnectionError``, ``asyncio.TimeoutError`` raised by
  the body) is retried with backoff and recorded, but does not count towards the circuit.
- :class:`NeedsSetup` (the task is not configured yet: no channel, no game server) is not a
  failure: the state is ``needs-setup`` with the exception's message as what to do, no failure
  is counted, no circuit opens, and the next run follows the schedule, so setting the missing
  piece makes the next tick run.
- Any other exception, and an iteration cut off by ``timeout=``, is a failure: it is recorded,
  retried after an exponential backoff with full jitter, and after ``failure_threshold``
  consecutive failures the circuit opens.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import enum
import random
import traceback
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from .clock import Clock


class NeedsSetup(Exception):
    """The task cannot run until someone configures it; the message says what to do."""


class State(str, enum.Enum):
    """What a loop or job is doing right now."""

    SLEEPING = "sleeping"
    NEEDS_SETUP = "needs-setup"
    RUNNING = "running"
    BACKOFF = "backoff"
    CIRCUIT_OPEN = "circuit-open"
    STOPPED = "stopped"
    FINISHED = "finished"

    def __str__(self) -> str:
        return self.value


class Outcome(str, enum.Enum):
    """How one iteration ended."""

    OK = "ok"
    ERROR = "error"
    TRANSIENT = "transient"
    RATE_LIMITED = "rate-limited"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    NEEDS_SETUP = "needs-setup"

    def __str__(self) -> str:
        return self.value


class ErrorKind(enum.Enum):
    NEEDS_SETUP = "needs-setup"
    RATE_LIMITED = "rate-limited"
    TRANSIENT = "transient"
    FAILURE = "failure"


def classify(exc: BaseException) -> tuple[ErrorKind, float | None]:
    """Sort an exception into rate-limit (with its wait), transient or failure.

    Duck-typed so the engine needs no discord import: ``discord.HTTPException`` carries
    ``status``, ``discord.RateLimited`` carries ``retry_after``.
    """
    if isinstance(exc, NeedsSetup):
        return ErrorKind.NEEDS_SETUP, None
    status = getattr(exc, "status", None)
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is None:
        response = getattr(exc, "response", None)
        headers = getattr(response, "headers", None)
        if headers is not None:
            try:
                retry_after = float(headers.get("Retry-After"))
            except (TypeError, ValueError):
                retry_after = None
    if status == 429 or (status is None and type(exc).__name__ == "RateLimited"):
        return ErrorKind.RATE_LIMITED, max(0.0, float(retry_after or 1.0))
    if isinstance(status, int) and 500 <= status < 600:
        return ErrorKind.TRANSIENT, None
    if isinstance(exc, (OSError, ConnectionError, asyncio.TimeoutError, TimeoutError)):
        return ErrorKind.TRANSIENT, None
    if type(exc).__name__ in {"GatewayNotFound", "ConnectionClosed", "ClientError"}:
        return ErrorKind.TRANSIENT, None
    return ErrorKind.FAILURE, None


@dataclass(frozen=True)
class ErrorRecord:
    """One recorded error. ``traceback`` is for the bot owner only."""

    at: _dt.datetime
    type: str
    message: str
    traceback: str
    outcome: Outcome = Outcome.ERROR

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        at: _dt.datetime,
        outcome: Outcome = Outcome.ERROR,
        redact: Callable[[str], str] | None = None,
    ) -> ErrorRecord:
        message = str(exc) or type(exc).__name__
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        if redact is not None:
            message, tb = redact(message), redact(tb)
        return cls(at=at, type=type(exc).__name__, message=message, traceback=tb, outcome=outcome)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class TaskStatus:
    """Everything a status command shows about one loop or one (task, key) job."""

    name: str
    key: Any = None
    state: State = State.STOPPED
    iterations: int = 0
    last_start: _dt.datetime | None = None
    last_end: _dt.datetime | None = None
    last_duration: float | None = None
    last_outcome: Outcome | None = None
    consecutive_failures: int = 0
    total_failures: int = 0
    transient_errors: int = 0
    transient_streak: int = 0
    last_error: ErrorRecord | None = None
    needs_setup: str | None = None  # what to configure before it can run, while it waits
    errors: deque[ErrorRecord] = field(default_factory=lambda: deque(maxlen=20))
    next_run: _dt.datetime | None = None
    restarts: int = 0
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=256))
    depends_on: str | None = None  # what it waits for: "after killfeed", "requires ..."
    skipped: int = 0  # runs skipped because a dependency was not met (not failures)
    last_skip: str | None = None  # why the latest skip happened
    last_skip_at: _dt.datetime | None = None
    deferred: int = 0  # low-priority runs put off while the event loop lagged

    @property
    def failed(self) -> bool:
        """True while the most recent iterations are failing (or the circuit is open)."""
        return self.consecutive_failures > 0 or self.state is State.CIRCUIT_OPEN

    @property
    def p50(self) -> float | None:
        return percentile(list(self.durations), 0.50)

    @property
    def p95(self) -> float | None:
        return percentile(list(self.durations), 0.95)

    def snapshot(self) -> dict[str, Any]:
        """A plain dict for formatting or persisting (no deques, no tracebacks)."""
        return {
            "name": self.name,
            "key": self.key,
            "state": self.state.value,
            "iterations": self.iterations,
            "last_start": self.last_start,
            "last_end": self.last_end,
            "last_duration": self.last_duration,
            "last_outcome": self.last_outcome.value if self.last_outcome else None,
            "consecutive_failures": self.consecutive_failures,
            "total_failures": self.total_failures,
            "transient_errors": self.transient_errors,
            "last_error": (
                {"type": self.last_error.type, "message": self.last_error.message}
                if self.last_error
                else None
            ),
            "next_run": self.next_run,
            "needs_setup": self.needs_setup,
            "restarts": self.restarts,
            "depends_on": self.depends_on,
            "skipped": self.skipped,
            "last_skip": self.last_skip,
            "deferred": self.deferred,
            "p50": self.p50,
            "p95": self.p95,
        }


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, and the circuit-breaker threshold."""

    base: float = 1.0
    cap: float = 300.0
    failure_threshold: int = 5

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds before retry ``attempt`` (1-based): uniform in [0, min(cap, base * 2^(n-1)))."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return (rng or random).uniform(0.0, ceiling)


@dataclass
class Verdict:
    """What the caller should do after an iteration."""

    outcome: Outcome
    retry_in: float | None = None  # seconds to wait before retrying, None = follow schedule
    circuit_opened: bool = False
    exception: BaseException | None = None


async def run_iteration(
    body: Callable[[], Awaitable[Any]],
    status: TaskStatus,
    *,
    clock: Clock,
    policy: RetryPolicy,
    timeout: float | None = None,
    rng: random.Random | None = None,
    redact: Callable[[str], str] | None = None,
) -> Verdict:
    """Run one iteration under supervision and record it in ``status``.

    Never raises for an exception from ``body``; a cancellation of the *caller* propagates.
    """
    status.state = State.RUNNING
    status.last_start = clock.now()
    started = clock.monotonic()
    exc: BaseException | None = None
    timed_out = False
    # asyncio.timeout keeps the body in this task (no extra task per run, and virtual-time
    # harnesses such as simcord recognise what the body awaits).
    scope = asyncio.timeout(timeout)
    try:
        async with scope:
            await body()
    except TimeoutError as error:
        timed_out = scope.expired()
        exc = error
    except asyncio.CancelledError:
        status.last_end = clock.now()
        status.last_duration = clock.monotonic() - started
        status.last_outcome = Outcome.CANCELLED
        raise
    except Exception as error:  # noqa: BLE001 - supervision is the point
        exc = error
    status.last_end = clock.now()
    duration = clock.monotonic() - started
    status.last_duration = duration
    status.iterations += 1
    status.durations.append(duration)
    return record_outcome(
        status, exc, clock=clock, policy=policy, timed_out=timed_out, rng=rng, redact=redact
    )


def record_outcome(
    status: TaskStatus,
    exc: BaseException | None,
    *,
    clock: Clock,
    policy: RetryPolicy,
    timed_out: bool = False,
    rng: random.Random | None = None,
    redact: Callable[[str], str] | None = None,
) -> Verdict:
    """Apply the supervision rules to one finished iteration."""
    if exc is None:
        status.last_outcome = Outcome.OK
        status.consecutive_failures = 0
        status.transient_streak = 0
        status.needs_setup = None
        return Verdict(Outcome.OK)
    if isinstance(exc, NeedsSetup):  # waiting for configuration, not failing
        status.last_outcome = Outcome.NEEDS_SETUP
        status.needs_setup = str(exc) or type(exc).__name__
        status.consecutive_failures = 0
        status.transient_streak = 0
        status.state = State.NEEDS_SETUP
        return Verdict(Outcome.NEEDS_SETUP, exception=exc)
    status.needs_setup = None
    if timed_out:
        kind, retry_after = ErrorKind.FAILURE, None
        outcome = Outcome.TIMEOUT
    else:
        kind, retry_after = classify(exc)
        outcome = {
            ErrorKind.NEEDS_SETUP: Outcome.NEEDS_SETUP,
            ErrorKind.RATE_LIMITED: Outcome.RATE_LIMITED,
            ErrorKind.TRANSIENT: Outcome.TRANSIENT,
            ErrorKind.FAILURE: Outcome.ERROR,
        }[kind]
    status.last_outcome = outcome
    record = ErrorRecord.from_exception(exc, clock.now(), outcome, redact)
    if kind is ErrorKind.RATE_LIMITED:
        return Verdict(outcome, retry_in=retry_after, exception=exc)
    status.last_error = record
    status.errors.append(record)
    if kind is ErrorKind.TRANSIENT:
        status.transient_errors += 1
        status.transient_streak += 1
        attempt = status.consecutive_failures + status.transient_streak
        return Verdict(outcome, retry_in=policy.backoff(min(attempt, 16), rng), exception=exc)
    status.consecutive_failures += 1
    status.total_failures += 1
    if status.consecutive_failures >= policy.failure_threshold:
        status.state = State.CIRCUIT_OPEN
        return Verdict(outcome, circuit_opened=True, exception=exc)
    return Verdict(
        outcome, retry_in=policy.backoff(status.consecutive_failures, rng), exception=exc
    )
