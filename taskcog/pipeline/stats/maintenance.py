"""Recomputing derived rows from the events: dirty streaks (:func:`settle`), a new zone's
period rows (:func:`ensure_zone`) and everything of a guild (:func:`rebuild`)."""

from __future__ import annotations

import datetime as _dt
import sqlite3

import polars as pl

from . import aggregates
from .ingest import zones_of
from .schema import DERIVED
from .streaks import sequence

_CHUNK = 500_000
_EVENT_SCHEMA = {
    "k": pl.Int64,
    "scope": pl.Int64,
    "at": pl.Int64,
    "killer": pl.Int64,
    "victim": pl.Int64,
    "weapon": pl.String,
    "distance": pl.Float64,
    "kind": pl.Int64,
    "flag": pl.Int64,
}


def guild_scopes(con: sqlite3.Connection, guild: int) -> tuple[int, list[tuple[int, int]]]:
    """(combined scope, [(server scope, current season)]) of a guild; the combined scope is
    None while the guild has one server (that server's rows are the combined ones)."""
    combined = None
    servers = []
    for scope, server, season in con.execute(
        "SELECT scope, server, season FROM scopes WHERE guild = ? ORDER BY scope", (guild,)
    ):
        if server == "":
            combined = scope
        else:
            servers.append((scope, season))
    return (combined if len(servers) > 1 else None), servers


def _events(con: sqlite3.Connection, guild: int, where: str = "", args: tuple = ()):
    """The guild's current-season events in time order, as frames of up to _CHUNK rows."""
    combined, servers = guild_scopes(con, guild)
    if not servers:
        return
    cond = " OR ".join("(scope = ? AND season = ?)" for _ in servers)
    flat = tuple(x for pair in servers for x in pair)
    cursor = con.execute(
        f"SELECT k, scope, at, killer, victim, weapon, distance, kind, flag FROM events"
        f" WHERE ({cond}) {where} ORDER BY at, k",
        flat + args,
    )
    while rows := cursor.fetchmany(_CHUNK):
        frame = pl.DataFrame(rows, schema=_EVENT_SCHEMA, orient="row")
        yield frame.with_columns(combined=pl.lit(combined, pl.Int64))


def rebuild(con: sqlite3.Connection, guild: int, now: _dt.datetime | None = None) -> int:
    """Delete the guild's derived rows and derive them again from its events."""
    combined, servers = guild_scopes(con, guild)
    scopes = [s for s, _ in servers] + [
        s
        for (s,) in con.execute(
            "SELECT scope FROM scopes WHERE guild = ? AND server = ''", (guild,)
        )
    ]
    for table in DERIVED:
        con.executemany(f"DELETE FROM {table} WHERE scope = ?", ((s,) for s in scopes))
    zones = zones_of(con, guild, now)
    count = 0
    pairs = aggregates.PairTally()
    for frame in _events(con, guild):
        aggregates.apply(con, frame, zones, pairs)
        count += frame.height
    pairs.write(con)
    return count


def ensure_zone(
    con: sqlite3.Connection, guild: int, tz: str, now: _dt.datetime | None = None
) -> None:
    """Derive the guild's period rows in zone ``tz`` the first time a board asks for it."""
    if con.execute("SELECT 1 FROM zones WHERE guild = ? AND tz = ?", (guild, tz)).fetchone():
        return
    con.execute("INSERT INTO zones VALUES (?, ?)", (guild, tz))
    rebuild(con, guild, now)


def settle(con: sqlite3.Connection, guild: int, now: _dt.datetime | None = None) -> int:
    """Recompute the streaks of the guild's dirty players from their events."""
    combined, servers = guild_scopes(con, guild)
    scopes = [s for s, _ in servers] + ([combined] if combined is not None else [])
    marks = [
        row
        for s in scopes
        for row in con.execute("SELECT scope, pid FROM dirty WHERE scope = ?", (s,)).fetchall()
    ]
    if not marks:
        return 0
    dirty = pl.DataFrame(marks, schema={"scope": pl.Int64, "pid": pl.Int64}, orient="row")
    pids = dirty.get_column("pid").unique().to_list()
    zones = zones_of(con, guild, now)
    con.execute("CREATE TEMP TABLE IF NOT EXISTS settle_pids(pid INTEGER PRIMARY KEY)")
    con.execute("DELETE FROM settle_pids")
    con.executemany("INSERT INTO settle_pids VALUES (?)", ((p,) for p in pids))
    where = (
        "AND (killer IN (SELECT pid FROM settle_pids) OR victim IN (SELECT pid FROM settle_pids))"
    )
    frames = list(_events(con, guild, where))
    if frames:
        rows = aggregates.sides(pl.concat(frames)).join(dirty, on=["scope", "pid"], how="semi")
        rows = sequence(rows.with_columns(s0=pl.lit(0, pl.Int64)))
        rows = aggregates.with_buckets(con, rows, zones)
        best = rows.group_by("scope", "bid", "pid").agg(
            pl.col("streak_at").max().fill_null(0), pl.col("streak_end").drop_nulls().last()
        )
        con.executemany(
            "UPDATE stat SET best_streak = 0 WHERE scope = ? AND pid = ?", dirty.iter_rows()
        )
        con.executemany(
            "UPDATE stat SET best_streak = ?,"
            " streak = CASE WHEN bid = 0 THEN coalesce(?, 0) ELSE streak END"
            " WHERE scope = ? AND bid = ? AND pid = ?",
            best.select("streak_at", "streak_end", "scope", "bid", "pid").iter_rows(),
        )
    con.executemany("DELETE FROM dirty WHERE scope = ? AND pid = ?", dirty.iter_rows())
    return dirty.height
