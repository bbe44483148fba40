"""Parse Deadside kill logs: bytes in, :class:`KillEvent` out, no I/O.

The log is ``;``-separated with no header, one death per line, every line ending in ``;``::

    2025.05.01-00.07.23;Killer;<killer id>;Victim;<victim id>;M99;152;PS5;XSX;

Legacy files have 7 columns; newer ones add the killer's and the victim's platform (9 columns).
An empty killer is an unknown cause of death; a killer id equal to the victim id is a suicide.

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

import datetime as _dt
import decimal
import hashlib
import math
import re
from dataclasses import dataclass, field

import polars as pl

from ..events import KILL, SUICIDE, UNKNOWN, VEHICLE, KillEvent, ParseResult

UTC = _dt.UTC
BOM = b"\xef\xbb\xbf"
VEHICLE_CAUSES = frozenset({"land_vehicle", "boat"})
MAX_SAMPLES = 5
FAST_PATH_MIN_BYTES = 256 * 1024  # below this, polars' fixed costs outweigh its speed
_SAMPLE_CHARS = 120

# The line grammar, shared by both paths (Python's re and polars' Rust regex read it alike).
# ASCII digits only: \d would also accept other scripts' digits.
_BAD_CHARS = r"\x00-\x1f\x7f\uFFFD"  # control characters, and U+FFFD from undecodable bytes
_TIMESTAMP = (
    r"[0-9]{4}\.(?:0[1-9]|1[0-2])\.(?:0[1-9]|[12][0-9]|3[01])"
    r"-(?:[01][0-9]|2[0-3])\.[0-5][0-9]\.[0-5][0-9]"
)
_TEXT = rf"[^;{_BAD_CHARS}]*"
_NONEMPTY = rf"[^;{_BAD_CHARS}]+"
_DISTANCE = r"(?:[0-9]+(?:\.[0-9]+)?)?"
LINE_PATTERN = (
    rf"({_TIMESTAMP});({_TEXT});({_TEXT});({_TEXT});({_NONEMPTY});({_TEXT});({_DISTANCE});"
    rf"(?:({_TEXT});({_TEXT});)?"
)
_LINE_RE = re.compile(LINE_PATTERN)
_TIMESTAMP_RE = re.compile(_TIMESTAMP)
_DISTANCE_RE = re.compile(_DISTANCE)
_BAD_CHARS_RE = re.compile(f"[{_BAD_CHARS}]")
_HEX_ID_RE = re.compile(r"[0-9a-fA-F]{12,}")
_NUMERIC_RE = re.compile(r"[0-9.:\-]*")
_SEPARATOR_CANDIDATES = bytes(range(0x20)).replace(b"\n", b"").replace(b"\r", b"")


# -- events ----------------------------------------------------------------------------------


def kill_kind(killer_id: str, victim_id: str, cause: str) -> str:
    """Classify a death: unknown killer first, then suicide, then vehicle, else a kill."""
    if not killer_id:
        return UNKNOWN
    if killer_id == victim_id:
        return SUICIDE
    if cause in VEHICLE_CAUSES:
        return VEHICLE
    return KILL


def _make_event(
    at: _dt.datetime,
    killer: str,
    killer_id: str,
    victim: str,
    victim_id: str,
    cause: str,
    distance: float | None,
    killer_platform: str | None,
    victim_platform: str | None,
) -> KillEvent:
    """The one place an event is built, whichever path parsed it.

    The id hashes parsed values, not raw text, so ``7`` and ``7.0`` (or either path) agree. No
    field can hold ``\\x1f`` (control characters make a line malformed), so joining is unambiguous.
    """
    key = "\x1f".join(
        (
            at.isoformat(),
            killer,
            killer_id,
            victim,
            victim_id,
            cause,
            "" if distance is None else repr(distance),
            killer_platform or "",
            victim_platform or "",
        )
    )
    return KillEvent(
        hashlib.blake2b(key.encode(), digest_size=12).hexdigest(),
        at,
        killer,
        killer_id,
        victim,
        victim_id,
        cause,
        distance,
        killer_platform,
        victim_platform,
        kill_kind(killer_id, victim_id, cause),
    )


def format_kill_line(event: KillEvent, *, platforms: bool = True) -> str:
    """Write ``event`` back as a log line (with its newline): 9 columns, or 7 without platforms.

    For fixtures and test data: parsing the line gives back ``event``. Raises ``ValueError`` for
    what the format cannot hold (a ``;`` or control character in a field, a non-finite distance).
    """
    fields = [
        _format_timestamp(event.at.astimezone(UTC)),
        event.killer,
        event.killer_id,
        event.victim,
        event.victim_id,
        event.cause,
        _format_distance(event.distance),
    ]
    if platforms:
        fields += [event.killer_platform or "", event.victim_platform or ""]
    for value in fields:
        if ";" in value or _BAD_CHARS_RE.search(value):
            raise ValueError(f"a kill-log field cannot hold {value!r}")
    return ";".join(fields) + ";\n"


def _format_timestamp(at: _dt.datetime) -> str:
    # By hand: strftime's %Y does not zero-pad years before 1000 on every platform.
    return (
        f"{at.year:04d}.{at.month:02d}.{at.day:02d}-{at.hour:02d}.{at.minute:02d}.{at.second:02d}"
    )


def _format_distance(distance: float | None) -> str:
    if distance is None:
        return ""
    if not math.isfinite(distance) or distance < 0:
        raise ValueError(f"a kill-log distance cannot be {distance!r}")
    if distance.is_integer():
        return str(int(distance))
    return format(decimal.Decimal(repr(distance)), "f")  # shortest exact decimal, no exponent


# -- malformed samples -----------------------------------------------------------------------


def _diagnose(text: str) -> str:
    """Why a line that does not match :data:`LINE_PATTERN` (or its calendar) is malformed."""
    if _BAD_CHARS_RE.search(text):
        return "not text (bad UTF-8 or control characters)"
    fields = text.split(";")
    has_final = fields[-1] == ""
    columns = len(fields) - 1 if has_final else len(fields)
    if columns not in (7, 9):
        return f"expected 7 or 9 columns, got {columns}"
    if not has_final:
        return "no final ';'"
    if not _TIMESTAMP_RE.fullmatch(fields[0]) or _timestamp(fields[0]) is None:
        return "bad timestamp"
    if not fields[4]:
        return "no victim id"
    if not _DISTANCE_RE.fullmatch(fields[6]):
        return "bad distance"
    return "malformed"


def _redacted(text: str) -> str:
    """A malformed line with player names and ids replaced, control characters shown as ``?``.

    Where the column count is right, names and ids sit at known positions; where it is not, a
    name may be anywhere, so only fields that look like timestamps or numbers are kept.
    """
    fields = _BAD_CHARS_RE.sub("?", text).split(";")
    well_formed = len(fields) in (8, 10) and fields[-1] == ""
    out = []
    for i, value in enumerate(fields):
        if not value:
            out.append(value)
        elif _HEX_ID_RE.fullmatch(value) or (well_formed and i in (2, 4)):
            out.append("<id>")
        elif well_formed and i in (1, 3):
            out.append("<name>")
        elif well_formed or _NUMERIC_RE.fullmatch(value):
            out.append(value[:24])
        else:
            out.append("<name>")
    sample = ";".join(out)
    if len(sample) > _SAMPLE_CHARS:
        sample = sample[: _SAMPLE_CHARS - 1] + "…"
    return sample


def _sample(text: str) -> str:
    return f"{_diagnose(text)}: {_redacted(text)}"


# -- the pure-Python path --------------------------------------------------------------------


def _whole_lines_end(data: bytes, final: bool) -> int:
    """How many bytes of ``data`` are whole lines."""
    return len(data) if final else data.rfind(b"\n") + 1


def _timestamp(stamp: str) -> _dt.datetime | None:
    """A timestamp that matched the pattern, or None for a day the calendar lacks (30 Feb)."""
    iso = f"{stamp[:10].replace('.', '-')}T{stamp[11:].replace('.', ':')}+00:00"
    try:
        return _dt.datetime.fromisoformat(iso)  # C-fast; its tzinfo is datetime.timezone.utc
    except ValueError:  # 30 February, year 0
        return None


def _parse_line(text: str) -> KillEvent | None:
    """One non-blank line, without its line ending, to an event; None if malformed."""
    match = _LINE_RE.fullmatch(text)
    if match is None:
        return None
    stamp, killer, killer_id, victim, victim_id, cause, distance, k_plat, v_plat = match.groups()
    at = _timestamp(stamp)
    if at is None:
        return None
    return _make_event(
        at,
        killer,
        killer_id,
        victim,
        victim_id,
        cause,
        float(distance) if distance else None,
        k_plat or None,
        v_plat or None,
    )


def _decoded_lines(chunk: bytes) -> list[str]:
    try:
        return chunk.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        # Line by line, so one bad line costs only itself; U+FFFD then marks it malformed.
        return [line.decode("utf-8", "replace") for line in chunk.split(b"\n")]


def _parse_python(data: bytes, final: bool) -> ParseResult:
    end = _whole_lines_end(data, final)
    result = ParseResult(consumed=end)
    start = len(BOM) if data.startswith(BOM) else 0
    events = result.events
    for text in _decoded_lines(data[start:end]):
        if text.endswith("\r"):
            text = text[:-1]
        if not text:
            continue
        result.lines += 1
        event = _parse_line(text)
        if event is not None:
            events.append(event)
            continue
        result.malformed += 1
        if len(result.samples) < MAX_SAMPLES:
            result.samples.append(_sample(text))
    return result


# -- the columnar path -----------------------------------------------------------------------

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
        (chr(byte) for byte in _SEPARATOR_CANDIDATES if bytes((byte,)) not in data), None
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
    """Check and split every line at once: :func:`_parse_line`, in columns.

    ``bad_line`` keeps the text of malformed lines only, for samples.
    """
    line = pl.col("line")
    f = [pl.col("parts").struct.field(f"field_{i}") for i in range(9)]
    stamp, killer_id, victim_id, cause, distance = f[0], f[2], f[4], f[5], f[6]
    at = stamp.str.strptime(pl.Datetime("us"), "%Y.%m.%d-%H.%M.%S", strict=False)
    valid = (
        line.str.contains(f"^(?:{LINE_PATTERN})$")
        & ~stamp.str.starts_with("0000")  # year 0, which Python's datetime lacks
        & at.is_not_null()  # 30 February
    ).fill_null(False)
    kind = (
        pl.when(killer_id == "")
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
            distance=pl.when(distance != "").then(distance.cast(pl.Float64, strict=False)),
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
    end = _whole_lines_end(data, final)
    if end == 0:
        return KillColumns()
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
        samples=[_sample(text) for text in bad.head(MAX_SAMPLES)],
    )


def to_events(columns: KillColumns, start: int = 0, stop: int | None = None) -> list[KillEvent]:
    """Materialise rows ``start:stop`` of ``columns`` as events; slice big results."""
    frame = columns.frame
    stop = frame.height if stop is None else min(stop, frame.height)
    if start >= stop:
        return []
    return [
        _make_event(at.replace(tzinfo=UTC), k, kid, v, vid, cause, dist, kp, vp)
        for at, k, kid, v, vid, cause, dist, kp, vp, _kind in frame.slice(
            start, stop - start
        ).iter_rows()
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
