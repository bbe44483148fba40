"""A history-import slice: byte ranges of kill files, read and parsed into stats columns.

The same step runs in the bot (the ``local`` backend: read through the bot's own source, parse
in the pool) and on a worker (``taskiq``: read through the worker's cached connection, the
secret sent encrypted). Only the store write stays in the bot, in slice order, with the
cursors each slice returns (:mod:`taskcog.pipeline.history`).

A slice is a list of :class:`Part`. A part is a byte range ``[start, end)`` of one file and
owns the lines that *start* in it (how MapReduce splits its input): it looks one byte back to
see whether ``start`` begins a line, and reads past ``end`` to the end of its last line. A big
file can so be cut anywhere, its ranges parsed by different workers, and every line is still
read exactly once. Its cursor is the end of its last whole line, so committing the parts of a
file in order moves the file's cursor exactly as a reader going line by line would.
"""

from __future__ import annotations

import asyncio
import base64
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import polars as pl

from ...engine.backends.base import Backend
from ...engine.backends.secrets import SecretKeyError
from ...engine.pool import WorkerPool
from ..parsers.deadside import parse_kills_columns
from ..parsers.deadside.grammar import BOM, MAX_SAMPLES
from ..sources import Source, SourceError
from ..stats.ids import key_expr, with_ids
from .codec import RemoteError, error_from_dict, error_to_dict, frame_from_bytes, frame_to_bytes
from .ingest import SourceCache

SLICE_BYTES = 4 * 1024 * 1024  # bytes per slice: one parse, one store transaction
EXTEND = 64 * 1024  # bytes read at a time past a part's end, to finish its last line
READS_PER_SLICE = 8  # parts of one slice read at once (one SFTP round trip each, in flight)
PARSE_LANE = "parse"


@dataclass(frozen=True)
class Part:
    """Bytes ``[start, end)`` of ``path``; the lines starting there belong to this part."""

    path: str
    start: int
    end: int
    size: int  # the file's planned size: nothing past it is read
    first: bool  # ``start`` is a committed cursor, so certainly a line start
    final: bool  # the file is complete: an unterminated last line counts as a line

    def to_list(self) -> list[Any]:
        return [self.path, self.start, self.end, self.size, self.first, self.final]

    @classmethod
    def from_list(cls, v: Any) -> Part:
        return cls(str(v[0]), int(v[1]), int(v[2]), int(v[3]), bool(v[4]), bool(v[5]))


@dataclass
class SliceResult:
    """One parsed slice: its columns (or their Arrow bytes, from a worker) and cursors."""

    cursors: list[tuple[str, int]]
    frame: pl.DataFrame | None = None
    data: bytes | None = None
    lines: int = 0
    malformed: int = 0
    samples: list[str] = field(default_factory=list)
    size: int = 0  # bytes read

    def columns(self, ids_over: float = math.inf) -> pl.DataFrame:
        """The columns with ``k`` and ``id``; decodes a worker's bytes (call it off the loop).

        A worker sends each event's ``k`` but not its ``id``: 24 random hex characters, a third
        of the bytes. The store keeps an id only for a kill it flags (a distance over the
        guild's limit), so here only rows with a distance over ``ids_over`` get theirs back,
        computed from their fields as the worker did; the others get a null ``id``."""
        if self.frame is None:
            frame = frame_from_bytes(self.data or b"")
            if "id" not in frame.columns:
                frame = _ids_over(frame, ids_over).select(pl.exclude("k"), "k")
            elif "k" not in frame.columns:  # an older worker's: the id, not k
                frame = frame.with_columns(k=key_expr(pl.col("id")))
            self.frame = frame
        return self.frame


def _ids_over(frame: pl.DataFrame, over: float) -> pl.DataFrame:
    """``frame`` (with ``k``, without ``id``) with the ids of rows whose distance is over
    ``over``; a row whose recomputed key differs from the ``k`` it came with is an error."""
    rows = frame.with_row_index("_i").filter(pl.col("distance") > over)
    if rows.height == 0:
        return frame.with_columns(id=pl.lit(None, pl.String))
    got = with_ids(rows.rename({"k": "_k"}))
    if not got.select((pl.col("k") == pl.col("_k")).all()).item():
        raise RemoteError("a worker's event keys do not match its lines")
    ids = got.select("_i", "id")
    return (
        frame.with_row_index("_i").join(ids, on="_i", how="left", maintain_order="left").drop("_i")
    )


def split(
    files: Iterable[tuple[str, int, int, bool]], budget: int = SLICE_BYTES
) -> list[list[Part]]:
    """``(path, done, size, newest)`` per file into slices of about ``budget`` bytes: small
    files share a slice, a bigger file is cut into ranges of ``budget``."""
    budget = max(1, budget)
    slices: list[list[Part]] = []
    current: list[Part] = []
    used = 0
    for path, done, size, newest in files:
        start = done
        while start < size:
            if current and used + (size - start) > budget:
                slices.append(current)
                current, used = [], 0
            end = min(size, start + budget)
            current.append(Part(path, start, end, size, start == done, not newest))
            used += end - start
            start = end
            if used >= budget:
                slices.append(current)
                current, used = [], 0
    if current:
        slices.append(current)
    return slices


