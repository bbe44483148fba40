"""Custom tasks through a real Red 3.5 on simcord: guild admins schedule their own tasks."""

from __future__ import annotations

import pytest
from test_cog_simcord import in_world

pytestmark = pytest.mark.asyncio


def bot_posts(w, channel, text):
    return [m for m in channel.history() if m.author.id == w.bot.user.id and text in m.content]


@in_world
async def test_say_task_posts_on_schedule_and_pings_nobody(world):
    w = world
    member = w.member_a
    reply = await w.reply(
        w.admin_a, w.chan_a, f"!taskset custom add hello every 2m say Hi @everyone <@{member.id}>"
    )
    assert "Added `hello`" in reply and "every 2m" in reply, reply
    await w.env.advance_time(5 * 60)
    posts = bot_posts(w, w.chan_a, "Hi @everyone")
    assert 2 <= len(posts) <= 3, [p.content for p in posts]
    stored = w.env.backend.messages[posts[0].channel.id][posts[0].id]
    assert not stored.mention_everyone and not stored.ping_user_ids and not stored.ping_role_ids
    # --ping lets it mention users, but never @everyone for an author without the permission.
    reply = await w.reply(
        w.admin_a, w.chan_a, f"!taskset custom edit hello say --ping Yo @everyone <@{member.id}>"
    )
    assert "Updated `hello`" in reply, reply
    await w.env.advance_time(125)
    pinged = bot_posts(w, w.chan_a, "Yo @everyone")
    stored = w.env.backend.messages[pinged[-1].channel.id][pinged[-1].id]
    assert not stored.mention_everyone and list(stored.ping_user_ids) == [member.id]
    status = await w.reply(w.admin_a, w.chan_a, "!tasks status")
    assert "**hello**" in status
    other = await w.reply(w.admin_b, w.chan_b, "!tasks status")
    assert "hello" not in other  # another server never sees it
    assert "Unknown task 'hello'" in await w.reply(w.admin_b, w.chan_b, "!tasks stop hello")


@in_world
async def test_run_task_invokes_a_real_command_as_its_author_until_the_permission_goes(world):
    w = world
    reply = await w.reply(
        w.admin_a, w.chan_a, "!taskset custom add report every 1m run tasks status housekeeping"
    )
    assert "Added `report`" in reply, reply
    await w.env.advance_time(65)
    reports = bot_posts(w, w.chan_a, "**housekeeping**")
    assert len(reports) == 1, [m.content for m in w.chan_a.history()][-5:]
    first = w.cog.supervisor.get_status("report", w.guild_a.id)
    assert first.last_outcome.value == "ok", (first.last_error, first.needs_setup)
    assert "Runs:" in reports[0].content  # the real [p]tasks status detail view
    # The author loses Manage Server: the task waits in needs setup and runs nothing.
    guild = w.bot.get_guild(w.guild_a.id)
    member = guild.get_member(w.admin_a.id)
    await member.remove_roles(*[r for r in member.roles if r.name == "Mods"])
    await w.env.settle()
    await w.env.advance_time(125)
    assert len(bot_posts(w, w.chan_a, "**housekeeping**")) == 1
    status = w.cog.supervisor.get_status("report", w.guild_a.id)
    assert status.state.value == "needs-setup", [m.content for m in w.chan_a.history()][-3:]
    assert "may not run `tasks status`" in status.needs_setup
    assert status.consecutive_failures == 0 and status.total_failures == 0
    detail = await w.reply(w.owner, w.chan_a, "!tasks status report")
    assert "needs-setup" in detail and "may not run" in detail, detail


@in_world
async def test_an_admin_cannot_schedule_what_only_the_owner_may_run(world):
    w = world
    reply = await w.reply(
        w.admin_a, w.chan_a, "!taskset custom add sneaky every 1h run taskset global custom 99"
    )
    assert "Cannot schedule that" in reply and "\n" not in reply.strip(), reply
    assert w.cog.customs.store.of(w.guild_a.id) == []
    owner = await w.reply(w.owner, w.chan_a, "!taskset custom add ok every 1h run taskset show")
    assert "Added `ok`" in owner, owner


