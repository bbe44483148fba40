"""After ``[p]taskset server trust``: offer to import that game server's kill history, with an
estimate of its files and size. Only the admin who trusted it may press the button; the offer
times out. Pressing it runs the ``history`` task for that game server, as
``[p]tasks run history <name>`` would."""

from __future__ import annotations

import logging

import discord
from redbot.core import commands
from redbot.core.i18n import Translator

from ...pipeline.history import plan
from ..registry import RunRequest
from ..statsfeed import DB, URGENT
from ..tasks.history import estimate_text
from ..views import HistoryOffer
from .shared import NO_PINGS, CommandHelpers

log = logging.getLogger("red.taskcog.history")
_ = Translator("TaskCog", __file__)


async def offer_history(cog: CommandHelpers, ctx: commands.Context, name: str) -> None:
    """Post the offer; say nothing if the game server cannot be listed now (the killfeed's
    errors say why) or has no kill files."""
    store, pool, supervisor = cog.stats, cog.pool, cog.supervisor
    if store is None or pool is None or supervisor is None or "history" not in cog.registry:
        return
    guild_id = ctx.guild.id
    try:
        info = await cog.servers.get(guild_id, name)
        source = await cog.servers.source(guild_id, info)
        planned = await plan(source, store, pool, guild_id, info.name, lane=DB, priority=URGENT)
    except Exception:  # an estimate is a courtesy: the import itself reports real errors
        log.debug("no history estimate for %s", name, exc_info=True)
        return
    if not planned.files:
        return

    async def start(interaction: discord.Interaction) -> None:
        cog.run_requests[("history", guild_id)] = RunRequest(
            info.name, interaction.channel, interaction.user.id
        )
        await supervisor.run_now("history", guild_id)

    offer = HistoryOffer(ctx.author.id, start)
    offer.message = await ctx.send(
        _(
            "Import the kill history of `{name}` into the stats? {files} kill files, {size} "
            "({left} not imported yet). Nothing is posted in the killfeed."
        ).format(name=info.name, **estimate_text(planned)),
        view=offer,
        allowed_mentions=NO_PINGS,
    )
