"""Running a command line as a member, through Red's normal command processing.

A scheduled ``run`` task builds a message as its author in its channel and hands it to
``bot.get_context`` / ``bot.invoke``, so every check a typed command meets applies at each
run: Red's allow and deny lists and ignored channels (its global checks), the command's own
permission checks, commands and cogs disabled in the guild. Before invoking, the same checks
are asked without running anything: a command the author could not run by hand is never run;
the task waits in *needs setup* and says why (:class:`~taskcog.engine.supervision.NeedsSetup`).
"""

from __future__ import annotations

from typing import Any

import discord
from discord.ext.commands import CheckFailure
from redbot.core import commands

from ..engine.supervision import NeedsSetup

# Commands a scheduled run may never call: a custom task must not create or change others.
FORBIDDEN = ("taskset custom",)


class CommandFailed(RuntimeError):
    """The command ran and raised; Red already told the channel."""


def _message(channel: Any, member: discord.Member, content: str) -> discord.Message:
    """A message from ``member`` in ``channel`` that was never sent: what the bot would have
    received had the member typed ``content`` now."""
    now = discord.utils.utcnow()
    payload: dict[str, Any] = {
        "id": discord.utils.time_snowflake(now),
        "channel_id": channel.id,
        "guild_id": channel.guild.id,
        "author": {
            "id": member.id,
            "username": member.name,
            "discriminator": member.discriminator,
            "avatar": None,
            "global_name": member.global_name,
        },
        "content": content,
        "timestamp": now.isoformat(),
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "type": 0,
        "flags": 0,
    }
    message = discord.Message(state=channel._state, channel=channel, data=payload)
    message.author = member
    return message


async def context_as(
    bot: Any, channel: Any, member: discord.Member, command_line: str
) -> commands.Context:
    """The context of ``command_line`` typed by ``member`` in ``channel``, checked: raises
    NeedsSetup (saying why, in one line) if the command is unknown, forbidden here, or the
    member may not run it now."""
    prefixes = [p for p in await bot.get_valid_prefixes(channel.guild) if not p.startswith("<@")]
    if not prefixes:
        raise NeedsSetup("the bot has no typed prefix here, so it cannot run commands for you")
    ctx = await bot.get_context(_message(channel, member, prefixes[0] + command_line))
    shown = " ".join(command_line.split()[:3])[:60]
    command = _deepest(bot, command_line) if ctx.command is not None else None
    if command is None:
        raise NeedsSetup(f"there is no command `{shown}` (any more)")
    name = command.qualified_name
    if any(name == f or name.startswith(f + " ") for f in FORBIDDEN):
        raise NeedsSetup(f"`{name}` cannot be scheduled")
    disabled = [c for c in (command, *command.parents) if not c.is_enabled(channel.guild)]
    if disabled:  # [p]command disable: Red refuses it only when it is invoked, not in can_run
        raise NeedsSetup(f"`{disabled[0].qualified_name}` is disabled in this server")
    try:
        # The subcommand that will run, with every parent's checks (as Red's help asks).
        allowed = await bot.can_run(ctx, call_once=True) and await command.can_run(
            ctx, check_all_parents=True
        )
    except CheckFailure as exc:
        why = str(exc).splitlines()[0][:120] if str(exc) else "a permission check failed"
        raise NeedsSetup(f"{member} may not run `{name}` here: {why}") from None
    if not allowed:
        raise NeedsSetup(f"{member} may not run `{name}` here")
    ctx.assume_yes = True  # nobody is there to answer a confirmation prompt
    return ctx


def _deepest(bot: Any, command_line: str) -> Any:
    """The (sub)command ``command_line`` invokes: the longest run of its words that names one,
    as a group's invoke resolves it (``get_context`` only finds the top-level command)."""
    words = command_line.split()
    for end in range(len(words), 0, -1):
        command = bot.get_command(" ".join(words[:end]))
        if command is not None:
            return command
    return None


async def run_as(bot: Any, channel: Any, member: discord.Member, command_line: str) -> str:
    """Check, then invoke ``command_line`` as ``member``; returns the command's name.

    Raises NeedsSetup (nothing ran) or CommandFailed (it ran and failed)."""
    ctx = await context_as(bot, channel, member, command_line)
    await bot.invoke(ctx)
    if ctx.command_failed:
        raise CommandFailed(f"`{ctx.command.qualified_name}` failed; its error is in the channel")
    return (ctx.invoked_subcommand or ctx.command).qualified_name


def author_of(guild: discord.Guild, author_id: int) -> discord.Member:
    member = guild.get_member(author_id)
    if member is None:
        raise NeedsSetup(
            f"its author (id {author_id}) is no longer in this server: "
            "an admin must `edit` or `remove` it"
        )
    return member
