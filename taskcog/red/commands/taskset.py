"""``[p]taskset``: persisted per-guild settings (toggles, schedules, channels) and the owner's
bot-wide ones (``[p]taskset global``). A change applies to the running job at its next tick.
"""

from __future__ import annotations

from typing import Hashable, Union

import discord
from discord import app_commands
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import pagify, success

from ...engine.schedules import IntervalSchedule, ScheduleError, parse_duration, parse_spec
from ...engine.supervision import RetryPolicy
from .. import formatting as fmt
from ..channels import channel_problem
from ..registry import TaskSpec, check_min_interval
from .shared import CommandHelpers, one_line_errors

_ = Translator("TaskCog", __file__)

Channel = Union[discord.TextChannel, discord.Thread]


class TasksetCommands(CommandHelpers):
    """The ``[p]taskset`` mixin."""

    # ------------------------------------------------------------------ [p]taskset

    @commands.hybrid_group(name="taskset")
    async def taskset_group(self, ctx: commands.Context) -> None:
        """Per-server task settings: toggles, schedules and channels. They persist."""

    @one_line_errors
    @taskset_group.command(name="show", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_show(self, ctx: commands.Context) -> None:
        """Show every task setting for this server."""
        owner = await ctx.bot.is_owner(ctx.author)
        lines = []
        for spec in self.registry.visible(owner=owner):
            if not spec.is_global and ctx.guild is None:
                continue
            view = self._view(spec, None if spec.is_global else ctx.guild.id)
            lines.append(fmt.settings_line(view, spec.is_global, spec.takes_channel))
        if ctx.guild is not None:
            lines.append(
                _("**Time zone:** {zone} · **Alerts:** {alerts}").format(
                    zone=self.settings.timezone_of(ctx.guild.id),
                    alerts=await self._alerts_where(ctx.guild),
                )
            )
        await self._send_pages(ctx, list(pagify("\n".join(lines) or _("No tasks."))))

    async def _alerts_where(self, guild: discord.Guild) -> str:
        channel_id = await self.config.guild(guild).alerts_channel()
        channel = guild.get_channel_or_thread(channel_id) if channel_id else None
        return channel.mention if channel is not None else _("off")

    @one_line_errors
    @taskset_group.command(name="enable", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_enable(self, ctx: commands.Context, task: str) -> None:
        """Enable a task in this server (persists across restarts).

        Example: `[p]taskset enable housekeeping`
        """
        await self._set_enabled(ctx, task, True)

    @one_line_errors
    @taskset_group.command(name="disable", ignore_extra=False)
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
        await self._say(ctx, success(msg))

    @one_line_errors
    @taskset_group.command(name="interval", ignore_extra=False)
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
            schedule = IntervalSchedule(parse_duration(duration, "interval"))
            check_min_interval(schedule, spec.min_interval)
        except ScheduleError as exc:
            await self._refuse(ctx, fmt.error_text(str(exc)))
            return
        await self._save_schedule(ctx, spec, key, schedule)

    @one_line_errors
    @taskset_group.command(name="schedule", ignore_extra=False)
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
            schedule = parse_spec(
                spec, default_tz=self.settings.timezone_of(key), now=discord.utils.utcnow()
            )
            check_min_interval(schedule, task_spec.min_interval)
        except ScheduleError as exc:
            await self._refuse(ctx, fmt.error_text(str(exc)))
            return
        await self._save_schedule(ctx, task_spec, key, schedule)

    async def _save_schedule(
        self, ctx: commands.Context, spec: TaskSpec, key: Hashable, schedule
    ) -> None:
        upcoming = schedule.preview(3, discord.utils.utcnow())  # before saving: it must work
        # 'after <task>': the task must exist here and not close a cycle (commands/custom.py).
        problem = self._after_problem(ctx, spec.name, schedule, key)
        if problem:
            await self._refuse(ctx, problem)
            return
        await self.settings.update_task(spec, key, schedule=schedule.spec)
        await self._apply(spec, key)
        await self._say(
            ctx,
            success(
                _("`{task}` now runs {schedule}. Next runs:\n{preview}").format(
                    task=spec.name,
                    schedule=fmt.schedule_text(schedule),
                    preview=fmt.preview_lines(upcoming) or _("none"),
                )
            ),
        )

    @one_line_errors
    @taskset_group.command(name="channel", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    @commands.guild_only()
    async def taskset_channel(self, ctx: commands.Context, task: str, channel: Channel) -> None:
        """Set the channel a task posts to. I must be able to send messages and embeds there.

        Example: `[p]taskset channel killfeed #kills`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        if not spec.takes_channel:
            await self._refuse(
                ctx,
                _("`{task}` never posts anything, so it has no channel to set.").format(
                    task=spec.name
                ),
            )
            return
        problem = channel_problem(ctx.guild, channel, channel.id, ctx.clean_prefix)
        if problem:
            await self._refuse(ctx, problem)
            return
        await self.settings.update_task(spec, key, channel=channel.id)
        await self._apply(spec, key)
        await self._say(
            ctx,
            success(
                _("`{task}` now posts in {channel}.").format(
                    task=spec.name, channel=channel.mention
                )
            ),
        )

    @one_line_errors
    @taskset_group.command(name="reset", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_reset(self, ctx: commands.Context, task: str) -> None:
        """Put a task's settings in this server back to the defaults.

        Example: `[p]taskset reset housekeeping`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        if self.customs.has(key, spec.name):  # its schedule and channel are what it is
            await self._refuse(
                ctx, _("`{t}` is a custom task: edit or remove it.").format(t=spec.name)
            )
            return
        await self.settings.reset_task(spec, key)
        await self._apply(spec, key)
        eff = self.settings.effective(spec, key)
        await self._say(
            ctx,
            success(
                _("`{task}` is back to defaults: {on}, {schedule}.").format(
                    task=spec.name,
                    on=_("enabled") if eff.enabled else _("disabled"),
                    schedule=fmt.schedule_text(eff.schedule),
                )
            ),
        )

    # ------------------------------------------------------------------ owner-wide settings

    @taskset_group.group(name="global")
    @commands.is_owner()
    async def taskset_global(self, ctx: commands.Context) -> None:
        """Bot-wide settings (bot owner only)."""

    @one_line_errors
    @taskset_global.command(name="default", ignore_extra=False)
    async def global_default(self, ctx: commands.Context, task: str, *, spec: str) -> None:
        """Set a task's default schedule for every server that has not set its own.

        `reset` goes back to the task's built-in default.

        Examples:
        - `[p]taskset global default housekeeping every 12h`
        - `[p]taskset global default housekeeping reset`
        """
        task_spec = await self._task(ctx, task, owner=True)  # any task, from anywhere
        if task_spec is None:
            return
        defaults = dict(self.settings.globals.get("default_schedules", {}))
        if spec.strip().lower() == "reset":
            defaults.pop(task_spec.name, None)
            schedule = parse_spec(task_spec.default_schedule)
            reply = _("Default schedule of `{task}` is back to its built-in {schedule}.")
        else:
            now = discord.utils.utcnow()
            try:
                schedule = parse_spec(spec, default_tz="UTC", now=now)
                check_min_interval(schedule, task_spec.min_interval)
                # A daily or cron default written without a zone follows each server's zone.
                local = schedule.kind in ("daily", "cron") and (
                    parse_spec(spec, default_tz="Asia/Tokyo", now=now).spec != schedule.spec
                )
            except ScheduleError as exc:
                await self._refuse(ctx, fmt.error_text(str(exc)))
                return
            defaults[task_spec.name] = " ".join(spec.split()) if local else schedule.spec
            if local:
                reply = _("Default schedule of `{task}` is now {schedule}, in each server's zone.")
            else:
                reply = _("Default schedule of `{task}` is now {schedule}.")
        await self.settings.set_global("default_schedules", defaults)
        if self.supervisor is not None:
            for key in ([None] if task_spec.is_global else [g.id for g in self.bot.guilds]):
                await self.supervisor.refresh(task_spec.name, key)
        await self._say(
            ctx,
            success(reply.format(task=task_spec.name, schedule=fmt.schedule_text(schedule))),
        )

    @one_line_errors
    @taskset_global.command(name="pool", ignore_extra=False)
    async def global_pool(self, ctx: commands.Context, lane: str, workers: int) -> None:
        """Set how many workers a pool lane has (1-32).

        Example: `[p]taskset global pool parse 4`
        """
        lane = lane.lower()
        sizes = dict(self.settings.globals.get("pool", {}))
        if lane not in sizes:
            await self._refuse(
                ctx,
                _("Unknown lane '{lane}'. Lanes: {lanes}.").format(
                    lane=fmt.user_text(lane), lanes=", ".join(sizes)
                ),
            )
            return
        if not 1 <= workers <= 32:
            await self._refuse(ctx, _("Workers must be between 1 and 32."))
            return
        sizes[lane] = workers
        await self.settings.set_global("pool", sizes)
        self.pool.resize(lane, workers)
        await self._say(
            ctx,
            success(
                _("Lane `{lane}` now has {workers}.").format(
                    lane=lane, workers=fmt.plural(workers, _("worker"), _("workers"))
                )
            ),
        )

    @one_line_errors
    @taskset_global.command(name="threshold", ignore_extra=False)
    async def global_threshold(self, ctx: commands.Context, failures: int) -> None:
        """Set after how many failures in a row a task's circuit opens (1-100).

        Example: `[p]taskset global threshold 5`
        """
        if not 1 <= failures <= 100:
            await self._refuse(ctx, _("The threshold must be between 1 and 100."))
            return
        await self.settings.set_global("failure_threshold", failures)
        if self.supervisor is not None:
            self.supervisor.set_policy(RetryPolicy(failure_threshold=failures))
        await self._say(
            ctx,
            success(
                _("Circuits now open after {failures} in a row.").format(
                    failures=fmt.plural(failures, _("failure"), _("failures"))
                )
            ),
        )

    @one_line_errors
    @taskset_global.command(name="servers", ignore_extra=False)
    async def global_servers(self, ctx: commands.Context, limit: int) -> None:
        """Set how many game servers each server may add (1-50).

        Example: `[p]taskset global servers 10`
        """
        if not 1 <= limit <= 50:
            await self._refuse(ctx, _("The limit must be between 1 and 50."))
            return
        await self.settings.set_global("max_servers", limit)
        await self._say(
            ctx,
            success(
                _("Each server may now add up to {servers}.").format(
                    servers=fmt.plural(limit, _("game server"), _("game servers"))
                )
            ),
        )

    @one_line_errors
    @taskset_global.command(name="alerts", ignore_extra=False)
    async def global_alerts(self, ctx: commands.Context, on: bool) -> None:
        """Turn the owner DM on an open circuit on or off.

        Example: `[p]taskset global alerts off`
        """
        await self.settings.set_global("owner_alerts", on)
        await self._say(
            ctx,
            success(_("Owner alerts are {state}.").format(state=_("on") if on else _("off"))),
        )

    @taskset_enable.autocomplete("task")
    @taskset_disable.autocomplete("task")
    @taskset_interval.autocomplete("task")
    @taskset_schedule.autocomplete("task")
    @taskset_channel.autocomplete("task")
    @taskset_reset.autocomplete("task")
    async def _taskset_task_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._task_choices(interaction, current)
