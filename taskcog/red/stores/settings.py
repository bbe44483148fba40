"""Red Config for taskcog, and the in-memory view the job providers read at each tick.

Only the Config API is used (no raw driver access), so the JSON and PostgreSQL backends both
work. Commands write through :class:`Settings`, which updates Config first and the cache second,
then the cog asks the supervisor to re-read the job: the change applies at the next tick.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Hashable, Mapping

from redbot.core import Config

from ...engine.schedules import Schedule, ScheduleError, parse_spec, zone_from_name, zone_name
from ..registry import TaskSpec, check_min_interval

log = logging.getLogger("red.taskcog")

CONFIG_IDENTIFIER = 0x7A5C0C06  # fixed: changing it would orphan every user's settings
SCHEMA_VERSION = 1

DEFAULT_POOL = {"parse": 2, "io": 4, "db": 1, "stats": 1}  # stats: the stats writes

GLOBAL_DEFAULTS: dict[str, Any] = {
    "schema_version": SCHEMA_VERSION,
    "default_schedules": {},  # task -> spec text, set by the owner
    "pool": dict(DEFAULT_POOL),
    "failure_threshold": 5,
    "owner_alerts": True,
    "max_servers": 5,  # game servers per guild (killfeed sources)
    "global_tasks": {},  # task -> {"enabled": bool|None, "schedule": str|None, "options": {}}
    "global_state": {},  # task -> persisted status summary
    "lag_threshold_ms": 100,  # defer low-priority runs while p99 lag (10 s) is over; None = off
    "max_custom": 25,  # custom tasks per guild ([p]taskset custom)
    "backend": {"kind": "local"},  # local | taskiq ([p]taskset global backend)
    "backend_secrets": {},  # {"broker_url", "secret_key"}: collected by DM, never shown
}

GUILD_DEFAULTS: dict[str, Any] = {
    # task -> {"enabled": bool|None, "schedule": str|None, "channel": int|None, "options": {}}
    "tasks": {},
    "state": {},  # task -> persisted status summary
    "servers": {},  # game server name -> public settings (see servers.ServerInfo)
    "secrets": {},  # game server name -> {"password"} or {"private_key"}; never shown
    "alerts_channel": None,  # where this guild's task alerts go ([p]taskset alerts)
    "timezone": None,  # zone for specs written without one ([p]taskset timezone); None = UTC
    "custom_tasks": {},  # name -> a custom task's action (stores/custom.py); schedule in tasks
    "stats_flag_distance": None,  # metres; longer kills await review (None = 1,500 m)
    "leaderboard_message": None,  # [channel id, message id] the leaderboard task last posted
}

EMPTY_TASK = {"enabled": None, "schedule": None, "channel": None, "options": {}}


def make_config(cog: object) -> Config:
    config = Config.get_conf(cog, identifier=CONFIG_IDENTIFIER, force_registration=True)
    config.register_global(**copy.deepcopy(GLOBAL_DEFAULTS))
    config.register_guild(**copy.deepcopy(GUILD_DEFAULTS))
    return config


@dataclass(frozen=True)
class Effective:
    """One task's settings for one guild (or globally), with defaults filled in."""

    enabled: bool
    schedule: Schedule
    schedule_source: str  # "guild", "owner default", "built-in default" (or its fallback)
    channel_id: int | None
    options: Mapping[str, Any]


