"""The SQLite schema, by version. Version 1 is the first layout (one wide events table, text
ids, no aggregates); version 2 keys events by an integer taken from the event id, names players
by platform id, keeps seasons, and derives the aggregate tables; version 3 is version 2 with a
leaner pairs index; version 4 keeps events in time order per server. See ``migrations``."""

from __future__ import annotations

V1 = """
CREATE TABLE schema_version(version INTEGER NOT NULL);
CREATE TABLE events(
    id TEXT PRIMARY KEY, guild_id INTEGER NOT NULL, server TEXT NOT NULL, at INTEGER NOT NULL,
    killer TEXT, killer_id TEXT, victim TEXT, victim_id TEXT, cause TEXT, distance REAL,
    kind TEXT NOT NULL);
CREATE TABLE cursors(
    guild_id INTEGER NOT NULL, server TEXT NOT NULL, file TEXT NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY(guild_id, server, file));
"""

# Kinds of an event in the store (events.kind).
KILL, VEHICLE_KILL, S_RELOCATION, S_FALLING, S_VEHICLE, S_OTHER, ENVIRONMENTAL, UNKNOWN = range(8)
# events.flag
NOT_FLAGGED, PENDING, APPROVED, REJECTED = range(4)

KD = "(CASE WHEN deaths = 0 THEN kills ELSE kills * 1.0 / deaths END)"

V2 = f"""
CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL);
-- a scope is one server of a guild, or (server = '') the guild's servers combined
CREATE TABLE scopes(
    scope INTEGER PRIMARY KEY, guild INTEGER NOT NULL, server TEXT NOT NULL,
    season INTEGER NOT NULL DEFAULT 1, UNIQUE(guild, server));
CREATE TABLE seasons(
    scope INTEGER NOT NULL, season INTEGER NOT NULL, started INTEGER NOT NULL,
    PRIMARY KEY(scope, season));
CREATE TABLE players(
    pid INTEGER PRIMARY KEY, guild INTEGER NOT NULL, player_id TEXT NOT NULL,
    name TEXT NOT NULL, name_at INTEGER NOT NULL, UNIQUE(guild, player_id));
CREATE TABLE names(
    pid INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY(pid, name)) WITHOUT ROWID;
-- the source of truth; k = first 60 bits of the event id (collision odds ~4e-5 at 10M events)
CREATE TABLE events(
    k INTEGER PRIMARY KEY, scope INTEGER NOT NULL, season INTEGER NOT NULL,
    at INTEGER NOT NULL, killer INTEGER, victim INTEGER NOT NULL, weapon TEXT NOT NULL,
    distance REAL, kind INTEGER NOT NULL, flag INTEGER NOT NULL);
CREATE TABLE flags(
    k INTEGER PRIMARY KEY, id TEXT NOT NULL, guild INTEGER NOT NULL, server TEXT NOT NULL,
    killer TEXT NOT NULL, victim TEXT NOT NULL);
CREATE INDEX flags_guild ON flags(guild);
CREATE TABLE cursors(
    scope INTEGER NOT NULL, file TEXT NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY(scope, file)) WITHOUT ROWID;
-- derived: bucket 0 = the season so far; others = (zone, grain, first local day YYYYMMDD)
CREATE TABLE buckets(
    bid INTEGER PRIMARY KEY, tz TEXT NOT NULL, grain INTEGER NOT NULL, start INTEGER NOT NULL,
    UNIQUE(tz, grain, start));
CREATE TABLE zones(guild INTEGER NOT NULL, tz TEXT NOT NULL, PRIMARY KEY(guild, tz));
CREATE TABLE stat(
    scope INTEGER NOT NULL, bid INTEGER NOT NULL, pid INTEGER NOT NULL,
    kills INTEGER NOT NULL DEFAULT 0, deaths INTEGER NOT NULL DEFAULT 0,
    s_relocation INTEGER NOT NULL DEFAULT 0, s_falling INTEGER NOT NULL DEFAULT 0,
    s_vehicle INTEGER NOT NULL DEFAULT 0, s_other INTEGER NOT NULL DEFAULT 0,
    environmental INTEGER NOT NULL DEFAULT 0, unknown INTEGER NOT NULL DEFAULT 0,
    best REAL, best_weapon TEXT, best_victim INTEGER, best_at INTEGER,
    streak INTEGER NOT NULL DEFAULT 0, best_streak INTEGER NOT NULL DEFAULT 0,
    first_at INTEGER, last_at INTEGER,
    PRIMARY KEY(scope, bid, pid)) WITHOUT ROWID;
-- one index per board, over every bucket: a page of any board and period walks ~limit rows
CREATE INDEX stat_kills ON stat(scope, bid, kills DESC, pid);
CREATE INDEX stat_deaths ON stat(scope, bid, deaths DESC, pid);
CREATE INDEX stat_kd ON stat(scope, bid, {KD} DESC, pid);
CREATE INDEX stat_best ON stat(scope, bid, best DESC, pid);
CREATE INDEX stat_streak ON stat(scope, bid, best_streak DESC, pid);
CREATE TABLE pairs(
    scope INTEGER NOT NULL, killer INTEGER NOT NULL, victim INTEGER NOT NULL,
    n INTEGER NOT NULL, PRIMARY KEY(scope, killer, victim)) WITHOUT ROWID;
CREATE INDEX pairs_victim ON pairs(scope, victim, n DESC, killer);
CREATE TABLE pweapons(
    scope INTEGER NOT NULL, pid INTEGER NOT NULL, weapon TEXT NOT NULL, kills INTEGER NOT NULL,
    PRIMARY KEY(scope, pid, weapon)) WITHOUT ROWID;
CREATE TABLE weapons(
    scope INTEGER NOT NULL, bid INTEGER NOT NULL, weapon TEXT NOT NULL, kills INTEGER NOT NULL,
    PRIMARY KEY(scope, bid, weapon)) WITHOUT ROWID;
-- players whose streaks need a recompute (their events arrived out of order)
CREATE TABLE dirty(scope INTEGER NOT NULL, pid INTEGER NOT NULL, PRIMARY KEY(scope, pid))
    WITHOUT ROWID;
CREATE TABLE podiums(
    scope INTEGER NOT NULL, season INTEGER NOT NULL, board TEXT NOT NULL, rank INTEGER NOT NULL,
    player_id TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, detail TEXT NOT NULL,
    PRIMARY KEY(scope, season, board, rank));
"""

