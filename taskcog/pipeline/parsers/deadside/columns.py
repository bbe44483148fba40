"""The columnar path: polars does the work and releases the GIL, so a history import of
millions of lines runs in a worker thread without stalling the bot. Same results as ``lines``."""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from ...events import KILL, SUICIDE, UNKNOWN, VEHICLE, KillEvent
from .encoding import legacy_to_utf8
from .grammar import (
    _LINE_RE,
    DASH_STAMP,
    DOT_STAMP,
    LINE_PATTERN,
    MAX_SAMPLES,
    NO_KILLER,
    SEPARATOR_CANDIDATES,
    UTC,
    VEHICLE_CAUSES,
    make_event,
    sample,
    whole_lines_end,
)

_SCHEMA = {
    "at": pl.Datetime("us"),
    "killer": pl.String,
    "killer_id": pl.String,
    "victim": pl.String,
    "victim_id": pl.String,
    "cause": pl.String,
    "distance": pl.Float64,
    "killer_platform": pl.String,
    "victim_platform": pl.String,
    "kind": pl.String,
}


@dataclass
class KillColumns:
    """The columnar result of :func:`parse_kills_columns`: one row per valid line.

    ``frame`` has the columns of :class:`KillEvent` except ``id`` (``at`` is naive UTC); the
    counts mean what they mean in :class:`ParseResult`.
    """

    frame: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=_SCHEMA))
    consumed: int = 0
    lines: int = 0
    malformed: int = 0
    samples: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return self.frame.height


def _scan_lines(data: bytes) -> pl.LazyFrame:
    """Every line of ``data`` as text, split by polars without holding the GIL.

    Read as one-column CSV with no quoting, so ``;`` and ``"`` stay in the text. The column
    separator is a control character absent from ``data`` (a line holding one is malformed
    anyway), so it never splits a line; choosing it costs a scan, not a copy.
    """
    separator = next(
        (chr(byte) for byte in SEPARATOR_CANDIDATES if bytes((byte,)) not in data), None
    )
    if separator is None:  # every control character occurs: pathological, so pay for a copy
        separator, data = "\x00", data.replace(b"\x00", b"\x01")
    return pl.scan_csv(
        data,
        has_header=False,
        separator=separator,
        quote_char=None,
        schema={"line": pl.String},
        encoding="utf8-lossy",  # invalid bytes become U+FFFD, which the grammar rejects
        empty_string_is_null=False,
        truncate_ragged_lines=True,
        missing_columns="insert",
        raise_if_empty=False,
    )


def _validated(lines: pl.LazyFrame) -> pl.LazyFrame:
    """Check and split every line at once: :func:`parse_line`, in columns.

    ``bad_line`` keeps the text of malformed lines only, for samples.
    """
    line = pl.col("line")
    f = [pl.col("parts").struct.field(f"field_{i}") for i in range(9)]
    stamp, killer_id, victim_id, cause, distance = f[0], f[2], f[4], f[5], f[6]
    at = pl.coalesce(
        stamp.str.strptime(pl.Datetime("us"), DOT_STAMP, strict=False),
        stamp.str.strptime(pl.Datetime("us"), DASH_STAMP, strict=False),
    )
    valid = (
        line.str.contains(f"^(?:{LINE_PATTERN})$")
        & ~stamp.str.starts_with("0000")  # year 0, which Python's datetime lacks
        & at.is_not_null()  # 30 February
    ).fill_null(False)
    kind = (
        pl.when(killer_id.is_in(NO_KILLER))
        .then(pl.lit(UNKNOWN))
        .when(killer_id == victim_id)
        .then(pl.lit(SUICIDE))
        .when(cause.is_in(sorted(VEHICLE_CAUSES)))
        .then(pl.lit(VEHICLE))
        .otherwise(pl.lit(KILL))
    )
    return (
        lines.filter(line != "")
        .with_columns(parts=line.str.split_exact(";", 8))  # a 7-column line has no field_8
        .with_columns(
            valid=valid,
            bad_line=pl.when(~valid).then(line),
            at=at,
            killer=f[1],
            killer_id=killer_id,
            victim=f[3],
            victim_id=victim_id,
            cause=cause,
            distance=pl.when(distance != "").then(
                distance.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
            ),
            killer_platform=pl.when(f[7] != "").then(f[7]),
            victim_platform=pl.when(f[8] != "").then(f[8]),
            kind=kind,
        )
        .drop("parts", "line")
    )


def parse_kills_columns(data: bytes, *, final: bool = False) -> KillColumns:
    """Parse whole lines of ``data`` into columns, for big inputs; same rules as parse_kills.

    The work runs in polars with the GIL released, so calling this in a worker thread keeps
    the event loop responsive. Materialise events with :func:`to_events`.
    """
    end = whole_lines_end(data, final)
    if end == 0:
        return KillColumns()
    converted = legacy_to_utf8(data[:end], _LINE_RE)
    if converted is not None:  # cp1251/cp1252 lines, now UTF-8; only whole lines remain
        result = parse_kills_columns(converted, final=True)
        result.consumed = end
        return result
    checked = _validated(_scan_lines(data)).collect()
    if end < len(data) and data[end:].removesuffix(b"\r"):
        # The partial last line was read too; dropping its row is cheaper than copying data.
        checked = checked.slice(0, checked.height - 1)
    lines = checked.height
    bad = checked.get_column("bad_line").drop_nulls()
    if bad.len():
        checked = checked.filter(pl.col("valid"))
    return KillColumns(
        frame=checked.select(list(_SCHEMA)),
        consumed=end,
        lines=lines,
        malformed=bad.len(),
        samples=[sample(text) for text in bad.head(MAX_SAMPLES)],
    )


def to_events(columns: KillColumns, start: int = 0, stop: int | None = None) -> list[KillEvent]:
    """Materialise rows ``start:stop`` of ``columns`` as events; slice big results."""
    frame = columns.frame
    stop = frame.height if stop is None else min(stop, frame.height)
    if start >= stop:
        return []
    return [
        make_event(at.replace(tzinfo=UTC), k, kid, v, vid, cause, dist, kp, vp)
        for at, k, kid, v, vid, cause, dist, kp, vp, _kind in frame.slice(
            start, stop - start
        ).iter_rows()
    ]
