"""Opening a database: pragmas, then every migration from its version to the current one.

Each step runs in one transaction, so a crash mid-migration leaves the old version intact.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import polars as pl

from . import schema

CURRENT = 4


def connect(path: str | Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    con.execute("PRAGMA temp_store = MEMORY")
    con.execute("PRAGMA cache_size = -32768")  # 32 MiB
    con.execute("PRAGMA busy_timeout = 10000")
    return con


def version(con: sqlite3.Connection) -> int:
    exists = con.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        return 0
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    return row[0] or 0


def migrate(con: sqlite3.Connection) -> int:
    """Bring the database to :data:`CURRENT`; returns the version it had."""
    found = version(con)
    if found > CURRENT:
        raise RuntimeError(f"stats database has schema {found}, newer than this cog's {CURRENT}")
    if found == 0:
        con.execute("BEGIN IMMEDIATE")
        for statement in _statements(schema.V4):
            con.execute(statement)
        con.execute("INSERT INTO schema_version VALUES (?)", (CURRENT,))
        con.execute("COMMIT")
        return found
    if found == 1:
        _v1_to_current(con)
        return found
    if found == 2:
        _v2_to_v3(con)
    if found <= 3:
        _v3_to_v4(con)
    return found


def _statements(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


@contextlib.contextmanager
def _step(con: sqlite3.Connection, to: int) -> Iterator[None]:
    """One migration step in one transaction, ending at version ``to`` (or rolled back)."""
    con.execute("BEGIN IMMEDIATE")
    try:
        yield
        con.execute("DELETE FROM schema_version")
        con.execute("INSERT INTO schema_version VALUES (?)", (to,))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise


def _v1_to_current(con: sqlite3.Connection) -> None:
    """Version 1 kept one wide events table with text ids; move its events and cursors into
    today's tables (same ids, so nothing is counted twice later) and derive aggregates."""
    from .ids import key_expr
    from .ingest import scope_of, store_frame, zones_of

    with _step(con, CURRENT):
        con.execute("ALTER TABLE events RENAME TO events_v1")
        con.execute("ALTER TABLE cursors RENAME TO cursors_v1")
        for statement in _statements(schema.V4):
            con.execute(statement)
        targets = con.execute("SELECT DISTINCT guild_id, server FROM events_v1").fetchall()
        targets += con.execute("SELECT DISTINCT guild_id, server FROM cursors_v1").fetchall()
        for guild, server in sorted(set(targets)):
            sc = scope_of(con, guild, server)
            rows = con.execute(
                "SELECT id, at, killer, killer_id, victim, victim_id, cause, distance, kind"
                " FROM events_v1 WHERE guild_id = ? AND server = ? ORDER BY at, id",
                (guild, server),
            ).fetchall()
            frame = pl.DataFrame(
                rows,
                schema={
                    "id": pl.String,
                    "at": pl.Int64,
                    "killer": pl.String,
                    "killer_id": pl.String,
                    "victim": pl.String,
                    "victim_id": pl.String,
                    "cause": pl.String,
                    "distance": pl.Float64,
                    "kind": pl.String,
                },
                orient="row",
            ).with_columns(
                at=pl.from_epoch("at", time_unit="s"),
                k=key_expr(pl.col("id")),
                killer_platform=pl.lit(None, pl.String),
                victim_platform=pl.lit(None, pl.String),
            )
            store_frame(con, sc, frame, 1500.0, zones_of(con, guild))
            con.execute(
                "INSERT INTO cursors SELECT ?, file, offset FROM cursors_v1"
                " WHERE guild_id = ? AND server = ?",
                (sc.scope, guild, server),
            )
        con.execute("DROP TABLE events_v1")
        con.execute("DROP TABLE cursors_v1")


def _v2_to_v3(con: sqlite3.Connection) -> None:
    """Version 3 drops ``n`` from the victim-side pairs index (see ``schema.V3``)."""
    with _step(con, 3):
        con.execute("DROP INDEX pairs_victim")
        con.execute(schema.V3_PAIRS_INDEX)


def _v3_to_v4(con: sqlite3.Connection) -> None:
    """Version 4 keys events and flags by (scope, at, k): copy both in that order."""
    with _step(con, 4):
        con.execute(schema.V4_FLAGS.replace("TABLE flags", "TABLE flags_v4"))
        con.execute(
            "INSERT INTO flags_v4 SELECT e.scope, e.at, f.k, f.id, f.guild, f.server, f.killer,"
            " f.victim FROM flags AS f JOIN events AS e ON e.k = f.k"
        )
        con.execute("DROP TABLE flags")
        con.execute("ALTER TABLE flags_v4 RENAME TO flags")
        con.execute("CREATE INDEX flags_guild ON flags(guild)")
        con.execute(schema.V4_EVENTS.replace("TABLE events", "TABLE events_v4"))
        columns = schema.EVENT_COLUMNS
        con.execute(
            f"INSERT INTO events_v4({columns}) SELECT {columns} FROM events"
            " ORDER BY scope, at, k"
        )
        con.execute("DROP TABLE events")
        con.execute("ALTER TABLE events_v4 RENAME TO events")
