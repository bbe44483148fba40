"""``[p]taskset alerts``: where a guild's own task alerts go."""

from __future__ import annotations

from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import error, success

from ..channels import channel_problem
from .shared import CommandHelpers, one_line_errors
from .taskset import TasksetCommands

_ = Translator("TaskCog", __file__)


class AlertCommands(CommandHelpers):
    """The ``[p]taskset alerts`` mixin."""

    @one_line_errors
    @TasksetCommands.taskset_group.command(name="alerts", ignore_extra=False)
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_alerts(self, ctx: commands.Context, *, channel: str) -> None:
        """Where this server's task alerts go: a channel, or `off`.

        When a task stops after failing again and again, I post the cause and the command
        that fixes it there.

        Examples:
        - `[p]taskset alerts #bot-log`
        - `[p]taskset alerts off`
        """
        conf = self.config.guild(ctx.guild)
        if channel.strip().lower() == "off":
            await conf.alerts_channel.clear()
            await self._say(ctx, success(_("Task alerts for this server are off.")))
            return
        try:
            target = await commands.TextChannelConverter().convert(ctx, channel.strip())
        except commands.BadArgument:
            await self._say(
                ctx,
                error(_("I cannot find that channel in this server. Mention it, or use `off`.")),
            )
            return
        problem = channel_problem(ctx.guild, target, target.id)
        if problem:
            await self._say(ctx, error(problem))
            return
        await conf.alerts_channel.set(target.id)
        await self._say(
            ctx,
            success(
                _("Task alerts for this server now go to {channel}.").format(
                    channel=target.mention
                )
            ),
        )
