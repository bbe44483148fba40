"""One server-log step for one game server: read Deadside.log, update who is online, post.

The order keeps it exactly once, as the killfeed's (:mod:`.killfeed`) does:

1. the sink settles a half-posted batch and the outbox posts what a crash left in it;
2. a new scope reads the current log (its last ``BOOTSTRAP_BYTES``) to learn who is online,
   posts nothing, and stores its cursor;
3. otherwise the poll's chunks are parsed in the pool, and :meth:`LiveStore.apply` updates the
   online list and queues the posts in one transaction (events applied before are skipped);
4. the outbox is posted, then the cursor committed.

A shorter file (the log was replaced) or a new header line is a server restart: the online list
empties and the restart is posted once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..engine.pool import WorkerPool
from .ledger import AsyncLedger
from .livestore import AsyncLiveStore
from .online import Selection, online_reducer, restart_event
from .outbox import flush_outbox
from .parsers.serverlog import LOG_OPEN, LogEvent, LogParseResult, parse_serverlog
from .sources import SERVER_LOG, Chunk, Cursor
from .sources.shared import ServerPoller

PARSE_LANE = "parse"
STATE_KEY = "online"
DEFAULT_MAX_BYTES = 4 * 1024 * 1024
BOOTSTRAP_BYTES = 8 * 1024 * 1024


@dataclass
class ServerLogReport:
    scope: str
    bytes_read: int = 0
    lines: int = 0
    unknown: int = 0
    events: int = 0
    posted: int = 0
    restarts: int = 0
    first_run: bool = False
    no_log: bool = False


async def ingest_serverlog_once(
    poller: ServerPoller,
    sink: Any,
    ledger: AsyncLedger,
    live: AsyncLiveStore,
    pool: WorkerPool,
    scope: str,
    *,
    selection: Selection = Selection(),
    now: Callable[[], float],
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ServerLogReport:
    """Post the server log's news since the last run, exactly once; see the module docstring."""
    report = ServerLogReport(scope)
    await sink.recover()
    report.posted += await flush_outbox(live, scope, now(), {"feed": sink})
    layout = await poller.layout()
    if layout.server_log is None:
        report.no_log = True
        return report
    stored = await ledger.get_cursor(scope, SERVER_LOG)
    if stored is None:
        await _bootstrap(poller, ledger, live, pool, scope, selection, now, report)
        return report
    cursor = Cursor.from_dict(stored)
    reduce = online_reducer(selection, announce=True, now=now())
    while True:
        batch = await poller.batch(SERVER_LOG, cursor, max_bytes=max_bytes)
        for chunk in batch.chunks:
            events = await _parse(pool, scope, chunk, cursor, report)
            fresh, _state = await live.apply(scope, STATE_KEY, events, reduce, now())
            report.events += fresh
        report.posted += await flush_outbox(live, scope, now(), {"feed": sink})
        moved = batch.next_cursor != cursor
        if moved:
            await ledger.set_cursor(scope, SERVER_LOG, batch.next_cursor.to_dict())
            poller.committed(SERVER_LOG, batch.next_cursor)
            cursor = batch.next_cursor
        if not (batch.more and moved):
            return report


async def _parse(
    pool: WorkerPool, scope: str, chunk: Chunk, cursor: Cursor, report: ServerLogReport
) -> list[LogEvent]:
    result: LogParseResult = await pool.submit(
        PARSE_LANE, parse_serverlog, chunk.data, key=scope, final=True
    )
    report.bytes_read += len(chunk.data)
    report.lines += result.lines
    report.unknown += result.unknown
    events = result.events
    restarted = chunk.start == 0 and chunk.path == cursor.path and cursor.offset > 0
    if restarted:
        report.restarts += 1
        if not (events and events[0].kind == LOG_OPEN):
            events = [restart_event(chunk.path, events[0] if events else None, cursor.mtime)]
            events += result.events
    else:
        report.restarts += sum(1 for e in events if e.kind == LOG_OPEN)
    return events


async def _bootstrap(
    poller: ServerPoller,
    ledger: AsyncLedger,
    live: AsyncLiveStore,
    pool: WorkerPool,
    scope: str,
    selection: Selection,
    now: Callable[[], float],
    report: ServerLogReport,
) -> None:
    """First run: learn who is online from the current log, post nothing, store the cursor."""
    report.first_run = True
    layout = await poller.layout()
    path = layout.server_log
    assert path is not None
    st = await poller.source.stat(path)
    start = max(0, st.size - BOOTSTRAP_BYTES)
    cursor = Cursor(SERVER_LOG, path, start, start)
    batch = await poller.batch(SERVER_LOG, cursor, max_bytes=BOOTSTRAP_BYTES)
    reduce = online_reducer(selection, announce=False, now=now())
    for chunk in batch.chunks:
        events = await _parse(pool, scope, chunk, cursor, report)
        await live.apply(scope, STATE_KEY, events, reduce, now())
    await ledger.set_cursor(scope, SERVER_LOG, batch.next_cursor.to_dict())
    poller.committed(SERVER_LOG, batch.next_cursor)
