"""The owner across guilds, and looking ahead: [p]tasks problems, pause all / resume all,
[p]tasks next and [p]taskset global show, through a real Red on simcord."""

from __future__ import annotations

import pytest
from test_cog_simcord import in_world, make_spec

pytestmark = pytest.mark.asyncio


async def open_circuits(w, name: str) -> None:
    for _ in range(30):
        await w.env.advance_time(60)
        states = {
            w.cog.supervisor.get_status(name, g.id).state.value for g in (w.guild_a, w.guild_b)
        }
        if states == {"circuit-open"}:
            return
    raise AssertionError(f"{name} never opened its circuits: {states}")


@in_world
async def test_problems_lists_only_troubled_jobs_grouped_by_task_and_cause(world):
    w = world
    assert "No problems" in await w.reply(w.owner, w.chan_a, "!tasks problems")

    async def broken(ctx):
        raise RuntimeError("database is on fire")

    async def fine(ctx):
        return "ok"

    await w.cog.register(make_spec("broken", broken, owner="Tests"))
    await w.cog.register(make_spec("fine", fine, owner="Tests"))
    await open_circuits(w, "broken")
    text = await w.reply(w.owner, w.chan_a, "!tasks problems")
    assert "**broken** — circuit open, 2 servers" in text, text
    assert "RuntimeError: database is on fire" in text
    assert w.guild_a.name in text and w.guild_b.name in text
    assert "fine" not in text and "housekeeping" not in text
    admin = await w.say(w.admin_a, w.chan_a, "!tasks problems")
    assert not any("broken" in m.content for m in admin)
    w.refused()  # owner only


@in_world
async def test_pause_all_holds_every_task_until_resume_all(world):
    w = world
    runs = {"n": 0}

    async def counted(ctx):
        runs["n"] += 1

    await w.cog.register(make_spec("counted", counted, owner="Tests"))
    await w.env.advance_time(61)
    assert runs["n"] >= 2  # one per guild
    reply = await w.reply(w.owner, w.chan_a, "!tasks pause all")
    assert "Paused all" in reply and "!tasks resume all" in reply, reply
    held = runs["n"]
    await w.env.advance_time(5 * 60)
    assert runs["n"] == held
    assert "Resumed all" in await w.reply(w.owner, w.chan_a, "!tasks resume all")
    await w.env.advance_time(61)
    assert runs["n"] > held
    bad = await w.reply(w.owner, w.chan_a, "!tasks pause everything")
    assert "Say `!tasks pause all`" in bad and "\n" not in bad.strip()


@in_world
async def test_next_previews_runs_as_discord_timestamps_within_bounds(world):
    w = world
    await w.reply(w.admin_a, w.chan_a, "!taskset schedule housekeeping daily 04:00 UTC")
    text = await w.reply(w.admin_a, w.chan_a, "!tasks next housekeeping 3")
    assert "Next runs of `housekeeping`" in text and text.count("<t:") >= 3, text
    assert "Ask for 1 to 20 runs" in await w.reply(
        w.admin_a, w.chan_a, "!tasks next housekeeping 50"
    )
    default = await w.reply(w.admin_a, w.chan_a, "!tasks next housekeeping")
    assert default.count("\n") >= 5  # header + 5 runs
    await w.reply(w.admin_a, w.chan_a, "!taskset disable housekeeping")
    assert "disabled here" in await w.reply(w.admin_a, w.chan_a, "!tasks next housekeeping")


@in_world
async def test_global_show_lists_every_bot_wide_setting(world):
    w = world
    await w.reply(w.owner, w.chan_a, "!taskset global threshold 7")
    await w.reply(w.owner, w.chan_a, "!taskset global default housekeeping every 12h")
    text = await w.reply(w.owner, w.chan_a, "!taskset global show")
    assert "7 failures in a row" in text and "Owner alerts:** on" in text
    assert "Game servers per server:** 5" in text and "parse 2" in text
    assert "`housekeeping`: every 12h (owner default)" in text
    assert "`checkpoint`: every 10m (built-in)" in text
