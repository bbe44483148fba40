"""Reading boards and players. Every board of every bucket (the season so far, a day, week
or month in a zone) walks its own index. Ties: lower pid (a hash of the platform id) first."""

from __future__ import annotations

import datetime as _dt
import sqlite3

from .model import BoardRow, Longest, PlayerStats
from .schema import KD

_VALUE = {
    "kills": "kills",
    "deaths": "deaths",
    "kd": KD,
    "distance": "best",
    "streak": "best_streak",
}
_WHERE = {
    "kills": "kills > 0",
    "deaths": "deaths > 0",
    "kd": f"{KD} > 0",  # = kills > 0, said so the kd index serves it
    "distance": "best > 0",
    "streak": "best_streak > 0",
}


def _named(con: sqlite3.Connection) -> sqlite3.Cursor:
    cursor = con.cursor()
    cursor.row_factory = sqlite3.Row
    return cursor


def _when(at: int | None) -> _dt.datetime | None:
    return None if at is None else _dt.datetime.fromtimestamp(at, _dt.UTC)


def _detail(board: str, row: sqlite3.Row) -> str:
    if board == "kills":
        return f"{row['deaths']} deaths, K/D {_kd(row['kills'], row['deaths']):.2f}"
    if board == "deaths":
        return f"{row['kills']} kills"
    if board == "kd":
        return f"{row['kills']} kills / {row['deaths']} deaths"
    if board == "distance":
        return f"{row['best']:g} m, {row['best_weapon']}"
    return f"current {row['streak']}"


def _kd(kills: int, deaths: int) -> float:
    return float(kills) if deaths == 0 else kills / deaths


def board(
    con: sqlite3.Connection, board: str, scope: int, bid: int, limit: int, offset: int
) -> list[BoardRow]:
    if board == "weapon":
        rows = con.execute(
            "SELECT weapon, kills FROM weapons WHERE scope = ? AND bid = ?"
            " ORDER BY kills DESC, weapon LIMIT ? OFFSET ?",
            (scope, bid, limit, offset),
        ).fetchall()
        return [
            BoardRow(offset + i + 1, "", weapon, float(kills), f"{kills} kills")
            for i, (weapon, kills) in enumerate(rows)
        ]
    value = _VALUE[board]
    args = (scope, bid)
    where = f"scope = ? AND bid = ? AND {_WHERE[board]}"
    # Ties go by pid (a hash of the platform id: stable in every store), so the index alone
    # gives the page, whatever the number of tied players.
    rows = (
        _named(con)
        .execute(
            f"SELECT s.*, {value} AS value, p.player_id, p.name FROM"
            f" (SELECT * FROM stat WHERE {where} ORDER BY {value} DESC, pid LIMIT ? OFFSET ?)"
            f" AS s JOIN players AS p ON p.pid = s.pid ORDER BY value DESC, s.pid",
            (*args, limit, offset),
        )
        .fetchall()
    )
    return [
        BoardRow(
            offset + i + 1, row["player_id"], row["name"], float(row["value"]), _detail(board, row)
        )
        for i, row in enumerate(rows)
    ]


MAX_RANKED = 1000  # boards page down to rank 1,000; counting 100,000 rows costs ~40 ms


def count(con: sqlite3.Connection, board: str, scope: int, bid: int) -> int:
    if board == "weapon":
        sql = "SELECT 1 FROM weapons WHERE scope = ? AND bid = ?"
    else:
        sql = f"SELECT 1 FROM stat WHERE scope = ? AND bid = ? AND {_WHERE[board]}"
    return con.execute(
        f"SELECT count(*) FROM ({sql} LIMIT {MAX_RANKED})", (scope, bid)
    ).fetchone()[0]


def _name(con: sqlite3.Connection, pid: int) -> str:
    row = con.execute("SELECT name FROM players WHERE pid = ?", (pid,)).fetchone()
    return row[0] if row else "?"


def player(con: sqlite3.Connection, scope: int, pid: int) -> PlayerStats | None:
    who = con.execute("SELECT player_id, name FROM players WHERE pid = ?", (pid,)).fetchone()
    if who is None:
        return None
    player_id, name = who
    names = [
        n
        for (n,) in con.execute("SELECT name FROM names WHERE pid = ? ORDER BY name", (pid,))
        if n != name
    ]
    row = (
        _named(con)
        .execute("SELECT * FROM stat WHERE scope = ? AND bid = 0 AND pid = ?", (scope, pid))
        .fetchone()
    )
    if row is None:
        return PlayerStats(
            player_id,
            name,
            names,
            0,
            0,
            0.0,
            dict.fromkeys(("relocation", "falling", "vehicle", "other"), 0),
            0,
            0,
            None,
            None,
            {},
            0,
            0,
            None,
            None,
            None,
            None,
        )
    weapons = dict(
        con.execute(
            "SELECT weapon, kills FROM pweapons WHERE scope = ? AND pid = ?"
            " ORDER BY kills DESC, weapon",
            (scope, pid),
        ).fetchall()
    )
    nemesis = con.execute(
        "SELECT killer, n FROM pairs JOIN players ON pid = killer WHERE scope = ? AND victim = ?"
        " ORDER BY n DESC, player_id LIMIT 1",
        (scope, pid),
    ).fetchone()
    prey = con.execute(
        "SELECT victim, n FROM pairs JOIN players ON pid = victim WHERE scope = ? AND killer = ?"
        " ORDER BY n DESC, player_id LIMIT 1",
        (scope, pid),
    ).fetchone()
    longest = None
    if row["best"] is not None and row["best"] >= 0 and row["best_at"] is not None:
        longest = Longest(
            row["best"], row["best_weapon"], _name(con, row["best_victim"]), _when(row["best_at"])
        )
    return PlayerStats(
        player_id=player_id,
        name=name,
        names=names,
        kills=row["kills"],
        deaths=row["deaths"],
        kd=_kd(row["kills"], row["deaths"]),
        suicides={
            "relocation": row["s_relocation"],
            "falling": row["s_falling"],
            "vehicle": row["s_vehicle"],
            "other": row["s_other"],
        },
        environmental=row["environmental"],
        unknown=row["unknown"],
        longest=longest,
        favourite_weapon=next(iter(weapons), None),
        weapons=weapons,
        streak=row["streak"],
        best_streak=row["best_streak"],
        nemesis=(_name(con, nemesis[0]), nemesis[1]) if nemesis else None,
        prey=(_name(con, prey[0]), prey[1]) if prey else None,
        first_seen=_when(row["first_at"]),
        last_seen=_when(row["last_at"]),
    )
