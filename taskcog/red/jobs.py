"""Turns a :class:`TaskSpec` into the engine's ``TaskDefinition``.

A task that cannot post because its channel is unset, gone or forbidden raises
:class:`NeedsSetup`: it waits for an admin, without failures, circuit or alert.

The definition's provider reads the cached Red Config at each tick (so a setting changed by a
command applies without a restart) and its runner builds the :class:`TaskContext` a task body
sees. Nothing here schedules: the engine's supervisor does.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Hashable, Iterable

from ..engine.supervision import NeedsSetup
from ..engine.supervisor import JobContext, JobSpec, TaskDefinition
from ..pipeline.sinks.discord import ChannelUnavailable as SinkChannelUnavailable
from .abc import MixinMeta
from .channels import ChannelUnavailable, channel_problem, resolve_channel
from .registry import TaskContext, TaskSpec


def definition(cog: MixinMeta, spec: TaskSpec) -> TaskDefinition:
    return TaskDefinition(
        name=spec.name,
        run=_runner(cog, spec),
        provider=_provider(cog, spec),
        keys=_keys(cog, spec),
        timeout=spec.timeout,
        owner=spec.owner,
        priority=spec.priority,
        after=spec.after,
        requires=spec.requirement(),
    )


def _keys(cog: MixinMeta, spec: TaskSpec) -> Callable[[], Iterable[Hashable]]:
    def keys() -> Iterable[Hashable]:
        if spec.is_global:
            return [None]
        return [guild.id for guild in cog.bot.guilds]

    return keys


def _provider(cog: MixinMeta, spec: TaskSpec) -> Callable[[Hashable], Awaitable[JobSpec | None]]:
    async def provider(key: Hashable) -> JobSpec | None:
        if spec.is_global:
            if key is not None:
                return None
            eff = cog.settings.effective(spec, None)
            return JobSpec(eff.enabled, eff.schedule, eff.options)
        guild = cog.bot.get_guild(key) if isinstance(key, int) else None
        if guild is None:
            return None
        eff = cog.settings.effective(spec, key)
        enabled = eff.enabled and not await cog.bot.cog_disabled_in_guild(cog, guild)
        return JobSpec(enabled, eff.schedule, eff.options)

    return provider


def _runner(cog: MixinMeta, spec: TaskSpec) -> Callable[[JobContext], Awaitable[Any]]:
    async def run(job: JobContext) -> Any:
        guild = None
        if not spec.is_global:
            guild = cog.bot.get_guild(job.key)
            if guild is None:
                return None  # left the guild between dispatch and run
        eff = cog.settings.effective(spec, job.key)
        channel = resolve_channel(guild, eff.channel_id) if guild else None
        if spec.needs_channel:
            problem = channel_problem(guild, channel, eff.channel_id)
            if problem:
                raise NeedsSetup(problem)
        assert cog.pool is not None
        ctx = TaskContext(
            bot=cog.bot,
            task=spec.name,
            guild=guild,
            channel=channel,
            options=job.options,
            scheduled_for=job.scheduled_for,
            manual=job.manual,
            status=job.status,
            pool=cog.pool,
            progress=job.progress,
            request=cog.run_requests.pop((spec.name, job.key), None) if job.manual else None,
        )
        try:
            result = await spec.run(ctx)
        except (ChannelUnavailable, SinkChannelUnavailable) as exc:
            # A channel that is unset, gone or forbidden is for an admin to fix, not a failure.
            raise NeedsSetup(str(exc)) from exc
        cog.alerts.recovered(spec.name, job.key)
        return result

    return run
