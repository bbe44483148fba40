"""What every command group shares: resolving a task name to the job this context may act on,
building a job's view for formatting, sending replies and pages, answering bad arguments in one
line, and applying a changed setting.

A guild admin only ever sees and controls this guild's jobs; global tasks are for the bot owner.
Every reply goes out through :meth:`CommandHelpers._say` or :meth:`CommandHelpers._send_pages`:
within Discord's length limit and unable to ping anyone, whatever user text it repeats.
"""

from __future__ import annotations

import logging
from typing import Any, Hashable

import discord
from discord import app_commands
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import error, pagify
from redbot.core.utils.views import SimpleMenu

from .. import formatting as fmt
from ..abc import MixinMeta
from ..channels import not_a_channel, resolve_channel
from ..registry import TaskSpec, UnknownTask

log = logging.getLogger("red.taskcog")
_ = Translator("TaskCog", __file__)

NO_PINGS = discord.AllowedMentions.none()


async def _input_error(cog: CommandHelpers, ctx: commands.Context, exc: Exception) -> None:
    """A command's ``on_error``: one line for arguments it cannot use; the rest goes to Red."""
    message = _input_problem(ctx, exc)
    if message is None:
        await ctx.bot.on_command_error(ctx, exc, unhandled_by_cog=True)
        return
    await cog._say(ctx, error(message))


def _input_problem(ctx: commands.Context, exc: Exception) -> str | None:
    argument = ctx.current_argument or ""
    if isinstance(exc, commands.TooManyArguments):
        usage = f"{ctx.clean_prefix}{ctx.command.qualified_name} {ctx.command.signature}"
        return _("Too many arguments. Use: `{usage}`").format(usage=usage.strip())
    if isinstance(exc, commands.BadUnionArgument) and exc.param.name == "channel":
        return not_a_channel(ctx.bot, ctx.guild, argument)
    if isinstance(exc, commands.BadBoolArgument):
        return _("'{value}' is not on or off.").format(value=fmt.user_text(argument))
    if isinstance(exc, commands.BadArgument):
        converter = getattr(ctx.current_parameter, "converter", None)
        if converter is int:
            return _("'{value}' is not a whole number.").format(value=fmt.user_text(argument))
        return fmt.error_text(str(exc))
    return None


def one_line_errors(command: Any) -> Any:
    """Decorate a command (above its ``@group.command``) so that a wrong or extra argument
    gets one line instead of the help page; other errors keep Red's handling."""
    command.error(_input_error)
    return command


