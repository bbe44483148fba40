"""Kill streaks: the run of kills since the player's last end of life (killed, suicide,
environmental or unknown death). Order matters, so a batch continues each player's stored
streak when its events come after the ones already counted; a player whose events arrive out
of order (a history import after the live feed) is marked dirty and recomputed from the events
by :func:`settle` before streaks are read.

A period's best streak is the highest streak value reached by a kill inside that period.
"""

from __future__ import annotations

import sqlite3

import polars as pl

_SMALL = 2000  # below this many (scope, pid) pairs, look them up one by one
_SLICE = 5000  # rows per frame when reading a whole guild


def _stored(con: sqlite3.Connection, keys: pl.DataFrame) -> pl.DataFrame:
    """Stored (streak, last_at) of bucket 0 for the batch's (scope, pid) pairs."""
    schema = {"scope": pl.Int64, "pid": pl.Int64, "s0": pl.Int64, "last": pl.Int64}
    if keys.height <= _SMALL:
        found = [
            (scope, pid, *row)
            for scope, pid in keys.iter_rows()
            if (
                row := con.execute(
                    "SELECT streak, last_at FROM stat WHERE scope = ? AND bid = 0 AND pid = ?",
                    (scope, pid),
                ).fetchone()
            )
        ]
        return pl.DataFrame(found, schema=schema, orient="row")
    # A guild's every player: built a slice at a time, because building one frame from Python
    # rows holds the GIL throughout (a 1.2 s event-loop stall at 100k players under load).
    frames = [pl.DataFrame([], schema=schema, orient="row")]
    for (scope,) in keys.select("scope").unique().iter_rows():
        cursor = con.execute(
            "SELECT scope, pid, streak, last_at FROM stat WHERE scope = ? AND bid = 0", (scope,)
        )
        while rows := cursor.fetchmany(_SLICE):
            frames.append(pl.DataFrame(rows, schema=schema, orient="row"))
    return pl.concat(frames)


def sequence(rows: pl.DataFrame) -> pl.DataFrame:
    """Streak values along each (scope, pid) life, from ``s0`` (stored streak, 0 if none).

    Adds ``streak_at`` (kill rows: the streak after that kill) and ``streak_end`` (on each
    pair's last row: the streak after the batch).
    """
    group = ["scope", "pid"]
    ordered = rows.sort(
        ["scope", "pid", "at", "is_kill", "k"], descending=[False, False, False, True, False]
    )
    death = (~pl.col("is_kill")).cast(pl.Int64)
    ordered = ordered.with_columns(run=death.cum_sum().over(group))
    ordered = ordered.with_columns(
        n=pl.col("is_kill").cast(pl.Int64).cum_sum().over([*group, "run"])
    )
    streak = pl.col("n") + pl.when(pl.col("run") == 0).then(pl.col("s0")).otherwise(0)
    ordered = ordered.with_columns(
        streak_at=pl.when(pl.col("is_kill")).then(streak),
        _after=pl.when(pl.col("is_kill")).then(streak).otherwise(0),
        _last=pl.int_range(pl.len()).over(group) == pl.len().over(group) - 1,
    )
    return ordered.with_columns(streak_end=pl.when(pl.col("_last")).then(pl.col("_after"))).drop(
        "run", "n", "_after", "_last"
    )


def streak_values(con: sqlite3.Connection, rows: pl.DataFrame) -> pl.DataFrame:
    """:func:`sequence` from the stored streaks; marks out-of-order players dirty."""
    keys = rows.select("scope", "pid").unique()
    stored = _stored(con, keys)
    rows = rows.join(stored, on=["scope", "pid"], how="left").with_columns(
        pl.col("s0").fill_null(0)
    )
    late = (
        rows.filter(pl.col("last").is_not_null() & (pl.col("at") < pl.col("last")))
        .select("scope", "pid")
        .unique()
    )
    if late.height:
        con.executemany("INSERT OR IGNORE INTO dirty VALUES (?, ?)", late.iter_rows())
    return sequence(rows.drop("last"))
