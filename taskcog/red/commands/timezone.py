"""``[p]taskset timezone``: the zone a guild's ``daily``, ``cron`` and ``once`` specs use when
they name none. A spec saved with ``[p]taskset schedule`` names its zone from then on; a
default written without one (a task's built-in default) follows the guild's zone as it changes.
"""

from __future__ import annotations

import discord
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import info, success

from ...engine.schedules import ScheduleError, zone_from_name, zone_name
from .. import formatting as fmt
from .shared import CommandHelpers, one_line_errors
from .taskset import TasksetCommands

_ = Translator("TaskCog", __file__)


class TimezoneCommands(CommandHelpers):
    """The ``[p]taskset timezone`` mixin."""

    @one_line_errors
    @TasksetCommands.taskset_group.command(name="timezone", ignore_extra=False)
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_timezone(self, ctx: commands.Context, zone: str | None = None) -> None:
        """Show or set this server's time zone (an IANA name; default UTC).

        `daily`, `cron` and `once` schedules written without a zone use it. Schedules already
        set keep the zone they were saved with; built-in default schedules follow the new one.

        Examples:
        - `[p]taskset timezone` shows it
        - `[p]taskset timezone Europe/Berlin`
        - `[p]taskset timezone reset` goes back to UTC
        """
        guild_id = ctx.guild.id
        if zone is None:
            await self._say(ctx, info(self._zone_line(guild_id)))
            return
        if zone.strip().lower() == "reset":
            name = None
        else:
            try:
                name = zone_name(zone_from_name(zone.strip()))
            except ScheduleError as exc:
                await self._refuse(
                    ctx,
                    _("{problem}: use an IANA name such as Europe/Berlin.").format(
                        problem=fmt.error_text(str(exc))
                    ),
                )
                return
        await self.settings.set_timezone(guild_id, name)
        for spec in self.registry:
            if not spec.is_global:  # a default schedule may follow the zone: re-read it now
                await self._apply(spec, guild_id)
        await self._say(ctx, success(self._zone_line(guild_id)))

    def _zone_line(self, guild_id: int) -> str:
        name = self.settings.timezone_of(guild_id)
        local = discord.utils.utcnow().astimezone(zone_from_name(name))
        shown = fmt.user_text(name) if guild_id in self.settings.timezones else _("UTC (default)")
        return _(
            "This server's time zone is {zone} (it is {time} there). `daily`, `cron` and `once` "
            "schedules written without a zone use it."
        ).format(zone=shown, time=local.strftime("%H:%M"))
