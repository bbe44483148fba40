"""Bad and hostile input through a real Red 3.5 on simcord: each is refused in one line before
anything is saved, every reply fits in a Discord message, repeated user text pings nobody and
renders as typed, and one bad saved value never breaks ``[p]tasks status`` for a whole guild."""

from __future__ import annotations

import pytest
from discord.ext import commands
from redharness import red_world

pytestmark = pytest.mark.asyncio


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


def assert_fits_and_pings_nobody(w, messages) -> None:
    for message in messages:
        assert 0 < len(message.content) <= 2000, len(message.content)
        assert "[p]" not in message.content, message.content
        stored = w.env.backend.messages[message.channel.id][message.id]
        assert not stored.ping_user_ids and not stored.ping_role_ids, message.content
        assert not stored.mention_everyone
        assert not stored.allowed_mentions.allows_user(w.admin_b.id)  # sent with none allowed


async def one_line(w, actor, content: str, channel=None) -> str:
    """The single reply to ``content``: one line, within the limit, pinging nobody."""
    replies = await w.say(actor, channel or w.chan_a, content)
    assert len(replies) == 1, [m.content for m in replies]
    assert_fits_and_pings_nobody(w, replies)
    assert not replies[0].embeds, "a help page, not a one-line error"
    text = replies[0].content
    assert "\n" not in text, text
    return text


def acknowledge(w, since: int, *kinds: type) -> None:
    """The argument errors a test provoked since ``since`` (an error cursor), each answered in
    one line, are all of ``kinds``; reading them acknowledges them."""
    errors = w.env.errors[since:]
    assert errors and all(isinstance(e, kinds) for e in errors), errors


def command_failures(w) -> list[BaseException]:
    """Errors that escaped a command (Red's 'Error in command'); reading acknowledges all."""
    from discord.ext.commands import CommandInvokeError

    return [e for e in w.env.errors if isinstance(e, CommandInvokeError)]


@in_world
async def test_out_of_range_values_are_refused_in_one_line_and_change_nothing(world):
    w = world
    cog = w.cog
    housekeeping = cog.registry.get("housekeeping")
    before = cog.settings.raw(housekeeping, w.guild_a.id)
    cases = {
        "!taskset interval housekeeping 99999999h": (
            "Interval 99999999h is longer than the maximum of 366d"
        ),
        "!taskset schedule housekeeping every 99999999h": (
            "Interval 99999999h is longer than the maximum of 366d"
        ),
        "!taskset schedule housekeeping every 1h jitter 99999999h": (
            "Jitter 99999999h is longer than the maximum of 366d"
        ),
        "!taskset schedule housekeeping every 1h jitter 2h": (
            "Jitter 2h is longer than the interval 1h"
        ),
        "!taskset schedule housekeeping daily 09:00 jitter 2h": (
            "Jitter 2h is longer than the maximum of 1h for a daily schedule"
        ),
        "!taskset schedule housekeeping every " + "1" * 1900: "is longer than the maximum of 366d",
        "!taskset schedule housekeeping once 9999-12-31T23:59 -12:00": (
            "is out of range: use a year from 1970 to 9998"
        ),
        "!taskset schedule housekeeping once 0001-01-01T00:00 +05:00": "is out of range",
    }
    for command, expected in cases.items():
        text = await one_line(w, w.admin_a, command)
        assert expected in text, (command[:60], text)
        assert "inf" not in text
    owner_text = await one_line(w, w.owner, "!taskset global default housekeeping every 9999d")
    assert "Interval 9999d is longer than the maximum of 366d" in owner_text
    assert cog.settings.raw(housekeeping, w.guild_a.id) == before
    assert cog.settings.globals["default_schedules"] == {}
    assert command_failures(w) == []
    # The guild is fine afterwards.
    assert "every 6h" in await w.reply(w.admin_a, w.chan_a, "!tasks status")
    assert "every 6h" in await w.reply(w.admin_a, w.chan_a, "!taskset show")