class CommandHelpers(MixinMeta):
    """Helpers the command mixins share."""

    async def _say(self, ctx: commands.Context, text: str) -> None:
        """Reply with ``text``: never a ping, and paged if it would not fit one message."""
        if len(text) <= fmt.MESSAGE_LIMIT:
            await ctx.send(text, allowed_mentions=NO_PINGS)
        else:
            await self._send_pages(ctx, list(pagify(text, page_length=fmt.PAGE_LIMIT)))

    async def _delete_secret_message(self, ctx: commands.Context) -> str:
        """Delete a message that carried a secret if the bot may; says which it did."""
        if ctx.guild is not None and ctx.channel.permissions_for(ctx.guild.me).manage_messages:
            try:
                await ctx.message.delete()
                return _("I deleted your message.")
            except discord.HTTPException:
                pass
        return _("Delete your message now.")

    async def _refuse(self, ctx: commands.Context, message: str) -> None:
        await self._say(ctx, error(message))

    async def _resolve(
        self, ctx: commands.Context, name: str, server: str | None = None
    ) -> tuple[TaskSpec, Hashable] | None:
        """The task and job key this context may act on; else say why in one line, return None.

        ``server`` (a server id) lets the bot owner act on any server's job, from a DM too."""
        owner = await ctx.bot.is_owner(ctx.author)
        spec = await self._task(ctx, name, owner)
        if spec is None:
            return None
        if server is not None:
            return await self._resolve_elsewhere(ctx, spec, server, owner)
        if spec.is_global:
            if not owner:
                await self._refuse(ctx, _("Only the bot owner can see or control global tasks."))
                return None
            return spec, None
        if ctx.guild is None:
            hint = (
                _(" or add the server id: `{p}{command} {task} <server id>`").format(
                    p=ctx.clean_prefix, command=ctx.command.qualified_name, task=spec.name
                )
                if owner and "server" in ctx.command.clean_params
                else ""
            )
            await self._refuse(
                ctx,
                _("`{task}` runs per server: use this command in a server{hint}.").format(
                    task=spec.name, hint=hint
                ),
            )
            return None
        return spec, ctx.guild.id

    async def _task(self, ctx: commands.Context, name: str, owner: bool) -> TaskSpec | None:
        """The task called ``name`` that the invoker may see; else say so in one line."""
        try:
            return self.registry.get(name, owner=owner)
        except UnknownTask as exc:
            custom = self.customs.find(ctx.guild.id if ctx.guild else None, name)
            if custom is not None:  # one of this guild's own tasks ([p]taskset custom)
                return custom
            await self._refuse(
                ctx,
                _("Unknown task '{name}'. Known tasks: {known}.").format(
                    name=fmt.user_text(name), known=", ".join(exc.known) or _("none")
                ),
            )
            return None

    async def _resolve_elsewhere(
        self, ctx: commands.Context, spec: TaskSpec, server: str, owner: bool
    ) -> tuple[TaskSpec, Hashable] | None:
        if not owner:
            await self._refuse(ctx, _("Only the bot owner can act on another server's tasks."))
            return None
        if spec.is_global:
            await self._refuse(
                ctx, _("`{task}` is global: leave out the server id.").format(task=spec.name)
            )
            return None
        guild = ctx.bot.get_guild(int(server)) if server.isdigit() else None
        if guild is None:
            await self._refuse(
                ctx,
                _("I am in no server with the id '{id}'.").format(id=fmt.user_text(server, 30)),
            )
            return None
        return spec, guild.id

    async def _task_choices(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        """Slash autocomplete: the task names the invoker may see, matching what they typed."""
        owner = await self.bot.is_owner(interaction.user)
        typed = current.lower()
        names = [
            spec.name
            for spec in self.registry.visible(owner=owner)
            if typed in spec.name and (spec.is_global or interaction.guild is not None)
        ]
        if interaction.guild is not None:  # this server's custom tasks
            names += [
                s.name for s in self.customs.specs_for(interaction.guild.id) if typed in s.name
            ]
        return [app_commands.Choice(name=name, value=name) for name in sorted(names)[:25]]

    def _live(self, spec: TaskSpec, key: Hashable) -> Any:
        """The job's live status, or None; so is (logged) a status that cannot be read, so one
        bad job never breaks a reply about many."""
        return self._read_live(spec, key)[0]

    def _read_live(self, spec: TaskSpec, key: Hashable) -> tuple[Any, bool]:
        if self.supervisor is None:
            return None, True
        try:
            return self.supervisor.get_status(spec.name, key), True
        except Exception:
            log.exception("Could not read the status of %s (%s)", spec.name, key)
            return None, False

    def _view(self, spec: TaskSpec, key: Hashable) -> fmt.JobView:
        eff = self.settings.effective(spec, key)
        live, readable = self._read_live(spec, key)
        guild = self.bot.get_guild(key) if isinstance(key, int) else None
        channel = None
        if eff.channel_id is not None:
            found = resolve_channel(guild, eff.channel_id)
            channel = (
                found.mention
                if found is not None
                else _("deleted channel ({id})").format(id=eff.channel_id)
            )
        return fmt.JobView(
            task=spec.name,
            key=key,
            guild_name=None,
            state=fmt.display_state(eff.enabled, live) if readable else "unavailable",
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
        """One message, or a menu of pages; no page over the limit, no page pings anyone."""
        fitted = [
            piece
            for page in pages
            for piece in (
                [page]
                if len(page) <= fmt.MESSAGE_LIMIT
                else pagify(page, page_length=fmt.PAGE_LIMIT)
            )
        ]
        if len(fitted) == 1:
            await ctx.send(fitted[0], allowed_mentions=NO_PINGS)
        else:
            menu_pages = [{"content": page, "allowed_mentions": NO_PINGS} for page in fitted]
            await SimpleMenu(menu_pages, use_select_menu=False).start(ctx)

    async def _apply(self, spec: TaskSpec, key: Hashable) -> None:
        """A setting changed: the supervisor re-reads the job now (the next tick uses it)."""
        if self.supervisor is not None:
            await self.supervisor.refresh(spec.name, key)
