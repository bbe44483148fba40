"""Custom tasks: what a guild's admins schedule themselves (``[p]taskset custom``).

Each custom task name is one engine task family, keyed by guild, like a built-in task: the
family ``announce`` has a job in each guild that made an ``announce``, and no other. So
``[p]tasks status/start/stop/run/errors``, the alerts and the counters work on it unchanged,
with the plain name the admin chose, and one guild's task is invisible to every other guild
(names resolve through this guild's own list). The family's provider answers None for a guild
without that task; its schedule and channel are ordinary task settings.

A ``say`` task posts its text (no mentions unless ``--ping``; @everyone/@here only if its
author holds Mention Everyone). A ``run`` task runs its command line as its author, through
Red's command processing, with every check applied at each run (:mod:`..invoke`).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Hashable

import discord
from redbot.core.i18n import Translator

from ...engine.supervisor import JobSpec, TaskDefinition
from ..abc import MixinMeta
from ..invoke import author_of, run_as
from ..jobs import definition
from ..registry import TaskContext, TaskSpec
from ..stores.custom import CustomStore, CustomTask

_ = Translator("TaskCog", __file__)

NAME = re.compile(r"^[a-z][a-z0-9_-]{1,19}$")
RESERVED = {"all", "custom", "global"}
MIN_INTERVAL = 60.0  # at least a minute between runs
TEXT_LIMIT = 2000  # one Discord message


def mentions_for(task: CustomTask, channel: Any, author: discord.Member | None) -> Any:
    """What a say task may ping: nothing, unless ``--ping``; @everyone, @here and roles only
    when its author holds Mention Everyone in that channel now."""
    if not task.ping:
        return discord.AllowedMentions.none()
    everyone = author is not None and channel.permissions_for(author).mention_everyone
    return discord.AllowedMentions(everyone=everyone, users=True, roles=everyone)


def custom_spec(cog: MixinMeta, name: str) -> TaskSpec:
    async def run(ctx: TaskContext) -> str | None:
        guild = ctx.guild
        assert guild is not None and ctx.channel is not None
        task = cog.customs.store.get(guild.id, ctx.task)
        if task is None:
            return None  # removed between dispatch and run
        if task.action == "say":
            author = guild.get_member(task.author_id)
            await ctx.channel.send(
                task.text, allowed_mentions=mentions_for(task, ctx.channel, author)
            )
            note = _("posted {n} characters").format(n=len(task.text))
        else:
            member = author_of(guild, task.author_id)
            command = await run_as(cog.bot, ctx.channel, member, task.text)
            note = _("ran `{command}` as {member}").format(command=command, member=member)
        cog.notes[(ctx.task, guild.id)] = note
        return note

    return TaskSpec(
        name=name,
        run=run,
        description=_("A custom task of this server (see `[p]taskset custom list`)."),
        scope="guild",
        default_schedule="every 1d",
        min_interval=MIN_INTERVAL,
        needs_channel=True,
        timeout=300,
    )


class CustomTasks:
    """The custom tasks of every guild: their store, and their families in the supervisor."""

    def __init__(self, cog: MixinMeta) -> None:
        self.cog = cog
        self.store = CustomStore(cog.config)
        self._specs: dict[str, TaskSpec] = {}

    async def load(self) -> None:
        """Read every guild's custom tasks and register their families (before start)."""
        await self.store.load()
        for name in sorted(self.store.names()):
            if name in self.cog.registry:
                continue  # a task registered since took the name: the built-in wins
            self._ensure(name)

    def spec(self, name: str) -> TaskSpec:
        if name not in self._specs:
            self._specs[name] = custom_spec(self.cog, name)
        return self._specs[name]

    def find(self, guild_id: int | None, name: str) -> TaskSpec | None:
        """The custom task ``name`` of this guild, as a task spec; None if it has none."""
        name = name.lower().strip()
        if guild_id is None or self.store.get(guild_id, name) is None or name in self.cog.registry:
            return None
        return self.spec(name)

    def specs_for(self, guild_id: int) -> list[TaskSpec]:
        registry = self.cog.registry
        return [self.spec(t.name) for t in self.store.of(guild_id) if t.name not in registry]

    def has(self, guild_id: Hashable, name: str) -> bool:
        return self.store.get(guild_id, name) is not None

    def yield_name(self, name: str) -> None:
        """A task is being registered under ``name``: custom tasks of that name stop (they stay
        saved, and come back at the next load without it), as at load: the registered task wins."""
        supervisor = self.cog.supervisor
        if supervisor is not None and name in self._specs and name in supervisor.definitions():
            supervisor.remove(name)
        self._specs.pop(name, None)

    def _ensure(self, name: str) -> None:
        supervisor = self.cog.supervisor
        if supervisor is not None and name not in supervisor.definitions():
            supervisor.add(self._definition(self.spec(name)))

    def _definition(self, spec: TaskSpec) -> TaskDefinition:
        base = definition(self.cog, spec)
        store, bot = self.store, self.cog.bot

        def keys() -> list[Hashable]:
            return [gid for gid in store.guilds_with(spec.name) if bot.get_guild(gid)]

        async def provider(key: Hashable) -> JobSpec | None:
            if store.get(key, spec.name) is None:
                return None
            return await base.provider(key)  # type: ignore[misc]

        return dataclasses.replace(base, keys=keys, provider=provider)

    async def saved(self, guild_id: int, name: str) -> None:
        """A custom task was added or changed: its job follows now."""
        self._ensure(name)
        if self.cog.supervisor is not None:
            await self.cog.supervisor.refresh(name, guild_id)

    async def removed(self, guild_id: int, name: str) -> None:
        """A custom task was removed: drop its job, and its family if no guild has it."""
        supervisor = self.cog.supervisor
        if supervisor is None or name not in supervisor.definitions():
            return
        if self.store.guilds_with(name):
            await supervisor.refresh(name, guild_id)  # the provider says None: job dropped
        else:
            supervisor.remove(name)
            self._specs.pop(name, None)
