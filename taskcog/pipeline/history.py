"""A game server's past: every kill CSV read once into the stats store, resumably.

The order keeps an import exact across stops, crashes and the live feed:

1. :func:`plan` lists the kill files (the same discovery the killfeed uses), stats each one and
   asks the store how far each was already imported (``import_cursors``, one query);
2. :func:`import_files` cuts the files into slices of byte ranges (``remote.imports``); each
   slice is read and parsed into columns with event ids, in this process (the pool's
   ``parse`` lane) or on a taskiq worker, a few slices ahead;
3. the bot stores the slices in order, in the pool's ``stats`` lane below the lanes of the
   live killfeed (``store.import_parsed``): the events (idempotent by event id, so kills the
   live feed already stored count as known) and every file's cursor in ONE transaction.

A cancel between slices leaves every cursor at a committed slice end; a store call already
running in the pool still commits whole. Either way the next run resumes exactly, whichever
machine parsed what. Nothing here posts.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import polars as pl

from ..engine.heap import frozen_heap
from ..engine.pool import WorkerPool
from .remote.imports import Part, SliceResult, local_slice, split
from .sources import Source

RunSlice = Callable[[list[Part]], Awaitable[SliceResult]]

# The pool lane of every stats write (live and history), below the killfeed's own lanes: a
# write waits for the store's lock while an import's transaction runs, and must not hold up the
# killfeed's ledger (``db``) meanwhile. History jobs go at a lower priority than live writes.
STATS_LANE = "stats"
# Sizes chosen by measurement (bench/bench_import.py's RSS run): bigger store transactions
# import faster (16 MiB: 1M lines in ~36 s, 4 MiB: ~50 s) but the bot's RSS grew by 260-510 MB
# over the 200 MB budget; these keep it at ~175 MB.
CHUNK_BYTES = 2 * 1024 * 1024  # bytes per slice: one read and parse, here or on a worker
STORE_BYTES = 4 * 1024 * 1024  # bytes per store transaction at most (slices parsed meanwhile)
# Slices in flight in this process: one parsed while one is stored, where the host has a core
# left for the event loop after those two; on a 2-core host one at a time, so an import never
# keeps both cores busy beside the live feeds (bench/bench_import_live.py).
LOCAL_WINDOW = 2 if (os.cpu_count() or 1) > 2 else 1
STAT_CONCURRENCY = 16
MAX_SAMPLES = 5


@dataclass(frozen=True)
class HistoryFile:
    """One kill file: its size when planned and how far it was already imported."""

    path: str
    size: int
    done: int
    newest: bool  # still being written: its last line may be partial, so only whole lines

    @property
    def left(self) -> int:
        return max(0, self.size - self.done)


@dataclass
class HistoryPlan:
    server: str
    files: list[HistoryFile] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def left_bytes(self) -> int:
        return sum(f.left for f in self.files)

    @property
    def pending(self) -> list[HistoryFile]:
        return [f for f in self.files if f.left > 0]


@dataclass
class HistoryTotals:
    """What an import did so far (this run), for the progress message and the summary."""

    files_total: int = 0
    files_done: int = 0
    bytes_total: int = 0
    bytes_done: int = 0
    lines: int = 0
    new: int = 0
    known: int = 0
    malformed: int = 0
    samples: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)

    @property
    def lines_per_second(self) -> float:
        return self.lines / self.elapsed

    @property
    def lines_estimate(self) -> int:
        """Lines in all planned bytes, extrapolated from the bytes read so far."""
        if self.bytes_done <= 0:
            return 0
        return max(self.lines, round(self.lines * self.bytes_total / self.bytes_done))

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far, or None before any byte was read."""
        if self.bytes_done <= 0:
            return None
        rate = self.bytes_done / self.elapsed
        return max(0.0, (self.bytes_total - self.bytes_done) / rate)

    @property
    def fraction(self) -> float:
        if self.bytes_total <= 0:
            return 1.0
        return min(1.0, self.bytes_done / self.bytes_total)

    def add(self, result: Any, redact: Callable[[str], str]) -> None:
        self.lines += result.lines
        self.new += result.new
        self.known += result.known
        self.malformed += result.malformed
        room = MAX_SAMPLES - len(self.samples)
        if room > 0:
            self.samples.extend(redact(s) for s in result.samples[:room])


