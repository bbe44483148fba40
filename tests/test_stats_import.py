"""History imports: totals equal an independent count of the lines, over many generated files
and the real ones; cancel, crash and resume, live-then-import and two imports all end with the
same totals; a version-1 database is upgraded and keeps its data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from taskcog.engine.pool import Progress
from taskcog.pipeline.parsers.deadside import parse_kills
from taskcog.pipeline.stats import StatsStore, aggregates, schema
from taskcog.pipeline.stats import store as store_module
from taskcog.pipeline.stats.migrations import CURRENT, _statements
from taskcog.pipeline.stats.schema import V1, V2
from taskcog.pipeline.stats.synthetic import write_logs

ROOT = Path(__file__).resolve().parents[1]
REAL = (
    next((p for p in (ROOT.parent / "shared", ROOT.parent.parent / "shared") if p.is_dir()), ROOT)
    / "data"
    / "deadside"
)


def independent_count(paths: list[Path]) -> dict[str, int]:
    """Kills, deaths and suicides by plain string splitting, each distinct line once."""
    seen: set[str] = set()
    counts = {"kills": 0, "deaths": 0, "suicides": 0, "lines": 0}
    for path in paths:
        for line in path.read_bytes().decode("utf-8-sig").splitlines():
            fields = line.split(";")
            if len(fields) not in (8, 10) or fields[-1] or line in seen:
                continue
            if fields[6] and not fields[6].replace(".", "", 1).isdigit():
                continue  # a malformed distance
            seen.add(line)
            killer, victim = fields[2], fields[4]
            if killer in ("", "**"):
                continue
            if killer == victim:
                counts["suicides"] += 1
            else:
                counts["kills"] += 1
                counts["deaths"] += 1
    counts["lines"] = len(seen)
    return counts


def totals(store: StatsStore, guild: int = 1, server: str | None = None) -> dict[str, int]:
    n = store.count_ranked(guild, "kills", "all", server=server)
    kills = sum(r.value for r in store.top(guild, "kills", "all", server=server, limit=n))
    n = store.count_ranked(guild, "deaths", "all", server=server)
    deaths = sum(r.value for r in store.top(guild, "deaths", "all", server=server, limit=n))
    return {"kills": int(kills), "deaths": int(deaths)}


def snapshot(store: StatsStore) -> tuple:
    """Everything a user can see, to compare two stores."""
    boards = tuple(
        tuple(store.top(1, board, period, limit=50, tz="Europe/Berlin"))
        for board in ("kills", "deaths", "kd", "distance", "streak", "weapon")
        for period in ("all", "month")
    )
    players = tuple(store.player(1, f"0002{i:028x}") for i in range(0, 60, 7))
    return boards, players


def import_fast(store: StatsStore, paths: list[Path]) -> int:
    """A reference import: every file in one import_many call."""
    return store.import_many(1, "main", [(p.name, p.read_bytes(), 0, True) for p in paths]).new


def import_all(store: StatsStore, paths: list[Path], server: str = "main") -> int:
    new = 0
    for path in paths:
        data = path.read_bytes()
        cursor = store.import_cursor(1, server, path.name)
        result = store.import_data(1, server, path.name, data[cursor:], offset=cursor, final=True)
        new += result.new
    return new


@pytest.fixture(scope="module")
def logs(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("logs")
    return write_logs(folder, 16, 300, players=60, repeat=15)


def test_many_files_total_the_independent_count(tmp_path, logs) -> None:
    store = StatsStore(tmp_path / "s.db")
    expected = independent_count(logs)
    assert import_all(store, logs) == expected["lines"]
    assert totals(store) == {"kills": expected["kills"], "deaths": expected["deaths"]}
    assert import_all(store, logs) == 0  # a second import counts nothing
    for path in logs[:3]:  # and starts where the first stopped
        assert store.import_cursor(1, "main", path.name) == path.stat().st_size
    suicides = sum(sum(store.player(1, f"0002{i:028x}").suicides.values()) for i in range(60))
    assert suicides == expected["suicides"]


def test_import_many_equals_file_by_file_and_resumes(tmp_path, logs, monkeypatch) -> None:
    one = StatsStore(tmp_path / "one.db")
    import_fast(one, logs)
    monkeypatch.setattr(store_module, "BATCH_BYTES", 40_000)  # a few files per batch
    many = StatsStore(tmp_path / "many.db")
    progress = Progress()
    reports = []

    def stop_after_two(done, total=None, note=""):
        reports.append(done)
        if len(reports) == 2:
            progress.cancelled = True

    progress._callback, progress._post = stop_after_two, lambda deliver: deliver()
    chunks = [(p.name, p.read_bytes(), 0, True) for p in logs]
    first = many.import_many(1, "main", chunks, progress=progress)
    assert reports == sorted(reports) and 0 < reports[-1] < sum(len(c[1]) for c in chunks)
    assert 0 < first.new < sum(1 for _ in logs) * 300
    chunks = [
        (p.name, p.read_bytes()[(c := many.import_cursor(1, "main", p.name)) :], c, True)
        for p in logs
    ]
    second = many.import_many(1, "main", chunks)
    assert first.new + second.new == independent_count(logs)["lines"]
    assert snapshot(many) == snapshot(one)


@pytest.mark.skipif(not REAL.is_dir(), reason="real Deadside logs are not on this machine")
def test_real_files_total_the_independent_count(tmp_path) -> None:
    paths = sorted(REAL.glob("*.csv"))
    store = StatsStore(tmp_path / "s.db")
    expected = independent_count(paths)
    assert import_all(store, paths) == expected["lines"]
    assert totals(store) == {"kills": expected["kills"], "deaths": expected["deaths"]}


def test_cancel_then_resume_equals_one_run(tmp_path, logs, monkeypatch) -> None:
    logs = logs[:6]
    monkeypatch.setattr(store_module, "BATCH_BYTES", 8192)
    one = StatsStore(tmp_path / "one.db")
    import_fast(one, logs)
    resumed = StatsStore(tmp_path / "resumed.db")
    progress = Progress()
    calls = 0

    def cancel_soon(done, total=None, note=""):
        nonlocal calls
        calls += 1
        Progress.__call__(progress, done, total, note)
        if calls == 2:
            progress.cancelled = True

    data = logs[0].read_bytes()
    guard = type("Cancelling", (), {"__call__": staticmethod(cancel_soon)})
    guard.cancelled = property(lambda self: progress.cancelled)
    first = resumed.import_data(
        1, "main", logs[0].name, data, offset=0, final=True, progress=guard()
    )
    assert 0 < first.consumed < len(data)
    assert resumed.import_cursor(1, "main", logs[0].name) == first.consumed
    import_all(resumed, logs)
    assert snapshot(resumed) == snapshot(one)


def test_a_crash_mid_import_rolls_back_the_batch_and_its_cursor(tmp_path, logs, monkeypatch):
    monkeypatch.setattr(store_module, "BATCH_BYTES", 8192)
    logs = logs[:6]
    one = StatsStore(tmp_path / "one.db")
    import_fast(one, logs[:5])
    crashed = StatsStore(tmp_path / "crashed.db")
    real_apply, calls = aggregates.apply, 0

    def failing(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == 4:
            raise RuntimeError("power cut")
        return real_apply(*args, **kwargs)

    monkeypatch.setattr(aggregates, "apply", failing)
    with pytest.raises(RuntimeError):
        import_all(crashed, logs[:5])
    monkeypatch.setattr(aggregates, "apply", real_apply)
    assert 0 < crashed.import_cursor(1, "main", logs[0].name) < logs[0].stat().st_size
    import_all(crashed, logs[:5])
    assert snapshot(crashed) == snapshot(one)


def test_an_import_after_the_live_feed_counts_nothing_twice(tmp_path, logs) -> None:
    one = StatsStore(tmp_path / "one.db")
    import_fast(one, logs)
    live = StatsStore(tmp_path / "live.db")
    for path in logs[-3:]:  # the live feed saw the last days, in small polls
        events = parse_kills(path.read_bytes(), final=True).events
        for i in range(0, len(events), 50):
            live.add_events(1, "main", events[i : i + 50])
    import_all(live, logs)
    assert snapshot(live) == snapshot(one)
    assert totals(live) == totals(one)


def test_a_version_1_database_is_upgraded_and_keeps_its_data(tmp_path, logs) -> None:
    events = parse_kills(logs[0].read_bytes(), final=True).events
    path = tmp_path / "v1.db"
    con = sqlite3.connect(path)
    con.executescript(V1)
    con.execute("INSERT INTO schema_version VALUES (1)")
    con.executemany(
        "INSERT INTO events VALUES (?, 1, 'main', ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                e.id,
                int(e.at.timestamp()),
                e.killer,
                e.killer_id,
                e.victim,
                e.victim_id,
                e.cause,
                e.distance,
                e.kind,
            )
            for e in events
        ],
    )
    con.execute("INSERT INTO cursors VALUES (1, 'main', ?, ?)", (logs[0].name, 1234))
    con.commit()
    con.close()
    upgraded = StatsStore(path)
    assert upgraded.SCHEMA_VERSION == CURRENT == 4
    assert upgraded.import_cursor(1, "main", logs[0].name) == 1234
    fresh = StatsStore(tmp_path / "fresh.db")
    fresh.add_events(1, "main", events)
    assert totals(upgraded) == totals(fresh) and totals(fresh)["kills"] > 0
    assert upgraded.player(1, events[0].victim_id) == fresh.player(1, events[0].victim_id)
    # the same events arriving again (same ids) count nothing
    assert upgraded.add_events(1, "main", events).new == 0
    upgraded.close()
    assert version_of(path) == CURRENT


def version_of(path: Path) -> int:
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT version FROM schema_version").fetchone()[0]
    finally:
        con.close()


def pairs_index(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return [row[2] for row in con.execute("PRAGMA index_info(pairs_victim)")]
    finally:
        con.close()


def events_key(path: Path) -> list[str]:
    """The events table's primary key columns, in key order."""
    con = sqlite3.connect(path)
    try:
        rows = con.execute("PRAGMA table_info(events)").fetchall()
        return [
            name for _cid, name, _type, _nn, _default, pk in sorted(rows, key=lambda r: r[5]) if pk
        ]
    finally:
        con.close()


