"""What a task is to the cog: its name, scope, defaults and body, and the registry of them.

Built-in tasks and tasks other cogs register (``bot.get_cog("TaskCog").register(...)``) are
the same :class:`TaskSpec`; the cog turns each into an engine ``TaskDefinition``.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Literal, Mapping

from ..engine.schedules import Schedule, ScheduleError, parse_spec

if TYPE_CHECKING:
    import discord
    from redbot.core.bot import Red

    from ..engine.pool import WorkerPool
    from ..engine.supervision import TaskStatus

Scope = Literal["guild", "global"]
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{1,39}$")


class UnknownTask(LookupError):
    """A task name nobody registered; the message lists the known ones (``known``)."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(f"Unknown task '{name}'. Known tasks: {', '.join(known) or 'none'}.")


@dataclass
class TaskContext:
    """What a task body gets each run."""

    bot: Red
    task: str
    guild: discord.Guild | None
    channel: discord.abc.Messageable | None
    options: Mapping[str, Any]
    scheduled_for: _dt.datetime
    manual: bool
    status: TaskStatus
    pool: WorkerPool
    progress: Callable[..., None]
    request: RunRequest | None = None  # who ran it by hand, where, and with what argument

    @property
    def guild_id(self) -> int | None:
        return self.guild.id if self.guild is not None else None


TaskBody = Callable[[TaskContext], Awaitable[Any]]


@dataclass(frozen=True)
class RunRequest:
    """A run asked for by hand (``[p]tasks run <task> [argument]``, a button): the task's
    argument (already checked by ``TaskSpec.check_argument``), where to report, and who asked."""

    argument: str | None = None
    channel: discord.abc.Messageable | None = None
    author_id: int | None = None


@dataclass
class TaskSpec:
    """A task the cog can run, per guild (``scope="guild"``) or once for the bot (``"global"``)."""

    name: str
    run: TaskBody
    description: str
    scope: Scope = "guild"
    default_schedule: str = "every 1h"
    min_interval: float = 60.0
    enabled_by_default: bool = True
    needs_channel: bool = False  # a run without a usable channel fails before the body starts
    posts: bool = False  # it posts to a channel set with [p]taskset channel (implied by the above)
    timeout: float | None = 300.0
    default_options: Mapping[str, Any] = field(default_factory=dict)
    owner: str | None = None  # the registering cog's qualified_name; None for built-ins
    priority: str = "normal"  # "high" | "normal" | "low": low runs wait while the loop lags
    after: str | None = None  # also run each time this task succeeds (same guild)
    requires: str | None = None  # run on schedule only if this task succeeded recently...
    requires_within: str = "2 intervals"  # ...within this: "N intervals" of it, or a duration
    # ``[p]tasks run <task> [argument]``: what the argument is (e.g. "game server"), and the
    # check that turns what was typed into it (``(guild_id, text) -> value``, ValueError = why).
    argument: str | None = None
    check_argument: Callable[[int, str], Awaitable[str]] | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(
                f"bad task name {self.name!r}: use 2-40 lowercase letters, digits, '.', '_' or '-'"
            )
        if self.scope not in ("guild", "global"):
            raise ValueError(f"bad scope {self.scope!r}: use 'guild' or 'global'")
        schedule = parse_spec(self.default_schedule)
        check_min_interval(schedule, self.min_interval)
        if self.priority not in ("high", "normal", "low"):
            raise ValueError(f"bad priority {self.priority!r}: use 'high', 'normal' or 'low'")
        self.requirement()  # a bad freshness fails here, at registration

    def requirement(self) -> Any:
        """``requires``/``requires_within`` as the engine's Requirement (None if unset)."""
        from ..engine.schedules import parse_duration
        from ..engine.supervisor import Requirement

        if self.requires is None:
            return None
        words = self.requires_within.lower().split()
        if len(words) == 2 and words[1] in ("interval", "intervals"):
            try:
                return Requirement(self.requires, intervals=float(words[0]))
            except ValueError as exc:
                raise ValueError(f"bad requires_within {self.requires_within!r}: {exc}") from None
        return Requirement(self.requires, within=parse_duration(self.requires_within, "freshness"))

    @property
    def is_global(self) -> bool:
        return self.scope == "global"

    @property
    def takes_channel(self) -> bool:
        """Whether ``[p]taskset channel`` means anything for this task."""
        return self.needs_channel or self.posts


def min_gap(schedule: Schedule, samples: int = 24) -> float | None:
    """The shortest gap between the schedule's next fire times (None for one-shots)."""
    seconds = getattr(schedule, "seconds", None)
    if schedule.kind == "every" and seconds is not None:
        return float(seconds)
    if schedule.kind == "once":
        return None
    times = schedule.preview(samples)
    utc = [t.astimezone(_dt.UTC) for t in times]
    gaps = [(b - a).total_seconds() for a, b in zip(utc, utc[1:], strict=False)]
    return min(gaps) if gaps else None


def check_min_interval(schedule: Schedule, minimum: float) -> None:
    """Refuse a schedule that would fire more often than the task allows."""
    from ..engine.schedules import format_duration

    gap = min_gap(schedule)
    if gap is not None and gap + 1e-9 < minimum:
        raise ScheduleError(
            f"that runs every {format_duration(gap)}, but this task's minimum interval is "
            f"{format_duration(minimum)}"
        )


class Registry:
    """Task specs by name. One per cog instance."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskSpec] = {}

    def add(self, spec: TaskSpec) -> None:
        if spec.name in self._tasks:
            raise ValueError(f"a task named {spec.name!r} is already registered")
        self._tasks[spec.name] = spec

    def remove(self, name: str) -> TaskSpec | None:
        return self._tasks.pop(name, None)

    def by_owner(self, owner: str) -> list[TaskSpec]:
        return [spec for spec in self._tasks.values() if spec.owner == owner]

    def get(self, name: str, *, owner: bool = True) -> TaskSpec:
        """The spec for ``name`` (case-insensitive), or UnknownTask naming the known tasks:
        all of them for the bot owner, only the ones they may see for anyone else."""
        spec = self._tasks.get(name.lower().strip())
        if spec is None:
            raise UnknownTask(name, [known.name for known in self.visible(owner=owner)])
        return spec

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self):
        return iter(sorted(self._tasks.values(), key=lambda s: s.name))

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def visible(self, *, owner: bool) -> list[TaskSpec]:
        """Guild tasks for everyone who may see tasks; global ones only for the bot owner."""
        return [spec for spec in self if owner or not spec.is_global]
