"""``[p]tasks run <task> [argument]``: a task that takes an argument (``TaskSpec.argument``,
e.g. ``history``'s game server) gets it checked here, before anything runs.

The owner's server id keeps its meaning: for the owner, a word that is the id of a server the
bot is in still picks that server; anything else is the task's argument.
"""

from __future__ import annotations

from typing import Hashable

from redbot.core import commands
from redbot.core.i18n import Translator

from .. import formatting as fmt
from ..registry import RunRequest, TaskSpec
from .shared import CommandHelpers

_ = Translator("TaskCog", __file__)


async def run_request(
    cog: CommandHelpers, ctx: commands.Context, task: str, server: str | None
) -> tuple[str | None, RunRequest | None] | None:
    """``(server id or None, the run's request)``; None once a refusal was said."""
    request = RunRequest(None, ctx.channel, ctx.author.id)
    if task.lower().strip() not in cog.registry or server is None:
        return server, request
    spec = cog.registry.get(task)
    if spec.argument is None or spec.check_argument is None:
        return server, request
    owner = await ctx.bot.is_owner(ctx.author)
    if owner and server.isdigit() and ctx.bot.get_guild(int(server)) is not None:
        return server, request
    if ctx.guild is None:
        return server, request  # _resolve refuses a guild task in a DM
    try:
        value = await spec.check_argument(ctx.guild.id, server)
    except ValueError as exc:
        await cog._refuse(ctx, fmt.error_text(str(exc)))
        return None
    return None, RunRequest(value, ctx.channel, ctx.author.id)


def remember(cog: CommandHelpers, spec: TaskSpec, key: Hashable, request: RunRequest) -> None:
    """Hand the request to the run that is about to start (``TaskContext.request``)."""
    cog.run_requests[(spec.name, key)] = request