def empty_version_2(path: Path) -> None:
    """An empty store as version 2 created it."""
    con = sqlite3.connect(path, isolation_level=None)
    for statement in _statements(V2):
        con.execute(statement)
    con.execute("INSERT INTO schema_version VALUES (2)")
    con.close()


def test_a_version_2_database_is_upgraded_to_todays_layout(tmp_path, logs):
    """v3 drops ``n`` from the victim-side pairs index (every kill moved an entry of it); v4
    keys events by (scope, at, k) so a batch appends in time order."""
    events = parse_kills(logs[0].read_bytes(), final=True).events
    path = tmp_path / "v2.db"
    empty_version_2(path)
    assert pairs_index(path) == ["scope", "victim", "n", "killer"] and events_key(path) == ["k"]
    StatsStore(path).close()
    assert pairs_index(path) == ["scope", "victim"] and events_key(path) == ["scope", "at", "k"]
    assert version_of(path) == CURRENT
    upgraded, fresh = StatsStore(path), StatsStore(tmp_path / "fresh.db")
    assert events_key(tmp_path / "fresh.db") == ["scope", "at", "k"]
    for store in (upgraded, fresh):
        store.add_events(1, "main", events)
    victim = events[0].victim_id
    assert upgraded.player(1, victim) == fresh.player(1, victim)
    assert upgraded.player(1, victim).nemesis is not None
    upgraded.close()
    fresh.close()


