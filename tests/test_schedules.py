"""Schedules: fire times across DST in many zones, parse_spec and durations."""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from cronsim import CronSim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskcog.engine import schedules
from taskcog.engine.schedules import (
    CronSchedule,
    DailySchedule,
    IntervalSchedule,
    OnceSchedule,
    ScheduleError,
    format_duration,
    is_ambiguous,
    is_imaginary,
    parse_duration,
    parse_spec,
    resolve_datetime,
)

UTC = dt.UTC
NY = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
ZONE_NAMES = [
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "UTC",
    "America/Sao_Paulo",
    "Pacific/Chatham",
]
ZONES = [UTC if name == "UTC" else ZoneInfo(name) for name in ZONE_NAMES]
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@cache
def transitions(zone: dt.tzinfo) -> tuple[dt.datetime, ...]:
    """Every UTC-offset change of ``zone`` in 2000-2037, found independently of schedules.py."""
    found = []
    day = dt.datetime(2000, 1, 1, tzinfo=UTC)
    offset = day.astimezone(zone).utcoffset()
    while day.year < 2038:
        nxt = day + dt.timedelta(days=1)
        nxt_offset = nxt.astimezone(zone).utcoffset()
        if nxt_offset != offset:
            lo, hi = day, nxt
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == offset:
                    lo = mid
                else:
                    hi = mid
            found.append(hi)
        day, offset = nxt, nxt_offset
    return tuple(found)


zones = st.sampled_from(ZONES)
any_instant = st.datetimes(
    min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2037, 12, 1), timezones=st.just(UTC)
)


@st.composite
def instants(draw: st.DrawFn, zone_list: list[dt.tzinfo]) -> dt.datetime:
    """Random instants, half of them within two days before one of the zones' DST changes."""
    near = [t for z in zone_list for t in transitions(z)]
    if near and draw(st.booleans()):
        edge = draw(st.sampled_from(near))
        return edge - dt.timedelta(seconds=draw(st.integers(0, 2 * 86400)))
    return draw(any_instant)


def utc(d: dt.datetime) -> dt.datetime:
    return d.astimezone(UTC)


def fire_sequence(schedule, start: dt.datetime, n: int) -> list[dt.datetime]:
    fires, current = [], start
    for _ in range(n):
        current = schedule.next_after(current)
        fires.append(current)
    return fires


def assert_strictly_increasing(start: dt.datetime, fires: list[dt.datetime]) -> None:
    instants_utc = [utc(start)] + [utc(f) for f in fires]
    assert all(a < b for a, b in zip(instants_utc, instants_utc[1:], strict=False)), fires


def wall(d: dt.datetime) -> dt.datetime:
    return d.replace(tzinfo=None, fold=0)


def is_gap_end(fire: dt.datetime) -> bool:
    """Is ``fire`` the first instant after a spring-forward gap in its zone?"""
    just_before = (utc(fire) - dt.timedelta(seconds=1)).astimezone(fire.tzinfo)
    return wall(fire) - wall(just_before) > dt.timedelta(seconds=1)


def fires_for(fire: dt.datetime, zone: dt.tzinfo, t: dt.time) -> bool:
    """Is ``fire`` the run of listed time ``t`` (in ``zone``) on its local day?

    Either its wall time is ``t`` at the first occurrence, or ``t`` falls in a gap that day and
    ``fire`` is the first instant after the gap (one second earlier is before ``t``).
    """
    local = fire.astimezone(zone)
    if local.time() == t:
        return local.fold == 0 or not is_ambiguous(local)
    planned = dt.datetime.combine(local.date(), t, tzinfo=zone)
    if not is_imaginary(planned) or local.time() < t:
        return False
    just_before = (utc(fire) - dt.timedelta(seconds=1)).astimezone(zone)
    return wall(just_before) < wall(planned) < wall(local)


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(
    seconds=st.integers(1, 10 * 86400) | st.floats(0.5, 90000),
    zone=zones,
    start=instants(ZONES),
)
def test_interval_steps_by_elapsed_time_in_the_callers_zone(seconds, zone, start):
    schedule = IntervalSchedule(seconds)
    after = start.astimezone(zone)
    fires = fire_sequence(schedule, after, 5)
    assert_strictly_increasing(after, fires)
    for prev, fire in zip([after] + fires, fires, strict=False):
        assert fire.tzinfo is zone
        assert utc(fire) - utc(prev) == dt.timedelta(seconds=seconds)
    assert schedule.first(after) == after


