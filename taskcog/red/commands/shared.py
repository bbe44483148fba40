"""What every command group shares: resolving a task name to the job this context may act on,
building a job's view for formatting, sending pages, and applying a changed setting.

A guild admin only ever sees and controls this guild's jobs; global tasks are for the bot owner.
"""

from __future__ import annotations

from typing import Hashable

from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import error
from redbot.core.utils.views import SimpleMenu

from .. import formatting as fmt
from ..abc import MixinMeta
from ..channels import resolve_channel
from ..registry import TaskSpec, UnknownTask

_ = Translator("TaskCog", __file__)


class CommandHelpers(MixinMeta):
    """Helpers the command mixins share."""

    async def _resolve(self, ctx: commands.Context, name: str) -> tuple[TaskSpec, Hashable] | None:
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

    def _view(self, spec: TaskSpec, key: Hashable) -> fmt.JobView:
        eff = self.settings.effective(spec, key)
        live = self.supervisor.get_status(spec.name, key) if self.supervisor else None
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

    async def _apply(self, spec: TaskSpec, key: Hashable) -> None:
        """A setting changed: the supervisor re-reads the job now (the next tick uses it)."""
        if self.supervisor is not None:
            await self.supervisor.refresh(spec.name, key)
