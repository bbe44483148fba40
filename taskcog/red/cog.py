"""TaskCog: lifecycle and wiring — it starts the engine on load and stops it on unload.

The cog holds no scheduling logic and no commands of its own. It owns one supervisor, one
worker pool and one lag monitor, hands each registered :class:`TaskSpec` to the supervisor
(``jobs.py`` builds the definition), and follows guilds joining and leaving. Commands live in
``commands/``, built-in tasks in ``tasks/``, Config in ``stores/``, text in ``formatting.py``.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Hashable, Literal

import discord
from redbot.core import commands
from redbot.core.bot import Red
from redbot.core.data_manager import cog_data_path
from redbot.core.i18n import Translator, cog_i18n

from ..engine.clock import SystemClock
from ..engine.lag import ThreadLagMonitor
from ..engine.pool import LaneConfig, WorkerPool
from ..engine.supervision import RetryPolicy
from ..engine.supervisor import Supervisor
from ..pipeline.ledger import AsyncLedger, Ledger
from ..pipeline.stats import StatsStore
from .abc import CompositeMetaClass
from .alerts import OwnerAlerts
from .backend import BackendManager
from .commands import TaskCommands
from .deferring import deferral_for
from .jobs import definition
from .registry import Registry, RunRequest, TaskSpec
from .statsfeed import close_stats, open_stats
from .stores.servers import ServerStore
from .stores.settings import DEFAULT_POOL, Settings, make_config
from .stores.state import StateStore
from .stores.storage import create_tables
from .tasks import builtin_tasks
from .tasks.custom import CustomTasks

log = logging.getLogger("red.taskcog")
_ = Translator("TaskCog", __file__)

LANE_PRIORITY = {"parse": 0, "io": 1, "db": 2}
# The pool's threads run below the event loop's CPU priority: a history import keeps both cores
# of a small host busy, and the loop (Discord, commands, the live feeds' awaits) must still get
# one at once. Measured with bench/bench_import_live.py (docs/benchmarks.md).
POOL_NICE = 10
UNLOAD_TIMEOUT = 10.0
# Fires up to 3 ms apart share one wake-up: measurably less CPU with thousands of guilds, and a
# few ms of lateness is invisible to a bot task (docs/benchmarks.md, "taskcog-3ms").
DISPATCH_RESOLUTION = 0.003


@cog_i18n(_)
class TaskCog(TaskCommands, commands.Cog, metaclass=CompositeMetaClass):
    """Supervised background tasks per guild: schedules, status and control."""

    def __init__(self, bot: Red) -> None:
        super().__init__()
        self.bot = bot
        self.config = make_config(self)
        self.settings = Settings(self.config)
        self.registry = Registry()
        self.clock = SystemClock(now=discord.utils.utcnow)
        self.state = StateStore(self.config)
        self.supervisor: Supervisor | None = None
        self.pool: WorkerPool | None = None
        self.lag = ThreadLagMonitor()
        self._startup: asyncio.Task[None] | None = None
        self.alerts = OwnerAlerts(bot, self.settings, self.clock)
        self.notes: dict[tuple[str, Hashable], str] = {}
        self.samples: dict[tuple[str, Hashable], list[str]] = {}
        self.servers = ServerStore(self.config)
        self.backends = BackendManager(self)
        self.ledger: AsyncLedger | None = None
        self.stats: StatsStore | None = None
        self.run_requests: dict[tuple[str, Hashable], RunRequest] = {}
        for spec in builtin_tasks(self):
            self.registry.add(spec)
        self.customs = CustomTasks(self)  # each guild's own tasks ([p]taskset custom)

    # ------------------------------------------------------------------ lifecycle

    async def cog_load(self) -> None:
        """Start the engine. Returns at once: jobs wait for Red's readiness in the background."""
        await self.settings.load()
        await create_tables(self.config)  # Red's PostgreSQL backend: see stores/storage.py
        await self.state.load()
        await self.backends.load()
        sizes = {**DEFAULT_POOL, **self.settings.globals.get("pool", {})}
        self.pool = WorkerPool(
            [
                LaneConfig(name, int(workers), priority=LANE_PRIORITY.get(name, 3))
                for name, workers in sizes.items()
            ],
            name="taskcog",
            nice=POOL_NICE,
        )
        self.ledger = AsyncLedger(
            Ledger(cog_data_path(self) / "killfeed.sqlite3", clock=self.clock),
            self.pool,
            memo=True,
        )
        self.stats = await open_stats(self)
        self.supervisor = Supervisor(
            clock=self.clock,
            policy=RetryPolicy(failure_threshold=int(self.settings.globals["failure_threshold"])),
            on_circuit_open=self.alerts.circuit_open,
            ready=self.bot.wait_until_red_ready,
            name="taskcog",
            resolution=DISPATCH_RESOLUTION,
        )
        for spec in self.registry:
            self.supervisor.add(definition(self, spec))
        self.supervisor.set_deferral(deferral_for(self))
        await self.customs.load()
        await self.supervisor.start()
        self.lag.start()
        self._startup = asyncio.create_task(self._after_ready(), name="taskcog-startup")
        # Cogs that register tasks listen for this, so a reload of taskcog keeps their tasks.
        self.bot.dispatch("taskcog_ready", self)

    async def _after_ready(self) -> None:
        """Once Red is ready: create the per-guild jobs and re-apply this session's stops."""
        try:
            await self.bot.wait_until_red_ready()
            assert self.supervisor is not None
            await self.supervisor.sync_keys()
            for task, key in self.state.stopped_this_session(self.session_id):
                if task in self.registry and self.supervisor.get_status(task, key) is not None:
                    self.supervisor.stop_job(task, key)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("taskcog could not finish starting its jobs")

    async def cog_unload(self) -> None:
        """Stop every job and the pool within a bounded time; leave no task or thread."""
        if self._startup is not None and not self._startup.done():
            self._startup.cancel()
            await asyncio.gather(self._startup, return_exceptions=True)
        await self.lag.stop()
        await self.alerts.close()
        if self.supervisor is not None:
            report = await self.supervisor.shutdown(timeout=UNLOAD_TIMEOUT)
            if report.cut_off:
                log.warning(
                    "Unload cut off %d running job(s): %s",
                    len(report.cut_off),
                    ", ".join(f"{t}@{k}" for t, k in report.cut_off),
                )
            await self.checkpoint()  # after the runs that were finishing, cut-off ones too
        await self.servers.close_all()
        await self.backends.close()
        if self.pool is not None:
            await self.pool.shutdown(timeout=UNLOAD_TIMEOUT)
        if self.ledger is not None:
            self.ledger.ledger.close()
        close_stats(self)

    @property
    def session_id(self) -> float | None:
        """Identifies this bot process: a stop lasts until the bot restarts, not a reload."""
        uptime = self.bot.uptime
        return uptime.timestamp() if uptime is not None else None

    async def checkpoint(self) -> int:
        """Persist every job's status summary, so counters survive reloads and restarts."""
        if self.supervisor is None:
            return 0
        statuses = self.supervisor.status()
        await self.state.save(statuses)
        return len(statuses)

    # ------------------------------------------------------------------ registry

    async def register(self, spec: TaskSpec) -> None:
        """Register another cog's task. It is supervised like a built-in one and removed
        automatically when that cog unloads (set ``spec.owner`` to its ``qualified_name``)."""
        self.registry.add(spec)
        self.customs.yield_name(spec.name)  # a registered task wins over custom ones
        if self.supervisor is not None:
            try:
                self.supervisor.add(definition(self, spec))
            except ValueError:  # e.g. a dependency cycle: the task is not registered
                self.registry.remove(spec.name)
                raise
            if self.bot.is_ready():
                await self.supervisor.sync_keys(spec.name)

    async def unregister(self, name: str) -> None:
        spec = self.registry.remove(name)
        if spec is not None and self.supervisor is not None:
            self.supervisor.remove(name)

    @commands.Cog.listener()
    async def on_cog_remove(self, cog: commands.Cog) -> None:
        owner = cog.qualified_name
        if owner == self.qualified_name:
            return
        for spec in self.registry.by_owner(owner):
            await self.unregister(spec.name)
            log.info("Removed task %s: its cog %s was unloaded", spec.name, owner)

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        if self.supervisor is not None and self.bot.is_ready():
            await self.supervisor.add_key(guild.id)

    @commands.Cog.listener()
    async def on_guild_available(self, guild: discord.Guild) -> None:
        # Discord sends an already-joined guild as "available" after an outage (and some
        # gateways send new ones that way too); add_key is a no-op for a known guild.
        await self.on_guild_join(guild)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        if self.supervisor is not None:
            await self.supervisor.remove_key(guild.id)

    # ------------------------------------------------------------------ helpers for commands

    async def set_stopped(self, spec: TaskSpec, key: Hashable, stopped: bool) -> None:
        await self.state.set_stopped(spec.name, key, self.session_id if stopped else None)

    async def red_delete_data_for_user(
        self,
        *,
        requester: Literal["discord_deleted_user", "owner", "user", "user_strict"],
        user_id: int,
    ) -> None:
        """The only Discord user data taskcog keeps is the author of each custom task.

        Every request removes that id from the tasks the user authored: a ``say`` task keeps
        posting; a ``run`` task, which must run as somebody, waits in needs setup until a server
        admin edits it (and becomes its author) or removes it. Guild settings, task counters,
        game servers and the stats store (in-game names and platform ids from the game
        server's logs, not Discord users) hold no Discord user id.
        """
        await self.customs.store.forget_author(user_id)

    async def red_get_data_for_user(self, *, user_id: int) -> dict[str, io.BytesIO]:
        """The custom tasks the user authored (server id, name, action, text)."""
        mine = self.customs.store.authored_by(user_id)
        if not mine:
            return {}
        lines = [f"{gid}\t{task.name}\t{task.action}\t{task.text}" for gid, task in mine]
        return {"custom_tasks.tsv": io.BytesIO("\n".join(lines).encode())}