async def read_part(source: Source, part: Part) -> tuple[bytes, int | None, int]:
    """The whole lines that start in ``part`` (newline-terminated, BOM removed), the file
    offset after them (None: no line starts here, the cursor stays) and the bytes read."""
    lead = 0 if part.first or part.start == 0 else 1
    want = min(part.end, part.size) - part.start
    data = await source.read(part.path, part.start - lead, want + lead)
    size = len(data)
    pos = part.start - lead + len(data)  # file offset after what was read
    if len(data) == want + lead and not data.endswith(b"\n"):
        more: list[bytes] = [data]
        while pos < part.size:  # finish the line that crosses ``end``
            extra = await source.read(part.path, pos, min(EXTEND, part.size - pos))
            if not extra:
                break
            size += len(extra)
            cut = extra.find(b"\n")
            extra = extra if cut < 0 else extra[: cut + 1]
            more.append(extra)
            pos += len(extra)
            if cut >= 0:
                break
        data = b"".join(more)
    begin = 0
    if lead:
        newline = data.find(b"\n", 0, want)  # a line starts after it, still inside the part
        if newline < 0:
            return b"", None, size
        begin = newline + 1
    at = part.start - lead + begin  # the file offset of the first line
    body = data[begin:]
    if body.endswith(b"\n"):
        cursor = at + len(body)
    elif body and pos >= part.size and part.final:
        cursor = at + len(body)
        body += b"\n"  # a complete file's unterminated last line
    else:
        body = body[: body.rfind(b"\n") + 1]  # a partial last line waits for the next read
        cursor = at + len(body)
    if not body:
        return b"", None, size
    if at == 0 and body.startswith(BOM):
        body = body[len(BOM) :]
    return body, cursor, size


async def read_slice(
    source: Source, parts: list[Part]
) -> tuple[list[bytes], list[tuple[str, int]], int]:
    """Every part of a slice (up to :data:`READS_PER_SLICE` at once): the bytes to parse,
    each file's cursor after them, and the bytes read."""
    limit = asyncio.Semaphore(READS_PER_SLICE)

    async def one(part: Part) -> tuple[bytes, int | None, int]:
        async with limit:
            return await read_part(source, part)

    read = await asyncio.gather(*(one(part) for part in parts))
    pieces = [body for body, _cursor, _size in read if body]
    cursors = [(p.path, c) for p, (_b, c, _s) in zip(parts, read, strict=True) if c is not None]
    return pieces, cursors, sum(size for _b, _c, size in read)


def parse_slice(pieces: list[bytes], *, encode: bool = False) -> SliceResult:
    """Pure: the pieces' kills as columns with event ids (``encode``: as Arrow bytes, with
    ``k`` and without ``id``, see :meth:`SliceResult.columns`)."""
    columns = parse_kills_columns(b"".join(pieces), final=True)
    frame = with_ids(columns.frame)
    result = SliceResult([], lines=columns.lines, malformed=columns.malformed)
    result.samples = list(columns.samples[:MAX_SAMPLES])
    if encode:
        result.data = frame_to_bytes(frame.drop("id"))  # k: 8 random bytes; id: 24 hex
    else:
        result.frame = frame
    return result


async def local_slice(
    source: Source, parts: list[Part], pool: WorkerPool, *, key: Any, priority: int | None
) -> SliceResult:
    """A slice in this process: read through the bot's source, parse in the ``parse`` lane
    (one at a time per ``key``, so the live killfeed always finds a parse thread)."""
    pieces, cursors, size = await read_slice(source, parts)
    result = await pool.submit(PARSE_LANE, parse_slice, pieces, key=key, priority=priority)
    result.cursors, result.size = cursors, size
    return result


async def import_step(job: Mapping[str, Any], cache: SourceCache) -> dict[str, Any]:
    """The worker's side: ``job`` = ``{"key", "server", "secret", "parts"}`` (the secret a
    Fernet token); returns a dict (columns as Arrow bytes), or ``{"error": ...}``."""
    try:
        server = cache.server(str(job["key"]), job["server"], job.get("secret"))
    except SecretKeyError as exc:
        return {"error": error_to_dict(exc, str(exc))}
    source = server.source
    parts = [Part.from_list(p) for p in job["parts"]]
    try:
        pieces, cursors, size = await read_slice(source, parts)
    except SourceError as exc:
        return {"error": error_to_dict(exc, source.redact(str(exc)))}
    parsed = await asyncio.to_thread(parse_slice, pieces, encode=True)
    return {
        "cursors": [list(c) for c in cursors],
        "bytes": size,
        "lines": parsed.lines,
        "malformed": parsed.malformed,
        "samples": parsed.samples,
        "frame": parsed.data,
    }


async def remote_slice(
    backend: Backend, base: Mapping[str, Any], parts: list[Part]
) -> SliceResult:
    """A slice on a worker; ``base`` is the server part of the job (see :func:`ingest.make_job`).
    Raises the source's own exception when the worker could not read the game server."""
    result = await backend.import_slice({**base, "parts": [p.to_list() for p in parts]})
    if result.get("error"):
        raise error_from_dict(result["error"])
    return SliceResult(
        [(str(path), int(at)) for path, at in result["cursors"]],
        data=_as_bytes(result["frame"]),
        lines=int(result["lines"]),
        malformed=int(result["malformed"]),
        samples=[str(s) for s in result.get("samples", [])][:MAX_SAMPLES],
        size=int(result.get("bytes", 0)),
    )


def _as_bytes(value: Any) -> bytes:
    """A worker's columns; a worker from before session 11 (upgraded after its bot) sends
    them as base64 text, with the id and without ``k``."""
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            pass
    elif isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise RemoteError("a worker sent its columns in a form this bot does not read")
