"""Telling the bot owners when a task's circuit opens: once, until the task recovers."""

from __future__ import annotations

import logging
from typing import Hashable

from redbot.core.bot import Red

from ..engine.supervision import TaskStatus
from .formatting import circuit_alert
from .stores.settings import Settings

log = logging.getLogger("red.taskcog")


class OwnerAlerts:
    """One DM to the owners per open circuit, not repeated until the task recovers."""

    def __init__(self, bot: Red, settings: Settings) -> None:
        self.bot = bot
        self.settings = settings
        self._alerted: set[tuple[str, Hashable]] = set()

    async def circuit_open(
        self, task: str, key: Hashable, status: TaskStatus, exc: BaseException
    ) -> None:
        log.error("Circuit opened for task %s (guild %s): %r", task, key, exc)
        if (task, key) in self._alerted:
            return
        self._alerted.add((task, key))
        if not self.settings.globals.get("owner_alerts", True):
            return
        guild = self.bot.get_guild(key) if isinstance(key, int) else None
        try:
            await self.bot.send_to_owners(circuit_alert(task, guild, key, status, exc))
        except Exception:
            log.exception("Could not DM the owners about task %s", task)

    def recovered(self, task: str, key: Hashable) -> None:
        """The task ran fine: a later open circuit may alert again."""
        self._alerted.discard((task, key))