class Settings:
    """Config plus a cache of it, so a provider answers without awaiting Config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.globals: dict[str, Any] = copy.deepcopy(GLOBAL_DEFAULTS)
        self.guilds: dict[int, dict[str, dict[str, Any]]] = {}
        self.timezones: dict[int, str] = {}  # guild -> its zone's canonical name; absent = UTC
        # (spec text, default zone) -> the schedule.
        self._schedules: dict[tuple[str, str], Schedule] = {}
        # (spec text, default zone, task minimum) -> the schedule, or None when it is invalid.
        self._checked: dict[tuple[str, str, float], Schedule | None] = {}

    async def load(self) -> None:
        self.globals = await self.config.all()
        all_guilds = await self.config.all_guilds()
        self.guilds = {gid: data.get("tasks", {}) for gid, data in all_guilds.items()}
        self.timezones = {}
        for gid, data in all_guilds.items():
            name = data.get("timezone")
            if not name:
                continue
            try:
                self.timezones[gid] = zone_name(zone_from_name(str(name)))
            except ScheduleError:  # a zone gone from tzdata: the guild's specs fall back to UTC
                log.warning("Guild %s: the saved time zone %r is unknown; using UTC", gid, name)

    def timezone_of(self, guild_id: Hashable) -> str:
        """The zone a guild's specs use when they name none: ``UTC`` unless it set one, and for
        a global job (key None)."""
        return "UTC" if guild_id is None else self.timezones.get(guild_id, "UTC")

    async def set_timezone(self, guild_id: int, name: str | None) -> None:
        """Save a guild's zone (a canonical name from ``zone_name``), or None for UTC."""
        conf = self.config.guild_from_id(guild_id)
        if name is None or name == "UTC":
            await conf.timezone.clear()
            self.timezones.pop(guild_id, None)
        else:
            await conf.timezone.set(name)
            self.timezones[guild_id] = name

    def schedule_of(self, spec_text: str, zone: str = "UTC") -> Schedule:
        """Parse with a cache: 30k providers must not re-parse the same text each tick.
        ``zone`` is the default for a spec that names none (a guild's time zone).

        Raises ScheduleError for text that does not parse or is out of bounds, or whatever
        computing its next run raises: such a schedule is not cached."""
        key = (spec_text, zone)
        schedule = self._schedules.get(key)
        if schedule is None:
            schedule = parse_spec(spec_text, default_tz=zone)
            schedule.preview(1)  # a schedule that cannot say when it runs next is no schedule
            self._schedules[key] = schedule
        return schedule

    def _usable(self, task: TaskSpec, text: str, zone: str) -> Schedule | None:
        """The stored schedule ``text`` if it still validates for ``task``, else None (logged
        once). Cached: a provider asks at every tick."""
        key = (text, zone, task.min_interval)
        if key in self._checked:
            return self._checked[key]
        schedule: Schedule | None
        try:
            schedule = self.schedule_of(text, zone)
            check_min_interval(schedule, task.min_interval)
        except Exception as exc:  # anything: one bad stored value must not break a guild
            log.warning(
                "Task %s: the saved schedule %r is invalid (%s); using its default",
                task.name,
                text[:200],
                str(exc)[:300],
            )
            schedule = None
        self._checked[key] = schedule
        return schedule

    def raw(self, task: TaskSpec, guild_id: int | None) -> dict[str, Any]:
        if task.is_global or guild_id is None:
            stored = self.globals.get("global_tasks", {}).get(task.name, {})
        else:
            stored = self.guilds.get(guild_id, {}).get(task.name, {})
        return {**EMPTY_TASK, **stored}

    def effective(self, task: TaskSpec, guild_id: int | None) -> Effective:
        raw = self.raw(task, guild_id)
        enabled = task.enabled_by_default if raw["enabled"] is None else bool(raw["enabled"])
        owner_default = self.globals.get("default_schedules", {}).get(task.name)
        if raw["schedule"]:
            text, source = raw["schedule"], "guild" if not task.is_global else "owner"
        elif owner_default:
            text, source = owner_default, "owner default"
        else:
            text, source = task.default_schedule, "built-in default"
        # Defaults written without a zone run in the guild's zone (a saved guild spec names its
        # own); a global task has no guild, so UTC.
        zone = self.timezone_of(None if task.is_global else guild_id)
        schedule = self._usable(task, text, zone)
        if schedule is None:
            # A stored spec that no longer validates (a zone removed from tzdata, a value out of
            # today's bounds, a broken next run) falls back to the task's own default.
            schedule = self.schedule_of(task.default_schedule, zone)
            source = "built-in default; saved schedule invalid"
        options = {**task.default_options, **(raw.get("options") or {})}
        return Effective(enabled, schedule, source, raw.get("channel"), options)

    async def update_task(self, task: TaskSpec, guild_id: int | None, **changes: Any) -> None:
        """Write ``changes`` (enabled/schedule/channel/options) for one task; Config first."""
        if task.is_global or guild_id is None:
            async with self.config.global_tasks() as tasks:
                entry = {**EMPTY_TASK, **tasks.get(task.name, {}), **changes}
                tasks[task.name] = entry
            self.globals.setdefault("global_tasks", {})[task.name] = copy.deepcopy(entry)
        else:
            async with self.config.guild_from_id(guild_id).tasks() as tasks:
                entry = {**EMPTY_TASK, **tasks.get(task.name, {}), **changes}
                tasks[task.name] = entry
            self.guilds.setdefault(guild_id, {})[task.name] = copy.deepcopy(entry)

    async def reset_task(self, task: TaskSpec, guild_id: int | None) -> None:
        if task.is_global or guild_id is None:
            async with self.config.global_tasks() as tasks:
                tasks.pop(task.name, None)
            self.globals.get("global_tasks", {}).pop(task.name, None)
        else:
            async with self.config.guild_from_id(guild_id).tasks() as tasks:
                tasks.pop(task.name, None)
            self.guilds.get(guild_id, {}).pop(task.name, None)

    async def set_global(self, key: str, value: Any) -> None:
        await self.config.set_raw(key, value=value)
        self.globals[key] = copy.deepcopy(value)

    async def forget_guild(self, guild_id: int) -> None:
        await self.config.guild_from_id(guild_id).clear()
        self.guilds.pop(guild_id, None)
        self.timezones.pop(guild_id, None)
