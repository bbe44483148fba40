"""The event loops the benchmarks run on: uvloop, which Red installs on Linux (so every
production bot runs on it), and asyncio's default loop.

Scripts take ``--loop asyncio|uvloop|both`` (:func:`add_loop_option`); "both" means uvloop
first, then asyncio.
"""

from __future__ import annotations

import argparse
import asyncio

LOOPS = ("uvloop", "asyncio")


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """A fresh, unset event loop of ``kind``: ``"uvloop"`` or ``"asyncio"``.

    Raises ValueError for any other kind."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    if kind == "asyncio":
        return asyncio.new_event_loop()
    raise ValueError(f"unknown event loop {kind!r}: expected one of {', '.join(LOOPS)}")


def add_loop_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--loop asyncio|uvloop|both`` (default: both)."""
    parser.add_argument(
        "--loop",
        choices=(*LOOPS, "both"),
        default="both",
        help="event loop to measure on; both = uvloop, then asyncio (default: both)",
    )


def chosen_loops(choice: str) -> list[str]:
    """The loops a ``--loop`` value names, uvloop first."""
    return list(LOOPS) if choice == "both" else [choice]


def uvloop_version() -> str:
    """uvloop's version, for a report's machine line."""
    import uvloop

    return str(uvloop.__version__)
