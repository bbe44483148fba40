"""The bot's side of a remote ingest: the same exactly-once order as ``ingest_once``.

The bot settles half-posted batches, sends the committed cursor with the job, posts what comes
back through the sink (which drops ids the ledger already holds) and only then commits the
returned cursor. A worker that dies, a step that runs twice, a result that never comes: the
cursor has not moved, so the lines are read again and nothing is lost or posted twice.
"""

from __future__ import annotations

from typing import Any, Mapping

from ...engine.backends import Backend
from ...engine.backends.secrets import SecretBox
from ..killfeed import EVENT_SLICE, KillfeedReport, Observer, post_slice
from ..ledger import AsyncLedger
from ..sinks.discord import KillfeedSink
from ..sources import KILLS
from .codec import error_from_dict, event_from_dict
from .ingest import DEFAULT_MAX_BYTES, make_job


async def ingest_remote(
    backend: Backend,
    server: Mapping[str, Any],
    secret: Mapping[str, Any] | None,
    sink: KillfeedSink,
    ledger: AsyncLedger,
    scope: str,
    box: SecretBox | None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    drain: bool = True,
    observe: Observer | None = None,
) -> KillfeedReport:
    """Post the kills appended since the last run, read by a worker; raises what it raised.
    ``observe`` (the stats store) gets every slice before the commit, as in ``ingest_once``."""
    report = KillfeedReport(scope)
    await sink.recover()
    while True:
        stored = await ledger.get_cursor(scope, KILLS)
        job = make_job(scope, server, secret, stored, box, max_bytes=max_bytes)
        result = await backend.ingest(job)
        if result.error:
            raise error_from_dict(result.error)
        if result.first_run:
            if stored is None and result.next_cursor is not None:
                await ledger.set_cursor(scope, KILLS, result.next_cursor)
            report.first_run = True
            return report
        report.bytes_read += result.bytes_read
        report.lines += result.lines
        report.malformed += result.malformed
        report.add_samples(result.samples)
        events = [event_from_dict(data) for data in result.events]
        for start in range(0, len(events), EVENT_SLICE):
            await post_slice(events[start : start + EVENT_SLICE], sink, report, observe)
        moved = result.next_cursor is not None and result.next_cursor != stored
        if moved:
            assert result.next_cursor is not None
            await ledger.set_cursor(scope, KILLS, result.next_cursor)
        report.more = result.more
        if not (drain and result.more and moved):
            return report