def back_to(path: Path, version: int) -> None:
    """Rewrite a current store's events and flags (and pairs index) as ``version`` had them."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("BEGIN")
    con.execute("ALTER TABLE events RENAME TO events_new")
    con.execute("ALTER TABLE flags RENAME TO flags_new")
    con.execute("DROP INDEX flags_guild")
    for statement in _statements(schema._V3_EVENTS):
        con.execute(statement)
    con.execute("CREATE INDEX flags_guild ON flags(guild)")
    con.execute(
        "INSERT INTO events SELECT k, scope, season, at, killer, victim, weapon, distance,"
        " kind, flag FROM events_new"
    )
    con.execute("INSERT INTO flags SELECT k, id, guild, server, killer, victim FROM flags_new")
    con.execute("DROP TABLE events_new")
    con.execute("DROP TABLE flags_new")
    if version == 2:
        con.execute("DROP INDEX pairs_victim")
        con.execute("CREATE INDEX pairs_victim ON pairs(scope, victim, n DESC, killer)")
    con.execute("UPDATE schema_version SET version = ?", (version,))
    con.execute("COMMIT")
    con.close()


@pytest.mark.parametrize("version", [2, 3])
def test_an_older_store_with_data_and_flags_keeps_them_through_the_upgrade(
    tmp_path, logs, version
):
    events = parse_kills(logs[0].read_bytes(), final=True).events
    path = tmp_path / "old.db"
    store = StatsStore(path)
    store.add_events(1, "main", events, flag_over=100.0)  # some kills await review
    flagged = store.flags(1)
    before = (totals(store), store.player(1, events[0].victim_id), flagged)
    store.close()
    assert flagged
    back_to(path, version)
    assert events_key(path) == ["k"] and version_of(path) == version
    again = StatsStore(path)
    assert events_key(path) == ["scope", "at", "k"] and version_of(path) == CURRENT
    assert (totals(again), again.player(1, events[0].victim_id), again.flags(1)) == before
    assert again.add_events(1, "main", events, flag_over=100.0).new == 0
    assert again.review(1, flagged[0].event_id, approve=True)
    assert len(again.flags(1)) == len(flagged) - 1
    again.close()


def test_the_same_log_counts_in_each_guild_that_imports_it(tmp_path, logs) -> None:
    """Events are known per server of a guild: a second guild importing the same file (a test
    server, a shared log) gets its own counts instead of "already known"."""
    store = StatsStore(tmp_path / "s.db")
    chunks = [(logs[0].name, logs[0].read_bytes(), 0, True)]
    first = store.import_many(1, "main", chunks)
    second = store.import_many(2, "main", chunks)
    assert first.new == second.new > 0 and second.known == first.known
    assert totals(store, 2) == totals(store, 1)
    store.close()


def test_import_many_splits_files_bigger_than_a_batch(tmp_path, logs, monkeypatch) -> None:
    monkeypatch.setattr(store_module, "BATCH_BYTES", 8192)  # every file is bigger
    store = StatsStore(tmp_path / "s.db")
    reports: list[float] = []
    progress = Progress(lambda done, total, note: reports.append(done), lambda f: f())
    chunks = [(p.name, p.read_bytes(), 0, True) for p in logs[:3]]
    result = store.import_many(1, "main", chunks, progress=progress)
    assert result.new == independent_count(logs[:3])["lines"]
    assert result.consumed == sum(len(c[1]) for c in chunks)
    assert reports == sorted(reports) and reports[-1] == result.consumed
    assert [store.import_cursor(1, "main", c[0]) for c in chunks] == [len(c[1]) for c in chunks]


def test_import_parsed_equals_import_many_and_moves_the_cursors(tmp_path, logs) -> None:
    """A frame parsed elsewhere (a worker) stores the same as the bytes imported here."""
    from taskcog.pipeline.parsers.deadside import parse_kills_columns
    from taskcog.pipeline.stats.ids import with_ids

    one = StatsStore(tmp_path / "one.db")
    import_fast(one, logs)
    other = StatsStore(tmp_path / "other.db")
    new = known = 0
    for half in (logs[:8], logs[8:], logs[:4]):  # the last one re-delivers known events
        data = b"".join(p.read_bytes() for p in half)
        frame = with_ids(parse_kills_columns(data, final=True).frame)
        cursors = [(p.name, p.stat().st_size) for p in half]
        result = other.import_parsed(1, "main", frame, cursors)
        new, known = new + result.new, known + result.known
    assert new == independent_count(logs)["lines"] and known > 0
    assert other.import_cursor(1, "main", logs[3].name) == logs[3].stat().st_size
    assert snapshot(other) == snapshot(one)
    with pytest.raises(ValueError):
        other.import_parsed(1, "", frame, [])


def test_column_ids_equal_the_live_feeds_ids_on_every_fixture() -> None:
    """The import's ids (polars keys, one hash each) are the live feed's, event for event."""
    from taskcog.pipeline.parsers.deadside import parse_kills_columns
    from taskcog.pipeline.stats.ids import with_ids

    fixtures = sorted(Path(__file__).parent.joinpath("fixtures", "deadside").rglob("*.csv"))
    assert len(fixtures) > 4
    for path in fixtures:
        data = path.read_bytes()
        live = [e.id for e in parse_kills(data, final=True).events]
        frame = with_ids(parse_kills_columns(data, final=True).frame)
        assert frame.get_column("id").to_list() == live, path.name


def test_known_ids_are_found_across_lookup_chunks(tmp_path, logs, monkeypatch) -> None:
    """The dedupe against the database looks ids up in pieces; a piece boundary loses none."""
    from taskcog.pipeline.stats import ingest

    monkeypatch.setattr(ingest, "_KNOWN_CHUNK", 7)
    store = StatsStore(tmp_path / "s.db")
    first = import_fast(store, logs[:3])
    again = store.import_many(1, "main", [(p.name, p.read_bytes(), 0, True) for p in logs[:4]])
    assert first > 0 and again.known >= first  # every event of the first import is known
    assert again.new + again.known == again.lines - again.malformed
    reference = StatsStore(tmp_path / "r.db")
    import_fast(reference, logs[:4])
    assert snapshot(store) == snapshot(reference)


def test_a_failed_upgrade_step_leaves_version_2_intact(tmp_path, monkeypatch) -> None:
    path = tmp_path / "v2.db"
    empty_version_2(path)
    monkeypatch.setattr(schema, "V3_PAIRS_INDEX", "CREATE INDEX pairs_victim ON nowhere(x)")
    with pytest.raises(sqlite3.OperationalError):
        StatsStore(path)
    assert pairs_index(path) == ["scope", "victim", "n", "killer"]  # the drop rolled back
    assert version_of(path) == 2


def test_known_events_are_found_by_primary_key_probes(tmp_path, logs) -> None:
    """The dedupe lookup walks the batch and probes each (scope, at, k). The store runs no
    ANALYZE, so this is the plan it gets; one that scanned the scope's events per batch row
    made a 300k-line import run for minutes, not seconds."""
    from taskcog.pipeline.stats.ingest import KNOWN_SQL

    store = StatsStore(tmp_path / "s.db")
    store.import_many(1, "main", [(logs[0].name, logs[0].read_bytes(), 0, True)])
    plan = [row[3] for row in store._w.execute("EXPLAIN QUERY PLAN " + KNOWN_SQL, ("[]", 1))]
    assert plan[0].startswith("SCAN j"), plan
    assert plan[1] == "SEARCH e USING PRIMARY KEY (scope=? AND at=? AND k=?)", plan
    store.close()


def stored_pairs(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as con:
        return con.execute("SELECT * FROM pairs ORDER BY scope, killer, victim").fetchall()


def counted_pairs(path: Path) -> list[tuple]:
    """Nemesis/prey counts straight from the events: per server, and for the guild's servers
    combined (scope of server '')."""
    kills = f"kind IN ({schema.KILL}, {schema.VEHICLE_KILL})"
    with sqlite3.connect(path) as con:
        return con.execute(
            f"SELECT scope, killer, victim, count(*) FROM events WHERE {kills}"
            " GROUP BY 1, 2, 3 UNION ALL"
            " SELECT (SELECT scope FROM scopes WHERE server = ''), killer, victim, count(*)"
            f" FROM events WHERE {kills} GROUP BY 2, 3 ORDER BY 1, 2, 3"
        ).fetchall()


def test_pair_counts_summed_over_a_transaction_equal_the_events(
    tmp_path, logs, monkeypatch
) -> None:
    """An import sums the pair counts of a transaction's pieces before writing them (and writes
    early once they pass PAIR_ROWS); a rebuild does the same: both equal a count of events."""
    from taskcog.pipeline.stats import importer

    monkeypatch.setattr(importer, "STORE_ROWS", 300)  # many pieces per transaction
    monkeypatch.setattr(aggregates, "PAIR_ROWS", 500)  # and early writes within one
    path = tmp_path / "s.db"
    store = StatsStore(path)
    store.import_many(1, "a", [(p.name, p.read_bytes(), 0, True) for p in logs[:10]])
    store.import_many(1, "b", [(p.name, p.read_bytes(), 0, True) for p in logs[6:]])
    expected = counted_pairs(path)
    assert len({row[0] for row in expected}) == 3 and max(row[3] for row in expected) > 1
    assert stored_pairs(path) == expected
    store.rebuild(1)
    assert stored_pairs(path) == expected
    store.close()


def test_known_ids_are_probed_only_where_the_stored_times_overlap(
    tmp_path, logs, monkeypatch
) -> None:
    """An import in time order appends past the newest stored event and probes nothing (each
    day's file repeats the lines the day before left out here, which are newer); a file that
    overlaps stored times (here a re-import) is probed and deduplicated. The probe is made to
    fail, so a probe that should not run is seen."""
    from taskcog.pipeline.stats import ingest

    store = StatsStore(tmp_path / "s.db")
    real = ingest.KNOWN_SQL
    monkeypatch.setattr(ingest, "KNOWN_SQL", "SELECT no_such_function(?, ?)")
    one_by_one = sum(
        store.import_many(1, "main", [(p.name, p.read_bytes()[:-2000], 0, False)]).new
        for p in logs[:3]  # each file without its last lines: no repeat overlaps a stored time
    )
    assert one_by_one > 0
    with pytest.raises(sqlite3.OperationalError, match="no_such_function"):
        store.import_many(1, "main", [(logs[2].name, logs[2].read_bytes(), 0, True)])
    monkeypatch.setattr(ingest, "KNOWN_SQL", real)
    again = store.import_many(1, "main", [(p.name, p.read_bytes(), 0, True) for p in logs[:4]])
    reference = StatsStore(tmp_path / "r.db")
    import_fast(reference, logs[:4])
    assert one_by_one + again.new == independent_count(logs[:4])["lines"]
    assert snapshot(store) == snapshot(reference)
