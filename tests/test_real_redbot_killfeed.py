"""Exactly once across a real SIGKILL: the real ``redbot`` posting the killfeed to a fake Discord.

The bot is killed in the middle of posting 35 kills (ten embeds a message), either after the
fake created its second message but before the bot heard back, or as that message reached the
fake. After a restart of the same instance, with no ``[p]load``, every kill is in the channel
once: the message the bot never heard about is found in the channel history, not sent again.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakediscord.redbot_process import RedbotProcess  # noqa: E402
from fakediscord.server import BotMessage, FakeDiscord, message_text  # noqa: E402

from taskcog.pipeline.parsers.deadside import parse_kills  # noqa: E402
from taskcog.pipeline.sinks.discord import FOOTER_PREFIX  # noqa: E402

CHECKOUT = TESTS.parent
TIMEOUT = 60.0
KILL_FILE = Path("game/deathlogs/world_0/2025.05.15-00.00.00.csv")
OLD_KILL = "2025.05.15-10.00.00;Old Timer;o0001;Old Victim;o0002;AK-47;120.5;PS5;XSX;\n"
NEW_KILLS = 35


def kill_line(n: int) -> str:
    return f"2025.05.15-11.00.{n:02d};Killer {n};k{n:04d};Victim {n};v{n:04d};M4A1;{n}.5;PC;PS5;\n"


def append(path: Path, text: str) -> None:
    """Add lines to a kill log the way the game server does: at the end of the file."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def footer_ids(messages: list[BotMessage]) -> list[str]:
    """Every ``kill <id>`` footer in ``messages``, in channel order, repeats kept."""
    ids = []
    for message in messages:
        for embed in message.get("embeds") or []:
            text = (embed.get("footer") or {}).get("text") or ""
            if text.startswith(FOOTER_PREFIX):
                ids.append(text.removeprefix(FOOTER_PREFIX))
    return ids


class Session:
    """The owner's side of one fake Discord and one redbot instance."""

    def __init__(self, fake: FakeDiscord, bot: RedbotProcess) -> None:
        self.fake = fake
        self.bot = bot

    async def reply_to(self, content: str) -> BotMessage:
        try:
            return await self.fake.command(content, timeout=TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- redbot log ---\n{self.bot.log_tail()}") from None

    async def say(self, content: str) -> str:
        return message_text(await self.reply_to(content))

    async def add_checkout_as_cog_path(self) -> None:
        reply = await self.reply_to(f"!addpath {CHECKOUT}")
        if any(row.get("components") for row in reply.get("components") or []):
            # The checkout root is itself a package, so Red asks before adding it.
            start = len(self.fake.messages)
            await self.fake.click_button(reply, "Yes")
            reply = await self.fake.wait_for_bot_message(
                lambda m: m["channel_id"] == self.fake.channel_id, TIMEOUT, start=start
            )
        assert message_text(reply) == "Path successfully added.", self.bot.log_tail()


@pytest.fixture
async def session(tmp_path: Path) -> AsyncIterator[Session]:
    fake = FakeDiscord()
    await fake.start()
    bot = RedbotProcess(fake, tmp_path / "red")
    try:
        await bot.start()
        await bot.wait_until_connected(TIMEOUT)
        yield Session(fake, bot)
    finally:
        await bot.stop()
        await fake.stop()


@pytest.mark.slow
@pytest.mark.parametrize(
    "created", [True, False], ids=["message-created-reply-lost", "killed-as-post-arrives"]
)
async def test_killfeed_posts_each_kill_once_across_a_sigkill(
    session: Session, tmp_path: Path, created: bool
) -> None:
    fake, bot = session.fake, session.bot
    killfeed = fake.guild.channel_ids[1]
    game = tmp_path / "deadside"
    (game / KILL_FILE).parent.mkdir(parents=True)
    (game / KILL_FILE).write_text(OLD_KILL, encoding="utf-8")

    await session.add_checkout_as_cog_path()
    assert await session.say("!load taskcog") == "Loaded `taskcog`.", bot.log_tail()
    assert "Added `here`" in await session.say(f"!taskset server add here local {game}")
    assert "now posts in" in await session.say(f"!taskset channel killfeed <#{killfeed}>")
    first = await session.say("!tasks run killfeed")
    assert ": ok" in first, first
    assert fake.channel_history(killfeed) == []  # the first run only records where the log ends

    lines = "".join(kill_line(n) for n in range(1, NEW_KILLS + 1))
    expected = {event.id for event in parse_kills(lines.encode(), final=True).events}
    assert len(expected) == NEW_KILLS
    crash = fake.fail_post(killfeed, 2, record=created, hook=bot.crash)
    append(game / KILL_FILE, lines)
    await fake.send_message(fake.channel_id, fake.owner.id, "!tasks run killfeed")
    await asyncio.wait_for(crash.fired.wait(), TIMEOUT)
    assert not bot.running
    before_restart = footer_ids(fake.channel_history(killfeed))
    assert len(before_restart) == (20 if created else 10)
    assert set(before_restart) < expected

    await bot.restart(TIMEOUT)
    # No [p]load: Red loaded taskcog at start from its saved package list.
    assert "Loaded packages: taskcog" in bot.log_tail(200)
    status = await session.say("!tasks status")
    assert "killfeed" in status and "housekeeping" in status, status
    # run_now waits for a run the schedule may have started, so after this reply all is done.
    again = await session.say("!tasks run killfeed")
    assert ": ok" in again, f"{again}\n{bot.log_tail()}"

    posted = footer_ids(fake.channel_history(killfeed))
    assert sorted(posted) == sorted(expected), f"{len(posted)} posted\n{bot.log_tail()}"
    assert [len(m["embeds"]) for m in fake.channel_history(killfeed)] == [10, 10, 10, 5]
    assert fake.unknown_routes == []


async def test_fake_history_pages_like_discord(monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py's ``history()`` reads the fake as it reads Discord: both directions, paged."""
    async with FakeDiscord() as fake:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        client = discord.AutoShardedClient(intents=discord.Intents.default())
        await client.login(fake.token)
        runner = asyncio.create_task(client.connect(reconnect=False))
        try:
            await fake.wait_until_connected(10)
            channel = client.get_channel(int(fake.guild.channel_ids[1]))
            assert isinstance(channel, discord.TextChannel)
            sent = [(await channel.send(f"m{n}")).id for n in range(250)]
            await fake.send_message(str(channel.id), fake.owner.id, "from the owner")
            newest = [m.id async for m in channel.history(limit=3)]
            after = [m.id async for m in channel.history(limit=120, after=discord.Object(sent[9]))]
            before = [m.content async for m in channel.history(before=discord.Object(sent[2]))]
            everything = [m.id async for m in channel.history(limit=None, oldest_first=True)]
        finally:
            await client.close()
            await runner
    assert newest[1:] == [sent[-1], sent[-2]]  # newest first, the owner's message on top
    assert after == sent[10:130]  # oldest first from just after the id, across two pages
    assert before == ["m1", "m0"]
    assert everything[:-1] == sent and len(everything) == 251
