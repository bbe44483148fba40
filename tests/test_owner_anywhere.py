"""Clear semantics and the owner anywhere, through a real Red on simcord: start on a running
task changes nothing, the owner acts on any server's task by id (from a DM too), a global
default can be reset, and task names autocomplete with what the invoker may see."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from test_cog_simcord import in_world, make_spec

pytestmark = pytest.mark.asyncio


@in_world
async def test_start_on_a_running_task_says_so_and_changes_nothing(world):
    w = world
    before = w.cog.supervisor.get_status("housekeeping", w.guild_a.id).next_run
    reply = await w.reply(w.admin_a, w.chan_a, "!tasks start housekeeping")
    assert "already running" in reply and "Nothing changed" in reply, reply
    after = w.cog.supervisor.get_status("housekeeping", w.guild_a.id)
    assert after.next_run == before and after.last_start is None  # not run, not moved
    await w.reply(w.admin_a, w.chan_a, "!tasks stop housekeeping")
    assert "Started `housekeeping`" in await w.reply(
        w.admin_a, w.chan_a, "!tasks start housekeeping"
    )


@in_world
async def test_the_owner_acts_on_another_servers_task_by_id_from_a_dm(world):
    w = world
    runs: list[int] = []

    async def counted(ctx):
        runs.append(ctx.guild.id)

    await w.cog.register(make_spec("counted", counted, owner="Tests"))
    gid = w.guild_b.id

    async def in_dm(text: str) -> str:
        dm = w.owner_user.dm_channel
        before = {m.id for m in dm.history()}
        await w.owner_user.send_dm(text)
        return "\n".join(
            m.content for m in dm.history() if m.id not in before and m.author.id == w.bot.user.id
        )

    ran = await in_dm(f"!tasks run counted {gid}")
    assert "Ran `counted`" in ran and runs == [gid], ran
    assert "Stopped `counted`" in await in_dm(f"!tasks stop counted {gid}")
    assert w.cog.supervisor.get_status("counted", gid).state.value == "stopped"
    assert w.cog.supervisor.get_status("counted", w.guild_a.id).state.value != "stopped"
    assert "Started `counted`" in await in_dm(f"!tasks start counted {gid}")
    assert "Restarted `counted`" in await in_dm(f"!tasks restart counted {gid}")
    assert "no server with the id '42'" in await in_dm("!tasks run counted 42")
    no_id = await in_dm("!tasks run counted")
    assert "runs per server" in no_id and "<server id>" in no_id, no_id
    # An admin cannot reach another server this way.
    refused = await w.reply(w.admin_a, w.chan_a, f"!tasks stop counted {gid}")
    assert "Only the bot owner" in refused
    assert w.cog.supervisor.get_status("counted", gid).state.value != "stopped"


@in_world
async def test_a_global_default_can_be_reset(world):
    w = world
    await w.reply(w.owner, w.chan_a, "!taskset global default housekeeping every 12h")
    assert "every 12h" in await w.reply(w.admin_a, w.chan_a, "!taskset show")
    reply = await w.reply(w.owner, w.chan_a, "!taskset global default housekeeping reset")
    assert "back to its built-in every 6h" in reply, reply
    show = await w.reply(w.admin_a, w.chan_a, "!taskset show")
    assert "every 6h" in show and "every 12h" not in show


@in_world
async def test_task_names_autocomplete_with_what_the_invoker_may_see(world):
    w = world
    cog = w.cog

    def interaction(member, guild):
        return SimpleNamespace(
            user=member.user if hasattr(member, "user") else member, guild=guild
        )

    owner = await cog._task_choices(interaction(w.owner, w.guild_a), "")
    admin = await cog._task_choices(interaction(w.admin_a, w.guild_a), "")
    assert {c.value for c in owner} >= {"housekeeping", "checkpoint", "killfeed"}
    assert "checkpoint" not in {c.value for c in admin} and "housekeeping" in {
        c.value for c in admin
    }
    assert [
        c.value for c in await cog._task_choices(interaction(w.admin_a, w.guild_a), "kill")
    ] == ["killfeed"]
    in_dm = await cog._task_choices(interaction(w.owner, None), "")
    assert {c.value for c in in_dm} == {"checkpoint"}  # only global tasks make sense in a DM
    command = cog.tasks_run.app_command
    assert "task" in command._params and command._params["task"].autocomplete is not None


@in_world
async def test_a_job_due_within_a_settle_window_runs_only_when_time_advances(world):
    """The engine's timers are virtual in this world: a job due a moment after a command does
    not fire from the wall clock while the command settles (one that fired right at the settle
    deadline failed tests under load); it runs when the test advances the clock."""
    w = world
    await w.reply(w.admin_a, w.chan_a, "!tasks stop housekeeping")
    assert "Started `housekeeping`" in await w.reply(
        w.admin_a, w.chan_a, "!tasks start housekeeping"
    )
    status = w.cog.supervisor.get_status("housekeeping", w.guild_a.id)
    due_in = (status.next_run - w.env.now()).total_seconds()
    assert due_in < 1, due_in  # due at once: a wall-clock timer would fire inside a settle
    await w.env.settle()
    assert w.cog.supervisor.get_status("housekeeping", w.guild_a.id).iterations == 0
    await w.env.advance_time(1)
    assert w.cog.supervisor.get_status("housekeeping", w.guild_a.id).iterations == 1
