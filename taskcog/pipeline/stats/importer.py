"""History import: bytes to polars columns to stored events, in batches of whole lines.

Each batch is one transaction that stores its events AND moves the cursor of every file it
read, so a cancel or a crash resumes exactly where the last commit left off. Small files are
read together (one parse, one transaction for many files): a server writes one file a day, and
per-file overhead would otherwise dominate an import of 1,000 files.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..parsers.deadside import parse_kills_columns
from ..parsers.deadside.grammar import BOM, MAX_SAMPLES, whole_lines_end
from .aggregates import PairTally
from .ids import with_ids
from .model import ImportResult

# Rows stored (and aggregated) at a time inside one transaction: a big batch commits once, but
# its intermediate frames (period buckets per event and scope) stay the size of this piece.
STORE_ROWS = 32_768

if TYPE_CHECKING:
    from ...engine.pool import Progress


class StatsStore(Protocol):
    """The store's writing hooks the importer uses (the class lives in ``store``)."""

    def _stored(
        self, guild_id: int, server: str, frame: Any, flag_over: float, pairs: Any = None
    ) -> Any: ...
    def _write(self, fn: Any, *args: Any) -> Any: ...
    def _names_changed(self, guild_id: int, added: int) -> None: ...


def _commit(
    store: StatsStore,
    guild: int,
    server: str,
    data: bytes,
    cursors: list[tuple[str, int]],
    flag_over: float,
    result: ImportResult,
) -> None:
    """Parse and store one batch of whole lines and move ``cursors`` (file, offset) in the
    same transaction; adds the counts to ``result``."""
    columns = parse_kills_columns(data, final=True)
    result.lines += columns.lines
    result.malformed += columns.malformed
    result.samples += columns.samples[: MAX_SAMPLES - len(result.samples)]
    store_parsed(store, guild, server, with_ids(columns.frame), cursors, flag_over, result)


def store_parsed(
    store: StatsStore,
    guild: int,
    server: str,
    frame: Any,
    cursors: Sequence[tuple[str, int]],
    flag_over: float,
    result: ImportResult,
) -> None:
    """Store a parsed frame (the parser's columns plus ``id``/``k`` from ``ids.with_ids``,
    e.g. built by a worker) and move ``cursors`` in the same transaction; adds ``new`` and
    ``known`` to ``result`` (lines and malformed are the parser's, counted by the caller)."""

    def run(con: sqlite3.Connection):
        counts = [0, 0, 0, 0]
        pairs = PairTally()  # the pieces' pair counts, written once
        for start in range(0, max(frame.height, 1), STORE_ROWS):
            piece = frame.slice(start, STORE_ROWS)
            sc, got = store._stored(guild, server, piece, flag_over, pairs)(con)
            counts = [a + b for a, b in zip(counts, got, strict=True)]
        pairs.write(con)
        con.executemany(
            "INSERT INTO cursors VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET"
            " offset = excluded.offset",
            ((sc.scope, file, at) for file, at in cursors),
        )
        return sc.scope, counts

    _scope, (new, known, _flagged, names) = store._write(run)
    store._names_changed(guild, names)
    result.new += new
    result.known += known


def import_file(
    store: StatsStore,
    guild: int,
    server: str,
    file: str,
    data: bytes,
    offset: int,
    final: bool,
    flag_over: float,
    progress: Progress | None,
    batch_bytes: int,
) -> ImportResult:
    """One file's bytes from ``offset``, in batches of at most ``batch_bytes`` whole lines."""
    result = ImportResult()
    start = 0
    while start < len(data):
        if progress is not None and progress.cancelled:
            break
        end = min(start + batch_bytes, len(data))
        if end < len(data):
            cut = data.rfind(b"\n", start, end)
            if cut < start:  # one line longer than a batch
                cut = data.find(b"\n", end)
            end = len(data) if cut < 0 else cut + 1
        last = end == len(data)
        piece = data[start:end]
        consumed = whole_lines_end(piece, final and last)
        if consumed == 0:
            break
        cursor = [(file, offset + start + consumed)]
        _commit(store, guild, server, piece[:consumed], cursor, flag_over, result)
        start += consumed
        result.consumed = start
        if progress is not None:
            progress(start, len(data), file)
        if start < end:
            break  # a partial last line stays for the next read
    return result


class _Shifted:
    """A big file's own progress, reported as part of the whole run."""

    def __init__(self, progress: Progress, before: int, total: int) -> None:
        self.progress, self.before, self.total = progress, before, total

    @property
    def cancelled(self) -> bool:
        return self.progress.cancelled

    def __call__(self, done: float, total: float | None = None, note: str = "") -> None:
        self.progress(self.before + done, self.total, note)


def import_many(
    store: StatsStore,
    guild: int,
    server: str,
    chunks: Sequence[tuple[str, bytes, int, bool]],
    flag_over: float,
    progress: Progress | None,
    batch_bytes: int,
) -> ImportResult:
    """Many ``(file, data, offset, final)`` chunks; small ones share a batch."""
    result = ImportResult()
    total = sum(len(data) for _file, data, _offset, _final in chunks)
    done = 0
    group: list[bytes] = []
    cursors: list[tuple[str, int]] = []
    size = 0

    committed = 0  # bytes of the chunks whose cursors are committed

    def flush() -> None:
        nonlocal group, cursors, size
        if group:
            _commit(store, guild, server, b"".join(group), cursors, flag_over, result)
            if progress is not None:
                progress(committed, total, cursors[-1][0])
        group, cursors, size = [], [], 0

    for file, data, offset, final in chunks:
        if progress is not None and progress.cancelled:
            break
        end = whole_lines_end(data, final)
        if end > batch_bytes:
            committed = done
            flush()
            part = import_file(
                store,
                guild,
                server,
                file,
                data,
                offset,
                final,
                flag_over,
                None if progress is None else _Shifted(progress, done, total),
                batch_bytes,
            )
            for name in ("lines", "malformed", "new", "known", "consumed"):
                setattr(result, name, getattr(result, name) + getattr(part, name))
            result.samples += part.samples[: MAX_SAMPLES - len(result.samples)]
        elif end:
            piece = data[:end]
            if offset == 0 and piece.startswith(BOM):
                piece = piece[len(BOM) :]
            if not piece.endswith(b"\n"):
                piece += b"\n"
            if size + len(piece) > batch_bytes:
                committed = done
                flush()
            group.append(piece)
            cursors.append((file, offset + end))
            size += len(piece)
            result.consumed += end
        done += len(data)
        if not group:
            committed = done
    if not (progress is not None and progress.cancelled):
        committed = done
        flush()
    return result
