"""Incremental tailing of a source's log files from committed byte offsets.

Rules (each guarded by a test in ``tests/test_tail.py``):

- An unchanged file costs one ``stat`` and no bytes read.
- Only whole lines are handed out: a chunk ends at its last ``\\n`` and a partial last line waits
  for the next poll. A line longer than the whole read budget is handed out as it is, so a file
  without newlines cannot stall the tail.
- Kill files rotate: when a newer file exists, the current one is finished from its offset (a
  trailing partial line included, since nothing will complete it) and the next one is read from 0.
- A file that shrank, or whose identity changed, was replaced: it is read again from 0.
- A new source starts at the end of the newest file (after its last complete line), so nothing
  from before the source was added is posted.
- A poll reads at most ``max_bytes`` in total; ``TailBatch.more`` says there is more to read.

The cursor is a small JSON-able dict; the caller persists ``next_cursor`` only after the
events in the chunks have been posted, so a crash re-reads rather than loses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .base import FileStat, Layout, PathNotFound, Source, kill_file_key

KILLS = "kills"
SERVER_LOG = "server_log"
STREAMS = (KILLS, SERVER_LOG)
MAX_READ = 4 * 1024 * 1024
_BACKSCAN = 64 * 1024
_BACKSCAN_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class Cursor:
    """Where a stream was read up to: the file, the committed offset and what it looked like.

    ``offset`` ends the last line handed out; ``size`` ends the bytes already examined (the
    file's size at the last poll, unless the read budget stopped short). Bytes between the two
    are a partial line, so an unchanged file is not read again.
    """

    stream: str = KILLS
    path: str | None = None
    offset: int = 0
    size: int = 0
    mtime: float | None = None
    ident: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cursor:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        cursor = cls(**known)
        if cursor.stream not in STREAMS:
            raise ValueError(f"Unknown log stream {cursor.stream!r}.")
        return cursor

    def at(self, path: str) -> Cursor:
        """The cursor for the start of another file of the same stream."""
        return Cursor(self.stream, path)


@dataclass(frozen=True)
class Chunk:
    """Whole lines read from ``path`` starting at byte ``start``."""

    path: str
    start: int
    data: bytes


@dataclass
class TailBatch:
    chunks: list[Chunk] = field(default_factory=list)
    next_cursor: Cursor = field(default_factory=Cursor)
    more: bool = False

    @property
    def size(self) -> int:
        return sum(len(chunk.data) for chunk in self.chunks)


def stream_files(layout: Layout, stream: str) -> list[str]:
    """The files of a stream, oldest first."""
    if stream == KILLS:
        return list(layout.kill_files)
    if stream == SERVER_LOG:
        return [layout.server_log] if layout.server_log else []
    raise ValueError(f"Unknown log stream {stream!r}.")


async def initial_cursor(source: Source, layout: Layout, stream: str = KILLS) -> Cursor:
    """A cursor at the end of the stream's newest file, after its last complete line."""
    files = stream_files(layout, stream)
    if not files:
        return Cursor(stream)
    path = files[-1]
    st = await source.stat(path)
    offset = await _last_line_end(source, path, st.size)
    return Cursor(stream, path, offset, st.size, st.mtime, st.ident)


async def poll(
    source: Source, cursor: Cursor, layout: Layout, *, max_bytes: int = MAX_READ
) -> TailBatch:
    """Read what was appended since ``cursor``; see the module docstring for the rules."""
    files = stream_files(layout, cursor.stream)
    batch = TailBatch(next_cursor=cursor)
    if cursor.path is None:
        if not files:
            return batch
        cursor = cursor.at(files[0])
    budget = max_bytes
    while True:
        path = cursor.path
        assert path is not None
        newer = _newer(files, path)
        try:
            st = await source.stat(path)
        except PathNotFound:
            if newer:
                cursor = cursor.at(newer[0])
                continue
            batch.next_cursor = cursor
            return batch
        cursor = _reconcile(cursor, st)
        # Bytes up to cursor.size were examined before: past the offset they are a partial
        # line, worth reading again only to finish a file that a newer one replaced.
        if st.size > cursor.size or (newer and st.size > cursor.offset):
            if budget <= 0:
                batch.more = True
                break
            start = cursor.offset
            data = await source.read(path, start, min(st.size - start, budget))
            budget -= len(data)
            finished = bool(newer) and start + len(data) >= st.size
            taken = data if finished else _whole_lines(data, full=len(data) == max_bytes)
            if taken:
                batch.chunks.append(Chunk(path, start, taken))
            cursor = replace(cursor, offset=start + len(taken), size=start + len(data))
            if cursor.size < st.size:
                batch.more = True  # stopped by the budget, not by the end of the file
                break
        if newer and cursor.offset >= st.size:
            cursor = cursor.at(newer[0])
            continue
        break
    batch.next_cursor = cursor
    return batch


def _newer(files: list[str], path: str) -> list[str]:
    key = kill_file_key(path)
    return [f for f in files if kill_file_key(f) > key]


def _reconcile(cursor: Cursor, st: FileStat) -> Cursor:
    """Record the file's identity; start over if it shrank or is a different file."""
    replaced = st.size < cursor.size or (
        cursor.ident is not None and st.ident is not None and cursor.ident != st.ident
    )
    if replaced:
        return replace(cursor, offset=0, size=0, mtime=st.mtime, ident=st.ident)
    return replace(cursor, mtime=st.mtime, ident=st.ident)


def _whole_lines(data: bytes, *, full: bool) -> bytes:
    end = data.rfind(b"\n")
    if end < 0:
        return data if full else b""
    return data[: end + 1]


async def _last_line_end(source: Source, path: str, size: int) -> int:
    """The offset just after the last ``\\n`` (0 if none), scanning back a bounded window."""
    end = size
    while end > 0 and size - end < _BACKSCAN_LIMIT:
        start = max(0, end - _BACKSCAN)
        data = await source.read(path, start, end - start)
        newline = data.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0 if end == 0 else size
