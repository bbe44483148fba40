"""Supervision of a loop's iterations: what a failed iteration leads to.

Each iteration runs under :func:`~taskcog.engine.supervision.run_iteration`. A verdict other
than OK is reported (the ``error`` hook, or a warning for a rate limit or a reconnect-list
error), and ``failure_threshold`` failures in a row open the circuit: the loop parks until
:meth:`~taskcog.engine.tasks.Loop.start` or :meth:`~taskcog.engine.tasks.Loop.restart`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import sys
from typing import Any, Awaitable, Callable, Coroutine, Union

from ..clock import Clock
from ..supervision import (
    ErrorKind,
    Outcome,
    RetryPolicy,
    State,
    TaskStatus,
    Verdict,
    classify,
    run_iteration,
)
from .timing import SleepHandle

# Called with the Loop, its status and the error when the circuit opens.
CircuitCallback = Callable[[Any, TaskStatus, BaseException], Union[Awaitable[Any], Any]]

_log = logging.getLogger("red.taskcog.engine.tasks")

__all__ = ("LoopSupervision", "ReconnectableError")


def _default_reconnect_errors() -> tuple[type[BaseException], ...]:
    """ext.tasks' default reconnect list, taken from discord/aiohttp only if already loaded."""
    found: list[type[BaseException]] = [OSError, asyncio.TimeoutError]
    for module, names in (("discord", ("GatewayNotFound", "ConnectionClosed")),
                          ("aiohttp", ("ClientError",))):  # fmt: skip
        for name in names:
            cls = getattr(sys.modules.get(module), name, None)
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
    return tuple(found)


class ReconnectableError(ConnectionError):
    """Wraps an exception from the reconnect list so supervision treats it as transient."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original


class LoopSupervision:
    """The part of :class:`~taskcog.engine.tasks.Loop` that runs the body and judges the result.

    Reports through the hooks of :class:`~taskcog.engine.loop.hooks.LoopHooks`.
    """

    coro: Callable[..., Coroutine[Any, Any, Any]]
    reconnect: bool
    timeout: float | None
    policy: RetryPolicy
    on_circuit_open: CircuitCallback | None
    _name: str
    _valid_exception: tuple[type[BaseException], ...]
    _clock: Clock
    _rng: random.Random
    _status: TaskStatus
    _handle: SleepHandle | None
    _parked: bool
    _resume: asyncio.Event | None

    def _handled_by_reconnect(self, exc: BaseException) -> bool:
        return self.reconnect and isinstance(exc, self._valid_exception)

    async def _run_body(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        try:
            await self.coro(*args, **kwargs)
        except Exception as exc:
            if self._handled_by_reconnect(exc) and classify(exc)[0] is ErrorKind.FAILURE:
                raise ReconnectableError(exc) from exc
            raise

    async def _supervised_iteration(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Verdict:
        verdict = await run_iteration(
            lambda: self._run_body(args, kwargs),
            self._status,
            clock=self._clock,
            policy=self.policy,
            timeout=self.timeout,
            rng=self._rng,
        )
        if verdict.outcome is Outcome.NEEDS_SETUP:  # waiting for configuration: not an error
            _log.debug("Background task %s needs setup: %s", self._name, verdict.exception)
        elif verdict.outcome is not Outcome.OK:
            await self._report(verdict)
        return verdict

    # -- supervision: what a failed iteration leads to ------------------------------------------

    async def _report(self, verdict: Verdict) -> None:
        exc = verdict.exception
        assert exc is not None
        original = exc.original if isinstance(exc, ReconnectableError) else exc
        if verdict.outcome is Outcome.RATE_LIMITED:
            _log.warning("Background task %s rate limited for %.2fs", self._name, verdict.retry_in)
        elif verdict.outcome is Outcome.TRANSIENT and self._handled_by_reconnect(original):
            _log.warning(
                "Handling exception in internal background task %s. Retrying in %.2fs",
                self._name,
                verdict.retry_in or 0.0,
                exc_info=original,
            )
        else:
            await self._call_hook_safely("error", original)
        if verdict.circuit_opened:
            await self._open_circuit(original)

    async def _open_circuit(self, exc: BaseException) -> None:
        if self._parked:
            return
        self._parked = True
        self._resume = asyncio.Event()
        self._status.state = State.CIRCUIT_OPEN
        self._status.next_run = None
        _log.error(
            "Background task %s failed %d times in a row; circuit open until restarted",
            self._name,
            self._status.consecutive_failures,
        )
        if self._handle is not None and not self._handle.done():
            self._handle.wake()
        if self.on_circuit_open is not None:
            try:
                result = self.on_circuit_open(self, self._status, exc)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                _log.exception("on_circuit_open callback of %s raised", self._name)
        await self._call_hook_safely("circuit_open", self._status, exc)

    def _close_circuit(self) -> None:
        self._parked = False
        self._status.consecutive_failures = 0
        self._status.restarts += 1
        if self._resume is not None:
            self._resume.set()
