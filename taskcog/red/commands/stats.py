"""``[p]killfeed stats`` and ``[p]killfeed top``: what players ask of the stats store.

Anyone in the guild may use them. Every store call runs in the pool's ``db`` lane at the
most urgent priority, so a reply never waits behind a history import's chunks for long.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import discord
from discord import app_commands
from redbot.core import commands
from redbot.core.i18n import Translator
from redbot.core.utils.views import SimpleMenu

from ...pipeline.stats import BOARDS, PERIODS
from .. import formatting as fmt
from .. import statsview as view
from ..statsfeed import DB, STATS, URGENT
from ..stores.servers import ServerError
from ..views import PlayerPicker
from .killfeed import KillfeedCommands
from .shared import NO_PINGS, CommandHelpers, one_line_errors

_ = Translator("TaskCog", __file__)

DEFAULT_LIMIT = 10
MAX_LIMIT = 25
MAX_PAGES = 10  # a board pages through its top MAX_PAGES * limit players
EXACT = 0.999  # a search score this high is the player asked for, not a guess


class StatsCommands(CommandHelpers):
    """The ``[p]killfeed stats`` and ``[p]killfeed top`` mixin."""

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One store read in the ``db`` lane, ahead of everything else queued there."""
        assert self.pool is not None
        return await self.pool.submit(DB, fn, *args, priority=URGENT, **kwargs)

    async def _write(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One store write in the ``stats`` lane, ahead of the killfeed's and any import's."""
        assert self.pool is not None
        return await self.pool.submit(STATS, fn, *args, priority=URGENT, **kwargs)

    async def _no_store(self, ctx: commands.Context) -> bool:
        if self.stats is None:
            await self._refuse(ctx, _("Stats are not available right now; try again soon."))
            return True
        return False

    @one_line_errors
    @KillfeedCommands.killfeed_group.command(name="stats", ignore_extra=False)
    @commands.guild_only()
    @app_commands.describe(player="A player's name (or part of it) or platform id")
    async def killfeed_stats(self, ctx: commands.Context, *, player: str) -> None:
        """A player's stats on this server's game servers: kills, deaths, K/D, records…

        Names match loosely, earlier names too; when several players match you choose.

        Examples:
        - `[p]killfeed stats Old Timer`
        - `[p]killfeed stats 76561198000000000`
        """
        if await self._no_store(ctx):
            return
        store = self.stats
        text = player.strip()
        matches = await self._db(store.search, ctx.guild.id, text, limit=25)
        if not matches:
            await self._refuse(
                ctx, _("No player matches '{text}'.").format(text=fmt.user_text(text))
            )
            return
        exact = [m for m in matches if m.player_id == text or m.score >= EXACT]
        if len(matches) == 1 or len({m.player_id for m in exact}) == 1:
            chosen = (exact or matches)[0]
            embed = await self._player_embed(ctx.guild.id, chosen.player_id)
            if embed is not None:
                await ctx.send(embed=embed, allowed_mentions=NO_PINGS)
                return
        options = [
            (
                m.player_id,
                view.name_text(m.name, 90).replace("\\", ""),
                (_("was {name} · ").format(name=m.matched) if m.matched != m.name else "")
                + m.player_id,
            )
            for m in matches[:25]
        ]

        async def show(player_id: str) -> discord.Embed | None:
            return await self._player_embed(ctx.guild.id, player_id)

        picker = PlayerPicker(ctx.author.id, options, show)
        picker.message = await ctx.send(
            _("{n} players match '{text}': choose one.").format(
                n=len(options), text=fmt.user_text(text)
            ),
            view=picker,
            allowed_mentions=NO_PINGS,
        )

    async def _player_embed(self, guild_id: int, player_id: str) -> discord.Embed | None:
        stats = await self._db(self.stats.player, guild_id, player_id)
        return view.player_embed(stats) if stats is not None else None

    @killfeed_stats.autocomplete("player")
    async def _player_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        if self.stats is None or interaction.guild is None or not current.strip():
            return []
        matches = await self._db(self.stats.search, interaction.guild.id, current, limit=25)
        return [
            app_commands.Choice(name=f"{m.name} ({m.player_id[-6:]})"[:100], value=m.player_id)
            for m in matches[:25]
        ]

    @one_line_errors
    @KillfeedCommands.killfeed_group.command(name="top", ignore_extra=False)
    @commands.guild_only()
    @app_commands.describe(
        board="kills, deaths, kd, distance, streak or weapon",
        period="today, week, month or all",
        server="One game server (default: all of them)",
        limit="Players per page, 1 to 25 (default 10)",
    )
    async def killfeed_top(
        self,
        ctx: commands.Context,
        board: str | None = None,
        period: str | None = None,
        server: str | None = None,
        limit: str | None = None,
    ) -> None:
        """A leaderboard, in pages: `kills` (default), `deaths`, `kd`, `distance`, `streak`,
        `weapon`; over `today`, `week`, `month` or `all` (default) in this server's time zone.

        Arguments come in any order; a game server's name limits it to that game server, a
        number sets the players per page (10 by default, 25 at most).

        Examples:
        - `[p]killfeed top`
        - `[p]killfeed top kd week`
        - `[p]killfeed top distance month eu1 25`
        """
        if await self._no_store(ctx):
            return
        parsed = await self._board_args(ctx, [board, period, server, limit])
        if parsed is None:
            return
        board, period, server, limit = parsed
        store = self.stats
        tz = self.settings.timezone_of(ctx.guild.id)
        ranked = await self._db(
            store.count_ranked, ctx.guild.id, board, period, tz=tz, server=server
        )
        wanted = min(ranked, limit * MAX_PAGES)
        rows = await self._db(
            store.top, ctx.guild.id, board, period, tz=tz, server=server, limit=max(wanted, 1)
        )
        podium = (await self._db(store.last_wipe, ctx.guild.id, server)).get(board, [])
        pages = max(1, math.ceil(len(rows) / limit))
        embeds = [
            view.board_embed(
                board,
                period,
                server,
                rows[i * limit : (i + 1) * limit],
                page=i + 1,
                pages=pages,
                ranked=ranked,
                last_wipe=podium if i == 0 else (),
            )
            for i in range(pages)
        ]
        if len(embeds) == 1:
            await ctx.send(embed=embeds[0], allowed_mentions=NO_PINGS)
            return
        await SimpleMenu(
            [{"embed": e, "allowed_mentions": NO_PINGS} for e in embeds], use_select_menu=False
        ).start(ctx)

    async def _board_args(
        self, ctx: commands.Context, tokens: list[str | None]
    ) -> tuple[str, str, str | None, int] | None:
        """Board, period, game server and page size from what was typed; else one line."""
        board, period, word, limit, clashes = view.parse_board_args(tokens)
        if clashes:
            await self._refuse(
                ctx,
                _(
                    "Give the {what} once: `{p}killfeed top [board] [period] [server] [limit]`."
                ).format(what=clashes[0], p=ctx.clean_prefix),
            )
            return None
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            await self._refuse(
                ctx,
                _("Show 1 to {max} players per page, not {n}.").format(max=MAX_LIMIT, n=limit),
            )
            return None
        server = None
        if word is not None:
            try:
                server = (await self.servers.get(ctx.guild.id, word)).name
            except ServerError:
                names = [s.name for s in await self.servers.list(ctx.guild.id)]
                await self._refuse(
                    ctx,
                    _(
                        "'{word}' is no board, period or game server. Boards: {boards}; "
                        "periods: {periods}; game servers here: {servers}."
                    ).format(
                        word=fmt.user_text(word, 40),
                        boards=", ".join(BOARDS),
                        periods=", ".join(PERIODS),
                        servers=", ".join(names) or _("none"),
                    ),
                )
                return None
        return board, period, server, limit or DEFAULT_LIMIT
