"""What admins do with the stats: review flagged kills, start a new season (wipe), rebuild the
aggregates, set the flag distance, and choose what the ``leaderboard`` task posts.

- ``[p]killfeed flags`` — approve or reject kills over the flag distance, one at a time;
- ``[p]taskset server wipe <name>`` — a Confirm button, then a new season for that game server;
- ``[p]taskset stats rebuild`` / ``flagdistance <m>``;
- ``[p]taskset leaderboard boards <list>`` / ``mode <post|edit>``.
"""

from __future__ import annotations

from typing import Any

from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import humanize_number, info, success

from ...pipeline.stats import BOARDS
from .. import formatting as fmt
from .. import statsview as view
from ..statsfeed import DEFAULT_FLAG_DISTANCE
from ..stores.servers import ServerError
from ..views import ConfirmView, FlagReview
from .killfeed import KillfeedCommands
from .server import ServerCommands
from .shared import NO_PINGS, one_line_errors
from .stats import StatsCommands
from .taskset import TasksetCommands

_ = Translator("TaskCog", __file__)

MIN_FLAG, MAX_FLAG = 100, 100_000
MODES = view.MODES


class StatsAdminCommands(StatsCommands):
    """Flags, wipes, rebuilds and the leaderboard's settings (Manage Server)."""

    @one_line_errors
    @KillfeedCommands.killfeed_group.command(name="flags", ignore_extra=False)
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def killfeed_flags(self, ctx: commands.Context) -> None:
        """Review kills over the flag distance: they stay out of records until approved.

        Example: `[p]killfeed flags`
        """
        if await self._no_store(ctx):
            return
        store = self.stats
        flags = await self._db(store.flags, ctx.guild.id)
        if not flags:
            await self._say(ctx, info(_("No flagged kills to review.")))
            return

        async def review(flag: Any, approve: bool) -> bool:
            return await self._write(store.review, ctx.guild.id, flag.event_id, approve)

        reviewer = FlagReview(ctx.author.id, flags, view.flag_embed, review)
        reviewer.message = await ctx.send(
            embed=reviewer.current(), view=reviewer, allowed_mentions=NO_PINGS
        )

    @ServerCommands.taskset_server.command(name="wipe", with_app_command=False)
    async def server_wipe(self, ctx: commands.Context, name: str) -> None:
        """Start a new season (a wipe) for a game server, after a Confirm button.

        Its boards start from zero; last season's top 3 of each board stay visible as
        "last wipe" in `[p]killfeed top`. Kills stay stored.

        Example: `[p]taskset server wipe eu1`
        """
        try:
            server = await self.servers.get(ctx.guild.id, name)
        except ServerError as exc:
            await self._refuse(ctx, fmt.error_text(str(exc)))
            return
        if await self._no_store(ctx):
            return
        store = self.stats
        guild_id = ctx.guild.id

        async def wipe() -> str:
            season = await self._write(store.wipe, guild_id, server.name)
            podium = await self._db(store.last_wipe, guild_id, server.name)
            lines = [
                success(
                    _("New season {season} started for `{name}`.").format(
                        season=season, name=server.name
                    )
                )
            ]
            for board in BOARDS:
                rows = podium.get(board) or []
                if rows:
                    tops = ", ".join(
                        f"{r.rank}. {view.name_text(r.name)} ({view.value_text(board, r.value)})"
                        for r in rows[:3]
                    )
                    lines.append(f"**{view.BOARD_TITLES[board]}** ({_('last wipe')}): {tops}")
            return "\n".join(lines)[: fmt.MESSAGE_LIMIT]

        confirm = ConfirmView(ctx.author.id, wipe, label=_("Wipe {name}").format(name=server.name))
        confirm.message = await ctx.send(
            _(
                "Start a new season for `{name}`? Its boards start from zero; last season's "
                'top 3 stay visible as "last wipe".'
            ).format(name=server.name),
            view=confirm,
            allowed_mentions=NO_PINGS,
        )

    @TasksetCommands.taskset_group.group(name="stats")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_stats(self, ctx: commands.Context) -> None:
        """The stats store: rebuild its aggregates, set the distance that flags a kill."""

    @one_line_errors
    @taskset_stats.command(name="rebuild", ignore_extra=False)
    async def stats_rebuild(self, ctx: commands.Context) -> None:
        """Recompute this server's stats from the stored kills (they are the source of truth).

        Example: `[p]taskset stats rebuild`
        """
        if await self._no_store(ctx):
            return
        async with ctx.typing():
            events = await self._write(self.stats.rebuild, ctx.guild.id)
        await self._say(
            ctx,
            success(
                _("Rebuilt the stats from {n} stored kills.").format(n=humanize_number(events))
            ),
        )

    @one_line_errors
    @taskset_stats.command(name="flagdistance", ignore_extra=False)
    async def stats_flagdistance(self, ctx: commands.Context, metres: int | None = None) -> None:
        """Kills longer than this (metres, default 1,500) wait in `[p]killfeed flags`.

        No argument shows it. Applies to kills stored from now on.

        Example: `[p]taskset stats flagdistance 1200`
        """
        conf = self.config.guild(ctx.guild)
        if metres is None:
            now = await conf.stats_flag_distance() or DEFAULT_FLAG_DISTANCE
            await self._say(
                ctx, info(_("Kills over {m} m are flagged.").format(m=humanize_number(int(now))))
            )
            return
        if not MIN_FLAG <= metres <= MAX_FLAG:
            await self._refuse(
                ctx,
                _("The flag distance is {lo} to {hi} metres, not {m}.").format(
                    lo=MIN_FLAG, hi=humanize_number(MAX_FLAG), m=metres
                ),
            )
            return
        await conf.stats_flag_distance.set(metres)
        await self._say(
            ctx,
            success(_("Kills over {m} m are now flagged.").format(m=humanize_number(metres))),
        )

    @TasksetCommands.taskset_group.group(name="leaderboard")
    @commands.guild_only()
    @commands.admin_or_permissions(manage_guild=True)
    async def taskset_leaderboard(self, ctx: commands.Context) -> None:
        """What the `leaderboard` task posts (its channel: `[p]taskset channel leaderboard`)."""

    @one_line_errors
    @taskset_leaderboard.command(name="boards", ignore_extra=False)
    async def leaderboard_boards(self, ctx: commands.Context, boards: str) -> None:
        """The boards to post, comma-separated: kills, deaths, kd, distance, streak, weapon.

        Example: `[p]taskset leaderboard boards kills,kd,distance`
        """
        chosen: list[str] = []
        for word in boards.replace(" ", ",").split(","):
            word = word.strip().lower()
            if not word:
                continue
            if word not in BOARDS:
                await self._refuse(
                    ctx,
                    _("Unknown board '{word}'. Boards: {boards}.").format(
                        word=fmt.user_text(word, 40), boards=", ".join(BOARDS)
                    ),
                )
                return
            if word not in chosen:
                chosen.append(word)
        if not chosen:
            await self._refuse(ctx, _("Name at least one board: {b}.").format(b=", ".join(BOARDS)))
            return
        await self._set_leaderboard(ctx, boards=chosen)
        await self._say(
            ctx, success(_("The leaderboard posts: {boards}.").format(boards=", ".join(chosen)))
        )

    @one_line_errors
    @taskset_leaderboard.command(name="mode", ignore_extra=False)
    async def leaderboard_mode(self, ctx: commands.Context, mode: str) -> None:
        """`post` a new message each run, or `edit` the previous one (posted anew if gone).

        Example: `[p]taskset leaderboard mode edit`
        """
        mode = mode.strip().lower()
        if mode not in MODES:
            await self._refuse(
                ctx,
                _("Unknown mode '{mode}': use post or edit.").format(mode=fmt.user_text(mode, 40)),
            )
            return
        await self._set_leaderboard(ctx, mode=mode)
        await self._say(
            ctx, success(_("The leaderboard now uses mode `{mode}`.").format(mode=mode))
        )

    async def _set_leaderboard(self, ctx: commands.Context, **changes: Any) -> None:
        spec = self.registry.get("leaderboard")
        options = dict(self.settings.raw(spec, ctx.guild.id).get("options") or {})
        options.update(changes)
        await self.settings.update_task(spec, ctx.guild.id, options=options)
        await self._apply(spec, ctx.guild.id)
