"""``[p]taskset custom``: a guild's admins schedule their own tasks (say a text, run a command),
and ``[p]taskset global custom``/``lag``: the owner's limits for them and for deferral.

Everything is validated before anything is saved: a bad name, spec, text or command gets one
line and changes nothing.
"""

from __future__ import annotations

from typing import Hashable

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import pagify, success

from ...engine.schedules import Schedule, ScheduleError, parse_spec
from ...engine.supervision import NeedsSetup
from .. import formatting as fmt
from ..deferring import threshold_of
from ..invoke import context_as
from ..registry import check_min_interval
from ..stores.custom import CustomTask
from ..tasks.custom import MIN_INTERVAL, NAME, RESERVED, TEXT_LIMIT
from .shared import CommandHelpers, one_line_errors
from .taskset import TasksetCommands

_ = Translator("TaskCog", __file__)

SPEC_WORDS = ("every", "daily", "cron", "once", "after")


class BadCustom(ValueError):
    """One line saying what is wrong with a custom task command."""


def split_action(rest: str) -> tuple[str, str, str]:
    """``<spec> say|run <text>`` -> (spec, action, text), keeping the text's own spacing."""
    words = rest.split()
    for i, word in enumerate(words):
        if word.lower() in ("say", "run") and i > 0:
            head = rest.split(None, i + 1)
            return " ".join(words[:i]), word.lower(), head[i + 1] if len(head) > i + 1 else ""
    raise BadCustom(_("Say what it does: `... say <text>` or `... run <command>`."))


