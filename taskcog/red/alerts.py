"""Telling people when a task's circuit opens, without flooding anyone.

- **Bot owners** get at most one DM per task per hour. Open circuits are gathered for a minute
  (one cause often breaks many guilds at once), then sent in one DM listing how many guilds,
  the first few by name, and the error most of them share; circuits that open later in the hour
  wait for the next DM. A job is reported once until it recovers.
- **A guild's admins** get their own guild's alerts in the channel they chose with
  ``[p]taskset alerts #channel``: the cause and the exact command that fixes it.

A task waiting for configuration (``needs-setup``) never alerts: it is not failing.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, Hashable

import discord
from redbot.core.bot import Red
from redbot.core.i18n import Translator

from ..engine.clock import Clock
from ..engine.supervision import TaskStatus
from .formatting import plural, typed_prefix
from .stores.settings import Settings

log = logging.getLogger("red.taskcog")
_ = Translator("TaskCog", __file__)

OWNER_WINDOW = 3600.0  # seconds between two owner DMs about the same task
GATHER = 60.0  # seconds an owner DM waits for more guilds whose same task opens
NAMED_GUILDS = 5  # guilds named in an owner DM; the rest are counted
ERROR_CHARS = 300


def one_line(exc: BaseException, limit: int = ERROR_CHARS) -> str:
    """The error as one line of plain text, cut to ``limit`` characters."""
    text = " ".join((str(exc) or type(exc).__name__).split())
    text = f"{type(exc).__name__}: {text}" if str(exc) else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


class OwnerAlerts:
    """Open circuits, reported once per job to its guild and at most hourly to the owners."""

    def __init__(self, bot: Red, settings: Settings, clock: Clock) -> None:
        self.bot = bot
        self.settings = settings
        self.clock = clock
        self._alerted: set[tuple[str, Hashable]] = set()
        self._pending: dict[str, dict[Hashable, str]] = {}  # task -> key -> one-line error
        self._last_dm: dict[str, float] = {}  # task -> when the owners were last told
        self._later: dict[str, asyncio.Task[None]] = {}

    async def circuit_open(
        self, task: str, key: Hashable, status: TaskStatus, exc: BaseException
    ) -> None:
        log.error("Circuit opened for task %s (guild %s): %r", task, key, exc)
        if (task, key) in self._alerted:
            return
        self._alerted.add((task, key))
        guild = self.bot.get_guild(key) if isinstance(key, int) else None
        if guild is not None:
            await self._tell_guild(guild, task, status, exc)
        if not self.settings.globals.get("owner_alerts", True):
            return
        self._pending.setdefault(task, {})[key] = one_line(exc)
        if task not in self._later:
            last = self._last_dm.get(task)
            due = GATHER if last is None else last + OWNER_WINDOW - self.clock.now().timestamp()
            self._later[task] = asyncio.create_task(
                self._tell_owners_later(task, max(GATHER, due)), name=f"taskcog-alert-{task}"
            )

    def recovered(self, task: str, key: Hashable) -> None:
        """The task ran fine: a later open circuit may alert again."""
        self._alerted.discard((task, key))
        pending = self._pending.get(task)
        if pending is not None:
            pending.pop(key, None)

    async def close(self) -> None:
        """Unloading: drop the DMs not yet sent; leave no task behind."""
        later = list(self._later.values())
        self._later.clear()
        for waiting in later:
            waiting.cancel()
        await asyncio.gather(*later, return_exceptions=True)

    async def _tell_owners_later(self, task: str, wait: float) -> None:
        await asyncio.sleep(wait)
        self._later.pop(task, None)
        await self._tell_owners(task)

    async def _tell_owners(self, task: str) -> None:
        pending = self._pending.pop(task, {})
        if not pending:
            return
        self._last_dm[task] = self.clock.now().timestamp()
        text = owner_text(task, pending, self.bot, await typed_prefix(self.bot, None))
        try:
            await self.bot.send_to_owners(text)
        except Exception:
            log.exception("Could not DM the owners about task %s", task)

    async def _tell_guild(
        self, guild: discord.Guild, task: str, status: TaskStatus, exc: BaseException
    ) -> None:
        channel_id = await self.settings.config.guild(guild).alerts_channel()
        channel = guild.get_channel_or_thread(channel_id) if channel_id else None
        if channel is None:
            return
        prefix = await typed_prefix(self.bot, guild)
        try:
            await channel.send(
                guild_text(task, status, exc, prefix),
                allowed_mentions=discord.AllowedMentions.none(),
            )
        except discord.HTTPException:
            log.warning("Could not post the %s alert in guild %s", task, guild.id)


def restart_hint(task: str, prefix: str) -> str:
    """What fixes an open circuit, as the command to type."""
    return _("Fix the cause, then run `{p}tasks restart {task}` in that server.").format(
        p=prefix, task=task
    )


def guild_text(task: str, status: TaskStatus, exc: BaseException, prefix: str) -> str:
    return _(
        "\N{LARGE RED CIRCLE} `{task}` stopped after {n} in a row: {error}\n"
        "Fix the cause, then run `{p}tasks restart {task}`. "
        "`{p}tasks errors {task}` shows the recent errors."
    ).format(
        task=task,
        n=plural(status.consecutive_failures, _("failure"), _("failures")),
        error=discord.utils.escape_markdown(one_line(exc)),
        p=prefix,
    )


def owner_text(task: str, pending: dict[Hashable, str], bot: Any, prefix: str) -> str:
    """One DM about every job of ``task`` whose circuit opened since the owners were told."""
    names = []
    for key in list(pending)[:NAMED_GUILDS]:
        guild = bot.get_guild(key) if isinstance(key, int) else None
        names.append(_("globally") if key is None else f"{guild.name if guild else key} ({key})")
    more = len(pending) - len(names)
    where = ", ".join(names) + (_(" and {n} more").format(n=more) if more > 0 else "")
    common, count = Counter(pending.values()).most_common(1)[0]
    shared = (
        _("the error")
        if len(pending) == 1
        else _("the error {count} of them share").format(count=count)
    )
    text = _(
        "\N{LARGE RED CIRCLE} taskcog: **{task}** stopped after repeated failures in "
        "{servers}: {where}.\n{shared}: `{error}`\n{hint} "
        "You hear about {task} at most once an hour, and about each server again only after "
        "it recovers."
    ).format(
        task=task,
        servers=plural(len(pending), _("server"), _("servers")),
        where=discord.utils.escape_markdown(where),
        shared=shared[0].upper() + shared[1:],
        error=common.replace("`", "'"),
        hint=restart_hint(task, prefix),
    )
    return text[:1990]
