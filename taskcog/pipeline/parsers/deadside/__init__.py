"""Parse Deadside kill logs: bytes in, :class:`KillEvent` out, no I/O.

The log is ``;``-separated with no header, one death per line, every line ending in ``;``::

    2025.05.01-00.07.23;Killer;<killer id>;Victim;<victim id>;M99;152;PS5;XSX;

Legacy files have 7 columns; newer ones add the killer's and the victim's platform (9 columns;
a doubled final ``;`` adds an empty 10th). Timestamps come as ``2025.05.09-11.58.37`` or
``2025-05-09 11:58:37``; distances may use a decimal comma; lines that are not UTF-8 are read as
cp1251 or cp1252 when that makes them kill lines (see ``encoding``). An empty killer id or
``**`` is a death without killer (environmental/unknown); a killer id equal to the victim id is
a suicide.

Two paths give the same results. :func:`parse_kills` is plain Python and right for a poll's
worth of new lines. :func:`parse_kills_columns` does the work in polars, which releases the GIL,
so a history import of millions of lines can run in a worker thread without stalling the bot;
:func:`to_events` then materialises its rows a slice at a time. Both read a line with the same
regular expression, :data:`LINE_PATTERN`.

Rules: only whole lines are read (``consumed`` says how far); a UTF-8 BOM at the start and CRLF
endings are accepted; blank lines are ignored. A line is malformed, counted and sampled (redacted)
when it is not UTF-8 text or has control characters, has other than 7 or 9 columns or no final
``;``, or has a bad timestamp, no victim id or a distance that is not a plain decimal.
"""

from __future__ import annotations

from ...events import ParseResult
from .columns import KillColumns, parse_kills_columns, to_events
from .grammar import (
    FAST_PATH_MIN_BYTES,
    LINE_PATTERN,
    MAX_SAMPLES,
    VEHICLE_CAUSES,
    format_kill_line,
    kill_kind,
)
from .lines import _parse_python

__all__ = [
    "FAST_PATH_MIN_BYTES",
    "LINE_PATTERN",
    "MAX_SAMPLES",
    "VEHICLE_CAUSES",
    "KillColumns",
    "format_kill_line",
    "kill_kind",
    "parse_kills",
    "parse_kills_columns",
    "to_events",
]

# -- the entry point -------------------------------------------------------------------------


def parse_kills(data: bytes, *, final: bool = False, fast: bool | None = None) -> ParseResult:
    """Parse the whole lines of a Deadside kill-log chunk into events.

    ``final=True`` also parses a last line with no newline (the file is complete). ``fast``
    picks the path: ``None`` takes the columnar one from 256 KiB up; both give the same result.
    """
    if fast is None:
        fast = len(data) >= FAST_PATH_MIN_BYTES
    if not fast:
        return _parse_python(data, final)
    columns = parse_kills_columns(data, final=final)
    return ParseResult(
        events=to_events(columns),
        consumed=columns.consumed,
        lines=columns.lines,
        malformed=columns.malformed,
        samples=columns.samples,
    )
