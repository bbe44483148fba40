"""Shared test fixtures. Lives in tests/ on purpose: a root conftest breaks Red's imports.

Event loops. Red installs uvloop on Linux, so the engine must behave on it as on asyncio's own
loop. A module opts into both with
``pytestmark = pytest.mark.asyncio(loop_factories=["asyncio", "uvloop"])``: each of its async
tests then runs once per loop, with ids ``[asyncio]`` and ``[uvloop]``; the uvloop run is
skipped when uvloop is not installed. Every other async test runs once, on the loop the event
loop policy gives, as it always did.

pytest-asyncio 1.x (here 1.5) deprecates overriding its ``event_loop_policy`` fixture (and
Python 3.14 deprecates policies); its replacement is the ``pytest_asyncio_loop_factories`` hook
below together with the marker's ``loop_factories``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Callable

import pytest

# Bytecode caching on, here and in every subprocess (redbot, workers, pip): a shell with
# PYTHONDONTWRITEBYTECODE=1 otherwise recompiles Red, discord.py and taskcog at every cog load
# and every process start, which was over a third of the suite's time.
sys.dont_write_bytecode = False
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DEADSIDE = ROOT.parent / "shared" / "data" / "deadside"

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def _loop_from_policy() -> asyncio.AbstractEventLoop:
    """The loop an async test gets without a factory: whatever the current policy makes."""
    return asyncio.get_event_loop_policy().new_event_loop()


def _real_loops() -> dict[str, LoopFactory]:
    """Red's two event loops, by test id. asyncio's is built directly, so a uvloop policy
    installed by something else (Red's own start-up does that) cannot turn it into uvloop."""
    loops: dict[str, LoopFactory] = {"asyncio": asyncio.SelectorEventLoop}
    try:
        import uvloop
    except ImportError:  # pytest-asyncio skips the "uvloop" runs: not available
        return loops
    loops["uvloop"] = uvloop.new_event_loop
    return loops


REAL_LOOPS = _real_loops()


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> dict[str, LoopFactory]:
    """The loops an async test runs on: both of Red's loops if its module (or the test) asks
    for them with ``mark.asyncio(loop_factories=[...])``, else the policy's loop alone, as a
    hidden parameter, so the rest of the suite runs once with unchanged test ids."""
    marker = item.get_closest_marker("asyncio")
    if marker is not None and "loop_factories" in marker.kwargs:
        return REAL_LOOPS
    return {"policy": _loop_from_policy}


@pytest.fixture
def loop_name(request: pytest.FixtureRequest) -> str:
    """Which loop this test runs on: "asyncio" or "uvloop" (tests opted into both), else
    "policy"."""
    callspec = getattr(request.node, "callspec", None)
    factory = callspec.params.get("_asyncio_loop_factory") if callspec is not None else None
    for name, candidate in REAL_LOOPS.items():
        if candidate is factory:
            return name
    return "policy"
