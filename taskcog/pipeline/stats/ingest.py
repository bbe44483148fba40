"""Storing a frame of parsed events: players, seasons, dedupe by id (in the batch and against
the database), the events rows, flags, then the derived tables. Runs in the caller's transaction.

A frame has the parser's columns (``at`` naive UTC datetime, killer, killer_id, victim,
victim_id, cause, distance, killer_platform, victim_platform, kind) plus ``id`` and ``k``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass

import polars as pl

from ..events import KILL as P_KILL
from ..events import SUICIDE as P_SUICIDE
from ..events import UNKNOWN as P_UNKNOWN
from ..events import VEHICLE as P_VEHICLE
from ..parsers.deadside import VEHICLE_CAUSES
from . import aggregates
from .periods import Zone, horizons
from .schema import (
    ENVIRONMENTAL,
    EVENT_COLUMNS,
    KILL,
    NOT_FLAGGED,
    PENDING,
    S_FALLING,
    S_OTHER,
    S_RELOCATION,
    S_VEHICLE,
    UNKNOWN,
    VEHICLE_KILL,
)

_SMALL = 2000


@dataclass
class Scope:
    guild: int
    server: str
    scope: int
    combined: int | None  # None while the guild has one server: its rows are the combined ones
    season: int
    seasons: list[tuple[int, int]]  # (season, started epoch s)


def scope_id(con: sqlite3.Connection, guild: int, server: str) -> int:
    """The scope of a guild's server ('' = combined), created on first use with season 1."""
    row = con.execute("SELECT scope FROM scopes WHERE guild = ? AND server = ?", (guild, server))
    found = row.fetchone()
    if found:
        return found[0]
    scope = con.execute(
        "INSERT INTO scopes(guild, server) VALUES (?, ?)", (guild, server)
    ).lastrowid
    con.execute("INSERT INTO seasons VALUES (?, 1, ?)", (scope, -(2**62)))
    return scope


def scope_of(con: sqlite3.Connection, guild: int, server: str) -> Scope:
    scope = scope_id(con, guild, server)
    combined = scope_id(con, guild, "")
    seasons = con.execute(
        "SELECT season, started FROM seasons WHERE scope = ? ORDER BY season", (scope,)
    ).fetchall()
    servers = con.execute(
        "SELECT count(*) FROM scopes WHERE guild = ? AND server != ''", (guild,)
    ).fetchone()[0]
    active = combined if servers > 1 else None
    return Scope(guild, server, scope, active, seasons[-1][0], seasons)


def zones_of(con: sqlite3.Connection, guild: int, now: _dt.datetime | None = None) -> list[Zone]:
    """The guild's zones, each with the first window per grain that is kept (see ``Zone``)."""
    return [
        Zone(tz, horizons(tz, now))
        for (tz,) in con.execute("SELECT tz FROM zones WHERE guild = ? ORDER BY tz", (guild,))
    ]


def _kinds(frame: pl.DataFrame) -> pl.DataFrame:
    kind, cause = pl.col("kind"), pl.col("cause")
    code = (
        pl.when(kind == P_KILL)
        .then(KILL)
        .when(kind == P_VEHICLE)
        .then(VEHICLE_KILL)
        .when(kind == P_SUICIDE)
        .then(
            pl.when(cause == "suicide_by_relocation")
            .then(S_RELOCATION)
            .when(cause == "falling")
            .then(S_FALLING)
            .when(cause.is_in(sorted(VEHICLE_CAUSES)))
            .then(S_VEHICLE)
            .otherwise(S_OTHER)
        )
        .when((kind == P_UNKNOWN) & (cause != ""))
        .then(ENVIRONMENTAL)
        .otherwise(UNKNOWN)
    )
    return frame.with_columns(
        code=code.cast(pl.Int64),
        weapon=pl.when(kind == P_VEHICLE).then(pl.lit("vehicle")).otherwise(cause),
    )


KNOWN_SQL = (
    "SELECT e.at, e.k FROM json_each(?) AS j CROSS JOIN events AS e"
    " ON e.scope = ? AND e.at = j.value ->> 0 AND e.k = j.value ->> 1"
)
_KNOWN_CHUNK = 8192  # keys per lookup: each json.dumps holds the GIL (~2 ms, not 30 at 120k)


_SPAN_SQL = (
    "SELECT (SELECT at FROM events WHERE scope = ?1 ORDER BY at LIMIT 1),"
    " (SELECT at FROM events WHERE scope = ?1 ORDER BY at DESC LIMIT 1)"
)


def _known(con: sqlite3.Connection, scope: int, frame: pl.DataFrame) -> pl.DataFrame:
    """The (at_s, k) of ``frame`` already stored in ``scope``: one primary-key probe per row
    (CROSS JOIN keeps the planner from scanning the scope's events for every row instead),
    and only for rows within the times the scope holds: an import of a server's past, oldest
    file first, appends past the newest stored event and so probes nothing but its overlaps."""
    first, last = con.execute(_SPAN_SQL, (scope,)).fetchone()
    if first is None:
        return pl.DataFrame(schema={"at_s": pl.Int64, "k": pl.Int64})
    frame = frame.filter(pl.col("at_s").is_between(first, last))
    found: list[tuple[int, int]] = []
    for start in range(0, frame.height, _KNOWN_CHUNK):
        piece = frame.slice(start, _KNOWN_CHUNK).select("at_s", "k").rows()
        found.extend(con.execute(KNOWN_SQL, (json.dumps(piece), scope)))
    return pl.DataFrame(found, schema={"at_s": pl.Int64, "k": pl.Int64}, orient="row")


