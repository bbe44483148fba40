"""A real Red 3.5 bot, in-process, on simcord's in-memory Discord.

``red_world`` builds a fresh Red instance on a temporary JSON data path, runs it under
``simcord.run`` and creates the people and places the cog tests talk about: the bot owner, two
guilds, an admin of each (Manage Server), and a plain member.
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator

import discord
import simcord

ROOT = Path(__file__).resolve().parent.parent
SETTLE_TIMEOUT = 2.0

# Heavy third-party imports the cog pulls in, done once here rather than inside a [p]load.
import asyncssh  # noqa: E402,F401
import polars  # noqa: E402,F401


async def make_red(data_path: Path, *extra_flags: str) -> Any:
    """Build (but do not connect) a Red bot whose data lives under ``data_path``."""
    from redbot.core import _drivers, data_manager
    from redbot.core._cli import parse_cli_flags

    data_manager.basic_config = {
        "DATA_PATH": str(data_path),
        "COG_PATH_APPEND": "cogs",
        "CORE_PATH_APPEND": "core",
        "STORAGE_TYPE": "JSON",
        "STORAGE_DETAILS": {},
    }
    data_manager._instance_name = "taskcog-test"
    # Red's JSON driver keeps every cog's data in module globals (and asyncio locks bound to the
    # last loop); a fresh in-process instance must start from a clean slate, like a new process.
    from redbot.core._drivers import json as json_driver

    json_driver._shared_datastore.clear()
    json_driver._locks.clear()
    # It also counts live drivers per cog and drops a cog's data when the count falls to 0. An
    # earlier instance's drivers, garbage-collected later, would count down this instance's and
    # drop its data mid-test (seen as a reload reading an empty Config): detach their countdown.
    for finalizer in json_driver._finalizers:
        finalizer.detach()
    json_driver._finalizers.clear()
    await _drivers.get_driver_class().initialize(**data_manager.storage_details())
    (data_path / "cogs" / "Downloader" / "lib").mkdir(parents=True, exist_ok=True)
    from redbot.core.bot import Red

    flags = parse_cli_flags(["taskcog-test", "--prefix", "!", "--no-prompt", *extra_flags])
    bot = Red(cli_flags=flags, description="taskcog test bot", dm_help=None, owner_ids=set())
    await bot._pre_login()
    return bot


@dataclass
class World:
    env: Any
    bot: Any
    owner: Any  # MemberActor in guild A
    owner_user: Any
    guild_a: Any
    guild_b: Any
    chan_a: Any
    chan_b: Any
    admin_a: Any
    admin_b: Any
    member_a: Any
    owner_b: Any = None

    async def say(self, actor: Any, channel: Any, content: str) -> list[discord.Message]:
        """Send ``content`` as ``actor`` and return the bot's replies that followed."""
        before = {m.id for m in channel.history()}
        await actor.send(channel, content)
        return [
            m for m in channel.history() if m.id not in before and m.author.id == self.bot.user.id
        ]

    async def reply(self, actor: Any, channel: Any, content: str) -> str:
        replies = await self.say(actor, channel, content)
        return "\n".join(m.content for m in replies)

    async def addpath(self) -> None:
        """``[p]addpath <checkout>`` as a user does it: Red asks to confirm, because the
        checkout root is itself a package (it re-exports ``taskcog``); the owner clicks Yes."""
        prompt = await self.say(self.owner, self.chan_a, f"!addpath {ROOT}")
        if prompt and prompt[-1].components:
            await self.owner.click(prompt[-1], label="Yes")
            await self.env.settle()
        paths = await self.reply(self.owner, self.chan_a, "!paths")
        assert str(ROOT) in paths, paths

    async def load(self) -> str:
        await self.addpath()
        return await self.reply(self.owner, self.chan_a, "!load taskcog")

    def refused(self) -> list[BaseException]:
        """Acknowledge the check failures Red swallowed (simcord re-raises unread errors)."""
        from discord.ext.commands import CheckFailure

        errors = self.env.errors
        assert errors and all(isinstance(e, CheckFailure) for e in errors), errors
        return errors

    @property
    def cog(self) -> Any:
        return self.bot.get_cog("TaskCog")


def _taskcog_modules() -> dict[str, Any]:
    return {k: v for k, v in sys.modules.items() if k == "taskcog" or k.startswith("taskcog.")}


@contextlib.asynccontextmanager
async def red_world(data_path: Path, **options: Any) -> AsyncIterator[World]:
    # Red's [p]load re-executes an already-imported package *in place* (new classes in the same
    # module objects). Hide the test process's own taskcog modules while Red runs and put them
    # back afterwards, so other tests keep one consistent set of classes.
    saved = _taskcog_modules()
    for name in saved:
        del sys.modules[name]
    try:
        async with _red_world(data_path, **options) as world:
            yield world
    finally:
        for name in _taskcog_modules():
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def virtual_dispatch(bot: Any, env: Any) -> None:
    """Make taskcog's job timers fire on simcord's virtual clock only.

    Left alone, a job due within a settle window (a killfeed poll seconds after load) fires on
    the wall clock in the middle of a command's settle, and one that fires right at the
    settle deadline fails the test (seen under load). Every load and reload of taskcog
    announces its cog with ``taskcog_ready``; its dispatcher then parks through simcord's
    ``external_wait``, so jobs run only when a test advances time, as ext.tasks loops do.
    """

    async def on_taskcog_ready(cog: Any) -> None:
        cog.supervisor.set_idle_wait(
            lambda waker: env.external_wait(waker, reason="taskcog dispatcher: next fire")
        )

    bot.add_listener(on_taskcog_ready, "on_taskcog_ready")


@contextlib.asynccontextmanager
async def _red_world(data_path: Path, **options: Any) -> AsyncIterator[World]:
    bot = await make_red(data_path)
    # simcord waits in real time for timers due within settle_timeout; the engine's jobs are
    # timers too, so keep the window short (commands here finish in milliseconds).
    options.setdefault("settle_timeout", SETTLE_TIMEOUT)
    async with simcord.run(bot, shard_count=1, **options) as env:
        virtual_dispatch(bot, env)
        owner_user = env.create_user("owner")
        bot.owner_ids.add(owner_user.id)
        manage = discord.Permissions(manage_guild=True)
        guild_a = env.create_guild(name="Alpha")
        guild_b = env.create_guild(name="Bravo")
        chan_a = guild_a.create_text_channel("general")
        chan_b = guild_b.create_text_channel("general")
        mods_a = guild_a.create_role("Mods", permissions=manage)
        mods_b = guild_b.create_role("Mods", permissions=manage)
        owner = guild_a.add_member(owner_user)
        owner_b = guild_b.add_member(owner_user)
        admin_a = guild_a.add_member(env.create_user("admin_a"), roles=[mods_a])
        admin_b = guild_b.add_member(env.create_user("admin_b"), roles=[mods_b])
        member_a = guild_a.add_member(env.create_user("member_a"))
        await env.settle()
        world = World(
            env,
            bot,
            owner,
            owner_user,
            guild_a,
            guild_b,
            chan_a,
            chan_b,
            admin_a,
            admin_b,
            member_a,
            owner_b,
        )
        try:
            yield world
        finally:
            if bot.get_cog("TaskCog") is not None:
                await bot.remove_cog("TaskCog")
                await env.settle()
