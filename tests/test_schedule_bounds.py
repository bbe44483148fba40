"""Schedule bounds: out-of-range intervals, durations, jitter and ``once`` times are refused
with one short line before anything is saved, and the values at the bounds still work."""

from __future__ import annotations

import datetime as dt

import pytest

from taskcog.engine.schedules import (
    CronSchedule,
    DailySchedule,
    IntervalSchedule,
    OnceSchedule,
    ScheduleError,
    parse_duration,
    parse_spec,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)
DAY = 86400


def refusal(text: str) -> str:
    with pytest.raises(ScheduleError) as caught:
        parse_spec(text, now=NOW)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 300, message
    return message


@pytest.mark.parametrize(
    "text,message",
    [
        ("every 99999999h", "interval 99999999h is longer than the maximum of 366d"),
        ("every 367d", "interval 367d is longer than the maximum of 366d"),
        ("every 53w", "interval 53w is longer than the maximum of 366d"),
        ("every 1h jitter 99999999h", "jitter 99999999h is longer than the maximum of 366d"),
        ("every 1h jitter 2h", "jitter 2h is longer than the interval 1h"),
        ("every 90s jitter 91s", "jitter 1m 31s is longer than the interval 1m 30s"),
        ("daily 09:00 jitter 2h", "jitter 2h is longer than the maximum of 1h for a daily"),
        ("cron 0 * * * * jitter 61m", "jitter 1h 1m is longer than the maximum of 1h for a cron"),
        ("once 2027-01-01T00:00 jitter 3h", "jitter 3h is longer than the maximum of 1h"),
    ],
)
def test_too_long_intervals_and_jitter_are_refused_in_cronsim_style(text, message):
    assert refusal(text).startswith(message)


def test_thousands_of_digits_are_too_long_not_infinite():
    message = refusal("every " + "1" * 2000)
    assert message.startswith("interval 1111") and "inf" not in message
    assert message.endswith("is longer than the maximum of 366d")
    assert "inf" not in refusal("every 1h jitter " + "9" * 2000)


def test_a_huge_duration_is_refused_by_parse_duration_with_its_name():
    with pytest.raises(ScheduleError, match=r"^interval 9999999d is longer than the maximum"):
        parse_duration("9999999d", "interval")
    with pytest.raises(ScheduleError, match=r"^bad duration '1e400'"):
        parse_duration("1e400")  # no exponents: not a way around the bound
    assert parse_duration("366d") == 366 * DAY


def test_the_bounds_themselves_are_accepted_and_preview():
    longest = parse_spec("every 366d jitter 366d")
    assert longest.seconds == 366 * DAY and longest.jitter == 366 * DAY
    assert len(longest.preview(3, NOW)) == 3
    assert parse_spec("daily 09:00 jitter 1h").jitter == 3600
    assert parse_spec("cron 0 9 * * * jitter 60m").jitter == 3600
    assert parse_spec("every 1h jitter 1h").jitter == 3600
    assert parse_spec("once 9998-12-31T23:00 UTC", now=NOW).preview(2, NOW) == [
        dt.datetime(9998, 12, 31, 23, tzinfo=UTC)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "once 9999-12-31T23:59 -12:00",  # past datetime.max once moved to UTC
        "once 0001-01-01T00:00 +05:00",  # before datetime.min once moved to UTC
        "once 9999-06-01T00:00 UTC",
        "once 1969-12-31T23:00 UTC",
        "once 9999-12-31T23:59+14:00 America/New_York",
    ],
)
def test_once_times_that_would_overflow_are_refused_cleanly(text):
    message = refusal(text)
    assert "out of range: use a year from 1970 to 9998" in message, message


def test_once_range_holds_without_now_too():
    with pytest.raises(ScheduleError, match="out of range"):
        parse_spec("once 9999-12-31T23:59 -12:00")
    with pytest.raises(ScheduleError, match="out of range"):
        OnceSchedule(dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5))))


def test_constructors_hold_the_jitter_bounds():
    with pytest.raises(ScheduleError, match="longer than the interval 1m"):
        IntervalSchedule(60, jitter=61)
    with pytest.raises(ScheduleError, match="for a daily schedule"):
        DailySchedule(dt.time(9), jitter=3601)
    with pytest.raises(ScheduleError, match="for a cron schedule"):
        CronSchedule("* * * * *", jitter=7200)
    with pytest.raises(ScheduleError, match="0 or more seconds"):
        IntervalSchedule(60, jitter=float("nan"))


def test_long_cron_and_daily_lists_are_refused_with_the_bound():
    message = refusal("cron " + ",".join(["1"] * 1000) + " * * * *")
    assert "longer than 100 characters" in message and "…" in message
    assert refusal("daily " + ",".join(f"{m // 60:02d}:{m % 60:02d}" for m in range(0, 1500, 60)))
    twenty_five = ",".join(f"{h:02d}:00" for h in range(24)) + ",00:30"
    assert "at most 24 times, got 25" in refusal("daily " + twenty_five)
    assert len(parse_spec("daily " + ",".join(f"{h:02d}:00" for h in range(24))).times) == 24


@pytest.mark.parametrize(
    "text",
    [
        "every " + "x" * 2000,
        "weekly" + "y" * 2000,
        "daily 09:00 " + "Z" * 2000,
        "daily " + "9" * 2000,
        "cron */5 * * * * Mars/" + "b" * 2000,
        "once " + "2" * 2000,
    ],
)
def test_user_text_in_errors_is_cut(text):
    message = refusal(text)
    assert "…" in message and len(message) < 200, message


def test_preview_stops_at_the_end_of_time_instead_of_overflowing():
    # Code (not parse_spec) may build longer intervals, e.g. ext.tasks' loop(hours=...).
    schedule = IntervalSchedule(5000 * 365 * DAY)
    assert schedule.preview(3, NOW) == [NOW + dt.timedelta(days=5000 * 365)]
