"""Where a task posts: finding its channel and saying, in one sentence, why it cannot post."""

from __future__ import annotations

import re
from typing import Any

import discord
from redbot.core.i18n import Translator

from .formatting import user_text

_ = Translator("TaskCog", __file__)

_CHANNEL_ID = re.compile(r"<#(\d{15,21})>|(\d{15,21})")


class ChannelUnavailable(RuntimeError):
    """The task's channel is unset, gone, or the bot may not post there."""


def resolve_channel(guild: discord.Guild | None, channel_id: int | None) -> Any:
    if guild is None or channel_id is None:
        return None
    return guild.get_channel_or_thread(channel_id)


def channel_problem(
    guild: discord.Guild | None, channel: Any, channel_id: int | None, prefix: str = ""
) -> str | None:
    """Why the bot cannot post this task's output, as one sentence; None if it can.

    ``prefix`` goes before the command the sentence suggests (pass ``ctx.clean_prefix``)."""
    if guild is None:
        return _("This task needs a guild.")
    if channel_id is None:
        return _("No channel is set. Use `{p}taskset channel <task> <channel>`.").format(p=prefix)
    if channel is None:
        return _("The channel set for this task no longer exists.")
    perms = channel.permissions_for(guild.me)
    missing = [
        name
        for name, ok in (
            ("View Channel", perms.view_channel),
            ("Send Messages", perms.send_messages),
            ("Embed Links", perms.embed_links),
        )
        if not ok
    ]
    if missing:
        return _("I am missing {perms} in {channel}.").format(
            perms=", ".join(missing), channel=channel.mention
        )
    return None


def not_a_channel(bot: Any, guild: discord.Guild | None, argument: str) -> str:
    """Why what someone typed for a channel is not a text channel or thread of this server."""
    match = _CHANNEL_ID.fullmatch(argument.strip())
    if match:
        channel_id = int(match.group(1) or match.group(2))
        here = resolve_channel(guild, channel_id)
        if here is not None:
            return _("{channel} is not a text channel or thread.").format(channel=here.mention)
        if bot.get_channel(channel_id) is not None:
            return _("That channel is in another server: pick one in this server.")
    return _("I cannot find a channel '{channel}' in this server.").format(
        channel=user_text(argument)
    )