daily_times = st.lists(
    st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45, 7]), zones),
    min_size=1,
    max_size=4,
)


@SETTINGS
@given(data=st.data(), listed=daily_times)
def test_daily_fires_each_listed_time_once_per_local_day(data, listed):
    times = [dt.time(h, m, tzinfo=z) for h, m, z in listed]
    schedule = DailySchedule(times)
    start = data.draw(instants(list({z for _, _, z in listed})))
    fires = fire_sequence(schedule, start, 4 * len(schedule.times) + 2)
    assert_strictly_increasing(start, fires)

    seen_walls = set()
    for fire in fires:
        zone = fire.tzinfo
        assert not is_imaginary(fire)
        # Returned in the zone of the time that fired, which it matches (or the gap rule).
        own = [t.replace(tzinfo=None) for t in schedule.times if t.tzinfo is zone]
        assert any(fires_for(fire, zone, t) for t in own), (fire, own)
        # No wall time runs twice on a fall-back day.
        key = (schedules.zone_name(zone), wall(fire))
        assert key not in seen_walls, fire
        seen_walls.add(key)

    # Exactly one run per listed time per local day that lies wholly inside the window.
    for listed_time in schedule.times:
        zone, t = listed_time.tzinfo, listed_time.replace(tzinfo=None)
        first_day = start.astimezone(zone).date() + dt.timedelta(days=1)
        last_day = fires[-1].astimezone(zone).date() - dt.timedelta(days=1)
        day = first_day
        while day <= last_day:
            runs = [f for f in fires if f.astimezone(zone).date() == day and fires_for(f, zone, t)]
            assert len(runs) == 1, (listed_time, day, runs)
            day += dt.timedelta(days=1)


@SETTINGS
@given(data=st.data(), listed=daily_times)
def test_daily_next_after_never_skips_or_runs_early(data, listed):
    schedule = DailySchedule([dt.time(h, m, tzinfo=z) for h, m, z in listed])
    start = data.draw(instants(list({z for _, _, z in listed})))
    fires = fire_sequence(schedule, start, 6)
    for prev, fire in zip([start] + fires, fires, strict=False):
        gap = utc(fire) - utc(prev)
        between = utc(prev) + gap * data.draw(st.floats(0, 0.999999))
        assert utc(schedule.next_after(between)) == utc(fire)


CRON_EXPRESSIONS = [
    "*/15 * * * *",
    "0 * * * *",
    "30 2 * * *",
    "30 1 * * *",
    "0 0 * * *",
    "15 1,2,3 * * *",
    "45 2 * * SUN",
    "0 9 * * MON-FRI",
    "0 12 L * *",
    "0 0 1 */3 *",
]


@SETTINGS
@given(
    data=st.data(), expr=st.sampled_from(CRON_EXPRESSIONS), zone_name=st.sampled_from(ZONE_NAMES)
)
def test_cron_fires_in_its_zone_strictly_increasing(data, expr, zone_name):
    schedule = CronSchedule(expr, zone_name)
    zone = schedule.zone
    start = data.draw(instants([zone]))
    fires = fire_sequence(schedule, start, 12)
    assert_strictly_increasing(start, fires)
    minutes, hours = expr.split()[:2]
    for fire in fires:
        assert fire.tzinfo is zone and not is_imaginary(fire)
        if minutes != "*/15":
            assert fire.minute == int(minutes) or is_gap_end(fire), fire
    if not minutes.startswith("*") and not hours.startswith("*"):
        # Fixed-time jobs behave like daily times: no wall time twice on a fall-back day.
        walls = [wall(f) for f in fires]
        assert len(set(walls)) == len(walls), fires
    # Agrees with a fresh cronsim iterator (our cached cursor must not leak state).
    fresh = CronSim(expr, start.astimezone(zone))
    expected = []
    while len(expected) < len(fires):
        candidate = next(fresh)
        if utc(candidate) > utc(expected[-1] if expected else start):
            expected.append(candidate)
    assert [utc(f) for f in fires] == [utc(e) for e in expected]


# --------------------------------------------------------------------------- DST, explicitly


