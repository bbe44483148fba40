"""Wipes (a new season per server, the old season's podium kept) and flagged kills."""

from __future__ import annotations

import datetime as _dt
import sqlite3

import polars as pl

from . import aggregates, maintenance, queries
from .ids import key_of
from .ingest import scope_of, zones_of
from .model import BOARDS, BoardRow, FlaggedKill
from .schema import APPROVED, PENDING, REJECTED

PODIUM = 3


def wipe(con: sqlite3.Connection, guild: int, server: str, now: _dt.datetime | None) -> int:
    """Keep the season's top 3 per board, start the next season now, re-derive the guild."""
    if not server:
        raise ValueError("a server name is required")
    now = now or _dt.datetime.now(_dt.UTC)
    sc = scope_of(con, guild, server)
    for board in BOARDS:
        for row in queries.board(con, board, sc.scope, 0, PODIUM, 0):
            con.execute(
                "INSERT OR REPLACE INTO podiums VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    sc.scope,
                    sc.season,
                    board,
                    row.rank,
                    row.player_id,
                    row.name,
                    row.value,
                    row.detail,
                ),
            )
    season = sc.season + 1
    con.execute("UPDATE scopes SET season = ? WHERE scope = ?", (season, sc.scope))
    con.execute("INSERT INTO seasons VALUES (?, ?, ?)", (sc.scope, season, int(now.timestamp())))
    maintenance.rebuild(con, guild, now)
    return season


def last_wipe(
    con: sqlite3.Connection, guild: int, server: str | None
) -> dict[str, list[BoardRow]]:
    cond, args = "s.guild = ? AND s.server != ''", (guild,)
    if server:
        cond, args = "s.guild = ? AND s.server = ?", (guild, server)
    latest = con.execute(
        f"SELECT w.scope, w.season - 1 FROM seasons AS w JOIN scopes AS s ON s.scope = w.scope"
        f" WHERE {cond} AND w.season > 1 ORDER BY w.started DESC, w.scope DESC LIMIT 1",
        args,
    ).fetchone()
    out: dict[str, list[BoardRow]] = {board: [] for board in BOARDS}
    if latest is None:
        return out
    for board, rank, player_id, name, value, detail in con.execute(
        "SELECT board, rank, player_id, name, value, detail FROM podiums"
        " WHERE scope = ? AND season = ? ORDER BY board, rank",
        tuple(latest),
    ):
        out[board].append(BoardRow(rank, player_id, name, value, detail))
    return out


def flags(con: sqlite3.Connection, guild: int) -> list[FlaggedKill]:
    rows = con.execute(
        "SELECT f.id, f.server, f.killer, f.victim, e.weapon, e.distance, e.at FROM flags AS f"
        " JOIN events AS e ON e.scope = f.scope AND e.at = f.at AND e.k = f.k"
        " WHERE f.guild = ? AND e.flag = ? ORDER BY e.at, f.k",
        (guild, PENDING),
    ).fetchall()
    return [
        FlaggedKill(
            i, server, killer, victim, weapon, distance, _dt.datetime.fromtimestamp(at, _dt.UTC)
        )
        for i, server, killer, victim, weapon, distance, at in rows
    ]


def review(
    con: sqlite3.Connection,
    guild: int,
    event_id: str,
    approve: bool,
    now: _dt.datetime | None = None,
) -> bool:
    """Approve or reject a pending flag; an approved kill of the current season enters the
    records (longest kill, distance board) of every bucket it falls in."""
    try:
        k = key_of(event_id)
    except ValueError:
        return False
    found = con.execute(
        "SELECT e.scope, e.season, e.at, e.killer, e.victim, e.weapon, e.distance, e.kind"
        " FROM flags AS f JOIN events AS e ON e.scope = f.scope AND e.at = f.at AND e.k = f.k"
        " WHERE f.k = ? AND f.id = ? AND f.guild = ? AND e.flag = ?",
        (k, event_id, guild, PENDING),
    ).fetchone()
    if found is None:
        return False
    con.execute(
        "UPDATE events SET flag = ? WHERE scope = ? AND at = ? AND k = ?",
        (APPROVED if approve else REJECTED, found[0], found[2], k),
    )
    scope, season, at, killer, victim, weapon, distance, kind = found
    current = con.execute("SELECT season FROM scopes WHERE scope = ?", (scope,)).fetchone()[0]
    if not approve or season != current:
        return True
    combined, _servers = maintenance.guild_scopes(con, guild)
    batch = pl.DataFrame(
        [(k, scope, combined, at, killer, victim, weapon, distance, kind, APPROVED)],
        schema={
            "k": pl.Int64,
            "scope": pl.Int64,
            "combined": pl.Int64,
            "at": pl.Int64,
            "killer": pl.Int64,
            "victim": pl.Int64,
            "weapon": pl.String,
            "distance": pl.Float64,
            "kind": pl.Int64,
            "flag": pl.Int64,
        },
        orient="row",
    )
    rows = aggregates.sides(batch).filter(pl.col("is_kill"))
    rows = aggregates.with_buckets(con, rows, zones_of(con, guild, now))
    con.executemany(
        "UPDATE stat SET best = ?, best_weapon = ?, best_victim = ?, best_at = ?"
        " WHERE scope = ? AND bid = ? AND pid = ? AND coalesce(best, -1) < ?",
        (
            (d, w, v, a, s, b, p, d)
            for d, w, v, a, s, b, p in rows.select(
                "best", "best_weapon", "best_victim", "at", "scope", "bid", "pid"
            ).iter_rows()
        ),
    )
    return True
