"""Short full garbage collections while heavy work runs.

A full (generation 2) collection walks every object the process tracks: in a Red bot, Red,
discord.py's caches and every loaded cog, 50-90 ms on a small VM, during which no thread runs
Python, the event loop included. A history import allocates fast, so it triggers several of
them (measured: ``bench/bench_import_live.py``). :func:`frozen_heap` moves the objects alive
when the work starts to ``gc``'s permanent generation (:func:`gc.freeze`) for as long as the
work runs, so those collections only walk what was allocated since; when the last holder
ends, :func:`gc.unfreeze` hands them back, and a later collection frees any of them that
became garbage meanwhile (delayed, never leaked).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

_lock = threading.Lock()
_holders = 0


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze the heap alive now for the duration; nested and concurrent holders share one
    freeze, undone when the last of them ends."""
    global _holders
    with _lock:
        if _holders == 0:
            gc.freeze()
        _holders += 1
    try:
        yield
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                gc.unfreeze()