def test_daily_time_in_spring_forward_gap_runs_at_the_end_of_the_gap():
    schedule = DailySchedule([dt.time(2, 30, tzinfo=NY)])
    fires = schedule.preview(3, dt.datetime(2022, 3, 12, tzinfo=UTC))
    assert [f.isoformat() for f in fires] == [
        "2022-03-12T02:30:00-05:00",
        "2022-03-13T03:00:00-04:00",
        "2022-03-14T02:30:00-04:00",
    ]
    # discord.ext.tasks shifts by the gap length instead; our resolve_datetime keeps that.
    assert resolve_datetime(dt.datetime(2022, 3, 13, 2, 30, tzinfo=NY)).hour == 3
    assert resolve_datetime(dt.datetime(2022, 3, 13, 2, 30, tzinfo=NY)).minute == 30


def test_daily_time_in_fall_back_hour_runs_once_at_first_occurrence():
    schedule = DailySchedule([dt.time(1, 30, tzinfo=NY)])
    fires = schedule.preview(3, dt.datetime(2022, 11, 5, 12, tzinfo=UTC))
    assert [utc(f).isoformat() for f in fires] == [
        "2022-11-06T05:30:00+00:00",  # 01:30 EDT, the first copy
        "2022-11-07T06:30:00+00:00",
        "2022-11-08T06:30:00+00:00",
    ]
    second_copy = dt.datetime(2022, 11, 6, 1, 10, fold=1, tzinfo=NY)
    assert utc(schedule.next_after(second_copy)) == fires[1]


def test_cron_fixed_time_across_dst_matches_cronsim():
    schedule = CronSchedule("30 2 * * *", "America/New_York")
    spring = schedule.preview(2, dt.datetime(2022, 3, 12, 12, tzinfo=UTC))
    assert [f.isoformat() for f in spring] == [
        "2022-03-13T03:00:00-04:00",  # 02:30 does not exist: first valid minute after
        "2022-03-14T02:30:00-04:00",
    ]
    fall = schedule.preview(2, dt.datetime(2022, 11, 5, 12, tzinfo=UTC))
    assert [f.isoformat() for f in fall] == [
        "2022-11-06T02:30:00-05:00",
        "2022-11-07T02:30:00-05:00",
    ]
    inside_repeat = CronSchedule("30 1 * * *", "America/New_York")
    once = inside_repeat.preview(2, dt.datetime(2022, 11, 5, 12, tzinfo=UTC))
    assert [utc(f).isoformat() for f in once] == [
        "2022-11-06T05:30:00+00:00",
        "2022-11-07T06:30:00+00:00",
    ]
    second_copy = dt.datetime(2022, 11, 6, 1, 10, fold=1, tzinfo=NY)
    assert utc(inside_repeat.next_after(second_copy)) == utc(once[1])


def test_cron_wildcard_hour_runs_in_both_copies_of_a_repeated_hour():
    schedule = CronSchedule("*/30 1-3 * * *", "America/New_York")
    fires = schedule.preview(6, dt.datetime(2022, 11, 6, 4, tzinfo=UTC))
    assert [f.strftime("%H:%M%z") for f in fires] == [
        "01:00-0400", "01:30-0400", "01:00-0500", "01:30-0500", "02:00-0500", "02:30-0500",
    ]  # fmt: skip


def test_lord_howe_half_hour_shift():
    gap = DailySchedule([dt.time(2, 10, tzinfo=LORD_HOWE)])
    fire = gap.next_after(dt.datetime(2022, 10, 1, 12, tzinfo=UTC))
    assert fire.isoformat() == "2022-10-02T02:30:00+11:00"
    repeat = DailySchedule([dt.time(1, 45, tzinfo=LORD_HOWE)])
    fires = repeat.preview(2, dt.datetime(2022, 4, 2, 12, tzinfo=UTC))
    assert [f.isoformat() for f in fires] == [
        "2022-04-03T01:45:00+11:00",
        "2022-04-04T01:45:00+10:30",
    ]


def test_sao_paulo_midnight_gap_and_repeat():
    zone = ZoneInfo("America/Sao_Paulo")
    gap = DailySchedule([dt.time(0, 15, tzinfo=zone)])
    assert gap.next_after(dt.datetime(2018, 11, 3, 12, tzinfo=UTC)).isoformat() == (
        "2018-11-04T01:00:00-02:00"
    )
    repeat = DailySchedule([dt.time(23, 30, tzinfo=zone)])
    fires = repeat.preview(2, dt.datetime(2019, 2, 16, 12, tzinfo=UTC))
    assert [f.isoformat() for f in fires] == [
        "2019-02-16T23:30:00-02:00",
        "2019-02-17T23:30:00-03:00",
    ]