@in_world
async def test_limits_hold_and_bad_input_saves_nothing(world):
    w = world
    cases = {
        "!taskset custom add housekeeping every 1h say x": "built-in task",
        "!taskset custom add Bad! every 1h say x": "Bad name",
        "!taskset custom add fast every 30s say x": "minimum interval is 1m",
        "!taskset custom add typo every 5x say x": "bad duration",
        "!taskset custom add past once 2020-01-01T00:00 UTC say x": "past",
        "!taskset custom add nothing every 1h": "say <text>",
        "!taskset custom add ghost after nosuch say x": "no task 'nosuch'",
        "!taskset custom add gone every 1h run nosuchcommand": "no command",
        "!taskset custom edit nosuch every 1h": "no custom task 'nosuch'",
    }
    for command, expected in cases.items():
        text = await w.reply(w.admin_a, w.chan_a, command)
        assert expected.lower() in text.lower(), (command, text)
        assert "\n" not in text.strip(), (command, text)
    assert w.cog.customs.store.of(w.guild_a.id) == []
    assert "custom tasks" in await w.reply(w.owner, w.chan_a, "!taskset global custom 2")
    for name in ("one", "two"):
        assert "Added" in await w.reply(
            w.admin_a, w.chan_a, f"!taskset custom add {name} once in 2h say {name}"
        )
    assert "the limit" in await w.reply(
        w.admin_a, w.chan_a, "!taskset custom add three every 1h say x"
    )
    assert "already exists" in await w.reply(
        w.admin_a, w.chan_a, "!taskset custom add one every 1h say x"
    )
    # A text over 2000 characters cannot even be typed in Discord; the limit still holds.
    from taskcog.red.commands.custom import BadCustom

    with pytest.raises(BadCustom, match="the most is 2000"):
        await w.cog._custom_action(None, "one", "say", "x" * 2001)
    # A loop of after-dependencies is refused when declared.
    assert "Updated" in await w.reply(w.admin_a, w.chan_a, "!taskset custom edit one after two")
    cycle = await w.reply(w.admin_a, w.chan_a, "!taskset custom edit two after one")
    assert "dependency cycle: two -> one -> two" in cycle, cycle


@in_world
async def test_a_member_cannot_create_one(world):
    w = world
    replies = await w.say(w.member_a, w.chan_a, "!taskset custom add mine every 1h say hi")
    assert not any("Added" in m.content for m in replies)
    w.refused()
    assert w.cog.customs.store.of(w.guild_a.id) == []


@in_world
async def test_custom_tasks_survive_a_reload_and_run_after_their_leader(world):
    w = world
    await w.reply(w.admin_a, w.chan_a, "!taskset custom add thanks after housekeeping say Tidy!")
    await w.reply(w.admin_a, w.chan_a, "!taskset custom add daily daily 09:00 say Morning")
    assert "Reloaded `taskcog`" in await w.reply(w.owner, w.chan_a, "!reload taskcog")
    await w.env.advance_time(1)
    listing = await w.reply(w.admin_a, w.chan_a, "!taskset custom list")
    assert "**thanks**" in listing and "after housekeeping" in listing, listing
    assert "**daily**" in listing and "daily 09:00" in listing
    before = len(bot_posts(w, w.chan_a, "Tidy!"))
    ran = await w.reply(w.admin_a, w.chan_a, "!tasks run housekeeping")
    assert ": ok" in ran, ran
    await w.env.advance_time(2)
    # It ran right after housekeeping succeeded (and once before, if housekeeping's spread
    # first run came early).
    assert len(bot_posts(w, w.chan_a, "Tidy!")) == before + 1
    assert w.cog.supervisor.get_status("thanks", w.guild_a.id).iterations == 1
    detail = await w.reply(w.admin_a, w.chan_a, "!tasks status thanks")
    assert "Depends on:** after housekeeping" in detail, detail
    assert "Removed `thanks`" in await w.reply(
        w.admin_a, w.chan_a, "!taskset custom remove thanks"
    )
    assert w.cog.supervisor.get_status("thanks", w.guild_a.id) is None