@in_world
async def test_a_saved_huge_jitter_falls_back_to_the_default_even_after_a_reload(world):
    w = world
    cog = w.cog
    # What an older taskcog saved without complaint; it then broke status for the whole guild.
    await cog.config.guild_from_id(w.guild_a.id).tasks.set(
        {
            "housekeeping": {
                "enabled": None,
                "schedule": "every 1h jitter 99999999h",
                "channel": None,
                "options": {},
            }
        }
    )
    assert "Reloaded `taskcog`" in await w.reply(w.owner, w.chan_a, "!reload taskcog")
    await w.env.advance_time(1)
    for _ in range(3):  # the old failure depended on the random jitter drawn
        status = await w.say(w.admin_a, w.chan_a, "!tasks status")
        assert_fits_and_pings_nobody(w, status)
        text = "\n".join(m.content for m in status)
        assert "**housekeeping** (sleeping) · every 6h" in text and "killfeed" in text, text
    shown = await w.reply(w.admin_a, w.chan_a, "!taskset show")
    assert "every 6h (built-in default; saved schedule invalid)" in shown, shown
    detail = await w.reply(w.admin_a, w.chan_a, "!tasks status housekeeping")
    assert "**Next run:** <t:" in detail, detail
    assert "(built-in default)" in await w.reply(w.admin_b, w.chan_b, "!taskset show")
    assert command_failures(w) == []
    # Saving a valid schedule replaces the bad one.
    assert "now runs every 2h" in await w.reply(
        w.admin_a, w.chan_a, "!taskset interval housekeeping 2h"
    )
    assert "every 2h (guild)" in await w.reply(w.admin_a, w.chan_a, "!taskset show")


@in_world
async def test_one_job_whose_status_cannot_be_read_does_not_break_the_guild(world):
    from taskcog.engine.schedules import IntervalSchedule

    w = world
    cog = w.cog
    spec = cog.registry.get("housekeeping")
    await w.reply(w.admin_a, w.chan_a, "!taskset interval housekeeping 1h")
    # A value "somehow" out of range, past every validator: its next run (plus a random draw
    # from this jitter) lands past the year 9999 all but certainly (odds 1 - 1e-289).
    broken = IntervalSchedule(3600)
    broken._jitter = 1e300
    key = ("every 1h", "UTC", spec.min_interval)
    good = cog.settings._checked[key]
    cog.settings._checked[key] = broken
    await cog.supervisor.refresh("housekeeping", w.guild_a.id)
    with pytest.raises((ValueError, OverflowError)):
        cog.supervisor.get_status("housekeeping", w.guild_a.id)  # the job really is broken
    try:
        status = await w.say(w.admin_a, w.chan_a, "!tasks status")
        assert_fits_and_pings_nobody(w, status)
        text = "\n".join(m.content for m in status)
        assert "**housekeeping** (unavailable)" in text and "**killfeed** (sleeping)" in text
        assert "housekeeping" in await w.reply(w.admin_a, w.chan_a, "!taskset show")
        detail = await w.reply(w.admin_a, w.chan_a, "!tasks status housekeeping")
        assert "**State:**" in detail and "unavailable" in detail
        assert "(sleeping)" in await w.reply(w.admin_b, w.chan_b, "!tasks status")
        assert command_failures(w) == []
    finally:
        cog.settings._checked[key] = good
        await cog.supervisor.refresh("housekeeping", w.guild_a.id)


@in_world
async def test_a_job_that_cannot_be_shown_gets_a_line_saying_so(world):
    from taskcog.engine.schedules import IntervalSchedule

    class Garbled(IntervalSchedule):
        """A schedule that runs but cannot describe itself: formatting it raises."""

        __slots__ = ()

        def describe(self) -> str:
            raise ValueError("garbled")

    w = world
    cog = w.cog
    spec = cog.registry.get("housekeeping")
    await w.reply(w.admin_a, w.chan_a, "!taskset interval housekeeping 1h")
    key = ("every 1h", "UTC", spec.min_interval)
    good = cog.settings._checked[key]
    cog.settings._checked[key] = Garbled(3600)
    unshowable = "**housekeeping**: its status cannot be shown right now"
    try:
        status = await w.reply(w.admin_a, w.chan_a, "!tasks status")
        assert unshowable in status and "**killfeed** (sleeping)" in status, status
        shown = await w.reply(w.admin_a, w.chan_a, "!taskset show")
        assert unshowable in shown and "**killfeed** (this server)" in shown, shown
        assert unshowable in await w.reply(w.admin_a, w.chan_a, "!tasks status housekeeping")
        assert command_failures(w) == []
    finally:
        cog.settings._checked[key] = good


