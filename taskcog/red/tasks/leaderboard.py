"""The ``leaderboard`` task: this guild's chosen boards, posted to its channel on a schedule.

Default ``daily 00:00`` in the guild's time zone. ``[p]taskset leaderboard boards`` chooses the
boards (kills, kd, distance by default), ``[p]taskset leaderboard mode`` whether each run posts
a new message (``post``) or edits the previous one (``edit``; if that message is gone, a new
one is posted and remembered). Boards are all-time for the current season.

It ``requires`` the killfeed to have succeeded within two of its intervals: a scheduled run
with a stale or broken feed is skipped (with the reason in ``[p]tasks status``) rather than
posting a board that silently misses kills. ``[p]tasks run leaderboard`` still posts.
"""

from __future__ import annotations

import logging

import discord
from redbot.core.i18n import Translator

from .. import statsview as view
from ..abc import MixinMeta
from ..registry import TaskContext, TaskSpec
from ..statsfeed import DB, LIVE

log = logging.getLogger("red.taskcog.leaderboard")
_ = Translator("TaskCog", __file__)

ROWS = 10
PERIOD = "all"


def leaderboard_spec(cog: MixinMeta) -> TaskSpec:
    async def leaderboard(ctx: TaskContext) -> str:
        guild = ctx.guild
        channel = ctx.channel
        assert guild is not None and channel is not None
        store = cog.stats
        if store is None:
            raise RuntimeError("the stats store is not open")
        boards, mode = view.leaderboard_options(ctx.options)

        def note(text: str) -> str:
            cog.notes[(ctx.task, guild.id)] = text.format(boards=", ".join(boards))
            return cog.notes[(ctx.task, guild.id)]

        tz = cog.settings.timezone_of(guild.id)
        embeds = []
        for board in boards:
            rows = await ctx.pool.submit(
                DB, store.top, guild.id, board, PERIOD, tz=tz, limit=ROWS, priority=LIVE
            )
            embeds.append(view.board_embed(board, PERIOD, None, rows))
        embeds = view.fit_embeds(embeds[:10])
        conf = cog.config.guild(guild)
        previous = await conf.leaderboard_message()
        if mode == "edit" and previous and previous[0] == channel.id:
            try:
                message = channel.get_partial_message(previous[1])
                await message.edit(content=None, embeds=embeds)
                return note(_("edited the leaderboard ({boards})"))
            except discord.NotFound:
                pass  # deleted: post a new one below
        message = await channel.send(
            embeds=embeds, allowed_mentions=discord.AllowedMentions.none()
        )
        await conf.leaderboard_message.set([channel.id, message.id])
        return note(_("posted the leaderboard ({boards})"))

    return TaskSpec(
        name="leaderboard",
        posts=True,
        needs_channel=True,
        run=leaderboard,
        description=_("Posts this server's leaderboards (boards and mode: taskset leaderboard)."),
        scope="guild",
        default_schedule="daily 00:00",
        min_interval=300,
        requires="killfeed",
        requires_within="2 intervals",
        default_options={"boards": ["kills", "kd", "distance"], "mode": "post"},
    )
