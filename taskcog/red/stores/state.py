"""Task state that outlives the cog: run counters, last outcome, and this session's stops.

Live counters are kept by the engine from zero each load; what was persisted before is the
*base*. What a status command shows, and what the next checkpoint writes, is base + live — so a
reload or restart loses nothing and counts nothing twice.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any, Hashable, Iterable

from redbot.core import Config

from ...engine.supervision import TaskStatus


def _iso(value: _dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _dt_or_none(value: str | None) -> _dt.datetime | None:
    return _dt.datetime.fromisoformat(value) if value else None


@dataclass
class Summary:
    """The persisted part of a TaskStatus, merged with the live one."""

    iterations: int = 0
    total_failures: int = 0
    last_start: _dt.datetime | None = None
    last_end: _dt.datetime | None = None
    last_duration: float | None = None
    last_outcome: str | None = None
    last_error: dict[str, str] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Summary:
        return cls(
            iterations=int(data.get("iterations", 0)),
            total_failures=int(data.get("total_failures", 0)),
            last_start=_dt_or_none(data.get("last_start")),
            last_end=_dt_or_none(data.get("last_end")),
            last_duration=data.get("last_duration"),
            last_outcome=data.get("last_outcome"),
            last_error=data.get("last_error"),
        )

    def merged(self, live: TaskStatus | None) -> Summary:
        """Base + live: counters add up; 'last' fields come from live once it has run."""
        if live is None or live.iterations == 0:
            return self
        return Summary(
            iterations=self.iterations + live.iterations,
            total_failures=self.total_failures + live.total_failures,
            last_start=live.last_start,
            last_end=live.last_end,
            last_duration=live.last_duration,
            last_outcome=live.last_outcome.value if live.last_outcome else None,
            last_error=(
                {"type": live.last_error.type, "message": live.last_error.message}
                if live.last_error
                else self.last_error
            ),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "iterations": self.iterations,
            "total_failures": self.total_failures,
            "last_start": _iso(self.last_start),
            "last_end": _iso(self.last_end),
            "last_duration": self.last_duration,
            "last_outcome": self.last_outcome,
            "last_error": self.last_error,
        }


class StateStore:
    """Reads the persisted summaries once per load and writes them at checkpoints."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.base: dict[tuple[str, Hashable], Summary] = {}
        self.stops: dict[tuple[str, Hashable], float] = {}

    async def load(self) -> None:
        self.base.clear()
        self.stops.clear()
        for task, data in (await self.config.global_state()).items():
            self._load_one(task, None, data)
        for guild_id, data in (await self.config.all_guilds()).items():
            for task, entry in data.get("state", {}).items():
                self._load_one(task, guild_id, entry)

    def _load_one(self, task: str, key: Hashable, data: dict[str, Any]) -> None:
        self.base[(task, key)] = Summary.from_dict(data)
        if data.get("stopped_session") is not None:
            self.stops[(task, key)] = float(data["stopped_session"])

    def summary(self, task: str, key: Hashable, live: TaskStatus | None) -> Summary:
        return self.base.get((task, key), Summary()).merged(live)

    def stopped_this_session(self, session: float | None) -> list[tuple[str, Hashable]]:
        if session is None:
            return []
        return [job for job, stamp in self.stops.items() if abs(stamp - session) < 1e-6]

    async def set_stopped(self, task: str, key: Hashable, session: float | None) -> None:
        if session is None:
            self.stops.pop((task, key), None)
        else:
            self.stops[(task, key)] = session
        await self._write_field(task, key, "stopped_session", session)

    async def _write_field(self, task: str, key: Hashable, field: str, value: Any) -> None:
        group = self.config.global_state if key is None else self.config.guild_from_id(key).state
        async with group() as state:
            state.setdefault(task, {})[field] = value

    async def save(self, statuses: Iterable[TaskStatus]) -> None:
        by_scope: dict[Hashable, dict[str, dict[str, Any]]] = {}
        for status in statuses:
            merged = self.summary(status.name, status.key, status).to_dict()
            stop = self.stops.get((status.name, status.key))
            merged["stopped_session"] = stop
            by_scope.setdefault(status.key, {})[status.name] = merged
        for key, tasks in by_scope.items():
            group = (
                self.config.global_state if key is None else self.config.guild_from_id(key).state
            )
            async with group() as state:
                state.update(tasks)

    async def forget(self, task: str, key: Hashable) -> None:
        self.base.pop((task, key), None)
        self.stops.pop((task, key), None)
        group = self.config.global_state if key is None else self.config.guild_from_id(key).state
        async with group() as state:
            state.pop(task, None)