async def plan(
    source: Source,
    store: Any,
    pool: WorkerPool,
    guild_id: int,
    server: str,
    *,
    lane: str = STATS_LANE,
    priority: int | None = None,
) -> HistoryPlan:
    """Every kill file of ``source`` with its size and what was imported of it already."""
    layout = await source.discover()
    paths = list(layout.kill_files)
    limit = asyncio.Semaphore(STAT_CONCURRENCY)
    imported = await pool.submit(
        lane, store.import_cursors, guild_id, server, priority=priority
    )  # one query, however many files: a lane's queue is bounded

    async def one(path: str) -> HistoryFile:
        async with limit:
            size = (await source.stat(path)).size
        done = int(imported.get(path, 0))
        return HistoryFile(path, size, min(done, size), newest=path == paths[-1])

    files = await asyncio.gather(*(one(path) for path in paths))
    return HistoryPlan(server, list(files))


async def import_files(
    source: Source,
    history: HistoryPlan,
    store: Any,
    pool: WorkerPool,
    guild_id: int,
    totals: HistoryTotals,
    *,
    flag_over: float,
    priority: int | None = None,
    chunk_bytes: int | None = None,
    on_chunk: Callable[[], Any] | None = None,
    run_slice: RunSlice | None = None,
    window: int = LOCAL_WINDOW,
) -> None:
    """Import what is left of each planned file; ``on_chunk()`` after each committed slice.

    The files are cut into slices of about ``chunk_bytes`` (small files share one, big ones
    are split). ``run_slice`` reads and parses one slice: by default here (the bot's
    ``source``, the pool's ``parse`` lane), or on a worker (``remote.imports.remote_slice``).
    Up to ``window`` slices are read and parsed ahead while the store writes the oldest; the
    slices are stored in order, the oldest together with those after it already parsed (up to
    :data:`STORE_BYTES`), with their cursors in the same transaction. Raises what
    the source, the worker or the store raised; every cursor then stays at a committed end.

    The heap alive at the start is frozen while it runs (``engine.heap.frozen_heap``): an
    import allocates fast, and each full collection would otherwise walk the whole bot's
    objects with the event loop stopped (50-90 ms measured).
    """
    with frozen_heap():
        budget = chunk_bytes or CHUNK_BYTES
        todo = split(((f.path, f.done, f.size, f.newest) for f in history.pending), budget)
        if run_slice is None:
            key = ("history", guild_id, history.server)

            async def run_slice(parts: list[Part]) -> SliceResult:
                return await local_slice(source, parts, pool, key=key, priority=priority)

        running: deque[tuple[list[Part], asyncio.Future[SliceResult]]] = deque()

        async def commit() -> None:
            """Store the oldest slice, with those after it that are already parsed, up to
            :data:`STORE_BYTES`: bigger transactions upsert each player's rows fewer times."""
            parts, reading = running[0]
            batch = [await reading]
            running.popleft()
            size = sum(p.end - p.start for p in parts)
            while running and running[0][1].done():
                more = sum(p.end - p.start for p in running[0][0])
                if size + more > STORE_BYTES:
                    break
                following, done = running.popleft()
                parts = parts + following
                batch.append(done.result())
                size += more
            result = await pool.submit(
                STATS_LANE, _store, store, guild_id, history.server, batch, flag_over,
                priority=priority,
            )  # fmt: skip
            result.lines = sum(b.lines for b in batch)
            result.malformed = sum(b.malformed for b in batch)
            result.samples = [s for b in batch for s in b.samples]
            totals.add(result, source.redact)
            totals.bytes_done += size
            totals.files_done += sum(p.end >= p.size for p in parts)
            if on_chunk is not None:
                await on_chunk()

        try:
            for parts in todo:
                running.append((parts, asyncio.ensure_future(run_slice(parts))))
                if len(running) >= max(1, window):
                    await commit()
            while running:
                await commit()
        finally:
            for _parts, reading in running:
                reading.cancel()
            await asyncio.gather(*(r for _p, r in running), return_exceptions=True)


def _store(
    store: Any, guild_id: int, server: str, batch: list[SliceResult], flag_over: float
) -> Any:
    """In the ``stats`` lane: decode a worker's columns, store a batch of slices and their
    cursors in one transaction (a file's later cursor overrides its earlier one)."""
    frames = [parsed.columns(ids_over=flag_over) for parsed in batch]
    frame = frames[0] if len(frames) == 1 else pl.concat(frames)
    cursors = [cursor for parsed in batch for cursor in parsed.cursors]
    return store.import_parsed(guild_id, server, frame, cursors, flag_over=flag_over)