def test_a_skipped_calendar_day_runs_at_the_first_instant_after_it():
    apia = ZoneInfo("Pacific/Apia")  # jumped from 2011-12-29 to 2011-12-31
    schedule = DailySchedule([dt.time(12, tzinfo=apia)])
    fires = schedule.preview(3, dt.datetime(2011, 12, 29, 13, tzinfo=apia))
    assert [f.isoformat() for f in fires] == [
        "2011-12-31T00:00:00+14:00",
        "2011-12-31T12:00:00+14:00",
        "2012-01-01T12:00:00+14:00",
    ]


def test_mixed_zoneinfo_and_utc_times_in_one_daily_schedule():
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    listed = [
        dt.time(9, tzinfo=BERLIN),
        dt.time(12),
        dt.time(8, tzinfo=ist),
        dt.time(7, tzinfo=UTC),
    ]
    schedule = DailySchedule(listed)
    fires = schedule.preview(4, dt.datetime(2026, 7, 1, tzinfo=UTC))
    assert [(f.isoformat()) for f in fires] == [
        "2026-07-01T08:00:00+05:30",
        "2026-07-01T09:00:00+02:00",  # the same instant as 07:00 UTC: one run, not two
        "2026-07-01T12:00:00+00:00",
        "2026-07-02T08:00:00+05:30",
    ]
    for fire in fires:
        assert fire.timetz() in [t if t.tzinfo else t.replace(tzinfo=UTC) for t in listed]
    assert schedule.describe() == "daily 08:00 +05:30, 09:00 Europe/Berlin, 07:00, 12:00 UTC"
    assert parse_spec(schedule.spec) == schedule


def test_dst_helpers_match_discord_ext_tasks():
    from discord.ext import tasks

    samples = [
        dt.datetime(2022, 3, 13, 2, 30, tzinfo=NY),
        dt.datetime(2022, 11, 6, 1, 30, tzinfo=NY),
        dt.datetime(2022, 11, 6, 1, 30, fold=1, tzinfo=NY),
        dt.datetime(2022, 10, 2, 2, 10, tzinfo=LORD_HOWE),
        dt.datetime(2022, 4, 3, 1, 45, tzinfo=LORD_HOWE),
        dt.datetime(2022, 6, 1, 12, tzinfo=BERLIN),
        dt.datetime(2022, 6, 1, 12, tzinfo=UTC),
        dt.datetime(2022, 6, 1, 12),
    ]
    for sample in samples:
        assert is_ambiguous(sample) == tasks.is_ambiguous(sample)
        assert is_imaginary(sample) == tasks.is_imaginary(sample)
        ours, theirs = resolve_datetime(sample), tasks.resolve_datetime(sample)
        assert (ours, ours.fold) == (theirs, theirs.fold)


# --------------------------------------------------------------------------- semantics


def test_naive_after_is_treated_as_utc():
    naive = dt.datetime(2026, 1, 1, 8, 0)
    assert DailySchedule([dt.time(9)]).next_after(naive) == dt.datetime(2026, 1, 1, 9, tzinfo=UTC)
    assert IntervalSchedule(60).next_after(naive) == dt.datetime(2026, 1, 1, 8, 1, tzinfo=UTC)
    assert CronSchedule("0 9 * * *").next_after(naive) == dt.datetime(2026, 1, 1, 9, tzinfo=UTC)


def test_once_fires_only_while_in_the_future():
    at = dt.datetime(2026, 12, 24, 18, tzinfo=ZoneInfo("Europe/Paris"))
    schedule = OnceSchedule(at)
    before = dt.datetime(2026, 12, 24, 9, tzinfo=NY)
    fire = schedule.next_after(before)
    assert fire == at and fire.tzinfo is NY
    assert schedule.next_after(at) is None
    assert schedule.first(before) == at
    assert schedule.preview(3, before) == [at]
    # A time inside a gap moves to the gap's end, like daily times.
    assert OnceSchedule(dt.datetime(2022, 3, 13, 2, 30, tzinfo=NY)).at.isoformat() == (
        "2022-03-13T03:00:00-04:00"
    )


def test_once_in_the_second_copy_of_a_repeated_hour_round_trips():
    schedule = OnceSchedule(dt.datetime(2022, 11, 6, 1, 30, fold=1, tzinfo=NY))
    assert schedule.spec == "once 2022-11-06T01:30-05:00 America/New_York"
    assert parse_spec(schedule.spec) == schedule
    assert schedule != OnceSchedule(dt.datetime(2022, 11, 6, 1, 30, tzinfo=NY))


