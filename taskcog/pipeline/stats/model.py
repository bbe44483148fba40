"""The value objects the stats store returns; plain data, no I/O."""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field

BOARDS = ("kills", "deaths", "kd", "distance", "streak", "weapon")
PERIODS = ("today", "week", "month", "all")
SUICIDE_KINDS = ("relocation", "falling", "vehicle", "other")


@dataclass(frozen=True)
class AddResult:
    """What :meth:`StatsStore.add_events` stored: ``new`` events, ``known`` re-deliveries
    (counted nothing), ``flagged`` new kills over the implausible distance."""

    new: int
    known: int
    flagged: int


@dataclass
class ImportResult:
    """What one :meth:`StatsStore.import_data` call did with one chunk of one file.

    ``lines`` non-blank lines read, ``new`` events stored, ``known`` already stored (by id),
    ``malformed`` skipped (``samples`` holds a few, redacted), ``consumed`` bytes that were
    whole lines (the cursor moved by that much).
    """

    lines: int = 0
    new: int = 0
    known: int = 0
    malformed: int = 0
    samples: list[str] = field(default_factory=list)
    consumed: int = 0


@dataclass(frozen=True)
class BoardRow:
    """One line of a board. For the ``weapon`` board ``player_id`` is ``""`` and ``name`` is
    the weapon; ``detail`` is a short human text such as ``"412 m, M82A1"``."""

    rank: int
    player_id: str
    name: str
    value: float
    detail: str


@dataclass(frozen=True)
class PlayerMatch:
    """A search hit: ``matched`` is the name (current or earlier) or id that matched."""

    player_id: str
    name: str
    matched: str
    score: float


@dataclass(frozen=True)
class Longest:
    """A player's longest approved kill."""

    distance: float
    weapon: str
    victim: str
    at: _dt.datetime


@dataclass
class PlayerStats:
    """Everything the ``stats`` embed shows, for the current season(s).

    ``suicides`` maps relocation/falling/vehicle/other to counts; ``nemesis`` and ``prey`` are
    ``(name, n)``; ``streak`` is the current kill streak, ``best_streak`` the season's best.
    """

    player_id: str
    name: str
    names: list[str]
    kills: int
    deaths: int
    kd: float
    suicides: dict[str, int]
    environmental: int
    unknown: int
    longest: Longest | None
    favourite_weapon: str | None
    weapons: dict[str, int]
    streak: int
    best_streak: int
    nemesis: tuple[str, int] | None
    prey: tuple[str, int] | None
    first_seen: _dt.datetime | None
    last_seen: _dt.datetime | None


@dataclass(frozen=True)
class FlaggedKill:
    """A kill over the guild's implausible distance, waiting for an admin's review."""

    event_id: str
    server: str
    killer: str
    victim: str
    weapon: str
    distance: float
    at: _dt.datetime
