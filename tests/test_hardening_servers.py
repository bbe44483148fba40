"""Game servers, hardened: what an admin sees when a secret never comes or a login is refused.

Through a real Red on simcord and the in-process SFTP server: an ``add`` whose DM secret is
cancelled, times out, is unusable or cannot be asked for leaves no game server behind; a
refused login fails one killfeed run with a clear line, then waits (no new login each tick,
no circuit, other game servers keep posting) until ``[p]taskset server password`` replaces it,
and the next tick reads again without ``[p]tasks restart``. Nothing the bot sends names a
command with a literal ``[p]``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from redharness import red_world
from sftp_server import PASSWORD, USERNAME, SftpServer
from test_killfeed_cog import KILL_FILE, OLD_KILLS, append, embeds_in, kill_line, setup_server

from taskcog.pipeline.sources import AuthFailed, SftpSource, Unreachable
from taskcog.red.commands.server import SECRET_TIMEOUT

pytestmark = pytest.mark.asyncio

NEW_PASSWORD = "rotated-on-the-host-7"


def make_game_host(root: Path) -> Path:
    (root / "game" / "deathlogs" / "world_0").mkdir(parents=True)
    (root / "game" / "Logs").mkdir(parents=True)
    (root / "game" / "Logs" / "Deadside.log").write_text("server started\n")
    (root / KILL_FILE).write_text("".join(OLD_KILLS))
    return root


@pytest.fixture
async def sftp(tmp_path):
    root = make_game_host(tmp_path / "host")
    server = await SftpServer(root).start()
    server.root_path = root
    yield server
    await server.stop()


def bot_text(w) -> str:
    """Everything the bot said in the channels and DMs these tests use."""
    channels = [w.chan_a, w.admin_a.user.dm_channel, w.owner_user.dm_channel]
    parts = []
    for channel in channels:
        for message in channel.history() if channel is not None else []:
            if message.author.id == w.bot.user.id:
                parts.append(message.content)
                parts.extend(str(embed.to_dict()) for embed in message.embeds)
    return "\n".join(parts)


async def start_add(w, sftp, name: str = "eu1") -> str:
    reply = await w.reply(
        w.admin_a, w.chan_a, f"!taskset server add {name} sftp 127.0.0.1:{sftp.port} {USERNAME}"
    )
    assert "I sent you a DM" in reply, reply
    assert "Reply with the SFTP password" in w.admin_a.user.dm_channel.last_message.content
    return reply


async def dm_reply(w, text: str) -> str:
    await w.admin_a.send_dm(text)
    await w.env.settle()
    return w.admin_a.user.dm_channel.last_message.content


async def listed(w) -> str:
    return await w.reply(w.admin_a, w.chan_a, "!taskset server list")


# -- 1. a half-added game server does not linger --------------------------------------------


async def test_cancel_in_the_dm_removes_the_half_added_server(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        assert "up to 1 game server" in await w.reply(
            w.owner, w.chan_a, "!taskset global servers 1"
        )
        await start_add(w, sftp)
        assert "eu1" in await listed(w)  # added while the DM waits
        said = await dm_reply(w, "cancel")
        assert "Cancelled" in said and "`eu1` was not added" in said, said
        assert "No game servers yet" in await listed(w)
        # It no longer counts toward the limit of one.
        await start_add(w, sftp, "eu2")
        assert "password for `eu2`" in await dm_reply(w, PASSWORD)
        assert "eu2" in await listed(w)


async def test_a_timed_out_dm_removes_the_half_added_server(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        await start_add(w, sftp)
        await w.env.advance_time(SECRET_TIMEOUT - 5)
        assert "eu1" in await listed(w)
        await w.env.advance_time(10)
        said = w.admin_a.user.dm_channel.last_message.content
        assert "Timed out" in said and "`eu1` was not added" in said, said
        assert "No game servers yet" in await listed(w)


async def test_an_unusable_secret_removes_the_half_added_server(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        await start_add(w, sftp)
        said = await dm_reply(w, "two\nlines")
        assert "does not look like a password" in said and "`eu1` was not added" in said, said
        assert "No game servers yet" in await listed(w)


async def test_no_dm_possible_adds_nothing(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        w.env.inject_error(
            "POST", "/channels/*/messages", status=403, code=50007, message="Cannot DM"
        )
        reply = await w.reply(
            w.admin_a, w.chan_a, f"!taskset server add eu1 sftp 127.0.0.1:{sftp.port} {USERNAME}"
        )
        assert "I could not DM you" in reply and "`eu1` was not added" in reply, reply
        assert "I sent you a DM" not in reply
        assert "No game servers yet" in await listed(w)


async def test_a_password_change_that_never_comes_keeps_the_server_and_its_password(
    tmp_path, sftp
):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        await setup_server(w, sftp)
        for answer in ("cancel", "two\nlines", None):
            await w.reply(w.admin_a, w.chan_a, "!taskset server password eu1")
            if answer is None:
                await w.env.advance_time(SECRET_TIMEOUT + 1)
                said = w.admin_a.user.dm_channel.last_message.content
            else:
                said = await dm_reply(w, answer)
            assert "password or key of `eu1` was not changed" in said, said
            assert "not added" not in said
            assert "eu1" in await listed(w) and "password set" in await listed(w)
        ran = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert ": ok" in ran, ran  # the old password still logs in


# -- 2 and 3. a refused login waits for a new password --------------------------------------


async def test_a_refused_login_fails_once_then_waits_for_a_new_password(tmp_path, sftp):
    local = make_game_host(tmp_path / "local")
    async with red_world(tmp_path / "red") as w:
        await w.load()
        kills = await setup_server(w, sftp)
        added = await w.reply(w.owner, w.chan_a, f"!taskset server add here local {local}/game")
        assert "Added `here`" in added, added
        first = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert "posted 0 kills from 2 game servers" in first, first

        # The host's password changes (and its sessions end): every login is refused now.
        sftp.password = NEW_PASSWORD
        await sftp.restart()
        append(sftp.root_path, kill_line(1), kill_line(2))
        append(local, kill_line(3))
        failed = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert "error" in failed and "transient" not in failed, failed
        assert (
            "login refused for eu1: check the username and run `!taskset server password eu1`"
            in failed
        ), failed
        assert len(embeds_in(kills)) == 1  # the local game server still posted its kill
        attempts = sftp.auth_attempts

        status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
        assert "login refused for eu1" in status, status
        errors = await w.reply(w.admin_a, w.chan_a, "!tasks errors killfeed")
        assert "(error) KillfeedError: login refused for eu1" in errors, errors

        # Ticks go on: no new login, no circuit, the other game server keeps posting.
        for n in range(6):
            append(local, kill_line(10 + n))
            await w.env.advance_time(61)
        assert sftp.auth_attempts == attempts
        assert len(embeds_in(kills)) == 7
        status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
        assert "circuit" not in status and "sleeping" in status, status
        assert "skipped until a new password or key: login refused for eu1" in status, status
        assert "eu1" in (await listed(w)) and "login refused" in (await listed(w))

        # The new password is used at the next tick, with no [p]tasks restart.
        await w.reply(w.admin_a, w.chan_a, "!taskset server password eu1")
        assert "Saved the password for `eu1`" in await dm_reply(w, NEW_PASSWORD)
        await w.env.advance_time(61)
        assert sftp.auth_attempts == attempts + 1
        assert len(embeds_in(kills)) == 9
        texts = str([e.to_dict() for e in embeds_in(kills)])
        assert "Killer 1" in texts and "Killer 2" in texts
        ran = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert "posted 0 kills from 2 game servers" in ran, ran

        everything = bot_text(w)
        assert "Could not reach" not in everything and "[p]" not in everything
        assert NEW_PASSWORD not in everything and PASSWORD not in everything


async def test_a_test_that_logs_in_again_lifts_the_wait(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        kills = await setup_server(w, sftp)
        await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        sftp.password = NEW_PASSWORD
        await sftp.restart()
        assert "login refused" in await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        test = await w.reply(w.admin_a, w.chan_a, "!taskset server test eu1")
        assert "refused the login" in test and "`!taskset server password eu1`" in test, test
        sftp.password = PASSWORD  # fixed on the game host instead
        append(sftp.root_path, kill_line(1))
        assert "skipped until" in await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        test = await w.reply(w.admin_a, w.chan_a, "!taskset server test eu1")
        assert "Logged in" in test, test
        ran = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert "posted 1 kill from 1 game server" in ran, ran
        assert len(embeds_in(kills)) == 1


async def test_a_refused_login_blocks_the_source_also_after_a_reconnect(tmp_path, sftp):
    made = []

    def source(**options) -> SftpSource:
        made.append(
            SftpSource(
                "127.0.0.1",
                sftp.port,
                options.pop("username", USERNAME),
                password=options.pop("password", PASSWORD),
                base_path="/game",
                trusted_fingerprint=sftp.fingerprint,
                connect_timeout=5,
            )
        )
        return made[-1]

    try:
        wrong = source(password="wrong-password")
        with pytest.raises(AuthFailed, match="refused the login"):
            await wrong.connect()
        connects, attempts = wrong.connects, sftp.auth_attempts
        for _ in range(3):  # blocked: the same refusal, not "could not reach recently"
            with pytest.raises(AuthFailed, match="refused the login"):
                await wrong.list_dir("/game")
        assert (wrong.connects, sftp.auth_attempts) == (connects, attempts)

        odd_name = source(username="x" * 1100)  # the server refuses the user name itself
        with pytest.raises(AuthFailed):
            await odd_name.connect()

        live = source()
        await live.discover()
        sftp.password = NEW_PASSWORD
        await sftp.restart()  # the session ends; the reconnect is refused
        for _ in range(2):
            try:
                await live.list_dir("/game")
            except AuthFailed:
                break
            except Unreachable as exc:
                assert "dropped" in str(exc)  # the old session's last word, once
        else:
            pytest.fail("the reconnect was not refused")
        connects = live.connects
        with pytest.raises(AuthFailed):
            await live.list_dir("/game")
        assert live.connects == connects

        sftp.password = PASSWORD  # an admin's probe logs in again and lifts the block
        report = await live.probe()
        assert report.logged_in is True
        assert await live.list_dir("/game")
    finally:
        for each in made:
            await each.close()


# -- 4. a local file is not a folder ----------------------------------------------------------


async def test_a_local_file_is_not_a_folder(tmp_path, sftp):
    file = tmp_path / "notes.txt"
    file.write_text("not a folder\n")
    async with red_world(tmp_path / "red") as w:
        await w.load()
        reply = await w.reply(w.owner, w.chan_a, f"!taskset server add test local {file}")
        assert "is a file, not a folder" in reply and "does not exist" not in reply, reply
        missing = await w.reply(
            w.owner, w.chan_a, f"!taskset server add test local {tmp_path}/nope"
        )
        assert "does not exist" in missing, missing
        assert "No game servers yet" in await w.reply(w.owner, w.chan_a, "!taskset server list")


# -- 5 and 6. what the bot sends --------------------------------------------------------------


async def test_no_literal_prefix_in_notes_or_lists(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        ran = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert "add one with `!taskset server add`" in ran, ran
        status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
        assert "add one with `!taskset server add`" in status, status
        await start_add(w, sftp)
        await dm_reply(w, PASSWORD)
        assert "run `!taskset server test eu1` first" in await listed(w)
        assert "[p]" not in bot_text(w)


async def test_help_never_shows_the_secret_catcher(tmp_path):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        for command, usage in (
            ("add", "<name> <sftp|local> <address or path> [username] [base path]"),
            ("password", "<name>"),
        ):
            replies = await w.say(w.admin_a, w.chan_a, f"!help taskset server {command}")
            text = "\n".join(m.content for m in replies)
            text += "".join(str(e.to_dict()) for m in replies for e in m.embeds)
            assert f"taskset server {command} {usage}" in text, text
            assert "extra" not in text, text


async def test_user_errors_start_with_a_capital_and_count_right(tmp_path, sftp):
    async with red_world(tmp_path / "red") as w:
        await w.load()
        for command, expected in (
            ("!taskset server add Bad!Name sftp h u", "Bad game server name"),
            ("!taskset server add eu1 ftp h u", "Unknown game server kind 'ftp'"),
            ("!taskset server add eu1 sftp h", "Give the SFTP username"),
            ("!taskset server add eu1 sftp h:99999 u", "Bad port 99999"),
            ("!taskset server test nope", "Unknown game server 'nope'. Game servers here"),
        ):
            reply = await w.reply(w.admin_a, w.chan_a, command)
            assert expected in reply, (command, reply)
        kills = await setup_server(w, sftp)
        await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        append(sftp.root_path, kill_line(1))
        ran = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert "posted 1 kill from 1 game server" in ran, ran
        append(sftp.root_path, kill_line(2), kill_line(3))
        ran = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert "posted 2 kills from 1 game server" in ran, ran
        assert len(embeds_in(kills)) == 3
        test = await w.reply(w.admin_a, w.chan_a, "!taskset server test eu1")
        assert "Found 1 kill log file;" in test, test


async def test_an_unreadable_private_key_waits_for_a_new_one(tmp_path, sftp):
    garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-key-material-5150\n-----END"
    async with red_world(tmp_path / "red") as w:
        await w.load()
        await setup_server(w, sftp)
        await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        await w.reply(w.admin_a, w.chan_a, "!taskset server password eu1")
        assert "Saved the private key for `eu1`" in await dm_reply(w, garbage)
        failed = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert "the private key for eu1 could not be read" in failed, failed
        assert "`!taskset server password eu1`" in failed, failed
        skipped = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert ": ok" in skipped and "skipped until a new password or key" in skipped, skipped
        assert "private key unreadable" in await listed(w)
        await w.reply(w.admin_a, w.chan_a, "!taskset server password eu1")
        await dm_reply(w, PASSWORD)
        ran = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        assert "posted 0 kills from 1 game server" in ran and "skipped" not in ran, ran
        assert "not-key-material-5150" not in bot_text(w)