def test_first_fires_intervals_at_once_and_others_later():
    now = dt.datetime(2026, 1, 1, 8, 0, 30, tzinfo=UTC)
    assert IntervalSchedule(3600).first(now) == now
    assert parse_spec("cron */15 * * * *").first(now) == dt.datetime(2026, 1, 1, 8, 15, tzinfo=UTC)
    assert parse_spec("daily 08:00").first(now) == dt.datetime(2026, 1, 2, 8, tzinfo=UTC)


def test_preview_defaults_to_now():
    before = dt.datetime.now(UTC)
    fires = parse_spec("every 1m").preview(3)
    assert len(fires) == 3 and fires[0] > before
    assert fires[2] - fires[0] == dt.timedelta(minutes=2)


def test_jitter_is_stored_and_does_not_move_fire_times():
    plain, jittered = parse_spec("every 1h"), parse_spec("every 1h jitter 5m")
    assert jittered.jitter == 300 and plain.jitter == 0
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    assert jittered.preview(5, now) == plain.preview(5, now)
    assert jittered != plain
    assert parse_spec("cron 0 9 * * * Europe/Berlin jitter 30s").jitter == 30


def test_schedules_are_values():
    a = parse_spec("daily 21:00,09:00 Europe/Berlin")
    b = DailySchedule([dt.time(9, tzinfo=BERLIN), dt.time(21, tzinfo=BERLIN)])
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert DailySchedule([dt.time(9)]) == DailySchedule([dt.time(9, tzinfo=ZoneInfo("UTC"))])
    assert repr(a) == "<DailySchedule 'daily 09:00,21:00 Europe/Berlin'>"
    assert IntervalSchedule(60) != CronSchedule("* * * * *")
    with pytest.raises(AttributeError):
        IntervalSchedule(60).extra = 1  # __slots__: no per-instance dict on the hot path


# --------------------------------------------------------------------------- parse_spec

HAPPY_SPECS = [
    ("every 90s", IntervalSchedule(90), "every 1m30s", "every 1m 30s"),
    ("every 1h30m", IntervalSchedule(5400), "every 1h30m", "every 1h 30m"),
    ("every 5 minutes", IntervalSchedule(300), "every 5m", "every 5m"),
    ("daily 09:00", DailySchedule([dt.time(9)]), "daily 09:00 UTC", "daily 09:00 UTC"),
    (
        "daily 09:00,21:00 Europe/Berlin",
        DailySchedule([dt.time(9, tzinfo=BERLIN), dt.time(21, tzinfo=BERLIN)]),
        "daily 09:00,21:00 Europe/Berlin",
        "daily 09:00, 21:00 Europe/Berlin",
    ),
    ("daily 9:30 UTC", DailySchedule([dt.time(9, 30)]), "daily 09:30 UTC", "daily 09:30 UTC"),
    (
        "cron */15 * * * * UTC",
        CronSchedule("*/15 * * * *"),
        "cron */15 * * * * UTC",
        "cron */15 * * * * (UTC)",
    ),
    (
        "cron 30 2 * * * America/New_York",
        CronSchedule("30 2 * * *", "America/New_York"),
        "cron 30 2 * * * America/New_York",
        "cron 30 2 * * * (America/New_York)",
    ),
    (
        "once 2026-12-24T18:00 Europe/Paris",
        OnceSchedule(dt.datetime(2026, 12, 24, 18, tzinfo=ZoneInfo("Europe/Paris"))),
        "once 2026-12-24T18:00 Europe/Paris",
        "once 2026-12-24 18:00 Europe/Paris",
    ),
    (
        "once 2026-12-24T18:00+01:00",
        OnceSchedule(dt.datetime(2026, 12, 24, 18, tzinfo=dt.timezone(dt.timedelta(hours=1)))),
        "once 2026-12-24T18:00 +01:00",
        "once 2026-12-24 18:00 +01:00",
    ),
    (
        "every 1h jitter 5m",
        IntervalSchedule(3600, jitter=300),
        "every 1h jitter 5m",
        "every 1h (jitter 5m)",
    ),
]


