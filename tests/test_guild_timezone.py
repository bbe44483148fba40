"""A guild's time zone and relative one-shots: ``parse_spec(default_tz=…, now=…)`` on its own,
the cached settings that apply the zone to defaults, and ``[p]taskset timezone`` with
``[p]taskset schedule`` through a real Red 3.5 on simcord."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from redharness import red_world

from taskcog.engine.schedules import (
    CronSchedule,
    DailySchedule,
    OnceSchedule,
    ScheduleError,
    parse_spec,
)
from taskcog.red.registry import TaskSpec
from taskcog.red.stores.settings import GLOBAL_DEFAULTS, Settings

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
NOW = dt.datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def refused(text: str, **kw) -> str:
    """The one-line error ``parse_spec`` gives for ``text``."""
    with pytest.raises(ScheduleError) as caught:
        parse_spec(text, **kw)
    message = str(caught.value)
    assert message and "\n" not in message and len(message) <= 300, message
    return message


# ---------------------------------------------------------------- once in …


def test_once_in_resolves_against_now_to_an_absolute_spec():
    schedule = parse_spec("once in 2h", now=NOW)
    assert isinstance(schedule, OnceSchedule)
    assert schedule.at == dt.datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert schedule.spec == "once 2026-01-01T12:00 UTC"
    assert parse_spec(schedule.spec) == schedule  # what is saved parses back without a now
    ninety = parse_spec("once in 90m", now=NOW)
    assert ninety == parse_spec("once in 1h30m", now=NOW) == parse_spec("once in 1h 30m", now=NOW)
    assert ninety.at == dt.datetime(2026, 1, 1, 11, 30, tzinfo=UTC)
    jittered = parse_spec("once in 2h jitter 5m", now=NOW)
    assert jittered.spec == "once 2026-01-01T12:00 UTC jitter 5m"


def test_once_in_rounds_a_fractional_now_up_to_a_whole_second():
    now = NOW.replace(second=27, microsecond=500)
    schedule = parse_spec("once in 2h", now=now)
    assert schedule.spec == "once 2026-01-01T12:00:28 UTC"
    assert schedule.at > now + dt.timedelta(hours=2)


def test_once_in_uses_the_default_zone_and_an_explicit_zone_wins():
    berlin = parse_spec("once in 2h", default_tz="Europe/Berlin", now=NOW)
    assert berlin.spec == "once 2026-01-01T13:00 Europe/Berlin"
    assert berlin.at.astimezone(UTC) == NOW + dt.timedelta(hours=2)
    explicit = parse_spec("once in 2h UTC", default_tz="Europe/Berlin", now=NOW)
    assert explicit.spec == "once 2026-01-01T12:00 UTC"
    # A naive now means UTC, as everywhere in the engine.
    assert parse_spec("once in 2h", now=NOW.replace(tzinfo=None)) == parse_spec(
        "once in 2h", now=NOW
    )


def test_once_in_without_now_is_a_clear_error():
    message = refused("once in 2h")
    assert "'once in 2h' is relative to now" in message
    assert "absolute time" in message


def test_once_in_is_bounded_and_never_in_the_past():
    assert "is not in the future" in refused("once in 0s", now=NOW)
    assert "is not in the future" in refused("once in 0m", now=NOW)
    assert "longer than the maximum of 366d" in refused("once in 367d", now=NOW)
    assert "longer than the maximum of 366d" in refused("once in " + "9" * 500 + "h", now=NOW)
    assert parse_spec("once in 366d", now=NOW).at == NOW + dt.timedelta(days=366)
    assert "bad duration '-2h'" in refused("once in -2h", now=NOW)
    assert "bad duration 'soon'" in refused("once in soon", now=NOW)
    assert "missing delay" in refused("once in", now=NOW)
    assert "unknown time zone 'Mars/Base'" in refused("once in 2h Mars/Base", now=NOW)
    late = dt.datetime(9998, 12, 31, 12, tzinfo=UTC)
    assert "out of range" in refused("once in 2d", now=late)


# ---------------------------------------------------------------- default_tz


def test_the_default_zone_applies_to_daily_cron_and_once():
    daily = parse_spec("daily 09:00", default_tz="Europe/Berlin")
    assert daily == DailySchedule([dt.time(9, 0, tzinfo=BERLIN)])
    assert daily.spec == "daily 09:00 Europe/Berlin"
    cron = parse_spec("cron 0 9 * * *", default_tz="Europe/Berlin")
    assert isinstance(cron, CronSchedule) and cron.tz == "Europe/Berlin"
    assert cron.next_after(NOW) == dt.datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
    once = parse_spec("once 2026-07-01T09:00", default_tz="Europe/Berlin")
    assert once.at.astimezone(UTC) == dt.datetime(2026, 7, 1, 7, 0, tzinfo=UTC)  # CEST
    assert once.spec == "once 2026-07-01T09:00 Europe/Berlin"


def test_an_explicit_zone_wins_over_the_default():
    kw = {"default_tz": "Europe/Berlin"}
    assert parse_spec("daily 09:00 UTC", **kw).spec == "daily 09:00 UTC"
    assert parse_spec("daily 09:00 America/New_York", **kw).spec == (
        "daily 09:00 America/New_York"
    )
    assert parse_spec("cron 0 9 * * * UTC", **kw).tz == "UTC"
    once = parse_spec("once 2026-07-01T09:00 UTC", **kw)
    assert once.at == dt.datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
    assert parse_spec("once 2026-07-01T09:00+00:00", **kw).at.utcoffset() == dt.timedelta(0)
    assert parse_spec("every 1h", **kw) == parse_spec("every 1h")  # an interval has no zone


def test_a_default_zone_with_dst_follows_the_clock_change():
    daily = parse_spec("daily 09:00", default_tz="America/New_York")
    fires = daily.preview(3, dt.datetime(2026, 3, 5, 15, tzinfo=UTC))
    assert [f.astimezone(UTC).hour for f in fires] == [14, 14, 13]  # EST, EST, then EDT
    assert all(f.astimezone(NEW_YORK).time() == dt.time(9, 0) for f in fires)
    gap = parse_spec("once 2026-03-08T02:30", default_tz="America/New_York")
    assert gap.spec == "once 2026-03-08T03:00 America/New_York"  # moved out of the gap


def test_a_bad_default_zone_is_one_line():
    message = refused("daily 09:00", default_tz="Nowhere/Atall")
    assert message == "unknown time zone 'Nowhere/Atall'"


# ---------------------------------------------------------------- settings


async def _noop(ctx):
    return None


def settings_with(timezones: dict[int, str]) -> Settings:
    settings = Settings(config=None)  # effective() reads only the cache
    settings.globals = {**GLOBAL_DEFAULTS, "default_schedules": {}, "global_tasks": {}}
    settings.timezones = dict(timezones)
    return settings


def test_default_schedules_run_in_each_guilds_zone():
    midnight = TaskSpec(name="nightly", run=_noop, description="d", default_schedule="daily 00:00")
    settings = settings_with({1: "Europe/Berlin"})
    berlin = settings.effective(midnight, 1).schedule
    assert berlin == DailySchedule([dt.time(0, 0, tzinfo=BERLIN)])
    assert berlin.next_after(NOW) == dt.datetime(2026, 1, 1, 23, 0, tzinfo=UTC)
    assert settings.effective(midnight, 2).schedule.spec == "daily 00:00 UTC"  # no zone: UTC
    # The owner's default (saved zone-less by an older version, say) follows the guild too;
    # a guild's own saved spec names its zone and keeps it.
    settings.globals["default_schedules"]["nightly"] = "daily 06:00"
    assert settings.effective(midnight, 1).schedule.spec == "daily 06:00 Europe/Berlin"
    settings.guilds[1] = {"nightly": {"schedule": "daily 06:00 UTC"}}
    assert settings.effective(midnight, 1).schedule.spec == "daily 06:00 UTC"
    # A global task has no guild: UTC.
    global_task = TaskSpec(
        name="sweep", run=_noop, description="d", default_schedule="daily 00:00", scope="global"
    )
    assert settings.effective(global_task, None).schedule.spec == "daily 00:00 UTC"


def test_the_parse_cache_is_keyed_by_text_and_zone():
    settings = settings_with({})
    utc = settings.schedule_of("daily 00:00")
    berlin = settings.schedule_of("daily 00:00", "Europe/Berlin")
    assert utc.spec == "daily 00:00 UTC" and berlin.spec == "daily 00:00 Europe/Berlin"
    assert settings.schedule_of("daily 00:00") is utc
    assert settings.schedule_of("daily 00:00", "Europe/Berlin") is berlin


# ---------------------------------------------------------------- through Red


def in_world(test):
    """Run ``test(world)`` in a fresh Red with taskcog loaded (see test_cog_simcord.in_world)."""

    async def run(tmp_path):
        async with red_world(tmp_path) as w:
            assert "Loaded `taskcog`" in await w.load()
            await w.env.advance_time(1)
            await test(w)

    run.__name__ = test.__name__
    run.__doc__ = test.__doc__
    return run


async def one_line(w, actor, content: str) -> str:
    """The single reply to ``content``: one line, within the limit, pinging nobody."""
    replies = await w.say(actor, w.chan_a, content)
    assert len(replies) == 1, [m.content for m in replies]
    message = replies[0]
    assert not message.embeds, "a help page, not a one-line reply"
    assert 0 < len(message.content) <= 2000 and "\n" not in message.content, message.content
    assert "[p]" not in message.content
    stored = w.env.backend.messages[message.channel.id][message.id]
    assert not stored.ping_user_ids and not stored.ping_role_ids and not stored.mention_everyone
    return message.content


def preview_times(reply: str) -> list[dt.datetime]:
    """The fire times a schedule reply previews (Discord timestamps, ``<t:…:F>``)."""
    stamps = re.findall(r"<t:(\d+):F>", reply)
    return [dt.datetime.fromtimestamp(int(s), UTC) for s in stamps]


def saved(w, task: str = "housekeeping", guild=None) -> str | None:
    spec = w.cog.registry.get(task)
    return w.cog.settings.raw(spec, (guild or w.guild_a).id)["schedule"]


async def stored_zone(w, guild=None):
    return await w.cog.config.guild_from_id((guild or w.guild_a).id).timezone()


@in_world
async def test_a_berlin_server_schedules_daily_at_berlin_time(world):
    w = world
    shown = await one_line(w, w.admin_a, "!taskset timezone")
    assert "time zone is UTC (default)" in shown
    set_reply = await one_line(w, w.admin_a, "!taskset timezone europe/berlin")
    assert "time zone is Europe/Berlin (it is 01:00 there)" in set_reply  # 00:00:01 UTC
    assert await stored_zone(w) == "Europe/Berlin"
    assert "Europe/Berlin" in await one_line(w, w.admin_a, "!taskset timezone")

    reply = await w.reply(w.admin_a, w.chan_a, "!taskset schedule housekeeping daily 09:00")
    assert "`housekeeping` now runs daily 09:00 Europe/Berlin" in reply, reply
    fires = preview_times(reply)
    assert len(fires) == 3
    assert fires[0] == dt.datetime(2026, 1, 1, 8, 0, tzinfo=UTC)  # 09:00 CET
    assert all(f.astimezone(BERLIN).time() == dt.time(9, 0) for f in fires)
    assert saved(w) == "daily 09:00 Europe/Berlin"
    show = await w.reply(w.admin_a, w.chan_a, "!taskset show")
    assert "daily 09:00 Europe/Berlin" in show and "**Time zone:** Europe/Berlin" in show
    live = w.cog.supervisor.get_status("housekeeping", w.guild_a.id)
    assert live.next_run == dt.datetime(2026, 1, 1, 8, 0, tzinfo=UTC)

    # An explicit zone wins; the other guild and the bot-wide default stay in UTC.
    explicit = await w.reply(w.admin_a, w.chan_a, "!taskset schedule housekeeping daily 09:00 UTC")
    assert "daily 09:00 UTC" in explicit and saved(w) == "daily 09:00 UTC"
    other = await w.reply(w.admin_b, w.chan_b, "!taskset schedule housekeeping cron 0 9 * * *")
    assert "(UTC)" in other and saved(w, guild=w.guild_b) == "cron 0 9 * * * UTC"
    # A bot-wide default written without a zone runs in each server's zone.
    owner = await w.reply(w.owner, w.chan_a, "!taskset global default housekeeping daily 09:00")
    assert "in each server's zone" in owner, owner
    assert w.cog.settings.globals["default_schedules"]["housekeeping"] == "daily 09:00"
    await w.reply(w.admin_a, w.chan_a, "!taskset reset housekeeping")
    live = w.cog.supervisor.get_status("housekeeping", w.guild_a.id)
    assert live.next_run == dt.datetime(2026, 1, 1, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    zoned = await w.reply(
        w.owner, w.chan_a, "!taskset global default housekeeping daily 09:00 UTC"
    )
    assert "each server" not in zoned
    assert w.cog.settings.globals["default_schedules"]["housekeeping"] == "daily 09:00 UTC"

    # The zone persists: a reload reads it back from Config.
    assert "Reloaded `taskcog`" in await w.reply(w.owner, w.chan_a, "!reload taskcog")
    assert "Europe/Berlin" in await one_line(w, w.admin_a, "!taskset timezone")
    cron = await w.reply(w.admin_a, w.chan_a, "!taskset schedule housekeeping cron 30 7 * * *")
    assert "cron 30 7 \\* \\* \\* (Europe/Berlin)" in cron, cron
    assert preview_times(cron)[0] == dt.datetime(2026, 1, 1, 6, 30, tzinfo=UTC)


@in_world
async def test_a_zone_with_dst_saves_local_times_that_follow_the_clock_change(world):
    w = world
    await one_line(w, w.admin_a, "!taskset timezone America/New_York")
    # 02:30 does not exist on 2026-03-08 in New York: it runs at 03:00 EDT (07:00 UTC).
    schedule = "!taskset schedule housekeeping "
    gap = await w.reply(w.admin_a, w.chan_a, schedule + "once 2026-03-08T02:30")
    assert "once 2026-03-08 03:00 America/New\\_York" in gap, gap
    assert preview_times(gap) == [dt.datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]
    assert saved(w) == "once 2026-03-08T03:00 America/New_York"
    summer = await w.reply(w.admin_a, w.chan_a, schedule + "once 2026-07-04T09:00")
    assert preview_times(summer) == [dt.datetime(2026, 7, 4, 13, 0, tzinfo=UTC)]  # EDT
    winter = await w.reply(w.admin_a, w.chan_a, schedule + "daily 09:00")
    assert preview_times(winter)[0] == dt.datetime(2026, 1, 1, 14, 0, tzinfo=UTC)  # EST


@in_world
async def test_a_bad_zone_is_refused_in_one_line_and_saves_nothing(world):
    from discord.ext import commands

    w = world
    await one_line(w, w.admin_a, "!taskset timezone Europe/Berlin")
    text = await one_line(w, w.admin_a, "!taskset timezone Mars/Olympus_Mons")
    assert text.endswith(
        "Unknown time zone 'Mars/Olympus\\_Mons': use an IANA name such as Europe/Berlin."
    ), text
    hostile = await one_line(w, w.admin_a, f"!taskset timezone <@{w.admin_b.id}>" + "x" * 300)
    assert "Unknown time zone" in hostile and "…" in hostile
    assert len(hostile) < 250
    for bad in ("../../etc/passwd", "+25:00", "Europe/", "**bold**"):
        assert "Unknown time zone" in await one_line(w, w.admin_a, f"!taskset timezone {bad}")
    cursor = w.env.error_cursor
    extra = await one_line(w, w.admin_a, "!taskset timezone Europe/Paris now")
    assert "Too many arguments" in extra
    errors = w.env.errors[cursor:]
    assert errors and all(isinstance(e, commands.TooManyArguments) for e in errors), errors
    assert await stored_zone(w) == "Europe/Berlin"
    assert w.cog.settings.timezone_of(w.guild_a.id) == "Europe/Berlin"


@in_world
async def test_once_in_2h_is_saved_as_an_absolute_time_and_status_shows_it(world):
    w = world
    now = w.env.now()
    due = now + dt.timedelta(hours=2)
    if due.microsecond:
        due = due.replace(microsecond=0) + dt.timedelta(seconds=1)
    reply = await w.reply(w.admin_a, w.chan_a, "!taskset schedule housekeeping once in 2h")
    when = due.strftime("%Y-%m-%d %H:%M:%S") if due.second else due.strftime("%Y-%m-%d %H:%M")
    assert f"`housekeeping` now runs once {when} UTC" in reply, reply
    assert preview_times(reply) == [due]
    assert saved(w) == OnceSchedule(due).spec and saved(w).startswith("once 2026-01-01T02:00")
    status = await w.reply(w.admin_a, w.chan_a, "!tasks status")
    assert f"once {when} UTC" in status, status
    assert w.cog.supervisor.get_status("housekeeping", w.guild_a.id).next_run == due

    # In a Berlin server the same words give a Berlin time; out-of-bounds delays are refused.
    await one_line(w, w.admin_a, "!taskset timezone Europe/Berlin")
    berlin = await w.reply(w.admin_a, w.chan_a, "!taskset schedule housekeeping once in 90m")
    assert "Europe/Berlin" in berlin and saved(w).endswith(" Europe/Berlin")
    before = saved(w)
    for words, expected in (
        ("once in 0s", "is not in the future"),
        ("once in 400d", "Once in 400d is longer than the maximum of 366d"),
        ("once in later", "Bad duration 'later'"),
    ):
        text = await one_line(w, w.admin_a, f"!taskset schedule housekeeping {words}")
        assert expected in text, text
    assert saved(w) == before


@in_world
async def test_reset_goes_back_to_utc_and_defaults_follow_the_zone(world):
    w = world

    async def nightly_body(ctx):
        return None

    nightly = TaskSpec(
        name="nightly",
        run=nightly_body,
        description="test task",
        default_schedule="daily 00:00",
        owner="Tests",
    )
    await w.cog.register(nightly)
    await w.env.settle()
    midnight_utc = dt.datetime(2026, 1, 2, 0, 0, tzinfo=UTC)
    assert w.cog.supervisor.get_status("nightly", w.guild_a.id).next_run == midnight_utc

    await one_line(w, w.admin_a, "!taskset timezone Europe/Berlin")
    # The default (no zone written) now means Berlin's midnight; the running job re-read it.
    assert w.cog.supervisor.get_status("nightly", w.guild_a.id).next_run == dt.datetime(
        2026, 1, 1, 23, 0, tzinfo=UTC
    )
    assert "daily 00:00 Europe/Berlin" in await w.reply(
        w.admin_a, w.chan_a, "!tasks status nightly"
    )
    assert w.cog.supervisor.get_status("nightly", w.guild_b.id).next_run == midnight_utc

    reset = await one_line(w, w.admin_a, "!taskset timezone reset")
    assert "time zone is UTC (default)" in reset
    assert await stored_zone(w) is None and w.guild_a.id not in w.cog.settings.timezones
    assert w.cog.supervisor.get_status("nightly", w.guild_a.id).next_run == midnight_utc
    reply = await w.reply(w.admin_a, w.chan_a, "!taskset schedule housekeeping daily 09:00")
    assert "daily 09:00 UTC" in reply and saved(w) == "daily 09:00 UTC"
    # Naming UTC is the same as the default.
    await one_line(w, w.admin_a, "!taskset timezone utc")
    assert await stored_zone(w) is None


@in_world
async def test_a_member_cannot_set_the_zone(world):
    w = world
    replies = await w.say(w.member_a, w.chan_a, "!taskset timezone Europe/Berlin")
    assert not any("time zone" in m.content for m in replies)
    w.refused()  # Red's permission check refused the plain member
    assert await stored_zone(w) is None and w.cog.settings.timezones == {}
    assert "UTC (default)" in await one_line(w, w.admin_a, "!taskset timezone")