@in_world
async def test_every_reply_fits_and_repeated_input_cannot_ping_or_format(world):
    w = world
    long_name = await one_line(w, w.admin_a, "!tasks status " + "x" * 1980)
    assert "Unknown task 'xxx" in long_name and "…'" in long_name and len(long_name) < 300
    mention = f"<@{w.admin_b.id}>"
    pinged = await one_line(w, w.admin_a, f"!tasks status {mention}")
    assert "Unknown task" in pinged and mention not in pinged
    bold = await one_line(w, w.admin_a, "!tasks status **bold**")
    assert "\\*\\*bold\\*\\*" in bold
    fields = ",".join(["1"] * 950)
    cron = await one_line(w, w.admin_a, f"!taskset schedule housekeeping cron {fields} * * * *")
    assert "Bad cron expression" in cron and "longer than 100 characters" in cron
    zone = await one_line(w, w.admin_a, f"!taskset schedule housekeeping daily 09:00 {mention}")
    assert "Unknown time zone" in zone and mention not in zone
    lane = await one_line(w, w.owner, f"!taskset global pool {mention} 3")
    assert "Unknown lane" in lane and mention not in lane
    everyone = await one_line(w, w.admin_a, "!tasks status @everyone")
    assert "@everyone" not in everyone  # escaped with a zero-width space
    # A cron schedule's stars are shown as typed, not as italics.
    saved = await w.say(w.admin_a, w.chan_a, "!taskset schedule housekeeping cron */30 * * * *")
    assert_fits_and_pings_nobody(w, saved)
    assert "cron \\*/30 \\* \\* \\* \\*" in saved[0].content


@in_world
async def test_long_status_lists_are_paged_within_the_limit(world):
    w = world
    for n in range(12):
        w.env.create_guild(name=f"{n:02d} <@{w.admin_b.id}> **loud** " + "g" * 70)
    await w.env.settle()
    pages = await w.say(w.owner, w.chan_a, "!tasks status all")
    assert len(pages) == 1 and pages[0].components  # the first page of a menu
    assert_fits_and_pings_nobody(w, pages)
    assert "\\*\\*loud\\*\\*" in pages[0].content
    assert "Page 1/" in pages[0].content


@in_world
async def test_channel_errors_are_one_line_not_the_help_page(world):
    w = world
    cog = w.cog
    killfeed = cog.registry.get("killfeed")
    elsewhere = w.guild_b.create_text_channel("elsewhere")
    voice = w.guild_a.create_voice_channel("voice")
    cases = {
        f"!taskset channel killfeed {elsewhere.mention}": (
            "That channel is in another server: pick one in this server."
        ),
        f"!taskset channel killfeed {elsewhere.id}": "in another server",
        "!taskset channel killfeed 123456789012345678": (
            "I cannot find a channel '123456789012345678' in this server."
        ),
        "!taskset channel killfeed #nope": "I cannot find a channel '\\#nope' in this server.",
        f"!taskset channel killfeed {voice.mention}": "is not a text channel or thread.",
        f"!taskset channel killfeed {w.chan_a.mention} extra": "Too many arguments",
        f"!taskset channel housekeeping {w.chan_a.mention}": (
            "`housekeeping` never posts anything, so it has no channel to set."
        ),
    }
    for command, expected in cases.items():
        text = await one_line(w, w.admin_a, command)
        assert expected in text, (command, text)
    assert cog.settings.raw(killfeed, w.guild_a.id)["channel"] is None
    assert cog.settings.raw(cog.registry.get("housekeeping"), w.guild_a.id)["channel"] is None
    acknowledge(w, 0, commands.BadUnionArgument, commands.TooManyArguments)
    ok = await one_line(w, w.admin_a, f"!taskset channel killfeed {w.chan_a.mention}")
    assert "`killfeed` now posts in" in ok
    assert cog.settings.raw(killfeed, w.guild_a.id)["channel"] == w.chan_a.id


