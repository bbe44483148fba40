"""The events parsers produce and the sinks consume.

Events are frozen value objects so a sink can hash, dedupe and store them; their ``id`` is the
exactly-once key, derived from what happened and never from where it was read.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

KILL = "kill"
SUICIDE = "suicide"
VEHICLE = "vehicle"
UNKNOWN = "unknown"
KINDS = (KILL, SUICIDE, VEHICLE, UNKNOWN)


@dataclass(frozen=True, slots=True)
class KillEvent:
    """One death from a game server's kill log.

    ``kind`` is ``"unknown"`` when the log names no killer, ``"suicide"`` when the killer is the
    victim, ``"vehicle"`` for a death by land vehicle or boat, else ``"kill"``. ``id`` is a hash
    of every other field, so the same death read twice (from another offset, another poll or
    another copy of the file) has the same id.
    """

    id: str
    at: _dt.datetime
    killer: str
    killer_id: str
    victim: str
    victim_id: str
    cause: str
    distance: float | None
    killer_platform: str | None
    victim_platform: str | None
    kind: str


@dataclass
class ParseResult:
    """What one parse of a chunk of bytes produced.

    ``consumed`` is how many bytes of the input were whole lines: the caller commits that offset
    and keeps the rest (a partial last line) for the next poll. ``lines`` counts non-blank lines
    read; ``malformed`` of them were skipped, and ``samples`` holds a few of those, redacted.
    """

    events: list[KillEvent] = field(default_factory=list)
    consumed: int = 0
    lines: int = 0
    malformed: int = 0
    samples: list[str] = field(default_factory=list)
