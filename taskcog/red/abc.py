"""What the command mixins and built-in tasks may use of the cog, stated once.

The idiom of Red's own Mutes cog (``redbot/cogs/mutes/abc.py``): mixins type against
:class:`MixinMeta` instead of importing ``TaskCog``, so no module imports the cog back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Hashable

from redbot.core import Config, commands
from redbot.core.bot import Red

from ..engine.lag import ThreadLagMonitor
from ..engine.pool import WorkerPool
from ..engine.supervisor import Supervisor
from ..pipeline.ledger import AsyncLedger
from ..pipeline.stats import StatsStore
from .alerts import OwnerAlerts
from .backend import BackendManager
from .registry import Registry, RunRequest, TaskSpec
from .stores.servers import ServerStore
from .stores.settings import Settings
from .stores.state import StateStore

JobKey = tuple[str, Hashable]


class MixinMeta(ABC):
    """The cog's shared state and the few cog methods its mixins call."""

    def __init__(self, *_args: object) -> None:
        self.bot: Red
        self.config: Config
        self.settings: Settings
        self.state: StateStore
        self.servers: ServerStore
        self.registry: Registry
        self.alerts: OwnerAlerts
        self.backends: BackendManager  # where heavy work runs: local or taskiq workers
        self.supervisor: Supervisor | None
        self.pool: WorkerPool | None
        self.ledger: AsyncLedger | None
        self.lag: ThreadLagMonitor
        self.notes: dict[JobKey, str]  # the last note a task left, for status
        self.samples: dict[JobKey, list[str]]  # redacted bad input lines, for errors
        self.customs: Any  # tasks.custom.CustomTasks: each guild's own tasks
        self.run_requests: dict[JobKey, RunRequest]  # a manual run's argument, until it starts
        self.stats: StatsStore | None  # players, kills and boards (pipeline/stats)

    @property
    @abstractmethod
    def session_id(self) -> float | None:
        """Identifies this bot process: a stop lasts until the bot restarts, not a reload."""

    @abstractmethod
    async def checkpoint(self) -> int:
        """Persist every job's status summary; returns how many were saved."""

    @abstractmethod
    async def set_stopped(self, spec: TaskSpec, key: Hashable, stopped: bool) -> None:
        """Remember (for this bot session) that a job was stopped, or forget it."""


class CompositeMetaClass(type(commands.Cog), type(ABC)):  # type: ignore[misc]
    """Lets the cog be both a Red cog and an ABC (as Red's own cogs do)."""
