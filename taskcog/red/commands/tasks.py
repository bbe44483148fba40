"""``[p]tasks``: see and steer tasks now, systemctl-style (``start``/``stop`` act at once).

Thin on purpose: parse, check scope, call the supervisor, format.
"""

from __future__ import annotations

import time

import discord
from discord import app_commands
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import info, pagify, success, warning

from .. import formatting as fmt
from ..deferring import deferral_line
from ..registry import TaskSpec
from .runargs import remember, run_request
from .shared import CommandHelpers, one_line_errors

_ = Translator("TaskCog", __file__)


class TasksCommands(CommandHelpers):
    """The ``[p]tasks`` mixin."""

    @commands.hybrid_group(name="tasks")
    async def tasks_group(self, ctx: commands.Context) -> None:
        """See and steer taskcog's background tasks.

        `start`/`stop` act now; `[p]taskset enable`/`disable` persist.
        """

    @one_line_errors
    @tasks_group.command(name="status", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_status(
        self, ctx: commands.Context, task: str | None = None, scope: str | None = None
    ) -> None:
        """Show every task here, or one task in detail.

        The bot owner can add `all` to see every server.

        Examples:
        - `[p]tasks status`
        - `[p]tasks status housekeeping`
        - `[p]tasks status all` (owner)
        """
        now = discord.utils.utcnow()
        if scope is not None and scope.lower() != "all":
            await self._refuse(
                ctx,
                _("Unknown option '{option}': only `all` may follow the task.").format(
                    option=fmt.user_text(scope)
                ),
            )
            return
        everywhere = scope is not None or (task or "").lower() == "all"
        if task is not None and task.lower() == "all":
            task = None
        owner = await ctx.bot.is_owner(ctx.author)
        if everywhere and not owner:
            await self._refuse(ctx, _("Only the bot owner can see every server's tasks."))
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
            await self._send_pages(
                ctx, list(pagify(fmt.detail(self._view(spec, key), now, ctx.clean_prefix)))
            )
            return
        views = []
        for spec in self.registry.visible(owner=owner):
            if spec.is_global:
                views.append(self._view(spec, None))
            elif everywhere:
                views.extend(self._named_view(spec, gid) for gid in self._guild_keys(spec))
            elif ctx.guild is not None:
                views.append(self._view(spec, ctx.guild.id))
        for guild in self.bot.guilds if everywhere else []:  # every server's custom tasks
            views.extend(self._named_view(s, guild.id) for s in self.customs.specs_for(guild.id))
        if ctx.guild is not None and not everywhere:  # this guild's custom tasks
            views.extend(
                self._view(spec, ctx.guild.id) for spec in self.customs.specs_for(ctx.guild.id)
            )
        await self._send_pages(ctx, fmt.status_pages(views, now))

    def _guild_keys(self, spec: TaskSpec) -> list[int]:
        return sorted(guild.id for guild in self.bot.guilds)

    def _named_view(self, spec: TaskSpec, guild_id: int) -> fmt.JobView:
        view = self._view(spec, guild_id)
        guild = self.bot.get_guild(guild_id)
        view.guild_name = guild.name if guild else str(guild_id)
        return view

    @one_line_errors
    @tasks_group.command(name="start", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_start(
        self, ctx: commands.Context, task: str, server: str | None = None
    ) -> None:
        """Start a stopped task now, in this server.

        A task that is already running is left as it is. The bot owner can add a server id,
        also in a DM: `[p]tasks start killfeed 123456789012345678`.

        Example: `[p]tasks start housekeeping`
        """
        resolved = await self._resolve(ctx, task, server)
        if resolved is None:
            return
        spec, key = resolved
        eff = self.settings.effective(spec, key)
        if not eff.enabled:
            await self._say(
                ctx,
                warning(
                    _(
                        "`{task}` is disabled here. Enable it with `{p}taskset enable {task}`."
                    ).format(task=spec.name, p=ctx.clean_prefix)
                ),
            )
            return
        status = self._live(spec, key)
        if status is not None and status.state.value not in ("stopped", "circuit-open"):
            nxt = fmt.discord_time(status.next_run) if status.next_run else _("soon")
            await self._say(
                ctx,
                info(
                    _(
                        "`{task}` is already running here (next run {next}). Nothing changed."
                    ).format(task=spec.name, next=nxt)
                ),
            )
            return
        if status is not None and self.supervisor.is_paused(spec.name, key):
            await self._refuse(
                ctx,
                _("The bot owner paused every task: `{p}tasks resume all` releases them.").format(
                    p=ctx.clean_prefix
                ),
            )
            return
        self.supervisor.start_job(spec.name, key)
        await self.set_stopped(spec, key, False)
        status = self._live(spec, key)
        nxt = fmt.discord_time(status.next_run) if status and status.next_run else _("soon")
        await self._say(
            ctx, success(_("Started `{task}`. Next run {next}.").format(task=spec.name, next=nxt))
        )

    @one_line_errors
    @tasks_group.command(name="stop", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_stop(
        self, ctx: commands.Context, task: str, server: str | None = None
    ) -> None:
        """Stop a task now, in this server.

        It stays stopped until `[p]tasks start` or until the bot restarts, when its enabled
        flag decides. A run in progress is allowed to finish.

        The bot owner can add a server id, also in a DM.

        Example: `[p]tasks stop housekeeping`
        """
        resolved = await self._resolve(ctx, task, server)
        if resolved is None:
            return
        spec, key = resolved
        self.supervisor.stop_job(spec.name, key)
        await self.set_stopped(spec, key, True)
        await self._say(
            ctx,
            success(
                _(
                    "Stopped `{task}`. It stays stopped until `{p}tasks start {task}` "
                    "or the bot restarts."
                ).format(task=spec.name, p=ctx.clean_prefix)
            ),
        )

    @one_line_errors
    @tasks_group.command(name="restart", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_restart(
        self, ctx: commands.Context, task: str, server: str | None = None
    ) -> None:
        """Restart a task: resets its backoff and closes an open circuit.

        It does not run at once: it goes on at its next scheduled run. The bot owner can add a
        server id, also in a DM.

        Example: `[p]tasks restart housekeeping`
        """
        resolved = await self._resolve(ctx, task, server)
        if resolved is None:
            return
        spec, key = resolved
        self.supervisor.restart(spec.name, key)
        await self.set_stopped(spec, key, False)
        await self._say(ctx, success(_("Restarted `{task}`.").format(task=spec.name)))

    @one_line_errors
    @tasks_group.command(name="run", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_run(self, ctx: commands.Context, task: str, server: str | None = None) -> None:
        """Run a task once now, outside its schedule, and say how it went.

        The bot owner can add a server id, also in a DM. `history` takes a game server's name.

        Example: `[p]tasks run housekeeping`
        """
        asked = await run_request(self, ctx, task, server)
        if asked is None:
            return
        server, request = asked
        resolved = await self._resolve(ctx, task, server)
        if resolved is None:
            return
        spec, key = resolved
        remember(self, spec, key, request)
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
            await self._say(
                ctx,
                success(
                    _("Ran `{task}` in {took}: ok{extra}").format(
                        task=spec.name, took=took, extra=extra
                    )
                ),
            )
        else:
            if status.needs_setup and outcome == "needs-setup":
                detail = status.needs_setup
            else:
                detail = fmt.one_line_error(status.last_error) if status.last_error else outcome
            await self._refuse(
                ctx,
                _("Ran `{task}` in {took}: {outcome} — {detail}").format(
                    task=spec.name, took=took, outcome=outcome, detail=detail
                ),
            )

    @one_line_errors
    @tasks_group.command(name="errors", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_errors(self, ctx: commands.Context, task: str) -> None:
        """Show a task's recent errors: messages for admins, tracebacks for the bot owner.

        Example: `[p]tasks errors housekeeping`
        """
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        live = self._live(spec, key)
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
            await self._say(ctx, info(text) + samples)
            return
        body = fmt.error_list(live.errors, now, tracebacks=owner)
        header = _("Recent errors for `{task}`:").format(task=spec.name)
        pages = list(pagify(header + "\n" + body + samples, shorten_by=20, page_length=1900))
        await self._send_pages(ctx, pages)

    @one_line_errors
    @tasks_group.command(name="pool", ignore_extra=False)
    @commands.is_owner()
    async def tasks_pool(self, ctx: commands.Context) -> None:
        """Show the worker-pool lanes and the event-loop lag (bot owner only)."""
        table = fmt.pool_table(self.pool.metrics(), self.lag.stats())
        table += deferral_line(self.supervisor)
        await self._say(ctx, table + "\n" + await self.backends.status_text())

    @tasks_status.autocomplete("task")
    @tasks_start.autocomplete("task")
    @tasks_stop.autocomplete("task")
    @tasks_restart.autocomplete("task")
    @tasks_run.autocomplete("task")
    @tasks_errors.autocomplete("task")
    async def _tasks_task_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return await self._task_choices(interaction, current)
