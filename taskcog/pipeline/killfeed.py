"""One killfeed step for one game server: read what was appended, parse it, post it, commit.

The order is the exactly-once contract (see :mod:`taskcog.pipeline.ledger`):

1. ``sink.recover()`` settles batches a crash left pending;
2. a new scope stores a cursor at the end of the newest kill file and posts nothing, so a
   server added today does not replay last month;
3. otherwise poll from the committed cursor, parse in the pool's ``parse`` lane (one parse per
   server at a time), post through the sink (which skips ids already posted);
4. commit the poll's cursor only after every event before it was posted.

A crash or error anywhere before step 4 leaves the cursor where it was, so the lines are read
again and the ledger drops what already reached Discord.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from ..engine.pool import WorkerPool
from .events import KillEvent
from .ledger import AsyncLedger
from .parsers.deadside import (
    FAST_PATH_MIN_BYTES,
    MAX_SAMPLES,
    parse_kills,
    parse_kills_columns,
    to_events,
)
from .sinks.discord import KillfeedSink
from .sources import KILLS, Cursor, Layout, Source, initial_cursor, poll
from .sources.shared import ServerPoller

PARSE_LANE = "parse"
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
EVENT_SLICE = 5_000  # events materialised and posted at a time from a big chunk
# Gets each slice of parsed events as it is posted, and finishes before the cursor commits: a
# crash re-reads them, so an observer must be idempotent by event id (the stats store is).
Observer = Callable[[list[KillEvent]], Awaitable[None]]

# Where each source's kill files are, so a run re-lists only the known folders.
_layouts: weakref.WeakKeyDictionary[Source, Layout] = weakref.WeakKeyDictionary()


@dataclass
class KillfeedReport:
    """What one :func:`ingest_once` did, for the task's status and the bot owner.

    ``duplicates`` are events read again that were already posted. ``samples`` are redacted
    malformed lines. ``first_run`` means the cursor was just set and nothing was posted;
    ``more`` means bytes were left for the next run (only when ``drain=False``).
    """

    scope: str
    bytes_read: int = 0
    lines: int = 0
    events: int = 0
    posted: int = 0
    duplicates: int = 0
    malformed: int = 0
    samples: list[str] = field(default_factory=list)
    first_run: bool = False
    more: bool = False

    def add_samples(self, samples: list[str]) -> None:
        self.samples.extend(samples[: MAX_SAMPLES - len(self.samples)])


async def ingest_once(
    source: Source,
    sink: KillfeedSink,
    ledger: AsyncLedger,
    pool: WorkerPool,
    scope: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    drain: bool = True,
    poller: ServerPoller | None = None,
    observe: Observer | None = None,
) -> KillfeedReport:
    """Post the kills appended to ``source`` since the last run, exactly once.

    ``max_bytes`` bounds one poll; with ``drain`` the step keeps polling while more is
    waiting. Raises what the source, the sink or the pool raise; the cursor then stays put.
    ``poller`` (the server's shared pass, :mod:`.sources.shared`) reads instead of ``source``.
    ``observe`` gets every parsed slice, alongside its post and before the commit.
    """
    report = KillfeedReport(scope)
    await sink.recover()
    layout = await (poller.layout() if poller is not None else _layout(source))
    stored = await ledger.get_cursor(scope, KILLS)
    if stored is None:
        start = await initial_cursor(source, layout, KILLS)
        await ledger.set_cursor(scope, KILLS, start.to_dict())
        report.first_run = True
        return report
    cursor = Cursor.from_dict(stored)
    while True:
        if poller is not None:
            batch = await poller.batch(KILLS, cursor, max_bytes=max_bytes)
        else:
            batch = await poll(source, cursor, layout, max_bytes=max_bytes)
        for chunk in batch.chunks:
            report.bytes_read += len(chunk.data)
            await _ingest_chunk(chunk.data, sink, pool, scope, report, observe)
        moved = batch.next_cursor != cursor
        if moved:
            await ledger.set_cursor(scope, KILLS, batch.next_cursor.to_dict())
            if poller is not None:
                poller.committed(KILLS, batch.next_cursor)
            cursor = batch.next_cursor
        report.more = batch.more
        if not (drain and batch.more and moved):
            return report


async def _layout(source: Source) -> Layout:
    known = _layouts.get(source)
    layout = await (source.refresh(known) if known is not None else source.discover())
    _layouts[source] = layout
    return layout


async def _ingest_chunk(
    data: bytes,
    sink: KillfeedSink,
    pool: WorkerPool,
    scope: str,
    report: KillfeedReport,
    observe: Observer | None = None,
) -> None:
    """Parse one chunk off the loop and post its events, a slice at a time if it is big.

    ``final=True``: tailing only hands out bytes the cursor moves past, so a last line without
    a newline (a finished file) must be parsed now or never.
    """
    if len(data) < FAST_PATH_MIN_BYTES:
        result = await pool.submit(
            PARSE_LANE, parse_kills, data, key=scope, final=True, fast=False
        )
        report.lines += result.lines
        report.malformed += result.malformed
        report.add_samples(result.samples)
        await post_slice(result.events, sink, report, observe)
        return
    columns = await pool.submit(PARSE_LANE, parse_kills_columns, data, key=scope, final=True)
    report.lines += columns.lines
    report.malformed += columns.malformed
    report.add_samples(columns.samples)
    for start in range(0, len(columns), EVENT_SLICE):
        events = await pool.submit(
            PARSE_LANE, to_events, columns, start, start + EVENT_SLICE, key=scope
        )
        await post_slice(events, sink, report, observe)


async def post_slice(
    events: list[KillEvent],
    sink: KillfeedSink,
    report: KillfeedReport,
    observe: Observer | None = None,
) -> None:
    """Post one slice through ``sink`` with ``observe`` alongside, and count it in ``report``."""
    # The observer (the stats store, in the db lane) runs while the kills are posted and is
    # awaited before the cursor can commit: a post never waits behind a history import.
    observing = asyncio.ensure_future(observe(events)) if observe and events else None
    try:
        posted = await sink.post(events)
    except BaseException:
        if observing is not None:  # re-read later anyway; the store counts nothing twice
            observing.cancel()
            await asyncio.gather(observing, return_exceptions=True)
        raise
    if observing is not None:
        await observing
    report.events += len(events)
    report.posted += posted
    report.duplicates += len(events) - posted
