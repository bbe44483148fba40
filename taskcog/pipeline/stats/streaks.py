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
    pair's last row: the streak after the batch). One sort, then running sums over the whole
    frame (no per-group windows): a "segment" starts at each pair's first row and at each end
    of life, and a kill's streak is the kills since its segment started.
    """
    ordered = rows.sort(
        ["scope", "pid", "at", "is_kill", "k"], descending=[False, False, False, True, False]
    )
    kill = pl.col("is_kill")
    first = (pl.col("scope") != pl.col("scope").shift(1)) | (
        pl.col("pid") != pl.col("pid").shift(1)
    )
    ordered = ordered.with_columns(
        _first=first.fill_null(True), _kills=kill.cast(pl.Int64).cum_sum()
    )
    start = pl.col("_first") | ~kill
    ordered = ordered.with_columns(
        # kills counted before this segment, and whether it is the pair's first life here
        _base=pl.when(start).then(pl.col("_kills") - kill.cast(pl.Int64)).forward_fill(),
        _alive=pl.when(start).then(kill).forward_fill(),
        _last=pl.col("_first").shift(-1).fill_null(True),
    )
    streak = pl.col("_kills") - pl.col("_base") + pl.when("_alive").then("s0").otherwise(0)
    return ordered.with_columns(
        streak_at=pl.when(kill).then(streak),
        streak_end=pl.when(pl.col("_last")).then(pl.when(kill).then(streak).otherwise(0)),
    ).drop("_first", "_kills", "_base", "_alive", "_last")


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