@in_world
async def test_owner_sets_the_lag_threshold_and_the_pool_counts_deferred_runs(world):
    w = world
    assert "over 250 ms" in await w.reply(w.owner, w.chan_a, "!taskset global lag 250")
    assert w.cog.supervisor.deferral.threshold == 0.25
    pool = await w.reply(w.owner, w.chan_a, "!tasks pool")
    assert "Deferred low-priority runs: 0 so far" in pool and "over 250 ms" in pool, pool
    bad = await w.reply(w.owner, w.chan_a, "!taskset global lag 5")
    assert "10 to 10000" in bad and "\n" not in bad.strip()
    assert w.cog.settings.globals["lag_threshold_ms"] == 250
    refused = await w.say(w.admin_a, w.chan_a, "!taskset global lag off")
    assert not any("deferred" in m.content for m in refused)
    w.refused()
    assert "no longer deferred" in await w.reply(w.owner, w.chan_a, "!taskset global lag off")
    assert "Reloaded" in await w.reply(w.owner, w.chan_a, "!reload taskcog")
    await w.env.advance_time(1)
    assert w.cog.supervisor.deferral.threshold is None  # the setting persists


@in_world
async def test_run_task_whose_author_left_waits_in_needs_setup_and_runs_nothing(world):
    w = world
    reply = await w.reply(w.admin_a, w.chan_a, "!taskset custom add pinger every 1m run ping")
    assert "Added `pinger`" in reply, reply
    await w.env.advance_time(65)
    assert len([m for m in w.chan_a.history() if m.content == "Pong."]) == 1
    w.guild_a.remove_member(w.admin_a)
    await w.env.settle()
    await w.env.advance_time(125)
    assert len([m for m in w.chan_a.history() if m.content == "Pong."]) == 1
    status = w.cog.supervisor.get_status("pinger", w.guild_a.id)
    assert status.state.value == "needs-setup" and "no longer in this server" in status.needs_setup
    assert status.total_failures == 0
    # A schedule that follows an unknown task, or closes a loop, is refused by taskset too.
    text = await w.reply(w.owner, w.chan_a, "!taskset schedule housekeeping after pinger")
    assert "Updated" not in text and "now runs after pinger" in text, text
    loop = await w.reply(w.owner, w.chan_a, "!taskset custom edit pinger after housekeeping")
    assert "dependency cycle: pinger -> housekeeping -> pinger" in loop, loop
    nosuch = await w.reply(w.owner, w.chan_a, "!taskset schedule housekeeping after nosuch")
    assert "no task 'nosuch'" in nosuch, nosuch


@in_world
async def test_a_task_registered_later_under_a_custom_name_wins_and_reset_is_refused(world):
    from test_cog_simcord import make_spec

    w = world
    assert "Added" in await w.reply(
        w.admin_a, w.chan_a, "!taskset custom add board every 1h say b"
    )
    refused = await w.reply(w.admin_a, w.chan_a, "!taskset reset board")
    assert "is a custom task" in refused, refused
    ran = []

    async def body(ctx):
        ran.append(ctx.guild_id)

    await w.cog.register(make_spec("board", body, owner="Tests"))
    reply = await w.reply(w.admin_a, w.chan_a, "!tasks run board")
    assert "Ran `board`" in reply and ran == [w.guild_a.id], reply
    assert "custom task" not in await w.reply(w.admin_a, w.chan_a, "!tasks status board")


@in_world
async def test_requires_through_the_cog_skips_with_a_reason_and_cycles_are_refused(world):
    from test_cog_simcord import make_spec

    w = world
    posted = []

    async def board(ctx):
        posted.append(ctx.guild_id)

    async def broken(ctx):
        raise RuntimeError("feed down")

    await w.cog.register(make_spec("feed", broken, owner="Tests"))
    await w.cog.register(make_spec("board", board, owner="Tests", requires="feed"))
    await w.env.advance_time(125)
    assert posted == []  # feed never succeeded: every board run was skipped, none failed
    detail = await w.reply(w.admin_a, w.chan_a, "!tasks status board")
    assert "Depends on:** requires feed ok within 2 intervals" in detail, detail
    assert "Last skipped:**" in detail and "feed has not succeeded yet" in detail, detail
    status = w.cog.supervisor.get_status("board", w.guild_a.id)
    assert status.skipped >= 2 and status.total_failures == 0
    await w.cog.register(make_spec("alpha", board, owner="Tests", after="omega"))
    with pytest.raises(ValueError, match="dependency cycle refused: omega -> alpha -> omega"):
        await w.cog.register(make_spec("omega", board, owner="Tests", requires="alpha"))
    assert "omega" not in w.cog.registry and "omega" not in w.cog.supervisor.definitions()


