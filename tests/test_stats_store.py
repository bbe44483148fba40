"""The stats store on hand-made fixtures: every definition of the issue, one test each."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import astuple

import pytest

from taskcog.pipeline.parsers.deadside.grammar import make_event
from taskcog.pipeline.stats import BoardRow, StatsStore

UTC = dt.UTC
T0 = dt.datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
IDS = {name: f"0002{name.lower():0>28}"[:32] for name in ("Ann", "Bob", "Cid", "Dan", "Eve")}


def ev(minute: float, killer: str | None, victim: str, cause: str = "MR5", distance=10.0, **kw):
    at = kw.pop("at", None) or T0 + dt.timedelta(minutes=minute)
    kid = kw.pop("killer_id", IDS[killer] if killer else "")
    return make_event(
        at,
        killer or "",
        kid,
        kw.pop("victim_name", victim),
        IDS[victim],
        cause,
        distance,
        None,
        None,
    )


@pytest.fixture
def store(tmp_path):
    s = StatsStore(tmp_path / "stats.db", clock=lambda: T0)  # the fixtures' "now"
    yield s
    s.close()


def test_kd_with_zero_deaths_is_the_kills_and_suicides_stay_apart(store) -> None:
    events = [
        ev(0, "Ann", "Bob"),
        ev(1, "Ann", "Cid"),
        ev(2, "Ann", "Dan", cause="land_vehicle"),  # a vehicle kill is a kill, weapon "vehicle"
        ev(3, "Bob", "Bob", cause="suicide_by_relocation"),
        ev(4, "Bob", "Bob", cause="falling"),
        ev(5, "Bob", "Bob", cause="land_vehicle"),
        ev(6, "Bob", "Bob", cause="R-5"),
        ev(7, None, "Bob", cause=""),  # unknown
        ev(8, None, "Bob", cause="Zombie", killer_id="**"),  # environmental
    ]
    assert store.add_events(1, "main", events).new == 9
    ann = store.player(1, IDS["Ann"])
    assert (ann.kills, ann.deaths, ann.kd) == (3, 0, 3.0)
    assert ann.weapons == {"MR5": 2, "vehicle": 1} and ann.favourite_weapon == "MR5"
    bob = store.player(1, IDS["Bob"])
    assert (bob.kills, bob.deaths, bob.kd) == (0, 1, 0.0)
    assert bob.suicides == {"relocation": 1, "falling": 1, "vehicle": 1, "other": 1}
    assert (bob.environmental, bob.unknown) == (1, 1)
    assert [r.name for r in store.top(1, "kd", "all")] == ["Ann"]
    deaths = store.top(1, "deaths", "all")
    assert sorted((r.name, r.value) for r in deaths) == [("Bob", 1), ("Cid", 1), ("Dan", 1)]


def test_streaks_end_with_any_end_of_life_even_when_events_arrive_out_of_order(tmp_path) -> None:
    events = [
        ev(0, "Ann", "Bob"),
        ev(1, "Ann", "Cid"),
        ev(2, "Ann", "Dan"),
        ev(3, "Ann", "Ann", cause="falling"),  # a suicide ends the streak
        ev(4, "Ann", "Bob"),
        ev(5, None, "Ann", cause="Zombie"),  # so does an environmental death
        ev(6, "Ann", "Cid"),
        ev(7, "Ann", "Dan"),
        ev(8, "Bob", "Ann"),
        ev(9, "Ann", "Eve"),
    ]
    in_order = StatsStore(tmp_path / "a.db", clock=lambda: T0)
    in_order.add_events(1, "main", events)
    ann = in_order.player(1, IDS["Ann"])
    assert (ann.streak, ann.best_streak) == (1, 3)
    shuffled = StatsStore(tmp_path / "b.db", clock=lambda: T0)
    shuffled.add_events(1, "main", events[5:])
    shuffled.add_events(1, "main", events[:5])  # a history import after the live feed
    assert shuffled.player(1, IDS["Ann"]) == ann
    assert shuffled.top(1, "streak", "all") == in_order.top(1, "streak", "all")
    today = in_order.top(1, "streak", "today")
    assert today and shuffled.top(1, "streak", "today") == today


def test_nemesis_prey_longest_and_names(store) -> None:
    store.add_events(
        1,
        "main",
        [
            ev(0, "Bob", "Ann", distance=50),
            ev(1, "Bob", "Ann", distance=300.5),
            ev(2, "Cid", "Ann"),
            ev(3, "Ann", "Dan"),
            ev(4, "Ann", "Dan", victim_name="Danny"),
            ev(5, "Ann", "Dan", victim_name="Danny"),
            ev(6, "Ann", "Eve"),
        ],
    )
    ann = store.player(1, IDS["Ann"])
    assert ann.nemesis == ("Bob", 2) and ann.prey == ("Danny", 3)
    bob = store.player(1, IDS["Bob"])
    assert (bob.longest.distance, bob.longest.weapon, bob.longest.victim) == (300.5, "MR5", "Ann")
    assert bob.longest.at == T0 + dt.timedelta(minutes=1)
    dan = store.player(1, IDS["Dan"])
    assert (dan.name, dan.names) == ("Danny", ["Dan"])
    assert (dan.first_seen, dan.last_seen) == (
        T0 + dt.timedelta(minutes=3),
        T0 + dt.timedelta(minutes=5),
    )
    hits = store.search(1, "dan")
    assert hits[0].player_id == IDS["Dan"] and hits[0].name == "Danny"
    assert store.search(1, IDS["Eve"])[0].name == "Eve"
    assert store.search(1, "Dany")[0].player_id == IDS["Dan"]  # fuzzy
    assert store.top(1, "distance", "all")[0].detail == "300.5 m, MR5"


def test_servers_apart_and_combined(store) -> None:
    store.add_events(1, "a", [ev(0, "Ann", "Bob"), ev(1, "Ann", "Cid")])
    store.add_events(1, "b", [ev(2, "Ann", "Bob"), ev(3, "Bob", "Ann")])
    store.add_events(2, "a", [ev(0, "Bob", "Ann")])  # another guild sees nothing of these
    assert store.player(1, IDS["Ann"]).kills == 3
    assert store.player(1, IDS["Ann"], server="a").kills == 2
    assert store.player(1, IDS["Ann"], server="b").deaths == 1
    assert sorted((r.name, r.value) for r in store.top(1, "kills", "all", server="b")) == [
        ("Ann", 1),
        ("Bob", 1),
    ]
    assert store.player(2, IDS["Ann"]).kills == 0
    assert store.add_events(1, "a", [ev(0, "Ann", "Bob")]).known == 1  # re-delivered


BERLIN = "Europe/Berlin"


@pytest.mark.parametrize(
    ("now", "inside", "outside"),
    [
        # spring forward, Sunday 30 March 2025: the local day is 23 hours long
        (
            dt.datetime(2025, 3, 30, 12, tzinfo=UTC),
            [dt.datetime(2025, 3, 29, 23, 0), dt.datetime(2025, 3, 30, 21, 59)],
            [dt.datetime(2025, 3, 29, 22, 59), dt.datetime(2025, 3, 30, 22, 0)],
        ),
        # fall back, Sunday 26 October 2025: the local day is 25 hours long
        (
            dt.datetime(2025, 10, 26, 12, tzinfo=UTC),
            [dt.datetime(2025, 10, 25, 22, 0), dt.datetime(2025, 10, 26, 22, 59)],
            [dt.datetime(2025, 10, 25, 21, 59), dt.datetime(2025, 10, 26, 23, 0)],
        ),
    ],
)
def test_today_is_the_local_calendar_day_across_dst(store, now, inside, outside) -> None:
    events = [ev(0, "Ann", "Bob", at=t.replace(tzinfo=UTC)) for t in inside]
    events += [ev(0, "Cid", "Bob", at=t.replace(tzinfo=UTC)) for t in outside]
    store.clock = lambda: now  # the period rows are written for the window "now" is in
    store.add_events(1, "main", events)
    assert [(r.name, r.value) for r in store.top(1, "kills", "today", tz=BERLIN, now=now)] == [
        ("Ann", 2.0)
    ]
    # in UTC the same instants fall differently: the board follows the zone asked for
    utc = {r.name: r.value for r in store.top(1, "kills", "today", tz="UTC", now=now)}
    assert utc != {"Ann": 2.0}


def test_week_starts_monday_local_and_month_on_the_first(store) -> None:
    monday = dt.datetime(2025, 3, 23, 23, 0, tzinfo=UTC)  # Mon 24 March 00:00 CET
    first = dt.datetime(2025, 2, 28, 23, 0, tzinfo=UTC)  # 1 March 00:00 CET
    now = dt.datetime(2025, 3, 27, tzinfo=UTC)
    store.clock = lambda: now
    store.add_events(
        1,
        "main",
        [
            ev(0, "Ann", "Bob", at=monday),
            ev(0, "Cid", "Bob", at=monday - dt.timedelta(seconds=1)),
            ev(0, "Dan", "Bob", at=first),
            ev(0, "Eve", "Bob", at=first - dt.timedelta(seconds=1)),
        ],
    )
    now = dt.datetime(2025, 3, 27, tzinfo=UTC)
    week = {r.name for r in store.top(1, "kills", "week", tz=BERLIN, now=now)}
    month = {r.name for r in store.top(1, "kills", "month", tz=BERLIN, now=now)}
    assert week == {"Ann"} and month == {"Ann", "Cid", "Dan"}
    assert store.count_ranked(1, "kills", "all") == 4
    with pytest.raises(ValueError, match="unknown time zone"):
        store.top(1, "kills", "week", tz="Mars/Olympus")


def test_a_wipe_starts_a_season_and_keeps_the_podium(store) -> None:
    store.add_events(1, "main", [ev(i, "Ann", "Bob") for i in range(3)] + [ev(9, "Cid", "Dan")])
    season = store.wipe(1, "main", now=T0 + dt.timedelta(hours=1))
    assert season == 2
    assert store.top(1, "kills", "all") == [] and store.player(1, IDS["Ann"]).kills == 0
    podium = store.last_wipe(1, "main")
    assert [(r.name, r.value) for r in podium["kills"]] == [("Ann", 3.0), ("Cid", 1.0)]
    assert store.last_wipe(1)["kills"] == podium["kills"]
    # a late import of old-season kills does not enter the new season; a new kill does
    store.add_events(1, "main", [ev(10, "Eve", "Ann"), ev(70, "Bob", "Ann")])
    assert [r.name for r in store.top(1, "kills", "all")] == ["Bob"]


def test_implausible_kills_stay_out_of_records_until_approved(store) -> None:
    far, farther = ev(0, "Ann", "Bob", distance=1800), ev(1, "Cid", "Bob", distance=2500)
    result = store.add_events(1, "main", [far, farther, ev(2, "Dan", "Bob", distance=90)])
    assert result.flagged == 2
    assert [r.name for r in store.top(1, "distance", "all")] == ["Dan"]
    assert store.player(1, IDS["Ann"]).longest is None and store.player(1, IDS["Ann"]).kills == 1
    assert [f.event_id for f in store.flags(1)] == [far.id, farther.id]
    assert store.review(1, far.id, True) and store.review(1, farther.id, False)
    assert not store.review(1, far.id, True) and not store.review(2, farther.id, True)
    assert store.flags(1) == []
    assert [r.name for r in store.top(1, "distance", "all")] == ["Ann", "Dan"]
    assert [r.name for r in store.top(1, "distance", "today")] == ["Ann", "Dan"]
    assert store.player(1, IDS["Ann"]).longest.distance == 1800
    store.rebuild(1)
    assert [r.name for r in store.top(1, "distance", "all")] == ["Ann", "Dan"]


def test_ties_are_ordered_the_same_way_every_time(tmp_path) -> None:
    events = [ev(i, n, "Eve") for i, n in enumerate(("Dan", "Ann", "Cid", "Bob"))]
    one, other = StatsStore(tmp_path / "a.db"), StatsStore(tmp_path / "b.db")
    one.add_events(1, "main", events)
    for event in reversed(events):  # another arrival order
        other.add_events(1, "main", [event])
    first = one.top(1, "kills", "all")
    assert [r.rank for r in first] == [1, 2, 3, 4] and {r.value for r in first} == {1.0}
    assert other.top(1, "kills", "all") == first
    one.rebuild(1)
    assert one.top(1, "kills", "all") == first
    assert one.top(1, "kills", "all", limit=2, offset=1) == [
        BoardRow(2, *astuple(first[1])[1:]),
        BoardRow(3, *astuple(first[2])[1:]),
    ]
    assert one.count_ranked(1, "kills", "all") == 4
    with pytest.raises(ValueError, match="unknown board"):
        one.top(1, "headshots", "all")


def test_period_rows_are_written_for_windows_not_over_yet(tmp_path) -> None:
    """A year of history writes the rows of this day, week and month, not of every past one;
    the boards of the current windows are the same as if every row had been written."""
    now = dt.datetime(2025, 5, 14, 12, tzinfo=UTC)  # a Wednesday
    clock = [now]
    store = StatsStore(tmp_path / "s.db", clock=lambda: clock[0])
    store.top(1, "kills", "today", tz=BERLIN)  # the guild's zone: period rows from now on
    days = [now - dt.timedelta(days=d) for d in range(0, 400, 3)]  # today, this week, ...
    store.add_events(1, "main", [ev(0, "Ann", "Bob", at=day) for day in days])
    store.add_events(1, "main", [ev(1, "Cid", "Bob", at=now - dt.timedelta(days=1))])

    def kills(period: str, at: dt.datetime) -> dict[str, float]:
        return {r.name: r.value for r in store.top(1, "kills", period, tz=BERLIN, now=at)}

    assert kills("today", now) == {"Ann": 1.0}
    assert kills("week", now) == {"Ann": 1.0, "Cid": 1.0}  # Monday 12 May is day 2
    assert kills("month", now) == {"Ann": 5.0, "Cid": 1.0}  # 14, 11, 8, 5, 2 May
    assert kills("all", now) == {"Ann": float(len(days)), "Cid": 1.0}
    con = sqlite3.connect(tmp_path / "s.db")
    starts = {s for (s,) in con.execute("SELECT b.start FROM stat JOIN buckets b USING (bid)")}
    assert starts == {20250514, 20250512, 20250501}  # no row of a window already over
    # the clock moves on: the next window's rows start with the events written in it
    clock[0] = now + dt.timedelta(days=1)
    store.add_events(1, "main", [ev(2, "Dan", "Bob", at=clock[0])])
    assert kills("today", clock[0]) == {"Dan": 1.0}
    assert kills("week", clock[0]) == {"Ann": 1.0, "Cid": 1.0, "Dan": 1.0}
