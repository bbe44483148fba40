"""The ext.tasks hooks of a loop (``before_loop``, ``after_loop``, ``error``, ``circuit_open``).

:class:`LoopHooks` registers them, calls them with the bound instance first (as ext.tasks does),
and holds the default ``error`` hook, which logs the exception.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any, Callable, Coroutine, TypeVar

_log = logging.getLogger("red.taskcog.engine.tasks")

__all__ = ("LoopHooks",)

_func = Callable[..., Coroutine[Any, Any, Any]]
FT = TypeVar("FT", bound=_func)
ET = TypeVar("ET", bound=Callable[[Any, BaseException], Coroutine[Any, Any, Any]])


class LoopHooks:
    """The hooks of a :class:`~taskcog.engine.tasks.Loop`: registering and calling them."""

    coro: _func
    _injected: Any
    _name: str
    _before_loop: Any
    _after_loop: Any
    _circuit_open: Any

    async def _call_loop_function(self, name: str, *args: Any, **kwargs: Any) -> None:
        coro = getattr(self, "_" + name)
        if coro is None:
            return
        if self._injected is not None:
            await coro(self._injected, *args, **kwargs)
        else:
            await coro(*args, **kwargs)

    async def _call_hook_safely(self, name: str, *args: Any) -> None:
        """A hook that raises must not take the supervised loop down with it."""
        try:
            await self._call_loop_function(name, *args)
        except Exception:
            _log.exception("The %s hook of background task %s raised", name, self._name)

    async def _error(self, *args: Any) -> None:
        exception: BaseException = args[-1]
        _log.error(
            "Unhandled exception in internal background task %r.",
            self.coro.__name__,
            exc_info=exception,
        )

    @staticmethod
    def _check_coro(coro: Any) -> None:
        if not inspect.iscoroutinefunction(coro):
            raise TypeError(f"Expected coroutine function, received {coro.__class__.__name__}.")

    def before_loop(self, coro: FT) -> FT:
        """Register a coroutine run before the first iteration (``stop()`` in it skips all)."""
        self._check_coro(coro)
        self._before_loop = coro
        return coro

    def after_loop(self, coro: FT) -> FT:
        """Register a coroutine run when the loop ends, also on cancellation."""
        self._check_coro(coro)
        self._after_loop = coro
        return coro

    def error(self, coro: ET) -> ET:
        """Register a coroutine called with each failed iteration's exception.

        Not called for rate limits or for exceptions ``reconnect=True`` handles.
        """
        self._check_coro(coro)
        self._error = coro  # type: ignore[assignment]
        return coro

    def circuit_open(self, coro: FT) -> FT:
        """Register a coroutine called once, with ``(status, exc)``, when the circuit opens."""
        self._check_coro(coro)
        self._circuit_open = coro
        return coro
