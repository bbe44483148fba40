"""The Deadside kill-log line: its grammar, what a line means, and how a bad one is described.

Shared by both parsing paths (``lines`` and ``columns``), so they cannot disagree.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import hashlib
import math
import re

from ...events import KILL, SUICIDE, UNKNOWN, VEHICLE, KillEvent

UTC = _dt.UTC
BOM = b"\xef\xbb\xbf"
VEHICLE_CAUSES = frozenset({"land_vehicle", "boat"})
MAX_SAMPLES = 5
FAST_PATH_MIN_BYTES = 256 * 1024  # below this, polars' fixed costs outweigh its speed
_SAMPLE_CHARS = 120

# The line grammar, shared by both paths (Python's re and polars' Rust regex read it alike).
# ASCII digits only: \d would also accept other scripts' digits.
_BAD_CHARS = r"\x00-\x1f\x7f\uFFFD"  # control characters, and U+FFFD from undecodable bytes
# Two styles: 2025.05.09-11.58.37 (the game's own) and 2025-05-15 07:42:28 (some hosts').
_TIMESTAMP = (
    r"[0-9]{4}\.(?:0[1-9]|1[0-2])\.(?:0[1-9]|[12][0-9]|3[01])"
    r"-(?:[01][0-9]|2[0-3])\.[0-5][0-9]\.[0-5][0-9]"
    r"|[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
    r" (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
)
DASH_STAMP = "%Y-%m-%d %H:%M:%S"
DOT_STAMP = "%Y.%m.%d-%H.%M.%S"
NO_KILLER = ("", "**")  # environmental deaths name no killer, or "**"
_TEXT = rf"[^;{_BAD_CHARS}]*"
_NONEMPTY = rf"[^;{_BAD_CHARS}]+"
_DISTANCE = r"(?:[0-9]+(?:[.,][0-9]+)?)?"  # a decimal comma from some locales
# 7 columns, or 9 with the platforms; a doubled final ';' (an empty 10th column) is accepted.
LINE_PATTERN = (
    rf"({_TIMESTAMP});({_TEXT});({_TEXT});({_TEXT});({_NONEMPTY});({_TEXT});({_DISTANCE});"
    rf"(?:({_TEXT});({_TEXT});;?)?"
)
_LINE_RE = re.compile(LINE_PATTERN)
_TIMESTAMP_RE = re.compile(_TIMESTAMP)
_DISTANCE_RE = re.compile(_DISTANCE)
_BAD_CHARS_RE = re.compile(f"[{_BAD_CHARS}]")
_HEX_ID_RE = re.compile(r"[0-9a-fA-F]{12,}")
_NUMERIC_RE = re.compile(r"[0-9.:\-]*")
SEPARATOR_CANDIDATES = bytes(range(0x20)).replace(b"\n", b"").replace(b"\r", b"")


# -- events ----------------------------------------------------------------------------------


def kill_kind(killer_id: str, victim_id: str, cause: str) -> str:
    """Classify a death: no killer (empty or ``**``) first, then suicide, vehicle, else a kill."""
    if killer_id in NO_KILLER:
        return UNKNOWN
    if killer_id == victim_id:
        return SUICIDE
    if cause in VEHICLE_CAUSES:
        return VEHICLE
    return KILL


def make_event(
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
    if columns not in (7, 9) and not (columns == 10 and fields[-2] == ""):
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
    well_formed = len(fields) in (8, 10, 11) and fields[-1] == ""
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


def sample(text: str) -> str:
    return f"{_diagnose(text)}: {_redacted(text)}"


# -- one line ---------------------------------------------------------------------------------


def whole_lines_end(data: bytes, final: bool) -> int:
    """How many bytes of ``data`` are whole lines."""
    return len(data) if final else data.rfind(b"\n") + 1


def _timestamp(stamp: str) -> _dt.datetime | None:
    """A timestamp that matched the pattern, or None for a day the calendar lacks (30 Feb)."""
    iso = f"{stamp[:10].replace('.', '-')}T{stamp[11:].replace('.', ':')}+00:00"  # either style
    try:
        return _dt.datetime.fromisoformat(iso)  # C-fast; its tzinfo is datetime.timezone.utc
    except ValueError:  # 30 February, year 0
        return None


def parse_line(text: str) -> KillEvent | None:
    """One non-blank line, without its line ending, to an event; None if malformed."""
    match = _LINE_RE.fullmatch(text)
    if match is None:
        return None
    stamp, killer, killer_id, victim, victim_id, cause, distance, k_plat, v_plat = match.groups()
    at = _timestamp(stamp)
    if at is None:
        return None
    return make_event(
        at,
        killer,
        killer_id,
        victim,
        victim_id,
        cause,
        float(distance.replace(",", ".")) if distance else None,
        k_plat or None,
        v_plat or None,
    )
