"""Derived tables, updated in bulk: polars groups a batch of NEW events, SQLite upserts the
groups (sums add, records take the max). Streaks are order-dependent: see ``streaks``.

A batch frame has: k, scope (the server's), combined (the guild's combined scope, null while
the guild has one server), at (epoch
s), killer/victim (pids; killer null without one), weapon, distance, kind, flag.
"""

from __future__ import annotations

import sqlite3

import polars as pl

from .periods import GRAINS, Zone, horizon_epoch, period_starts
from .schema import (
    APPROVED,
    ENVIRONMENTAL,
    KILL,
    NOT_FLAGGED,
    S_FALLING,
    S_OTHER,
    S_RELOCATION,
    S_VEHICLE,
    UNKNOWN,
    VEHICLE_KILL,
)
from .streaks import streak_values

_COUNTS = (
    "kills",
    "deaths",
    "s_relocation",
    "s_falling",
    "s_vehicle",
    "s_other",
    "environmental",
    "unknown",
)
# a record is beaten by a longer kill, or an equally long earlier one (arrival order is moot)
_BETTER = (
    "(excluded.best > coalesce(best, -1)"
    " OR (excluded.best = best AND excluded.best_at < best_at))"
)
_UPSERT_STAT = f"""
INSERT INTO stat(scope, bid, pid, {", ".join(_COUNTS)}, best, best_weapon, best_victim, best_at,
                 streak, best_streak, first_at, last_at)
VALUES ({", ".join("?" * (3 + len(_COUNTS) + 8))})
ON CONFLICT(scope, bid, pid) DO UPDATE SET
    {", ".join(f"{c} = {c} + excluded.{c}" for c in _COUNTS)},
    best_weapon = CASE WHEN {_BETTER} THEN excluded.best_weapon
                       ELSE best_weapon END,
    best_victim = CASE WHEN {_BETTER} THEN excluded.best_victim
                       ELSE best_victim END,
    best_at = CASE WHEN {_BETTER} THEN excluded.best_at ELSE best_at END,
    best = max(coalesce(best, -1), coalesce(excluded.best, -1)),
    streak = coalesce(excluded.streak, streak),
    best_streak = max(best_streak, excluded.best_streak),
    first_at = min(first_at, excluded.first_at),
    last_at = max(last_at, excluded.last_at)
"""


def sides(batch: pl.DataFrame) -> pl.DataFrame:
    """One row per player per event (killer side and victim side), for both scopes."""
    kind = pl.col("kind")
    is_kill = kind.is_in([KILL, VEHICLE_KILL])
    record = (
        is_kill & pl.col("flag").is_in([NOT_FLAGGED, APPROVED]) & pl.col("distance").is_not_null()
    )
    killer = batch.filter(is_kill).select(
        "k",
        "scope",
        "combined",
        "at",
        pl.col("killer").alias("pid"),
        pl.lit(1, pl.Int64).alias("kills"),
        *(pl.lit(0, pl.Int64).alias(c) for c in _COUNTS[1:]),
        pl.when(record).then(pl.col("distance")).alias("best"),
        pl.col("weapon").alias("best_weapon"),
        pl.col("victim").alias("best_victim"),
        pl.lit(True).alias("is_kill"),
    )
    victim = batch.select(
        "k",
        "scope",
        "combined",
        "at",
        pl.col("victim").alias("pid"),
        pl.lit(0, pl.Int64).alias("kills"),
        *(
            (kind.is_in(codes) if isinstance(codes, list) else kind == codes)
            .cast(pl.Int64)
            .alias(name)
            for name, codes in zip(
                _COUNTS[1:],
                (
                    [KILL, VEHICLE_KILL],
                    S_RELOCATION,
                    S_FALLING,
                    S_VEHICLE,
                    S_OTHER,
                    ENVIRONMENTAL,
                    UNKNOWN,
                ),
                strict=True,
            )
        ),
        pl.lit(None, pl.Float64).alias("best"),
        pl.lit(None, pl.String).alias("best_weapon"),
        pl.lit(None, pl.Int64).alias("best_victim"),
        pl.lit(False).alias("is_kill"),
    )
    both = pl.concat([killer, victim])
    # the combined copy only while the guild has several servers (null otherwise: one server's
    # rows ARE the combined ones, and reads use them, which halves an import's writes)
    combined = both.filter(pl.col("combined").is_not_null())
    return pl.concat([both.drop("combined"), combined.drop("scope").rename({"combined": "scope"})])


def _bucket_ids(con: sqlite3.Connection, keys: pl.DataFrame) -> pl.DataFrame:
    """Map (tz, grain, start) to bucket ids, creating the missing ones."""
    rows = keys.unique().rows()
    con.executemany("INSERT OR IGNORE INTO buckets(tz, grain, start) VALUES (?, ?, ?)", rows)
    found = [
        con.execute(
            "SELECT bid FROM buckets WHERE tz = ? AND grain = ? AND start = ?", row
        ).fetchone()[0]
        for row in rows
    ]
    return pl.DataFrame(
        {
            "tz": [r[0] for r in rows],
            "grain": [r[1] for r in rows],
            "start": [r[2] for r in rows],
            "bid": found,
        },
        schema={"tz": pl.String, "grain": pl.Int32, "start": pl.Int32, "bid": pl.Int64},
    )