# Version 3: the victim-side index of pairs leaves out the count. Every kill of an import bumps
# one pair's n, and an index holding n had to move an entry each time (30% of an import's time);
# the nemesis query sorts a victim's killers by n and name anyway.
V3_PAIRS_INDEX = "CREATE INDEX pairs_victim ON pairs(scope, victim)"
V3 = V2.replace(
    "CREATE INDEX pairs_victim ON pairs(scope, victim, n DESC, killer)", V3_PAIRS_INDEX
)
assert V3 != V2

# Version 4: events (and flags) are keyed by (scope, at, k), in time order per server, not by
# k alone. k is a hash: each imported kill landed on a random page of a table that outgrows
# SQLite's cache, so every row of a batch dirtied a page of its own (an import slowed to half
# its speed at 10M events); in time order a batch appends to a few pages. An event's id fixes
# its time, so (scope, at, k) finds a known event as exactly as k did, and no longer across
# servers or guilds.
_V3_EVENTS = """CREATE TABLE events(
    k INTEGER PRIMARY KEY, scope INTEGER NOT NULL, season INTEGER NOT NULL,
    at INTEGER NOT NULL, killer INTEGER, victim INTEGER NOT NULL, weapon TEXT NOT NULL,
    distance REAL, kind INTEGER NOT NULL, flag INTEGER NOT NULL);
CREATE TABLE flags(
    k INTEGER PRIMARY KEY, id TEXT NOT NULL, guild INTEGER NOT NULL, server TEXT NOT NULL,
    killer TEXT NOT NULL, victim TEXT NOT NULL);"""
V4_EVENTS = """CREATE TABLE events(
    scope INTEGER NOT NULL, at INTEGER NOT NULL, k INTEGER NOT NULL, season INTEGER NOT NULL,
    killer INTEGER, victim INTEGER NOT NULL, weapon TEXT NOT NULL, distance REAL,
    kind INTEGER NOT NULL, flag INTEGER NOT NULL, PRIMARY KEY(scope, at, k)) WITHOUT ROWID"""
V4_FLAGS = """CREATE TABLE flags(
    scope INTEGER NOT NULL, at INTEGER NOT NULL, k INTEGER NOT NULL, id TEXT NOT NULL,
    guild INTEGER NOT NULL, server TEXT NOT NULL, killer TEXT NOT NULL, victim TEXT NOT NULL,
    PRIMARY KEY(scope, at, k)) WITHOUT ROWID"""
V4 = V3.replace(_V3_EVENTS, f"{V4_EVENTS};\n{V4_FLAGS};").replace(
    "(collision odds ~4e-5 at 10M events)", "(keyed with its server and time)"
)
assert V4 != V3
EVENT_COLUMNS = "scope, at, k, season, killer, victim, weapon, distance, kind, flag"

DERIVED = ("stat", "pairs", "pweapons", "weapons", "dirty")
