"""Where a task posts: finding its channel and saying, in one sentence, why it cannot post."""

from __future__ import annotations

from typing import Any

import discord
from redbot.core.i18n import Translator

_ = Translator("TaskCog", __file__)


class ChannelUnavailable(RuntimeError):
    """The task's channel is unset, gone, or the bot may not post there."""


def resolve_channel(guild: discord.Guild | None, channel_id: int | None) -> Any:
    if guild is None or channel_id is None:
        return None
    return guild.get_channel_or_thread(channel_id)


def channel_problem(
    guild: discord.Guild | None, channel: Any, channel_id: int | None
) -> str | None:
    """Why the bot cannot post this task's output, as one sentence; None if it can."""
    if guild is None:
        return _("This task needs a guild.")
    if channel_id is None:
        return _("No channel is set. Use `[p]taskset channel <task> <channel>`.")
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