@in_world
async def test_a_lagging_loop_defers_housekeeping_and_the_bot_still_settles(world):
    w = world
    for _ in range(40):  # the monitor saw the loop 500 ms late, again and again
        w.cog.lag.record(0.5)
    await w.reply(w.admin_a, w.chan_a, "!tasks stop housekeeping")
    before = w.cog.supervisor.get_status("housekeeping", w.guild_a.id).iterations
    assert "Started" in await w.reply(w.admin_a, w.chan_a, "!tasks start housekeeping")
    await w.env.advance_time(30)
    status = w.cog.supervisor.get_status("housekeeping", w.guild_a.id)
    assert status.iterations == before and status.deferred == 1, status  # low: it waits
    pool = await w.reply(w.owner, w.chan_a, "!tasks pool")
    assert "Deferred low-priority runs: 1 so far, 1 waiting now" in pool, pool
    detail = await w.reply(w.admin_a, w.chan_a, "!tasks status housekeeping")
    assert "Deferred under load:** 1" in detail, detail
    await w.env.advance_time(300)  # never more than 5 minutes at a time
    assert w.cog.supervisor.get_status("housekeeping", w.guild_a.id).iterations == before + 1


@in_world
async def test_run_task_respects_a_command_disabled_in_the_server_at_every_run(world):
    w = world
    reply = await w.reply(w.admin_a, w.chan_a, "!taskset custom add pinger every 1m run ping")
    assert "Added `pinger`" in reply, reply
    await w.env.advance_time(65)
    pongs = lambda: [m for m in w.chan_a.history() if m.content == "Pong."]  # noqa: E731
    assert len(pongs()) == 1
    # The owner disables `ping` in this server with Red's own command: the next run waits.
    await w.reply(w.owner, w.chan_a, "!command disable server ping")
    before = len(pongs())
    await w.env.advance_time(125)
    assert len(pongs()) == before
    status = w.cog.supervisor.get_status("pinger", w.guild_a.id)
    assert status.state.value == "needs-setup", (
        status.state,
        status.last_error,
        status.total_failures,
    )
    assert "`ping` is disabled in this server" in status.needs_setup
    assert status.total_failures == 0
    # Enabled again: the task runs again on its own, no admin action on the task needed.
    await w.reply(w.owner, w.chan_a, "!command enable server ping")
    await w.env.advance_time(125)
    assert len(pongs()) > before
    assert w.cog.supervisor.get_status("pinger", w.guild_a.id).state.value != "needs-setup"


@in_world
async def test_data_deletion_removes_the_author_and_their_run_task_waits(world):
    w = world
    reply = await w.reply(w.admin_a, w.chan_a, "!taskset custom add pinger every 1m run ping")
    assert "Added `pinger`" in reply, reply
    exported = await w.cog.red_get_data_for_user(user_id=w.admin_a.id)
    assert b"pinger\trun\tping" in exported["custom_tasks.tsv"].getvalue()
    assert await w.cog.red_get_data_for_user(user_id=w.member_a.id) == {}
    await w.cog.red_delete_data_for_user(requester="user_strict", user_id=w.admin_a.id)
    assert await w.cog.red_get_data_for_user(user_id=w.admin_a.id) == {}
    stored = await w.cog.config.guild_from_id(w.guild_a.id).custom_tasks()
    assert stored["pinger"]["author_id"] == 0  # saved, so it holds across a restart
    await w.env.advance_time(65)
    assert not [m for m in w.chan_a.history() if m.content == "Pong."]
    status = w.cog.supervisor.get_status("pinger", w.guild_a.id)
    assert status.state.value == "needs-setup" and status.total_failures == 0
