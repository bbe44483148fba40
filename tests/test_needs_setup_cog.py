"""Configuration is not failure, through a real Red: a killfeed with a game server but no
channel waits in "needs setup" (no failures, no circuit, no owner DM) and runs at the next tick
once the channel is set, with no restart."""

from __future__ import annotations

import pytest
from redharness import red_world
from sftp_server import PASSWORD, USERNAME
from test_killfeed_cog import append, embeds_in, kill_line, sftp  # noqa: F401 - the fixture

pytestmark = pytest.mark.asyncio


def bot_dms(w, member) -> list[str]:
    channel = member.user.dm_channel if hasattr(member, "user") else member.dm_channel
    if channel is None:
        return []
    return [m.content for m in channel.history() if m.author.id == w.bot.user.id]


async def test_a_killfeed_without_a_channel_waits_for_setup_and_never_alerts(
    tmp_path, sftp  # noqa: F811 - the fixture imported above
):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        reply = await w.reply(
            w.admin_a,
            w.chan_a,
            f"!taskset server add eu1 sftp 127.0.0.1:{sftp.port} {USERNAME} /game",
        )
        assert "I sent you a DM" in reply, reply
        await w.admin_a.send_dm(PASSWORD)
        await w.env.settle()
        await w.reply(w.admin_a, w.chan_a, "!taskset server test eu1")
        assert "Trusted" in await w.reply(w.admin_a, w.chan_a, "!taskset server trust eu1")
        dms_before = len(bot_dms(w, w.owner_user))

        for _ in range(20):  # 20 minutes: 20 killfeed ticks, far past the circuit threshold
            await w.env.advance_time(60)
        status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
        assert "needs-setup" in status and "No channel is set" in status, status
        assert "0 total, 0 in a row" in status, status
        assert len(bot_dms(w, w.owner_user)) == dms_before  # no alert to the owner

        kills = w.guild_a.create_text_channel("kills")
        await w.env.settle()
        await w.reply(w.admin_a, w.chan_a, f"!taskset channel killfeed {kills.mention}")
        await w.env.advance_time(61)  # the next tick runs: no restart needed
        status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
        assert "needs-setup" not in status and "No channel is set" not in status, status
        append(sftp.root_path, kill_line(1))
        await w.env.advance_time(61)
        assert len(embeds_in(kills)) == 1


async def test_a_killfeed_without_game_servers_waits_for_setup(tmp_path):
    host = tmp_path / "host"
    (host / "game" / "deathlogs" / "world_0").mkdir(parents=True)
    (host / "game" / "deathlogs" / "world_0" / "2025.05.15-00.00.00.csv").write_text("")
    async with red_world(tmp_path / "red") as w:
        await w.load()
        kills = w.guild_a.create_text_channel("kills")
        await w.env.settle()
        await w.reply(w.admin_a, w.chan_a, f"!taskset channel killfeed {kills.mention}")
        for _ in range(10):
            await w.env.advance_time(60)
        status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
        assert "needs-setup" in status and "No game servers yet" in status, status
        assert "!taskset server add" in status and "0 total, 0 in a row" in status, status
        added = await w.reply(w.owner, w.chan_a, f"!taskset server add test local {host}")
        assert "Added `test`" in added, added
        await w.env.advance_time(61)
        status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
        assert "needs-setup" not in status and "No game servers yet" not in status, status
