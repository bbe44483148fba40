"""The killfeed end to end through a real Red on simcord, reading a real (in-process) SFTP server.

Admins add a game server, hand over its password by DM, test it, trust its host key, pick a
channel; kills appended on the server are posted once, across reloads, host-key changes and a
deleted channel. Secrets never appear in any message or log.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from redharness import red_world
from sftp_server import PASSWORD, USERNAME, SftpServer

pytestmark = pytest.mark.asyncio

OLD_KILLS = [
    "2025.05.15-10.00.00;Old Timer;aaaa;Victim One;bbbb;AK-47;120.5;PS5;XSX;\n",
]
KILL_FILE = "game/deathlogs/world_0/2025.05.15-00.00.00.csv"


def kill_line(n: int, *, suicide: bool = False) -> str:
    killer, killer_id = (f"Victim {n}", f"v{n:04d}") if suicide else (f"Killer {n}", f"k{n:04d}")
    cause = "suicide_by_relocation" if suicide else "M4A1"
    stamp = f"2025.05.15-11.{n // 60:02d}.{n % 60:02d}"
    return f"{stamp};{killer};{killer_id};Victim {n};v{n:04d};{cause};{n}.5;PC;PS5;\n"


def append(root: Path, *lines: str) -> None:
    with open(root / KILL_FILE, "a", encoding="utf-8") as fh:
        fh.writelines(lines)


@pytest.fixture
async def sftp(tmp_path):
    root = tmp_path / "host"
    (root / "game" / "deathlogs" / "world_0").mkdir(parents=True)
    (root / "game" / "Logs").mkdir(parents=True)
    (root / "game" / "Logs" / "Deadside.log").write_text("server started\n")
    (root / KILL_FILE).write_text("".join(OLD_KILLS))
    server = await SftpServer(root).start()
    server.root_path = root
    yield server
    await server.stop()


def embeds_in(channel) -> list:
    return [embed for message in channel.history() for embed in message.embeds]


async def setup_server(w, sftp, *, trust: bool = True):
    kills = w.guild_a.create_text_channel("kills")
    await w.env.settle()
    assert "now posts in" in await w.reply(
        w.admin_a, w.chan_a, f"!taskset channel killfeed {kills.mention}"
    )
    reply = await w.reply(
        w.admin_a, w.chan_a, f"!taskset server add eu1 sftp 127.0.0.1:{sftp.port} {USERNAME} /game"
    )
    assert "I sent you a DM" in reply, reply
    dm = w.admin_a.user.dm_channel
    assert "Reply with the SFTP password" in dm.last_message.content
    await w.admin_a.send_dm(PASSWORD)
    await w.env.settle()
    assert "Saved the password for `eu1`" in dm.last_message.content
    if trust:
        test = await w.reply(w.admin_a, w.chan_a, "!taskset server test eu1")
        assert sftp.fingerprint in test, test
        assert "Trusted" in await w.reply(w.admin_a, w.chan_a, "!taskset server trust eu1")
    return kills


async def run_killfeed(w) -> str:
    return await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")


def all_text(w) -> str:
    """Everything the bot itself said, anywhere (a user's own DM reply is theirs)."""
    channels = [w.chan_a, w.chan_b, w.admin_a.user.dm_channel, w.owner_user.dm_channel]
    parts = []
    for channel in channels:
        for message in channel.history():
            if message.author.id != w.bot.user.id:
                continue
            parts.append(message.content)
            for embed in message.embeds:
                parts.append(str(embed.to_dict()))
    return "\n".join(parts)


async def test_add_test_trust_and_post_each_kill_once(tmp_path, sftp, caplog):
    caplog.set_level(logging.DEBUG)
    async with red_world(tmp_path / "red") as w:
        assert "Loaded `taskcog`" in await w.load()
        kills = await setup_server(w, sftp, trust=False)
        listed = await w.reply(w.admin_a, w.chan_a, "!taskset server list")
        assert "eu1" in listed and "password set" in listed and PASSWORD not in listed

        test = await w.reply(w.admin_a, w.chan_a, "!taskset server test eu1")
        assert sftp.fingerprint in test and "trust" in test
        # Not trusted yet: the password is not sent and nothing is fetched.
        assert sftp.auth_attempts == 0
        reads_before = sftp.reads
        failed = await run_killfeed(w)
        assert "not trusted" in failed.lower() or "untrusted" in failed.lower(), failed
        assert sftp.reads == reads_before and not embeds_in(kills)

        assert "Trusted" in await w.reply(w.admin_a, w.chan_a, "!taskset server trust eu1")
        test = await w.reply(w.admin_a, w.chan_a, "!taskset server test eu1")
        assert "2025.05.15-00.00.00.csv" in test  # kill files found, newest named
        assert "Deadside.log" in test
        first = await run_killfeed(w)
        assert ": ok" in first, first
        assert not embeds_in(kills)  # the first run posts nothing from before the server was added

        append(sftp.root_path, kill_line(1), kill_line(2, suicide=True), kill_line(3))
        assert "posted 3 kills" in await run_killfeed(w)
        assert len(kills.history()) == 1 and len(embeds_in(kills)) == 3
        text = str([e.to_dict() for e in embeds_in(kills)])
        assert "Killer 1" in text and "Victim 2" in text and "relocation" in text

        # Nothing new: nothing posted. A reload keeps the cursor and the ledger.
        await run_killfeed(w)
        assert len(embeds_in(kills)) == 3
        assert "Reloaded" in await w.reply(w.owner, w.chan_a, "!reload taskcog")
        await w.env.advance_time(1)
        await run_killfeed(w)
        assert len(embeds_in(kills)) == 3

        # 25 new kills: three messages of at most ten embeds, picked up by the schedule itself.
        append(sftp.root_path, *(kill_line(n) for n in range(10, 35)))
        await w.env.advance_time(61)
        assert len(embeds_in(kills)) == 28
        assert [len(m.embeds) for m in kills.history()][1:] == [10, 10, 5]
        ids = [e.footer.text for e in embeds_in(kills)]
        assert len(ids) == len(set(ids))

        assert PASSWORD not in all_text(w)
        assert PASSWORD not in caplog.text


async def test_host_key_change_blocks_until_trusted_again(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        kills = await setup_server(w, sftp)
        await run_killfeed(w)
        await sftp.restart(new_host_key=True)
        append(sftp.root_path, kill_line(1))
        failed = await run_killfeed(w)
        assert "changed" in failed.lower(), failed
        assert not embeds_in(kills)
        status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
        assert "backoff" in status or "changed" in status.lower()
        test = await w.reply(w.admin_a, w.chan_a, "!taskset server test eu1")
        assert sftp.fingerprint in test
        assert "Trusted" in await w.reply(w.admin_a, w.chan_a, "!taskset server trust eu1")
        assert "posted 1 kill from" in await run_killfeed(w)
        assert len(embeds_in(kills)) == 1


async def test_deleted_channel_waits_for_setup_and_loses_nothing(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        kills = await setup_server(w, sftp)
        await run_killfeed(w)
        append(sftp.root_path, kill_line(1), kill_line(2))
        channel = w.bot.get_channel(kills.id)
        await channel.delete()
        await w.env.settle()
        failed = await run_killfeed(w)
        assert "no longer exists" in failed, failed
        status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
        assert "needs-setup" in status and "0 total, 0 in a row" in status, status
        again = w.guild_a.create_text_channel("kills-2")
        await w.env.settle()
        await w.reply(w.admin_a, w.chan_a, f"!taskset channel killfeed {again.mention}")
        assert "posted 2 kills" in await run_killfeed(w)
        assert len(embeds_in(again)) == 2


async def test_wrong_password_is_a_clear_error_without_the_secret(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        await setup_server(w, sftp)
        await w.reply(w.admin_a, w.chan_a, "!taskset server password eu1")
        await w.admin_a.send_dm("not-the-password-xyz")
        await w.env.settle()
        failed = await run_killfeed(w)
        assert "auth" in failed.lower() or "password" in failed.lower(), failed
        errors = await w.reply(w.owner, w.chan_a, "!tasks errors killfeed")
        assert "not-the-password-xyz" not in errors and "not-the-password-xyz" not in all_text(w)


async def test_secrets_are_refused_in_a_channel(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        reply = await w.reply(
            w.admin_a, w.chan_a, f"!taskset server add eu2 sftp 127.0.0.1:{sftp.port} u /p hunter2"
        )
        assert "Never type a password" in reply and "Nothing was changed" in reply
        assert "No game servers" in await w.reply(w.admin_a, w.chan_a, "!taskset server list")
        assert "hunter2" not in reply


async def test_guilds_never_see_each_others_servers(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        await setup_server(w, sftp)
        assert "No game servers" in await w.reply(w.admin_b, w.chan_b, "!taskset server list")
        assert "Unknown game server 'eu1'" in await w.reply(
            w.admin_b, w.chan_b, "!taskset server remove eu1"
        )
        assert "Unknown game server 'eu1'" in await w.reply(
            w.admin_b, w.chan_b, "!taskset server test eu1"
        )
        assert "eu1" in await w.reply(w.admin_a, w.chan_a, "!taskset server list")


async def test_only_the_owner_may_add_a_local_folder(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        folder = sftp.root_path
        refused = await w.reply(w.admin_a, w.chan_a, f"!taskset server add here local {folder}")
        assert "Only the bot owner" in refused
        ok = await w.reply(w.owner, w.chan_a, f"!taskset server add here local {folder}")
        assert "Added `here`" in ok
        test = await w.reply(w.owner, w.chan_a, "!taskset server test here")
        assert "2025.05.15-00.00.00.csv" in test


async def test_the_owner_sets_how_many_game_servers_a_guild_may_add(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        assert "up to 1 game server." in await w.reply(
            w.owner, w.chan_a, "!taskset global servers 1"
        )
        folder = sftp.root_path
        assert "Added `one`" in await w.reply(
            w.owner, w.chan_a, f"!taskset server add one local {folder}"
        )
        refused = await w.reply(w.owner, w.chan_a, f"!taskset server add two local {folder}")
        assert "already has 1 game server (the limit)" in refused
        listed = await w.reply(w.owner, w.chan_a, "!taskset server list")
        assert "one" in listed and "two" not in listed
