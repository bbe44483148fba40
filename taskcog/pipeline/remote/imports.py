"""A history-import slice: a list of kill files parsed into columns for the stats store.

Pure work on files the worker can read (a shared folder, or a worker on the game host): no
state, no store. The result is JSON-able: the columns as Arrow IPC in base64 plus the counts,
so the bot writes them to its stats store (the store write stays in the bot).
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Mapping

import polars as pl

from ...engine.backends.base import Backend
from ..parsers.deadside import parse_kills_columns
from .codec import frame_from_text, frame_to_text


def import_slice(job: Mapping[str, Any]) -> dict[str, Any]:
    """Parse every file of ``job["files"]`` (paths); a missing file is counted, not fatal."""
    frames: list[pl.DataFrame] = []
    lines = malformed = size = 0
    samples: list[str] = []
    missing: list[str] = []
    for path in job["files"]:
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            missing.append(str(path))
            continue
        size += len(data)
        columns = parse_kills_columns(data, final=True)
        lines += columns.lines
        malformed += columns.malformed
        samples.extend(columns.samples[: 5 - len(samples)])
        if len(columns):
            frames.append(columns.frame)
    frame = pl.concat(frames) if frames else parse_kills_columns(b"").frame
    return {
        "files": len(job["files"]) - len(missing),
        "missing": missing[:20],
        "bytes": size,
        "lines": lines,
        "malformed": malformed,
        "samples": samples,
        "rows": frame.height,
        "frame": frame_to_text(frame),
    }


def slice_frame(result: Mapping[str, Any]) -> pl.DataFrame:
    """The columns of an :func:`import_slice` result, for the stats store."""
    return frame_from_text(str(result["frame"]))


def slices(files: list[str], per_slice: int) -> list[list[str]]:
    """``files`` cut into slices of at most ``per_slice`` (order kept)."""
    return [files[i : i + per_slice] for i in range(0, len(files), max(1, per_slice))]


async def import_files(
    backend: Backend, paths: list[str], *, per_slice: int = 10, window: int = 8
) -> AsyncIterator[dict[str, Any]]:
    """Every slice of ``paths`` through ``backend`` (``window`` in flight), as results come.

    The caller (the bot's stats importer) writes each result's :func:`slice_frame` to its
    store; a failed slice raises, and the slices already yielded stay written.
    """
    pending = [{"files": files} for files in slices(paths, per_slice)]
    running: set[asyncio.Task[dict[str, Any]]] = set()
    try:
        while pending or running:
            while pending and len(running) < window:
                running.add(asyncio.ensure_future(backend.import_slice(pending.pop(0))))
            done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                yield task.result()
    finally:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