class CustomCommands(CommandHelpers):
    """The ``[p]taskset custom`` mixin."""

    @TasksetCommands.taskset_group.group(name="custom")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_custom(self, ctx: commands.Context) -> None:
        """This server's own tasks: post a text or run a command on a schedule.

        They show in `[p]tasks status` and obey `[p]tasks start/stop/run/errors` like any task.
        """

    @one_line_errors
    @taskset_custom.command(name="add")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def custom_add(self, ctx: commands.Context, name: str, *, rest: str) -> None:
        """Add a custom task: `<name> <schedule> say [--ping] <text>` or `... run <command>`.

        The schedule is any spec (`every 2h`, `daily 18:00 Europe/Berlin`, `cron ...`,
        `once in 2h`) or `after <task>`. A `run` task runs as you, in this channel, with your
        permissions checked at every run.

        Examples:
        - `[p]taskset custom add monday cron 0 18 * * 1 Europe/Berlin say Game night!`
        - `[p]taskset custom add nightly daily 03:00 run leaderboard`
        - `[p]taskset custom add thanks after killfeed say Thanks for playing!`
        """
        try:
            name = self._new_name(ctx, name)
            spec, action, text = split_action(rest)
            schedule = self._custom_schedule(ctx, name, spec)
            task = await self._custom_action(ctx, name, action, text)
        except BadCustom as exc:
            await self._refuse(ctx, str(exc))
            return
        await self._save_custom(ctx, task, schedule, added=True)

    @one_line_errors
    @taskset_custom.command(name="edit")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def custom_edit(self, ctx: commands.Context, name: str, *, change: str) -> None:
        """Change a custom task's schedule, its text or command, or both.

        A new text or command makes you its author (it then runs with your permissions).

        Examples:
        - `[p]taskset custom edit monday daily 18:00`
        - `[p]taskset custom edit monday Game night moved to 19:00!`
        - `[p]taskset custom edit nightly run leaderboard weekly`
        """
        task = self.customs.store.get(ctx.guild.id, name.lower().strip())
        if task is None:
            await self._refuse(ctx, self._unknown(ctx, name))
            return
        spec = self.customs.spec(task.name)
        first = change.split()[0].lower() if change.split() else ""
        try:
            schedule = None
            if first in SPEC_WORDS:
                try:
                    spec_text, action, text = split_action(change)
                except BadCustom:
                    spec_text, action, text = change, "", ""
                schedule = self._custom_schedule(ctx, task.name, spec_text)
                if action:
                    task = await self._custom_action(ctx, task.name, action, text)
            elif first in ("say", "run"):
                action, _sep, text = change.strip().partition(" ")
                task = await self._custom_action(ctx, task.name, action.lower(), text.strip())
            else:
                task = await self._custom_action(ctx, task.name, task.action, change.strip())
        except BadCustom as exc:
            await self._refuse(ctx, str(exc))
            return
        if schedule is None:
            schedule = self.settings.effective(spec, ctx.guild.id).schedule
        await self._save_custom(ctx, task, schedule, added=False)

    @one_line_errors
    @taskset_custom.command(name="remove", aliases=["delete"], ignore_extra=False)
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def custom_remove(self, ctx: commands.Context, name: str) -> None:
        """Remove a custom task of this server, with its settings and counters.

        Example: `[p]taskset custom remove monday`
        """
        task = self.customs.store.get(ctx.guild.id, name.lower().strip())
        if task is None:
            await self._refuse(ctx, self._unknown(ctx, name))
            return
        spec = self.customs.spec(task.name)
        await self.customs.store.remove(ctx.guild.id, task.name)
        await self.settings.reset_task(spec, ctx.guild.id)
        await self.state.forget(task.name, ctx.guild.id)
        await self.customs.removed(ctx.guild.id, task.name)
        await self._say(ctx, success(_("Removed `{name}`.").format(name=task.name)))

    @one_line_errors
    @taskset_custom.command(name="list", ignore_extra=False)
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def custom_list(self, ctx: commands.Context) -> None:
        """List this server's custom tasks: schedule, what they do, author and channel."""
        tasks = self.customs.store.of(ctx.guild.id)
        if not tasks:
            await self._say(ctx, _("This server has no custom tasks yet."))
            return
        lines = []
        for task in tasks:
            view = self._view(self.customs.spec(task.name), ctx.guild.id)
            author = ctx.guild.get_member(task.author_id)
            what = f"{task.action}{' --ping' if task.ping else ''}: {fmt.user_text(task.text, 80)}"
            lines.append(
                _("**{name}** ({state}) · {schedule} · {what} · by {author} · {channel}").format(
                    name=task.name,
                    state=view.state,
                    schedule=fmt.schedule_text(view.schedule),
                    what=what,
                    author=fmt.user_text(str(author)) if author else _("a member who left"),
                    channel=view.channel or _("no channel"),
                )
            )
        limit = int(self.settings.globals.get("max_custom", 25))
        lines.append(_("{n} of {limit} custom tasks.").format(n=len(tasks), limit=limit))
        await self._send_pages(ctx, list(pagify("\n".join(lines))))

    # ------------------------------------------------------------------ validation

    @staticmethod
    def _unknown(ctx: commands.Context, name: str) -> str:
        return _("This server has no custom task '{name}'. See `{p}taskset custom list`.").format(
            name=fmt.user_text(name, 40), p=ctx.clean_prefix
        )

    def _new_name(self, ctx: commands.Context, name: str) -> str:
        name = name.lower()
        if not NAME.match(name) or name in RESERVED:
            raise BadCustom(
                _("Bad name '{name}': use 2-20 lowercase letters, digits, '-' or '_'.").format(
                    name=fmt.user_text(name, 40)
                )
            )
        if name in self.registry:
            raise BadCustom(_("`{name}` is a built-in task: pick another name.").format(name=name))
        if self.customs.store.get(ctx.guild.id, name) is not None:
            raise BadCustom(
                _("`{name}` already exists here: use `edit` or `remove`.").format(name=name)
            )
        count = len(self.customs.store.of(ctx.guild.id))
        limit = int(self.settings.globals.get("max_custom", 25))
        if count >= limit:
            raise BadCustom(
                _("This server already has {n} custom tasks, the limit.").format(n=count)
            )
        return name

    def _custom_schedule(self, ctx: commands.Context, name: str, text: str) -> Schedule:
        if not text.strip():
            raise BadCustom(
                _("Give a schedule, e.g. `every 1h`, `daily 18:00` or `after killfeed`.")
            )
        try:
            schedule = parse_spec(
                text,
                default_tz=self.settings.timezone_of(ctx.guild.id),
                now=discord.utils.utcnow(),
            )
            check_min_interval(schedule, MIN_INTERVAL)
        except ScheduleError as exc:
            raise BadCustom(fmt.error_text(str(exc))) from None
        problem = self._after_problem(ctx, name, schedule, ctx.guild.id)
        if problem:
            raise BadCustom(problem)
        return schedule

    def _after_problem(
        self, ctx: commands.Context, name: str, schedule: Schedule, key: Hashable
    ) -> str | None:
        """Why ``name`` may not run ``after`` the task its schedule names (None if it may):
        the task is unknown here, or following it closes a dependency cycle."""
        if schedule.kind != "after":
            return None
        leader = schedule.task  # type: ignore[attr-defined]
        known = leader in self.registry and (
            key is None or not self.registry.get(leader).is_global
        )
        if not known and self.customs.store.get(key, leader) is None:
            return _("There is no task '{task}' here to run after.").format(
                task=fmt.user_text(leader, 40)
            )
        cycle = self.supervisor.dependency_cycle(name, leader, key) if self.supervisor else None
        if cycle is not None:
            return _("That makes a dependency cycle: {cycle}.").format(cycle=cycle)
        return None

    async def _custom_action(
        self, ctx: commands.Context, name: str, action: str, text: str
    ) -> CustomTask:
        ping = False
        if action == "say" and text.split(None, 1)[:1] == ["--ping"]:
            ping, text = True, text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
        text = text.strip()
        if not text:
            raise BadCustom(_("Give the text to post or the command to run."))
        if len(text) > TEXT_LIMIT:
            raise BadCustom(
                _("That is {n} characters; the most is {limit}.").format(
                    n=len(text), limit=TEXT_LIMIT
                )
            )
        if action == "run":
            text = self._without_prefix(ctx, text)
            try:  # the same checks as at every run: you may only schedule what you may run
                await context_as(ctx.bot, ctx.channel, ctx.author, text)
            except NeedsSetup as exc:
                raise BadCustom(_("Cannot schedule that: {why}.").format(why=str(exc))) from None
        return CustomTask(name=name, action=action, text=text, author_id=ctx.author.id, ping=ping)

    @staticmethod
    def _without_prefix(ctx: commands.Context, text: str) -> str:
        for prefix in (ctx.prefix, ctx.clean_prefix):
            if prefix and text.startswith(prefix):
                return text[len(prefix) :].strip()
        return text

    async def _save_custom(
        self, ctx: commands.Context, task: CustomTask, schedule: Schedule, added: bool
    ) -> None:
        upcoming = schedule.preview(3, discord.utils.utcnow())
        spec = self.customs.spec(task.name)
        await self.customs.store.save(ctx.guild.id, task)
        changes = {"schedule": schedule.spec}
        if added:
            changes["channel"] = ctx.channel.id
        await self.settings.update_task(spec, ctx.guild.id, **changes)
        await self.customs.saved(ctx.guild.id, task.name)
        verb = _("Added") if added else _("Updated")
        when = fmt.preview_lines(upcoming) if upcoming else "-"
        await self._say(
            ctx,
            success(
                _("{verb} `{name}`: {action} {schedule}. Next runs:\n{when}").format(
                    verb=verb,
                    name=task.name,
                    action=task.action,
                    schedule=fmt.schedule_text(schedule),
                    when=when,
                )
            ),
        )

    # ------------------------------------------------------------------ owner limits

    @one_line_errors
    @TasksetCommands.taskset_global.command(name="custom", ignore_extra=False)
    async def global_custom(self, ctx: commands.Context, limit: int) -> None:
        """Set how many custom tasks each server may have (1-100).

        Example: `[p]taskset global custom 25`
        """
        if not 1 <= limit <= 100:
            await self._refuse(ctx, _("The limit must be between 1 and 100."))
            return
        await self.settings.set_global("max_custom", limit)
        await self._say(
            ctx, success(_("Each server may now have {n} custom tasks.").format(n=limit))
        )

    @one_line_errors
    @TasksetCommands.taskset_global.command(name="lag", ignore_extra=False)
    async def global_lag(self, ctx: commands.Context, p99_ms: str) -> None:
        """Defer low-priority tasks while the event loop's p99 lag (last 10 s) is over this
        many milliseconds (10-10000), or `off`. Default 100.

        Example: `[p]taskset global lag 250`
        """
        value: int | None
        if p99_ms.lower() == "off":
            value = None
        elif p99_ms.isdigit() and 10 <= int(p99_ms) <= 10_000:
            value = int(p99_ms)
        else:
            await self._refuse(ctx, _("Give milliseconds from 10 to 10000, or `off`."))
            return
        await self.settings.set_global("lag_threshold_ms", value)
        if self.supervisor is not None and self.supervisor.deferral is not None:
            self.supervisor.deferral.threshold = threshold_of(self.settings)
        text = (
            _("Low-priority tasks are no longer deferred.")
            if value is None
            else _("Low-priority tasks now wait while p99 lag is over {ms} ms.").format(ms=value)
        )
        await self._say(ctx, success(text))