def with_buckets(con: sqlite3.Connection, rows: pl.DataFrame, zones: list[Zone]) -> pl.DataFrame:
    """``rows`` once for bucket 0 and once per zone and grain whose window is not over yet
    (``Zone.horizon``), with a ``bid`` column."""
    out = [rows.with_columns(bid=pl.lit(0, pl.Int64))]
    for tz, horizon in zones:
        recent = rows.filter(pl.col("at") >= horizon_epoch(tz, horizon))
        if recent.height == 0:
            continue
        starts = period_starts(pl.col("at"), tz)
        for grain in GRAINS:
            keyed = recent.with_columns(
                tz=pl.lit(tz), grain=pl.lit(grain, pl.Int32), start=starts[grain].cast(pl.Int32)
            ).filter(pl.col("start") >= horizon[grain])
            if keyed.height == 0:
                continue
            ids = _bucket_ids(con, keyed.select("tz", "grain", "start"))
            out.append(keyed.join(ids, on=["tz", "grain", "start"]).drop("tz", "grain", "start"))
    return pl.concat(out, how="diagonal_relaxed")


def apply(
    con: sqlite3.Connection,
    batch: pl.DataFrame,
    zones: list[Zone],
    pairs: PairTally | None = None,
) -> None:
    """Add a batch of new events to every derived table (in the caller's transaction). With
    ``pairs``, the batch's nemesis/prey counts go there, for the caller to write once per
    transaction (see ``PairTally``)."""
    if batch.height == 0:
        return
    rows = sides(batch)
    rows = streak_values(con, rows)  # adds streak_at (kill rows), streak_end (last row per pid)
    rows = with_buckets(con, rows, zones)
    keys = ["scope", "bid", "pid"]
    lazy = rows.lazy()
    # each group's record: the longest kill, the earliest of equal ones (one sort, no per-group)
    records = (
        lazy.filter(pl.col("best").is_not_null())
        .sort(["best", "at"], descending=[True, False])
        .group_by(keys)
        .agg(
            pl.col("best").first(),
            pl.col("best_weapon").first(),
            pl.col("best_victim").first(),
            pl.col("at").first().alias("best_at"),
        )
    )
    grouped = (
        lazy.group_by(keys)
        .agg(
            *(pl.col(c).sum() for c in _COUNTS),
            pl.col("streak_end").drop_nulls().last(),
            pl.col("streak_at").max().fill_null(0).alias("best_streak"),
            pl.col("at").min().alias("first_at"),
            pl.col("at").max().alias("last_at"),
        )
        .join(records, on=keys, how="left")
        .collect()
    )
    grouped = grouped.with_columns(
        pl.when(pl.col("best").is_not_null()).then(pl.col("best_at")).alias("best_at"),
        pl.when(pl.col("bid") == 0).then(pl.col("streak_end")).otherwise(0).alias("streak_end"),
    ).sort(keys)
    con.executemany(
        _UPSERT_STAT,
        grouped.select(
            "scope",
            "bid",
            "pid",
            *_COUNTS,
            "best",
            "best_weapon",
            "best_victim",
            "best_at",
            "streak_end",
            "best_streak",
            "first_at",
            "last_at",
        ).iter_rows(),
    )
    _weapons(con, rows.filter(pl.col("is_kill")).rename({"best_weapon": "weapon"}))
    tally = PairTally() if pairs is None else pairs
    tally.add(con, pair_counts(batch))
    if pairs is None:
        tally.write(con)


def _weapons(con: sqlite3.Connection, kills: pl.DataFrame) -> None:
    per_player = (
        kills.filter(pl.col("bid") == 0)
        .group_by("scope", "pid", "weapon")
        .len()
        .sort("scope", "pid", "weapon")
    )
    con.executemany(
        "INSERT INTO pweapons VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
        " kills = kills + excluded.kills",
        per_player.iter_rows(),
    )
    totals = kills.group_by("scope", "bid", "weapon").len().sort("scope", "bid", "weapon")
    con.executemany(
        "INSERT INTO weapons VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET"
        " kills = kills + excluded.kills",
        totals.iter_rows(),
    )


def pair_counts(batch: pl.DataFrame) -> pl.DataFrame:
    """The batch's kills per (scope, killer, victim), in both scopes."""
    kills = batch.filter(pl.col("kind").is_in([KILL, VEHICLE_KILL]))
    return (
        pl.concat(
            [
                kills.select("scope", "killer", "victim"),
                kills.filter(pl.col("combined").is_not_null()).select(
                    pl.col("combined").alias("scope"), "killer", "victim"
                ),
            ]
        )
        .group_by("scope", "killer", "victim")
        .len()
    )


PAIR_ROWS = 262_144  # pair counts held before a PairTally writes them (~10 MB)


class PairTally:
    """Pair counts of one transaction's batches, written once at its end (or when they grow
    past ``limit`` rows, so a rebuild of millions of events stays small in memory). Every kill
    bumps a pair, so this is an import's costliest derived write: summing the batches first
    writes each pair once, and key order keeps the B-tree walk on the pages it just touched."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = PAIR_ROWS if limit is None else limit
        self.parts: list[pl.DataFrame] = []

    def add(self, con: sqlite3.Connection, counted: pl.DataFrame) -> None:
        self.parts.append(counted)
        if sum(part.height for part in self.parts) > self.limit:
            self.write(con)

    def write(self, con: sqlite3.Connection) -> None:
        if not self.parts:
            return
        counted = pl.concat(self.parts)
        if len(self.parts) > 1:
            counted = counted.group_by("scope", "killer", "victim").agg(pl.col("len").sum())
        self.parts = []
        con.executemany(
            "INSERT INTO pairs VALUES (?, ?, ?, ?) ON CONFLICT DO UPDATE SET n = n + excluded.n",
            counted.sort("scope", "killer", "victim").iter_rows(),
        )
