"""``[p]taskset announce`` (long shots, kill streaks) and ``[p]taskset killfeed`` (what a kill
shows, where suicides and environmental deaths go, and the delayed feed)."""

from __future__ import annotations

from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import box, success

from ...engine.schedules import ScheduleError, format_duration, parse_duration
from ...pipeline.announce import DEATHS_CHANNEL, DEATHS_FEED, DEATHS_HIDDEN, KillOptions
from .. import formatting as fmt
from ..channels import channel_problem
from .serverlog import ServerlogCommands
from .shared import one_line_errors
from .taskset import TasksetCommands

_ = Translator("TaskCog", __file__)
MAX_DELAY = 24 * 3600.0
MAX_DISTANCE = 5000
_FIELDS = {"distance": "show_distance", "weapon": "show_weapon", "platform": "show_platform"}


def _off(text: str) -> bool:
    return text.strip().lower() in ("off", "none", "0", "no")


class AnnounceCommands(ServerlogCommands):
    """The ``[p]taskset announce`` and ``[p]taskset killfeed`` groups."""

    async def _kill_options(self, guild_id: int) -> KillOptions:
        return KillOptions.from_options(await self._task_options(guild_id, "killfeed"))

    @TasksetCommands.taskset_group.group(name="announce", with_app_command=False)
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_announce(self, ctx: commands.Context) -> None:
        """Shout-outs in the killfeed channel: long shots and kill streaks."""

    @one_line_errors
    @taskset_announce.command(name="longshot", with_app_command=False)
    async def announce_longshot(self, ctx: commands.Context, metres: str) -> None:
        """Announce kills from at least this far (metres), or `off`. Default 300.

        Example: `[p]taskset announce longshot 400`
        """
        if _off(metres):
            value = None
        elif metres.isdigit() and 1 <= int(metres) <= MAX_DISTANCE:
            value = int(metres)
        else:
            await self._refuse(
                ctx,
                _("'{value}' is not a distance: use 1-{top} metres or `off`.").format(
                    value=fmt.user_text(metres, 20), top=MAX_DISTANCE
                ),
            )
            return
        await self._save_options(ctx.guild.id, "killfeed", long_shot=value)
        text = (
            _("Long shots: off.")
            if value is None
            else _("Long shots: from {m} m.").format(m=value)
        )
        await self._say(ctx, success(text))

    @one_line_errors
    @taskset_announce.command(name="streaks", with_app_command=False)
    async def announce_streaks(self, ctx: commands.Context, *, thresholds: str) -> None:
        """Announce kill streaks reaching these counts (e.g. `5,10,20`), or `off`.

        Example: `[p]taskset announce streaks 3,5,10`
        """
        if _off(thresholds):
            values: list[int] = []
        else:
            words = thresholds.replace(",", " ").split()
            if (
                not words
                or len(words) > 10
                or not all(w.isdigit() and 2 <= int(w) <= 1000 for w in words)
            ):
                await self._refuse(
                    ctx, _("Use up to 10 whole numbers from 2 to 1000, e.g. `5,10,20`, or `off`.")
                )
                return
            values = sorted({int(w) for w in words})
        await self._save_options(ctx.guild.id, "killfeed", streaks=values)
        text = _("Streak announcements: {values}.").format(
            values=", ".join(map(str, values)) or _("off")
        )
        await self._say(ctx, success(text))

    @one_line_errors
    @taskset_announce.command(name="streakend", with_app_command=False)
    async def announce_streakend(self, ctx: commands.Context, kills: str) -> None:
        """Announce the end of a streak of at least this many kills, or `off`. Default 5.

        Example: `[p]taskset announce streakend 5`
        """
        if _off(kills):
            value = None
        elif kills.isdigit() and 2 <= int(kills) <= 1000:
            value = int(kills)
        else:
            await self._refuse(
                ctx,
                _("'{value}' is not a streak length: use 2-1000 or `off`.").format(
                    value=fmt.user_text(kills, 20)
                ),
            )
            return
        await self._save_options(ctx.guild.id, "killfeed", streak_end=value)
        text = (
            _("Streak ends: off.")
            if value is None
            else _("Streak ends: from {n} kills.").format(n=value)
        )
        await self._say(ctx, success(text))

    @one_line_errors
    @taskset_announce.command(name="show", with_app_command=False)
    async def announce_show(self, ctx: commands.Context) -> None:
        """Show the killfeed's announcement and display settings."""
        o = await self._kill_options(ctx.guild.id)
        rows = [
            f"long shot     {o.long_shot or 'off'}" + (" m" if o.long_shot else ""),
            f"streaks       {', '.join(map(str, o.streaks)) or 'off'}",
            f"streak end    {o.streak_end or 'off'}",
            f"delay         {format_duration(o.delay) if o.delay else 'off'}",
            f"deaths        {o.deaths}",
            "shown         " + ", ".join(k for k, f in _FIELDS.items() if getattr(o, f)),
        ]
        await self._say(ctx, box("\n".join(rows)))

    @TasksetCommands.taskset_group.group(name="killfeed", with_app_command=False)
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_killfeed(self, ctx: commands.Context) -> None:
        """How the killfeed shows kills: fields, suicides and deaths, a delay."""

    @one_line_errors
    @taskset_killfeed.command(name="delay", with_app_command=False)
    async def killfeed_delay(self, ctx: commands.Context, *, delay: str) -> None:
        """Post kills this long after they are read (e.g. `5m`), or `off`. Holds across restarts.

        Example: `[p]taskset killfeed delay 5m`
        """
        if _off(delay):
            seconds = 0.0
        else:
            try:
                seconds = parse_duration(delay, "delay")
            except ScheduleError as exc:
                await self._refuse(ctx, fmt.error_text(str(exc)))
                return
            if seconds > MAX_DELAY:
                await self._refuse(ctx, _("The delay is at most 24 hours."))
                return
        await self._save_options(ctx.guild.id, "killfeed", delay=seconds)
        text = (
            _("Kills are posted as soon as they are read.")
            if not seconds
            else _("Kills are posted {d} after they are read.").format(d=format_duration(seconds))
        )
        await self._say(ctx, success(text))

    @one_line_errors
    @taskset_killfeed.command(name="show", with_app_command=False)
    async def killfeed_show(self, ctx: commands.Context, field: str, on: bool) -> None:
        """Show or hide a kill's distance, weapon or platform.

        Example: `[p]taskset killfeed show platform off`
        """
        key = _FIELDS.get(field.lower())
        if key is None:
            await self._refuse(
                ctx,
                _("Unknown field '{f}': use distance, weapon or platform.").format(
                    f=fmt.user_text(field, 20)
                ),
            )
            return
        await self._save_options(ctx.guild.id, "killfeed", **{key: on})
        await self._say(
            ctx,
            success(
                _("Kills {state} their {field}.").format(
                    state=_("show") if on else _("hide"), field=field.lower()
                )
            ),
        )

    @one_line_errors
    @taskset_killfeed.command(name="deaths", with_app_command=False)
    async def killfeed_deaths(self, ctx: commands.Context, *, where: str) -> None:
        """Where suicides and environmental deaths go: `feed`, `hidden` or a channel.

        Examples:
        - `[p]taskset killfeed deaths hidden`
        - `[p]taskset killfeed deaths #deaths`
        """
        choice = where.strip().lower()
        if choice in (DEATHS_FEED, DEATHS_HIDDEN):
            await self._save_options(ctx.guild.id, "killfeed", deaths=choice)
            await self._say(
                ctx,
                success(
                    _("Suicides and environmental deaths: {where}.").format(
                        where=_("in the feed") if choice == DEATHS_FEED else _("hidden")
                    )
                ),
            )
            return
        try:
            target = await commands.TextChannelConverter().convert(ctx, where.strip())
        except commands.BadArgument:
            await self._refuse(ctx, _("Use `feed`, `hidden` or a channel of this server."))
            return
        problem = channel_problem(ctx.guild, target, target.id, ctx.clean_prefix)
        if problem:
            await self._refuse(ctx, problem)
            return
        await self._save_options(
            ctx.guild.id, "killfeed", deaths=DEATHS_CHANNEL, deaths_channel=target.id
        )
        await self._say(
            ctx,
            success(
                _("Suicides and environmental deaths go to {channel}.").format(
                    channel=target.mention
                )
            ),
        )
