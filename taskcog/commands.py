"""``[p]tasks`` (act now, systemctl-style) and ``[p]taskset`` (persisted per-guild settings).

Thin on purpose: parse, check scope, call the cog/engine, format. A guild admin only ever sees
and controls this guild's jobs; global tasks, the pool, tracebacks and the cross-guild view are
for the bot owner.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Hashable, Union

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import error, info, pagify, success, warning
from redbot.core.utils.views import SimpleMenu

from . import formatting as fmt
from .engine.schedules import IntervalSchedule, ScheduleError, parse_duration, parse_spec
from .engine.supervision import RetryPolicy
from .registry import TaskSpec, UnknownTask, check_min_interval

if TYPE_CHECKING:
    from .cog import TaskCog

_ = Translator("TaskCog", __file__)

Channel = Union[discord.TextChannel, discord.Thread]


class TaskCommands:
    """The command mixin for TaskCog."""

    # ------------------------------------------------------------------ shared helpers

    async def _resolve(
        self: TaskCog, ctx: commands.Context, name: str
    ) -> tuple[TaskSpec, Hashable] | None:
        """The task and job key this context may act on; else say why in one line, return None."""
        try:
            spec = self.registry.get(name)
        except UnknownTask as exc:
            await ctx.send(error(str(exc)))
            return None
        if spec.is_global:
            if not await ctx.bot.is_owner(ctx.author):
                await ctx.send(error(_("Only the bot owner can see or control global tasks.")))
                return None
            return spec, None
        if ctx.guild is None:
            await ctx.send(
                error(
                    _("`{task}` runs per server: use this command in a server.").format(
                        task=spec.name
                    )
                )
            )
            return None
        return spec, ctx.guild.id

    def _view(self: TaskCog, spec: TaskSpec, key: Hashable) -> fmt.JobView:
        eff = self.settings.effective(spec, key)
        live = self.supervisor.get_status(spec.name, key) if self.supervisor else None
        guild = self.bot.get_guild(key) if isinstance(key, int) else None
        channel = None
        if eff.channel_id is not None:
            found = self.resolve_channel(guild, eff.channel_id)
            channel = (
                found.mention
                if found is not None
                else _("deleted channel ({id})").format(id=eff.channel_id)
            )
        return fmt.JobView(
            task=spec.name,
            key=key,
            guild_name=None,
            state=fmt.display_state(eff.enabled, live),
            schedule=eff.schedule,
            schedule_source=eff.schedule_source,
            enabled=eff.enabled,
            channel=channel,
            summary=self.state.summary(spec.name, key, live),
            live=live,
            note=self.notes.get((spec.name, key)),
            description=spec.description,
        )

    async def _send_pages(self, ctx: commands.Context, pages: list[str]) -> None:
        if len(pages) == 1:
            await ctx.send(pages[0])
        else:
            await SimpleMenu(pages, use_select_menu=False).start(ctx)

    async def _apply(self: TaskCog, spec: TaskSpec, key: Hashable) -> None:
        """A setting changed: the supervisor re-reads the job now (the next tick uses it)."""
        if self.supervisor is not None:
            await self.supervisor.refresh(spec.name, key)

    # ------------------------------------------------------------------ [p]tasks

    @commands.hybrid_group(name="tasks")
    async def tasks_group(self, ctx: commands.Context) -> None:
        """See and steer taskcog's background tasks.

        `start`/`stop` act now; `[p]taskset enable`/`disable` persist.
        """

    @tasks_group.command(name="status")
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_status(
        self: TaskCog, ctx: commands.Context, task: str | None = None, scope: str | None = None
    ) -> None:
        """Show every task here, or one task in detail.

        The bot owner can add `all` to see every server.

        Examples:
        - `[p]tasks status`
        - `[p]tasks status housekeeping`
        - `[p]tasks status all` (owner)
        """
        now = discord.utils.utcnow()
        everywhere = scope == "all" or task == "all"
        if task == "all":
            task = None
        owner = await ctx.bot.is_owner(ctx.author)
        if everywhere and not owner:
            await ctx.send(error(_("Only the bot owner can see every server's tasks.")))
            return
        if task is not None:
            resolved = await self._resolve(ctx, task)
            if resolved is None:
                return
            spec, key = resolved
            if everywhere and not spec.is_global:
                views = [self._named_view(spec, gid) for gid in self._guild_keys(spec)]
                await self._send_pages(ctx, fmt.status_pages(views, now))
                return
            await self._send_pages(ctx, list(pagify(fmt.detail(self._view(spec, key), now))))
            return
        views = []
        for spec in self.registry.visible(owner=owner):
            if spec.is_global:
                views.append(self._view(spec, None))
            elif everywhere:
                views.extend(self._named_view(spec, gid) for gid in self._guild_keys(spec))
            elif ctx.guild is not None:
                views.append(self._view(spec, ctx.guild.id))
        await self._send_pages(ctx, fmt.status_pages(views, now))

    def _guild_keys(self: TaskCog, spec: TaskSpec) -> list[int]:
        return sorted(guild.id for guild in self.bot.guilds)

    def _named_view(self: TaskCog, spec: TaskSpec, guild_id: int) -> fmt.JobView:
        view = self._view(spec, guild_id)
        guild = self.bot.get_guild(guild_id)
        view.guild_name = guild.name if guild else str(guild_id)
        return view

    @tasks_group.command(name="start")
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_start(self: TaskCog, ctx: commands.Context, task: str) -> None:
        """Start a stopped task now, in this server.

        Example: `[p]tasks start housekeeping`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        eff = self.settings.effective(spec, key)
        if not eff.enabled:
            await ctx.send(
                warning(
                    _(
                        "`{task}` is disabled here. Enable it with `{p}taskset enable {task}`."
                    ).format(task=spec.name, p=ctx.clean_prefix)
                )
            )
            return
        self.supervisor.start_job(spec.name, key)
        await self.set_stopped(spec, key, False)
        status = self.supervisor.get_status(spec.name, key)
        nxt = fmt.discord_time(status.next_run) if status and status.next_run else _("soon")
        await ctx.send(
            success(_("Started `{task}`. Next run {next}.").format(task=spec.name, next=nxt))
        )

    @tasks_group.command(name="stop")
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_stop(self: TaskCog, ctx: commands.Context, task: str) -> None:
        """Stop a task now, in this server.

        It stays stopped until `[p]tasks start` or until the bot restarts, when its enabled
        flag decides. A run in progress is allowed to finish.

        Example: `[p]tasks stop housekeeping`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        self.supervisor.stop_job(spec.name, key)
        await self.set_stopped(spec, key, True)
        await ctx.send(
            success(
                _(
                    "Stopped `{task}`. It stays stopped until `{p}tasks start {task}` "
                    "or the bot restarts."
                ).format(task=spec.name, p=ctx.clean_prefix)
            )
        )

    @tasks_group.command(name="restart")
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_restart(self: TaskCog, ctx: commands.Context, task: str) -> None:
        """Restart a task: resets its backoff and closes an open circuit.

        Example: `[p]tasks restart housekeeping`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        self.supervisor.restart(spec.name, key)
        await self.set_stopped(spec, key, False)
        await ctx.send(success(_("Restarted `{task}`.").format(task=spec.name)))

    @tasks_group.command(name="run")
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_run(self: TaskCog, ctx: commands.Context, task: str) -> None:
        """Run a task once now, outside its schedule, and say how it went.

        Example: `[p]tasks run housekeeping`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        started = time.perf_counter()
        async with ctx.typing():
            status = await self.supervisor.run_now(spec.name, key)
        took = fmt.seconds(
            status.last_duration
            if status.last_duration is not None
            else time.perf_counter() - started
        )
        outcome = status.last_outcome.value if status.last_outcome else "?"
        if outcome == "ok":
            note = self.notes.get((spec.name, key))
            extra = f" — {note}" if note else ""
            await ctx.send(
                success(
                    _("Ran `{task}` in {took}: ok{extra}").format(
                        task=spec.name, took=took, extra=extra
                    )
                )
            )
        else:
            detail = fmt.one_line_error(status.last_error) if status.last_error else outcome
            await ctx.send(
                error(
                    _("Ran `{task}` in {took}: {outcome} — {detail}").format(
                        task=spec.name, took=took, outcome=outcome, detail=detail
                    )
                )
            )

    @tasks_group.command(name="errors")
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_errors(self: TaskCog, ctx: commands.Context, task: str) -> None:
        """Show a task's recent errors: messages for admins, tracebacks for the bot owner.

        Example: `[p]tasks errors housekeeping`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        live = self.supervisor.get_status(spec.name, key)
        owner = await ctx.bot.is_owner(ctx.author)
        now = discord.utils.utcnow()
        samples = fmt.sample_list(self.samples.get((spec.name, key), []))
        if live is None or not live.errors:
            persisted = self.state.summary(spec.name, key, live).last_error
            if persisted:
                text = _("No errors since the last load. Before that: {error}").format(
                    error=fmt.one_line_error(persisted)
                )
            else:
                text = _("No recent errors for `{task}`.").format(task=spec.name)
            await ctx.send(info(text) + samples)
            return
        body = fmt.error_list(live.errors, now, tracebacks=owner)
        header = _("Recent errors for `{task}`:").format(task=spec.name)
        pages = list(pagify(header + "\n" + body + samples, shorten_by=20, page_length=1900))
        await self._send_pages(ctx, pages)

    @tasks_group.command(name="pool")
    @commands.is_owner()
    async def tasks_pool(self: TaskCog, ctx: commands.Context) -> None:
        """Show the worker-pool lanes and the event-loop lag (bot owner only)."""
        await ctx.send(fmt.pool_table(self.pool.metrics(), self.lag.stats()))

    # ------------------------------------------------------------------ [p]taskset

    @commands.hybrid_group(name="taskset")
    async def taskset_group(self, ctx: commands.Context) -> None:
        """Per-server task settings: toggles, schedules and channels. They persist."""

    @taskset_group.command(name="show")
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_show(self: TaskCog, ctx: commands.Context) -> None:
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
    async def taskset_enable(self: TaskCog, ctx: commands.Context, task: str) -> None:
        """Enable a task in this server (persists across restarts).

        Example: `[p]taskset enable housekeeping`
        """
        await self._set_enabled(ctx, task, True)

    @taskset_group.command(name="disable")
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_disable(self: TaskCog, ctx: commands.Context, task: str) -> None:
        """Disable a task in this server (persists across restarts).

        Example: `[p]taskset disable housekeeping`
        """
        await self._set_enabled(ctx, task, False)

    async def _set_enabled(self: TaskCog, ctx: commands.Context, task: str, on: bool) -> None:
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
    async def taskset_interval(
        self: TaskCog, ctx: commands.Context, task: str, *, duration: str
    ) -> None:
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
    async def taskset_schedule(
        self: TaskCog, ctx: commands.Context, task: str, *, spec: str
    ) -> None:
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
        self: TaskCog, ctx: commands.Context, spec: TaskSpec, key: Hashable, schedule
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
    async def taskset_channel(
        self: TaskCog, ctx: commands.Context, task: str, channel: Channel
    ) -> None:
        """Set the channel a task posts to. I must be able to send messages and embeds there.

        Example: `[p]taskset channel housekeeping #bot-log`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        problem = self.channel_problem(ctx.guild, channel, channel.id)
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
    async def taskset_reset(self: TaskCog, ctx: commands.Context, task: str) -> None:
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
    async def global_default(
        self: TaskCog, ctx: commands.Context, task: str, *, spec: str
    ) -> None:
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
    async def global_pool(self: TaskCog, ctx: commands.Context, lane: str, workers: int) -> None:
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
    async def global_threshold(self: TaskCog, ctx: commands.Context, failures: int) -> None:
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
    async def global_servers(self: TaskCog, ctx: commands.Context, limit: int) -> None:
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
    async def global_alerts(self: TaskCog, ctx: commands.Context, on: bool) -> None:
        """Turn the owner DM on an open circuit on or off.

        Example: `[p]taskset global alerts off`
        """
        await self.settings.set_global("owner_alerts", on)
        await ctx.send(
            success(_("Owner alerts are {state}.").format(state=_("on") if on else _("off")))
        )
