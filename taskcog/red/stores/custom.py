"""Custom tasks in Red Config: what each guild's own tasks do (``say`` or ``run``), and who
made them. Their schedule and channel live with every task's settings (``stores/settings``),
so ``[p]taskset schedule``/``channel``/``enable`` work on them as on any task."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from redbot.core import Config

ACTIONS = ("say", "run")


@dataclass(frozen=True)
class CustomTask:
    """One guild's custom task: post ``text`` (say) or run the command line ``text`` (run) as
    ``author_id``; ``ping`` lets a say task mention users (and @everyone only if the author
    may)."""

    name: str
    action: str
    text: str
    author_id: int
    ping: bool = False

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> CustomTask:
        return cls(
            name=name,
            action=str(data.get("action", "say")),
            text=str(data.get("text", "")),
            author_id=int(data.get("author_id", 0)),
            ping=bool(data.get("ping", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["name"]
        return data


class CustomStore:
    """Config first, then a cache the job providers read without awaiting."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.guilds: dict[int, dict[str, CustomTask]] = {}

    async def load(self) -> None:
        self.guilds = {}
        for guild_id, data in (await self.config.all_guilds()).items():
            tasks = {
                name: CustomTask.from_dict(name, entry)
                for name, entry in (data.get("custom_tasks") or {}).items()
            }
            if tasks:
                self.guilds[guild_id] = tasks

    def get(self, guild_id: Any, name: str) -> CustomTask | None:
        return self.guilds.get(guild_id, {}).get(name) if isinstance(guild_id, int) else None

    def of(self, guild_id: int) -> list[CustomTask]:
        return sorted(self.guilds.get(guild_id, {}).values(), key=lambda t: t.name)

    def guilds_with(self, name: str) -> list[int]:
        return [gid for gid, tasks in self.guilds.items() if name in tasks]

    def names(self) -> set[str]:
        return {name for tasks in self.guilds.values() for name in tasks}

    async def save(self, guild_id: int, task: CustomTask) -> None:
        async with self.config.guild_from_id(guild_id).custom_tasks() as tasks:
            tasks[task.name] = task.to_dict()
        self.guilds.setdefault(guild_id, {})[task.name] = task

    async def remove(self, guild_id: int, name: str) -> None:
        async with self.config.guild_from_id(guild_id).custom_tasks() as tasks:
            tasks.pop(name, None)
        mine = self.guilds.get(guild_id, {})
        mine.pop(name, None)
        if not mine:
            self.guilds.pop(guild_id, None)

    def authored_by(self, user_id: int) -> list[tuple[int, CustomTask]]:
        """Every (guild, custom task) whose author is ``user_id``."""
        return [
            (gid, task)
            for gid, tasks in sorted(self.guilds.items())
            for _, task in sorted(tasks.items())
            if task.author_id == user_id
        ]

    async def forget_author(self, user_id: int) -> int:
        """Red's data deletion: the user's id is removed from the tasks they authored (author 0).
        A ``say`` task keeps posting; a ``run`` task then waits in needs setup until an admin
        edits it (becoming its author) or removes it. Returns how many tasks were changed."""
        mine = self.authored_by(user_id)
        for guild_id, task in mine:
            await self.save(guild_id, CustomTask(task.name, task.action, task.text, 0, task.ping))
        return len(mine)