@in_world
async def test_extra_arguments_are_refused_in_one_line(world):
    from discord.ext.commands import TooManyArguments

    w = world
    cog = w.cog
    await w.reply(w.admin_a, w.chan_a, "!taskset interval housekeeping 2h")
    assert "Unknown option 'bogus'" in await one_line(
        w, w.admin_a, "!tasks status housekeeping bogus"
    )
    cursor = w.env.error_cursor
    cases = {
        "!tasks stop housekeeping 123 bogus": "`!tasks stop <task> [server]`",
        "!tasks status housekeeping all more": "`!tasks status [task] [scope]`",
        "!taskset reset housekeeping please": "`!taskset reset <task>`",
        "!taskset disable housekeeping now": "`!taskset disable <task>`",
        "!taskset show everything": "`!taskset show`",
    }
    for command, usage in cases.items():
        text = await one_line(w, w.admin_a, command)
        assert text.endswith(f"Too many arguments. Use: {usage}"), (command, text)
    assert "`!taskset global threshold <failures>`" in await one_line(
        w, w.owner, "!taskset global threshold 3 4"
    )
    assert "`!tasks pool`" in await one_line(w, w.owner, "!tasks pool now")
    errors = w.env.errors_since(cursor)
    assert len(errors) == 7 and all(isinstance(e, TooManyArguments) for e in errors)
    acknowledge(w, cursor, TooManyArguments)
    # Nothing happened: still running, enabled, on 2h, threshold unchanged.
    assert cog.supervisor.get_status("housekeeping", w.guild_a.id).state.value == "sleeping"
    raw = cog.settings.raw(cog.registry.get("housekeeping"), w.guild_a.id)
    assert raw["schedule"] == "every 2h" and raw["enabled"] is None
    assert cog.settings.globals["failure_threshold"] == 5
    # Wrong types get one line too.
    cursor = w.env.error_cursor
    assert "'abc' is not a whole number." in await one_line(
        w, w.owner, "!taskset global pool parse abc"
    )
    assert "'maybe' is not on or off." in await one_line(
        w, w.owner, "!taskset global alerts maybe"
    )
    acknowledge(w, cursor, commands.BadArgument)


@in_world
async def test_unknown_task_lists_only_the_tasks_the_invoker_may_see(world):
    w = world
    admin = await one_line(w, w.admin_a, "!tasks stop nosuch")
    assert admin.endswith(
        "Unknown task 'nosuch'. Known tasks: history, housekeeping, killfeed, leaderboard, "
        "serverlog."
    )
    owner = await one_line(w, w.owner, "!tasks stop nosuch")
    assert owner.endswith(
        "Known tasks: checkpoint, history, housekeeping, killfeed, leaderboard, serverlog."
    )


@in_world
async def test_counts_say_one_run_and_two_runs(world):
    w = world
    assert "up to 1 game server." in await w.reply(w.owner, w.chan_a, "!taskset global servers 1")
    assert "after 1 failure in a row." in await w.reply(
        w.owner, w.chan_a, "!taskset global threshold 1"
    )
    assert "now has 1 worker." in await w.reply(w.owner, w.chan_a, "!taskset global pool db 1")
    assert "now has 2 workers." in await w.reply(w.owner, w.chan_a, "!taskset global pool db 2")
    await w.reply(w.admin_a, w.chan_a, "!tasks run housekeeping")
    assert "1 run, 0 failed" in await w.reply(w.admin_a, w.chan_a, "!tasks status")
    await w.reply(w.admin_a, w.chan_a, "!tasks run housekeeping")
    assert "2 runs, 0 failed" in await w.reply(w.admin_a, w.chan_a, "!tasks status")


@in_world
async def test_a_channel_problem_names_the_command_with_no_placeholder(world):
    w = world

    async def post(ctx):
        return None

    from taskcog.red.registry import TaskSpec

    await w.cog.register(
        TaskSpec(
            name="poster",
            run=post,
            description="posts",
            default_schedule="every 1h",
            needs_channel=True,
        )
    )
    text = await one_line(w, w.admin_a, "!tasks run poster")
    assert "No channel is set. Use `taskset channel <task> <channel>`." in text, text
    ok = await one_line(w, w.admin_a, f"!taskset channel poster {w.chan_a.mention}")
    assert "`poster` now posts in" in ok


@in_world
async def test_the_circuit_alert_names_the_restart_command_and_counts_one_time(world):
    w = world

    async def broken(ctx):
        raise RuntimeError("always broken")

    from taskcog.red.registry import TaskSpec

    await w.cog.register(
        TaskSpec(name="brittle", run=broken, description="fails", default_schedule="every 1h")
    )
    assert "after 1 failure in a row" in await w.reply(
        w.owner, w.chan_a, "!taskset global threshold 1"
    )
    await w.reply(w.admin_a, w.chan_a, "!tasks run brittle")
    await w.env.advance_time(61)  # owner alerts gather for a minute
    alerts = [m.content for m in w.owner_user.dm_channel.history() if "brittle" in m.content]
    assert alerts, "no circuit alert"
    assert "in 1 server:" in alerts[0] and "[p]" not in alerts[0]
    assert "`!tasks restart brittle`" in alerts[0]
