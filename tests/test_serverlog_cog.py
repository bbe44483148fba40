"""The serverlog task through a real Red on simcord, reading the in-process SFTP server.

An admin points the server-log feed at a channel; joins are posted with names, ``[p]killfeed
online`` lists who is on, the voice channel shows the count (renamed at most every 5 minutes
of virtual time), bad settings get one line, and both feeds may run every 2 s.
"""

from __future__ import annotations

import pytest
from redharness import red_world
from test_killfeed_cog import setup_server, sftp  # noqa: F401 - the fixture

pytestmark = pytest.mark.asyncio

A = "0002a1b2c3d4e5f60718293a4b5c6d7e"
B = "0002ffeeddccbbaa9988776655443322"


def join(second: int, name: str, pid: str) -> str:
    at = f"[2025.05.17-03.00.{second:02d}:000][{second:3d}]"
    return (
        f"{at}LogSFPS: [ASFPSGameSession::OnLogin] Login = {name}, ID = |{pid}\n"
        f"{at}LogOnline: Warning: Player |{pid} successfully registered!\n"
    )


def append_log(server, text: str) -> None:
    with open(server.root_path / "game" / "Logs" / "Deadside.log", "a", encoding="utf-8") as fh:
        fh.write(text)


def titles(channel) -> list[str]:
    return [e.title for m in channel.history() for e in m.embeds]


async def test_serverlog_posts_joins_lists_who_is_online_and_names_the_voice_channel(
    tmp_path, sftp  # noqa: F811
):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        await setup_server(w, sftp)
        log = w.guild_a.create_text_channel("server-log")
        voice = w.guild_a.create_voice_channel("eu1 status")
        await w.env.settle()
        assert "now posts in" in await w.reply(
            w.admin_a, w.chan_a, f"!taskset channel serverlog {log.mention}"
        )
        first = await w.reply(w.admin_a, w.chan_a, "!tasks run serverlog")
        assert ": ok" in first, first
        assert titles(log) == []  # nothing from before the server was added

        append_log(sftp, join(1, "Alice @everyone", A))
        ran = await w.reply(w.admin_a, w.chan_a, "!tasks run serverlog")
        assert "posted 1 server-log post" in ran, ran
        assert titles(log) == ["🟢 Alice @\u200beveryone joined"]

        online = await w.reply(w.member_a, w.chan_a, "!killfeed online")
        assert "EU1 1" in online and "Alice @\u200beveryone — 0m" in online, online

        # Voice channel: renamed at once, then at most every 5 minutes (virtual time).
        reply = await w.reply(w.admin_a, w.chan_a, f"!taskset serverlog voice {voice.mention}")
        assert "player count" in reply, reply
        await w.reply(w.admin_a, w.chan_a, "!taskset serverlog maxplayers eu1 50")
        await w.reply(w.admin_a, w.chan_a, "!tasks run serverlog")
        channel = w.bot.get_channel(voice.id)
        assert channel.name == "🟢 EU1 1/50"
        append_log(sftp, join(2, "Bob", B))
        await w.reply(w.admin_a, w.chan_a, "!tasks run serverlog")
        assert titles(log)[-1] == "🟢 Bob joined"
        assert w.bot.get_channel(voice.id).name == "🟢 EU1 1/50"  # throttled
        await w.env.advance_time(301)
        await w.reply(w.admin_a, w.chan_a, "!tasks run serverlog")
        assert w.bot.get_channel(voice.id).name == "🟢 EU1 2/50"

        status = await w.reply(w.admin_a, w.chan_a, "!tasks status serverlog")
        assert "eu1:" in status and "lines/min" in status and "poll" in status, status


async def test_settings_refuse_bad_input_in_one_line_and_allow_2s(tmp_path, sftp):  # noqa: F811
    async with red_world(tmp_path / "red") as w:
        await w.load()
        await setup_server(w, sftp)
        cases = {
            "!taskset serverlog events joins,bogus": "Unknown event 'bogus'",
            "!taskset serverlog maxplayers eu1 lots": "is not a player limit",
            "!taskset serverlog voice #nope": "cannot find that voice channel",
            "!taskset serverlog voice off nope": "Unknown game server 'nope'",
            "!taskset announce longshot far": "is not a distance",
            "!taskset announce streaks 5,x": "Use up to 10 whole numbers",
            "!taskset killfeed delay soon": "Bad duration 'soon'",
            "!taskset killfeed show colour on": "Unknown field 'colour'",
            "!taskset killfeed deaths #nowhere": "Use `feed`, `hidden` or a channel",
            "!taskset interval killfeed 1s": "minimum interval is 2s",
            "!taskset interval serverlog 1s": "minimum interval is 2s",
        }
        before = await w.reply(w.admin_a, w.chan_a, "!taskset announce show")
        for command, expected in cases.items():
            reply = await w.reply(w.admin_a, w.chan_a, command)
            assert expected in reply and reply.count("\n") == 0, (command, reply)
        assert await w.reply(w.admin_a, w.chan_a, "!taskset announce show") == before
        for task in ("killfeed", "serverlog"):
            ok = await w.reply(w.admin_a, w.chan_a, f"!taskset interval {task} 2s")
            assert "now runs every 2s" in ok, ok
        assert "posted 5m after" in await w.reply(
            w.admin_a, w.chan_a, "!taskset killfeed delay 5m"
        )
        assert "from 400 m" in await w.reply(w.admin_a, w.chan_a, "!taskset announce longshot 400")
        shown = await w.reply(w.admin_a, w.chan_a, "!taskset announce show")
        assert "400 m" in shown and "delay         5" in shown, shown