def pid_of(guild: int, player_id: str) -> int:
    """A player's row id: a hash of (guild, platform id), the same in every store whatever
    order events arrived in, so boards can break ties by it straight from their index (the
    odds that two of 100,000 players collide are ~3e-10)."""
    digest = hashlib.blake2b(f"{guild}:{player_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _players(con: sqlite3.Connection, guild: int, frame: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Upsert the frame's players (latest name wins) and names; their pids."""
    seen = pl.concat(
        [
            frame.filter(pl.col("kind") != P_UNKNOWN).select(
                pl.col("killer_id").alias("player_id"), pl.col("killer").alias("name"), "at_s"
            ),
            frame.select(
                pl.col("victim_id").alias("player_id"), pl.col("victim").alias("name"), "at_s"
            ),
        ]
    )
    latest = (
        seen.sort("at_s", "player_id")
        .group_by("player_id")
        .agg(pl.col("name").last(), pl.col("at_s").last())
    )
    rows = [(player_id, pid_of(guild, player_id)) for player_id in latest.get_column("player_id")]
    con.executemany(
        "INSERT INTO players(pid, guild, player_id, name, name_at) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT(guild, player_id) DO UPDATE SET"
        " name = CASE WHEN excluded.name_at >= name_at THEN excluded.name ELSE name END,"
        " name_at = max(name_at, excluded.name_at)",
        (
            (pid, guild, player_id, name, at)
            for (player_id, pid), (_id, name, at) in zip(rows, latest.iter_rows(), strict=True)
        ),
    )
    pids = pl.DataFrame(rows, schema={"player_id": pl.String, "pid": pl.Int64}, orient="row")
    names = seen.select("player_id", "name").unique().join(pids, on="player_id")
    before = con.total_changes
    con.executemany(
        "INSERT OR IGNORE INTO names VALUES (?, ?)", names.select("pid", "name").iter_rows()
    )
    return pids, con.total_changes - before


def store_frame(
    con: sqlite3.Connection,
    sc: Scope,
    frame: pl.DataFrame,
    flag_over: float,
    zones: list[Zone],
    pairs: aggregates.PairTally | None = None,
) -> tuple[int, int, int, int]:
    """Store the new events of ``frame``; returns (new, known, flagged, names added). With
    ``pairs``, the pair counts are left there (``aggregates.PairTally``)."""
    total = frame.height
    frame = frame.with_columns(at_s=pl.col("at").dt.epoch("s")).unique(
        ["at_s", "k"], keep="first", maintain_order=True
    )
    if frame.height:
        known = _known(con, sc.scope, frame)
        if known.height:
            frame = frame.join(known, on=["at_s", "k"], how="anti", maintain_order="left")
    if frame.height == 0:
        return 0, total, 0, 0
    frame = _kinds(frame)
    pids, names = _players(con, sc.guild, frame)
    frame = frame.join(
        pids.rename({"player_id": "killer_id", "pid": "killer_pid"}), on="killer_id", how="left"
    ).join(
        pids.rename({"player_id": "victim_id", "pid": "victim_pid"}), on="victim_id", how="left"
    )
    season = pl.lit(0, pl.Int64)
    for _number, started in sc.seasons:
        season = season + (pl.col("at_s") >= started).cast(pl.Int64)
    is_kill = pl.col("code").is_in([KILL, VEHICLE_KILL])
    frame = frame.with_columns(
        season=season,
        flag=pl.when(is_kill & (pl.col("distance") > flag_over))
        .then(PENDING)
        .otherwise(NOT_FLAGGED),
        killer_pid=pl.when(pl.col("code").is_in([ENVIRONMENTAL, UNKNOWN]))
        .then(None)
        .otherwise(pl.col("killer_pid")),
    ).sort("at_s", "k")
    con.executemany(
        f"INSERT INTO events({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        frame.select(
            pl.lit(sc.scope),
            "at_s",
            "k",
            "season",
            "killer_pid",
            "victim_pid",
            "weapon",
            "distance",
            "code",
            "flag",
        ).iter_rows(),
    )
    flagged = frame.filter(pl.col("flag") == PENDING)
    con.executemany(
        "INSERT OR IGNORE INTO flags VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (sc.scope, at, k, i, sc.guild, sc.server, kn, vn)
            for at, k, i, kn, vn in flagged.select(
                "at_s", "k", "id", "killer", "victim"
            ).iter_rows()
        ),
    )
    current = frame.filter(pl.col("season") == sc.season).select(
        "k",
        pl.lit(sc.scope, pl.Int64).alias("scope"),
        pl.lit(sc.combined, pl.Int64).alias("combined"),
        pl.col("at_s").alias("at"),
        pl.col("killer_pid").alias("killer"),
        pl.col("victim_pid").alias("victim"),
        "weapon",
        "distance",
        pl.col("code").alias("kind"),
        "flag",
    )
    aggregates.apply(con, current, zones, pairs)
    return frame.height, total - frame.height, flagged.height, names
