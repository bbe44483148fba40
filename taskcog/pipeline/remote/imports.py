"""A history-import slice: a list of kill files parsed into columns for the stats store.

Pure work on files the worker can read (a shared folder, or a worker on the game host): no
state, no store. The result is JSON-able: the columns as Arrow IPC in base64 plus the counts,
so the bot writes them to its stats store (the store write stays in the bot).
"""

from __future__ import annotations

from typing import Any, Mapping

import polars as pl

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
