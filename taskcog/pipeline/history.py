"""A game server's past: every kill CSV read once into the stats store, resumably.

The order keeps an import exact across stops, crashes and the live feed:

1. :func:`plan` lists the kill files (the same discovery the killfeed uses), stats each one and
   asks the store how far each was already imported (``import_cursor``);
2. :func:`import_files` reads each file from there in chunks and hands the bytes to
   ``store.import_many`` / ``store.import_data`` in the pool's ``stats`` lane, below the
   lanes of the live killfeed and after its stats writes.
   The store parses them columnar, stores the events (idempotent by event id, so kills the live
   feed already stored count as known) and moves the file's cursor in the same transaction.

A cancel between chunks leaves every cursor at a committed chunk end; a chunk already running
in the pool still commits whole. Either way the next run resumes exactly. Nothing here posts.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ..engine.pool import WorkerPool
from .sources import Source

# The pool lane of every stats write (live and history), below the killfeed's own lanes: a
# write waits for the store's lock while an import's transaction runs, and must not hold up the
# killfeed's ledger (``db``) meanwhile. History jobs go at a lower priority than live writes.
STATS_LANE = "stats"
CHUNK_BYTES = 4 * 1024 * 1024  # bytes per store call: big enough to amortise its cost
MAX_CHUNK_BYTES = 16 * 1024 * 1024  # a line longer than a chunk grows it up to this
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

    async def one(path: str) -> HistoryFile:
        async with limit:
            size = (await source.stat(path)).size
        done = await pool.submit(
            lane, store.import_cursor, guild_id, server, path, priority=priority
        )
        return HistoryFile(path, size, min(int(done), size), newest=path == paths[-1])

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
) -> None:
    """Import what is left of each planned file; ``on_chunk()`` after each committed call.

    Small files (what is left of them fits a chunk) go to ``store.import_many`` together, up
    to a chunk's worth per call: one parse and one transaction for many daily files. Bigger
    ones go a chunk at a time to ``store.import_data``. Raises what the source or the store
    raise; every cursor then stays at the end of a committed call.
    """
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    batch: list[tuple[HistoryFile, bytes]] = []

    async def flush() -> None:
        if not batch:
            return
        chunks = [(f.path, data, f.done, not f.newest) for f, data in batch]
        result = await pool.submit(
            STATS_LANE,
            store.import_many,
            guild_id,
            history.server,
            chunks,
            flag_over=flag_over,
            priority=priority,
        )
        totals.add(result, source.redact)
        totals.bytes_done += sum(f.left for f, _data in batch)
        totals.files_done += len(batch)
        batch.clear()
        if on_chunk is not None:
            await on_chunk()

    for item in history.pending:
        if item.left <= chunk_bytes:
            data = await source.read(item.path, item.done, item.left)
            batch.append((item, data))
            if sum(len(d) for _f, d in batch) >= chunk_bytes:
                await flush()
            continue
        await flush()
        await _import_big(
            source,
            history,
            item,
            store,
            pool,
            guild_id,
            totals,
            flag_over,
            priority,
            chunk_bytes,
            on_chunk,
        )
    await flush()


async def _import_big(
    source: Source,
    history: HistoryPlan,
    item: HistoryFile,
    store: Any,
    pool: WorkerPool,
    guild_id: int,
    totals: HistoryTotals,
    flag_over: float,
    priority: int | None,
    chunk_bytes: int,
    on_chunk: Callable[[], Any] | None,
) -> None:
    """One file bigger than a chunk, a chunk per ``import_data`` call."""
    offset = item.done
    size = chunk_bytes
    while offset < item.size:
        data = await source.read(item.path, offset, min(size, item.size - offset))
        if not data:
            break  # the file shrank since it was planned: the next run starts it again
        at_end = offset + len(data) >= item.size
        result = await pool.submit(
            STATS_LANE,
            store.import_data,
            guild_id,
            history.server,
            item.path,
            data,
            offset=offset,
            final=at_end and not item.newest,
            flag_over=flag_over,
            priority=priority,
        )
        totals.add(result, source.redact)
        consumed = int(result.consumed)
        if consumed <= 0:
            if at_end or size >= MAX_CHUNK_BYTES:
                break  # a partial last line of the newest file: the next run reads it
            size = min(size * 4, MAX_CHUNK_BYTES)  # a line longer than the chunk
            continue
        offset += consumed
        totals.bytes_done += consumed
        size = chunk_bytes
        if on_chunk is not None:
            await on_chunk()
    totals.bytes_done += max(0, item.size - offset)  # an unfinished tail counts as seen
    totals.files_done += 1
    if on_chunk is not None:
        await on_chunk()
