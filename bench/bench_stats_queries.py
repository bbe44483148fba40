"""Benchmark stats reads at scale: ``top`` (every board and period), ``player`` and ``search``
at 100,000 players and 10,000,000 kills.

Run from the repository root (the first run builds the database, a few minutes; later runs
reuse it from the temp folder)::

    .venv/bin/python bench/bench_stats_queries.py [--players 100000] [--kills 10000000]

The database is made by the store itself (schema, indexes) and then filled with a bulk SQL
path that writes the derived tables the reads use, shaped as 10M kills over a year would leave
them: every player's season row in both scopes (the server and the guild's servers combined),
this month's/week's/today's rows for the players active then (70%/40%/10%), ~100 distinct
victims per player in the nemesis/prey table (10M pairs), 8 weapons per player, and one or two
names per player. The events table stays empty: no read touches it. Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from taskcog.pipeline.stats import StatsStore  # noqa: E402
from taskcog.pipeline.stats.periods import DAY, MONTH, WEEK, period_start  # noqa: E402

NOW = dt.datetime(2025, 6, 18, 12, tzinfo=dt.UTC)
WEAPONS = ("MR5", "IZH-43", "BB-19", "AK-SU", "UAG", "AK-SM", "Skar", "Mosin")


def build(path: Path, players: int, kills: int) -> None:
    StatsStore(path).close()  # the real schema
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = OFF")
    con.execute("BEGIN")
    con.execute("INSERT INTO scopes VALUES (1, 1, 'main', 1), (2, 1, '', 1)")
    seq = (
        f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {players} - 1)"
    )
    con.execute(
        f"{seq} INSERT INTO players SELECT i + 1, 1, printf('0002%028x', i),"
        " printf('Survivor_%06x', (i * 2654435761) % 16777216), 0 FROM n"
    )
    con.execute("INSERT INTO names SELECT pid, name FROM players")
    con.execute(
        "INSERT INTO names SELECT pid, printf('Old %s', name) FROM players WHERE pid % 3 = 0"
    )
    per = kills // players
    stat = (
        "INSERT INTO stat(scope, bid, pid, kills, deaths, s_relocation, s_falling, best,"
        " best_weapon, best_victim, best_at, streak, best_streak, first_at, last_at)"
        " SELECT {scope}, {bid}, pid, abs(random() % {mod}) + 1,"
        " abs(random() % {mod}), abs(random() % 20), abs(random() % 5),"
        " abs(random() % 1000), 'MR5', 1 + abs(random() % {players}), 1735689600,"
        " abs(random() % 10), abs(random() % 40), 1735689600, 1750000000"
        " FROM players WHERE abs(random() % 1000) < {keep}"
    )
    buckets = [(0, 1.0, 1000)]
    for grain, share, keep in ((MONTH, 1 / 12, 700), (WEEK, 1 / 52, 400), (DAY, 1 / 365, 100)):
        bid = con.execute(
            "INSERT INTO buckets(tz, grain, start) VALUES ('UTC', ?, ?)",
            (grain, period_start(grain, "UTC", NOW)),
        ).lastrowid
        buckets.append((bid, share, keep))
    con.execute("INSERT INTO zones VALUES (1, 'UTC')")
    for scope in (1, 2):
        for bid, share, keep in buckets:
            con.execute(
                stat.format(
                    scope=scope,
                    bid=bid,
                    mod=max(2, int(per * 2 * share)),
                    keep=keep,
                    players=players,
                )
            )
            for weapon in WEAPONS:
                con.execute(
                    "INSERT INTO weapons VALUES (?, ?, ?, ?)",
                    (scope, bid, weapon, random.randrange(kills // 8)),
                )
        con.execute(
            "INSERT INTO pweapons SELECT ?, pid, w.value, abs(random() % 30) + 1"
            " FROM players, json_each(?) AS w",
            (scope, '["' + '","'.join(WEAPONS) + '"]'),
        )
    victims = (
        f"WITH RECURSIVE v(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM v WHERE j < {per} - 1)"
    )
    con.execute(
        f"{victims} INSERT INTO pairs SELECT 2, pid, 1 + (pid * 7919 + j * 104729) % {players},"
        " 1 + abs(random() % 3) FROM players, v WHERE 1 + (pid * 7919 + j * 104729) % "
        f"{players} != pid ORDER BY 2, 3"
    )
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()


def timed(fn, runs: int) -> tuple[float, float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], times[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--players", type=int, default=100_000)
    parser.add_argument("--kills", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    path = Path(tempfile.gettempdir()) / f"taskcog_stats_{args.players}_{args.kills}.db"
    if not path.exists():
        start = time.perf_counter()
        build(path.with_suffix(".tmp"), args.players, args.kills)
        path.with_suffix(".tmp").rename(path)
        print(f"built {path} in {time.perf_counter() - start:.0f} s")
    store = StatsStore(path)
    con = sqlite3.connect(path)
    pairs = con.execute("SELECT count(*) FROM pairs").fetchone()[0]
    size = path.stat().st_size / 2**20
    print(f"{args.players:,} players, {pairs:,} nemesis/prey pairs, {size:.0f} MiB\n")
    rng = random.Random(3)
    ids = [f"0002{rng.randrange(args.players):028x}" for _ in range(args.runs)]
    names = [row[0] for row in con.execute("SELECT name FROM players ORDER BY random() LIMIT 50")]
    cases = [
        (f"top {b} all", lambda b=b: store.top(1, b, "all", now=NOW))
        for b in ("kills", "deaths", "kd", "distance", "streak", "weapon")
    ]
    cases += [
        (f"top kills {p}", lambda p=p: store.top(1, "kills", p, now=NOW))
        for p in ("month", "week", "today")
    ]
    cases += [
        ("top kd month", lambda: store.top(1, "kd", "month", now=NOW)),
        (
            "top kills all, page 3 (server)",
            lambda: store.top(1, "kills", "all", server="main", offset=20, now=NOW),
        ),
        ("count_ranked kills all", lambda: store.count_ranked(1, "kills", "all", now=NOW)),
        ("player (stats embed)", lambda: store.player(1, ids[rng.randrange(len(ids))])),
        ("search exact id", lambda: store.search(1, ids[rng.randrange(len(ids))])),
        ("search name part", lambda: store.search(1, names[rng.randrange(50)][9:14])),
        (
            "search typo (fuzzy)",
            lambda: store.search(1, "Survivr_" + names[rng.randrange(50)][9:13] + "x"),
        ),
    ]
    store.search(1, "warm-up")  # loads the in-memory name index once
    print(f"| query ({args.runs} runs) | median ms | p95 ms | max ms | p95 <= 20 ms? |")
    print("|---|---|---|---|---|")
    for label, fn in cases:
        median, p95, worst = timed(fn, args.runs)
        print(
            f"| {label} | {median:.2f} | {p95:.2f} | {worst:.2f} | "
            f"{'yes' if p95 <= 20 else '**no**'} |"
        )


if __name__ == "__main__":
    main()
