"""What the bot owner needs across guilds, and looking ahead at a task's schedule.

- ``[p]tasks problems``: only the jobs that are failing, parked by their circuit or waiting for
  setup, across every guild, grouped by task and cause, paginated;
- ``[p]tasks pause all`` / ``[p]tasks resume all``: hold or release every task at once;
- ``[p]tasks next <task> [n]``: the next runs of a task here, as Discord timestamps;
- ``[p]taskset global show``: every bot-wide setting on one page.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import error, escape, humanize_list, pagify, success

from ...engine.supervision import State, TaskStatus
from .. import formatting as fmt
from .shared import CommandHelpers, one_line_errors
from .tasks import TasksCommands
from .taskset import TasksetCommands

_ = Translator("TaskCog", __file__)

NAMED = 5  # guilds named per problem group; the rest are counted
MAX_NEXT = 20


def _cause(status: TaskStatus) -> str:
    """The one line that groups a job with others broken the same way."""
    if status.state is State.NEEDS_SETUP and status.needs_setup:
        return _("needs setup: {what}").format(what=status.needs_setup)
    if status.last_error is not None:
        return f"{status.last_error.type}: {status.last_error.message}"
    return str(status.last_outcome or status.state)


def _problem(status: TaskStatus) -> str:
    if status.state is State.CIRCUIT_OPEN:
        return _("circuit open")
    if status.state is State.NEEDS_SETUP:
        return _("needs setup")
    return _("failing")


class OwnerCommands(CommandHelpers):
    """``[p]tasks problems|pause|resume|next`` and ``[p]taskset global show``."""

    @one_line_errors
    @TasksCommands.tasks_group.command(name="problems", ignore_extra=False)
    @commands.is_owner()
    async def tasks_problems(self, ctx: commands.Context) -> None:
        """Show only the tasks that need attention, in every server (bot owner only).

        Failing, parked by their circuit, or waiting for setup; grouped by task and cause.
        """
        if self.supervisor is None:
            return
        groups: dict[tuple[str, str, str], list[Hashable]] = defaultdict(list)
        for status in self.supervisor.troubled():
            cause = " ".join(_cause(status).split())[:150]
            groups[(status.name, _problem(status), cause)].append(status.key)
        if not groups:
            await self._say(ctx, success(_("No problems: every task is running or sleeping.")))
            return
        blocks = []
        for (task, problem, cause), keys in sorted(groups.items(), key=lambda g: -len(g[1])):
            where = [self._where(key) for key in keys[:NAMED]]
            if len(keys) > NAMED:
                where.append(_("{n} more").format(n=len(keys) - NAMED))
            servers = fmt.plural(len(keys), _("server"), _("servers"))
            blocks.append(
                f"**{task}** — {problem}, {servers}: `{cause.replace('`', chr(39))}`\n"
                + escape(humanize_list(where), mass_mentions=True, formatting=True)
            )
        pages = list(pagify("\n\n".join(blocks), delims=["\n\n", "\n"], page_length=1800))
        await self._send_pages(ctx, pages)

    def _where(self, key: Hashable) -> str:
        if key is None:
            return _("global")
        guild = self.bot.get_guild(key) if isinstance(key, int) else None
        return f"{guild.name} ({key})" if guild is not None else str(key)

    @one_line_errors
    @TasksCommands.tasks_group.command(name="pause", ignore_extra=False)
    @commands.is_owner()
    async def tasks_pause(self, ctx: commands.Context, scope: str) -> None:
        """Hold every task in every server now (bot owner only): `[p]tasks pause all`.

        Runs in progress finish; nothing new starts until `[p]tasks resume all` or the bot
        restarts. Missed runs follow each task's catch-up rule on resume.
        """
        await self._pause_all(ctx, scope, paused=True)

    @one_line_errors
    @TasksCommands.tasks_group.command(name="resume", ignore_extra=False)
    @commands.is_owner()
    async def tasks_resume(self, ctx: commands.Context, scope: str) -> None:
        """Release every task after a pause (bot owner only): `[p]tasks resume all`."""
        await self._pause_all(ctx, scope, paused=False)

    async def _pause_all(self, ctx: commands.Context, scope: str, *, paused: bool) -> None:
        verb = "pause" if paused else "resume"
        if scope.lower() != "all" or self.supervisor is None:
            await self._say(
                ctx, error(_("Say `{p}tasks {verb} all`.").format(p=ctx.clean_prefix, verb=verb))
            )
            return
        names = list(self.supervisor.definitions())
        for name in names:
            (self.supervisor.pause if paused else self.supervisor.resume)(name)
        if paused:
            text = _("Paused all {n} tasks in every server. `{p}tasks resume all` releases them.")
        else:
            text = _("Resumed all {n} tasks.")
        await self._say(ctx, success(text.format(n=len(names), p=ctx.clean_prefix)))

    @one_line_errors
    @TasksCommands.tasks_group.command(name="next", ignore_extra=False)
    @commands.admin_or_permissions(manage_guild=True)
    async def tasks_next(self, ctx: commands.Context, task: str, n: int = 5) -> None:
        """Preview a task's next runs here (5 by default, at most 20).

        Example: `[p]tasks next housekeeping 10`
        """
        if not 1 <= n <= MAX_NEXT:
            await self._say(ctx, error(_("Ask for 1 to {max} runs.").format(max=MAX_NEXT)))
            return
        resolved = await self._resolve(ctx, task)
        if resolved is None:
            return
        spec, key = resolved
        eff = self.settings.effective(spec, key)
        if not eff.enabled:
            await self._say(
                ctx,
                error(
                    _("`{task}` is disabled here, so it has no next runs.").format(task=spec.name)
                ),
            )
            return
        now = discord.utils.utcnow()
        live = self.supervisor.get_status(spec.name, key) if self.supervisor else None
        upcoming = []
        if live is not None and live.next_run is not None and live.next_run >= now:
            upcoming.append(live.next_run)  # the job's own next fire (its spread slot, retry…)
        after = upcoming[0] if upcoming else now
        try:
            upcoming += eff.schedule.preview(n - len(upcoming), after)
        except (OverflowError, ValueError):
            pass
        if not upcoming:
            await self._say(ctx, _("`{task}` has no more runs.").format(task=spec.name))
            return
        header = _("Next runs of `{task}` ({schedule}):").format(
            task=spec.name, schedule=eff.schedule.describe()
        )
        await self._say(ctx, header + "\n" + fmt.preview_lines(upcoming[:n]))

    @one_line_errors
    @TasksetCommands.taskset_global.command(name="show", ignore_extra=False)
    async def global_show(self, ctx: commands.Context) -> None:
        """Show every bot-wide setting (bot owner only)."""
        g = self.settings.globals
        defaults = g.get("default_schedules", {}) or {}
        pool = g.get("pool", {}) or {}
        lines = [
            _("**Circuit threshold:** {n} failures in a row").format(
                n=g.get("failure_threshold", 5)
            ),
            _("**Owner alerts:** {state}").format(
                state=_("on") if g.get("owner_alerts", True) else _("off")
            ),
            _("**Game servers per server:** {n}").format(n=g.get("max_servers", 5)),
            _("**Worker pool:** {lanes}").format(
                lanes=", ".join(f"{lane} {n}" for lane, n in pool.items()) or _("default")
            ),
            _("**Default schedules:**"),
        ]
        for spec in self.registry.visible(owner=True):
            text = defaults.get(spec.name)
            source = _("owner default") if text else _("built-in")
            lines.append(f"- `{spec.name}`: {text or spec.default_schedule} ({source})")
        await self._send_pages(ctx, list(pagify("\n".join(lines))))
