"""The real ``redbot`` program, logged in to a fake Discord, loads taskcog the way a user does.

One fresh instance (``redbot-setup --no-prompt``, JSON storage, its own XDG dirs) is shared by
the tests in this module. The bot gets its token from ``RED_TOKEN`` and its owner from the fake's
``/oauth2/applications/@me``; every reply is read from what the bot POSTed to the fake.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
import pytest_asyncio

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakediscord.redbot_process import RedbotProcess  # noqa: E402
from fakediscord.server import BotMessage, FakeDiscord, message_text  # noqa: E402

CHECKOUT = TESTS.parent
TIMEOUT = 60.0


async def test_fake_refuses_a_wrong_token(monkeypatch: pytest.MonkeyPatch) -> None:
    async with FakeDiscord() as fake:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        client = discord.Client(intents=discord.Intents.default())
        with pytest.raises(discord.LoginFailure):
            await client.login("not-" + fake.token)
        await client.close()


async def test_fake_carries_a_message_to_a_discordpy_bot_and_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fake's own contract, checked against discord.py in-process in well under a second."""
    async with FakeDiscord() as fake:
        monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
        intents = discord.Intents.default()
        intents.message_content = True
        # Sharded like Red: only the sharded client asks GET /gateway/bot where to connect.
        client = discord.AutoShardedClient(intents=intents, guild_ready_timeout=0)

        @client.event
        async def on_message(message: discord.Message) -> None:
            if message.author != client.user:
                await message.channel.send(f"{message.author.id} in #{message.channel}: hi")

        await client.login(fake.token)
        runner = asyncio.create_task(client.connect(reconnect=False))
        try:
            await fake.wait_until_connected(10)
            reply = await fake.command("hello", timeout=10)
        finally:
            await client.close()
            await runner
    assert message_text(reply) == f"{fake.owner.id} in #general: hi"
    assert reply["author"]["id"] == fake.bot_user.id
    assert [m["id"] for m in fake.messages] == [reply["id"]]


class RealRed:
    """The fake Discord and the redbot process talking to it."""

    def __init__(self, fake: FakeDiscord, bot: RedbotProcess) -> None:
        self.fake = fake
        self.bot = bot

    async def say(self, content: str) -> str:
        """Send ``content`` as the owner in #general and return the text of the bot's reply."""
        return message_text(await self.reply_to(content))

    async def reply_to(self, content: str) -> BotMessage:
        try:
            return await self.fake.command(content, timeout=TIMEOUT)
        except TimeoutError as exc:
            raise AssertionError(f"{exc}\n--- redbot log ---\n{self.bot.log_tail()}") from None


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def red(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RealRed]:
    fake = FakeDiscord()
    await fake.start()
    bot = RedbotProcess(fake, tmp_path_factory.mktemp("redbot"))
    try:
        await bot.start()
        await bot.wait_until_connected(TIMEOUT)
        yield RealRed(fake, bot)
    finally:
        await bot.stop()
        await fake.stop()


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_red_logs_in_to_the_fake_and_answers_ping(red: RealRed) -> None:
    assert await red.say("!ping") == "Pong."
    # Red's whole startup ran on routes the fake implements.
    assert red.fake.unknown_routes == []
    assert red.fake.identifies == 1


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_owner_comes_from_application_info(red: RealRed) -> None:
    # [p]load is owner-only and no --owner was given: Red trusted the fake's application owner.
    assert await red.say("!load general") == "Loaded `general`."


@pytest.mark.slow
@pytest.mark.asyncio(loop_scope="module")
async def test_taskcog_loads_from_the_checkout_and_reports_housekeeping(red: RealRed) -> None:
    reply = await red.reply_to(f"!addpath {CHECKOUT}")
    if any(row.get("components") for row in reply.get("components") or []):
        # The checkout root is itself a package, so Red asks before adding it.
        assert "appears to be a cog package" in reply["content"]
        start = len(red.fake.messages)
        await red.fake.click_button(reply, "Yes")
        reply = await red.fake.wait_for_bot_message(
            lambda m: m["channel_id"] == red.fake.channel_id, TIMEOUT, start=start
        )
    assert message_text(reply) == "Path successfully added.", red.bot.log_tail()

    loaded = await red.say("!load taskcog")
    assert loaded == "Loaded `taskcog`.", f"{loaded}\n--- redbot log ---\n{red.bot.log_tail()}"

    status = await red.say("!tasks status")
    assert "housekeeping" in status, status