@pytest.mark.parametrize("text,expected,spec,described", HAPPY_SPECS)
def test_parse_spec_happy_paths_round_trip(text, expected, spec, described):
    schedule = parse_spec(text)
    assert schedule == expected
    assert schedule.spec == spec
    assert schedule.describe() == described
    assert parse_spec(schedule.spec) == schedule
    assert parse_spec(schedule.spec, default_tz="Asia/Kolkata") == schedule


def test_default_zone_applies_where_none_is_written():
    kolkata = ZoneInfo("Asia/Kolkata")
    assert parse_spec("daily 09:00", default_tz="Asia/Kolkata") == DailySchedule(
        [dt.time(9, tzinfo=kolkata)]
    )
    assert parse_spec("cron 0 9 * * MON", default_tz="Asia/Kolkata").tz == "Asia/Kolkata"
    mixed = parse_spec("daily 09:00 Europe/Berlin, 12:00", default_tz="Asia/Kolkata")
    assert {schedules.zone_name(t.tzinfo) for t in mixed.times} == {
        "Europe/Berlin",
        "Asia/Kolkata",
    }
    assert parse_spec("once 2026-12-24 18:00 europe/paris").describe() == (
        "once 2026-12-24 18:00 Europe/Paris"
    )


BAD_SPECS = [
    ("", "empty schedule"),
    ("   ", "empty schedule"),
    ("weekly 09:00", "unknown schedule kind 'weekly': use every, daily, cron or once"),
    ("every 5x", "bad duration '5x': use e.g. 90s, 5m, 1h30m"),
    ("every", "missing interval"),
    ("every 500ms", "interval must be at least 1s"),
    ("every 0s", "interval must be at least 1s"),
    ("every -5m", "bad duration '-5m'"),
    ("every 1h jitter soon", "bad duration 'soon'"),
    ("daily 25:00", "bad daily time '25:00'"),
    ("daily 09:61", "bad daily time '09:61'"),
    ("daily", "missing time"),
    ("daily 09:00 Mars/Base", "unknown time zone 'Mars/Base'"),
    ("cron */15 * * * * Mars/Base", "unknown time zone 'Mars/Base'"),
    ("cron */99 * * * *", "bad cron expression '*/99 * * * *': bad minute"),
    ("cron 0 25 * * *", "bad cron expression '0 25 * * *': bad hour"),
    ("cron * * * *", "bad cron expression '* * * *': wrong number of fields"),
    ("cron", "missing cron expression"),
    ("once tomorrow", "bad date/time 'tomorrow'"),
    ("once 2026-12-24T18:00 Mars/Base", "unknown time zone 'Mars/Base'"),
]


@pytest.mark.parametrize("text,words", BAD_SPECS)
def test_bad_specs_raise_one_clear_line(text, words):
    with pytest.raises(ScheduleError) as caught:
        parse_spec(text)
    message = str(caught.value)
    assert words in message
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


def test_once_in_the_past_is_refused_only_with_now():
    now = dt.datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ScheduleError, match=r"^'once' time 2020-01-01 18:00 UTC is in the past$"):
        parse_spec("once 2020-01-01T18:00 UTC", now=now)
    assert parse_spec("once 2020-01-01T18:00 UTC").at.year == 2020
    assert parse_spec("once 2026-01-01T00:01", now=now).at > now


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("90s", 90),
        ("5m", 300),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1h 30m", 5400),
        ("1.5h", 5400),
        ("500ms", 0.5),
        ("90", 90),
        ("5 minutes", 300),
        ("1 hour", 3600),
        ("1 hour and 2 seconds", 3602),
        ("1w", 604800),
        (" 45 SEC ", 45),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "-5m", "0", "0s", "1h30", "m", "1..5s", "five min"])
def test_parse_duration_refuses_garbage_zero_and_negative(text):
    with pytest.raises(ScheduleError):
        parse_duration(text)


@pytest.mark.parametrize(
    "seconds,text",
    [
        (5400, "1h 30m"),
        (90, "1m 30s"),
        (0.25, "250ms"),
        (86400, "1d"),
        (1.5, "1.5s"),
        (3661, "1h 1m 1s"),
        (0, "0s"),
        (90061, "1d 1h 1m 1s"),
    ],
)
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@given(st.integers(1, 366 * 86400) | st.floats(1, 1e7, allow_nan=False))
@settings(deadline=None)
def test_interval_spec_round_trips_exactly(seconds):
    schedule = IntervalSchedule(seconds)
    assert parse_spec(schedule.spec) == schedule
    assert parse_duration(format_duration(int(seconds))) == int(seconds)
