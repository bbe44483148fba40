"""``[p]taskset``: persisted per-guild settings (toggles, schedules, channels) and the owner's
bot-wide ones (``[p]taskset global``). A change applies to the running job at its next tick.
"""

from __future__ import annotations

from typing import Hashable, Union

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import error, pagify, success

from ...engine.schedules import IntervalSchedule, ScheduleError, parse_duration, parse_spec
from ...engine.supervision import RetryPolicy
from .. import formatting as fmt
from ..channels import channel_problem
from ..registry import TaskSpec, check_min_interval
from .shared import CommandHelpers

_ = Translator("TaskCog", __file__)

Channel = Union[discord.TextChannel, discord.Thread]


class TasksetCommands(CommandHelpers):
    """The ``[p]taskset`` mixin."""

    # ------------------------------------------------------------------ [p]taskset

    @commands.hybrid_group(name="taskset")
    async def taskset_group(self, ctx: commands.Context) -> None:
        """Per-server task settings: toggles, schedules and channels. They persist."""

    @taskset_group.command(name="show")
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_show(self, ctx: commands.Context) -> None:
        """Show every task setting for this server."""
        owner = await ctx.bot.is_owner(ctx.author)
        lines = []
        for spec in self.registry.visible(owner=owner):
            if not spec.is_global and ctx.guild is None:
                continue
            view = self._view(spec, None if spec.is_global else ctx.guild.id)
            scope = _("global") if spec.is_global else _("this server")
            row = _("**{task}** ({scope}): {on} · {schedule} ({source})").format(
                task=spec.name,
                scope=scope,
                on=_("enabled") if view.enabled else _("disabled"),
                schedule=view.schedule.describe(),
                source=view.schedule_source,
            )
            if spec.needs_channel or view.channel:
                row += " · " + _("channel: {ch}").format(ch=view.channel or _("not set"))
            lines.append(row)
        await self._send_pages(ctx, list(pagify("\n".join(lines) or _("No tasks."))))

    @taskset_group.command(name="enable")
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_enable(self, ctx: commands.Context, task: str) -> None:
        """Enable a task in this server (persists across restarts).

        Example: `[p]taskset enable housekeeping`
        """
        await self._set_enabled(ctx, task, True)

    @taskset_group.command(name="disable")
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_disable(self, ctx: commands.Context, task: str) -> None:
        """Disable a task in this server (persists across restarts).

        Example: `[p]taskset disable housekeeping`
        """
        await self._set_enabled(ctx, task, False)

    async def _set_enabled(self, ctx: commands.Context, task: str, on: bool) -> None:
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        await self.settings.update_task(spec, key, enabled=on)
        await self._apply(spec, key)
        if on:
            msg = _("Enabled `{task}`.").format(task=spec.name)
        else:
            msg = _("Disabled `{task}`. A run in progress finishes first.").format(task=spec.name)
        await ctx.send(success(msg))

    @taskset_group.command(name="interval")
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_interval(self, ctx: commands.Context, task: str, *, duration: str) -> None:
        """Run a task every so often, e.g. `90s`, `5m`, `1h30m`.

        Example: `[p]taskset interval housekeeping 1h30m`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        try:
            schedule = IntervalSchedule(parse_duration(duration))
            check_min_interval(schedule, spec.min_interval)
        except ScheduleError as exc:
            await ctx.send(error(str(exc)))
            return
        await self._save_schedule(ctx, spec, key, schedule)

    @taskset_group.command(name="schedule")
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_schedule(self, ctx: commands.Context, task: str, *, spec: str) -> None:
        """Set a task's schedule: `every`, `daily`, `cron` or `once`, with a time zone.

        Examples:
        - `[p]taskset schedule housekeeping every 2h`
        - `[p]taskset schedule housekeeping daily 09:00,21:00 Europe/Berlin`
        - `[p]taskset schedule housekeeping cron 0 */6 * * * UTC`
        - `[p]taskset schedule housekeeping once 2026-12-24T18:00 Europe/Paris`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        task_spec, key = resolved
        try:
            schedule = parse_spec(spec, now=discord.utils.utcnow())
            check_min_interval(schedule, task_spec.min_interval)
        except ScheduleError as exc:
            await ctx.send(error(str(exc)))
            return
        await self._save_schedule(ctx, task_spec, key, schedule)

    async def _save_schedule(
        self, ctx: commands.Context, spec: TaskSpec, key: Hashable, schedule
    ) -> None:
        await self.settings.update_task(spec, key, schedule=schedule.spec)
        await self._apply(spec, key)
        upcoming = schedule.preview(3, discord.utils.utcnow())
        await ctx.send(
            success(
                _("`{task}` now runs {schedule}. Next runs:\n{preview}").format(
                    task=spec.name,
                    schedule=schedule.describe(),
                    preview=fmt.preview_lines(upcoming),
                )
            )
        )

    @taskset_group.command(name="channel")
    @commands.admin_or_permissions(manage_guild=True)
    @commands.guild_only()
    async def taskset_channel(self, ctx: commands.Context, task: str, channel: Channel) -> None:
        """Set the channel a task posts to. I must be able to send messages and embeds there.

        Example: `[p]taskset channel housekeeping #bot-log`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        problem = channel_problem(ctx.guild, channel, channel.id)
        if problem:
            await ctx.send(error(problem))
            return
        await self.settings.update_task(spec, key, channel=channel.id)
        await self._apply(spec, key)
        await ctx.send(
            success(
                _("`{task}` now posts in {channel}.").format(
                    task=spec.name, channel=channel.mention
                )
            )
        )

    @taskset_group.command(name="reset")
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_reset(self, ctx: commands.Context, task: str) -> None:
        """Put a task's settings in this server back to the defaults.

        Example: `[p]taskset reset housekeeping`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        await self.settings.reset_task(spec, key)
        await self._apply(spec, key)
        eff = self.settings.effective(spec, key)
        await ctx.send(
            success(
                _("`{task}` is back to defaults: {on}, {schedule}.").format(
                    task=spec.name,
                    on=_("enabled") if eff.enabled else _("disabled"),
                    schedule=eff.schedule.describe(),
                )
            )
        )

    # ------------------------------------------------------------------ owner-wide settings

    @taskset_group.group(name="global")
    @commands.is_owner()
    async def taskset_global(self, ctx: commands.Context) -> None:
        """Bot-wide settings (bot owner only)."""

    @taskset_global.command(name="default")
    async def global_default(self, ctx: commands.Context, task: str, *, spec: str) -> None:
        """Set a task's default schedule for every server that has not set its own.

        Example: `[p]taskset global default housekeeping every 12h`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        task_spec, _key = resolved
        try:
            schedule = parse_spec(spec, now=discord.utils.utcnow())
            check_min_interval(schedule, task_spec.min_interval)
        except ScheduleError as exc:
            await ctx.send(error(str(exc)))
            return
        defaults = dict(self.settings.globals.get("default_schedules", {}))
        defaults[task_spec.name] = schedule.spec
        await self.settings.set_global("default_schedules", defaults)
        if self.supervisor is not None:
            for key in ([None] if task_spec.is_global else [g.id for g in self.bot.guilds]):
                await self.supervisor.refresh(task_spec.name, key)
        await ctx.send(
            success(
                _("Default schedule of `{task}` is now {schedule}.").format(
                    task=task_spec.name, schedule=schedule.describe()
                )
            )
        )

    @taskset_global.command(name="pool")
    async def global_pool(self, ctx: commands.Context, lane: str, workers: int) -> None:
        """Set how many workers a pool lane has (1-32).

        Example: `[p]taskset global pool parse 4`
        """
        lane = lane.lower()
        sizes = dict(self.settings.globals.get("pool", {}))
        if lane not in sizes:
            await ctx.send(
                error(
                    _("Unknown lane '{lane}'. Lanes: {lanes}.").format(
                        lane=lane, lanes=", ".join(sizes)
                    )
                )
            )
            return
        if not 1 <= workers <= 32:
            await ctx.send(error(_("Workers must be between 1 and 32.")))
            return
        sizes[lane] = workers
        await self.settings.set_global("pool", sizes)
        self.pool.resize(lane, workers)
        await ctx.send(
            success(_("Lane `{lane}` now has {n} workers.").format(lane=lane, n=workers))
        )

    @taskset_global.command(name="threshold")
    async def global_threshold(self, ctx: commands.Context, failures: int) -> None:
        """Set after how many failures in a row a task's circuit opens (1-100).

        Example: `[p]taskset global threshold 5`
        """
        if not 1 <= failures <= 100:
            await ctx.send(error(_("The threshold must be between 1 and 100.")))
            return
        await self.settings.set_global("failure_threshold", failures)
        if self.supervisor is not None:
            self.supervisor.set_policy(RetryPolicy(failure_threshold=failures))
        await ctx.send(
            success(_("Circuits now open after {n} failures in a row.").format(n=failures))
        )

    @taskset_global.command(name="servers")
    async def global_servers(self, ctx: commands.Context, limit: int) -> None:
        """Set how many game servers each server may add (1-50).

        Example: `[p]taskset global servers 10`
        """
        if not 1 <= limit <= 50:
            await ctx.send(error(_("The limit must be between 1 and 50.")))
            return
        await self.settings.set_global("max_servers", limit)
        await ctx.send(
            success(_("Each server may now add up to {n} game servers.").format(n=limit))
        )

    @taskset_global.command(name="alerts")
    async def global_alerts(self, ctx: commands.Context, on: bool) -> None:
        """Turn the owner DM on an open circuit on or off.

        Example: `[p]taskset global alerts off`
        """
        await self.settings.set_global("owner_alerts", on)
        await ctx.send(
            success(_("Owner alerts are {state}.").format(state=_("on") if on else _("off")))
        )
