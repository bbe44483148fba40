"""Where the pool's heavy work runs for this bot: ``local`` (default) or ``taskiq`` workers.

The owner picks it with ``[p]taskset global backend``; the broker URL (it may hold a password)
and the secret key live in their own Config group, are collected by DM and never shown. The
key comes from ``TASKCOG_SECRET_KEY`` when the bot has it, else the bot makes one, keeps it
and DMs it once to the owner to give to the workers.

With ``taskiq`` the killfeed hands its ingest step to a worker and keeps everything else:
cursors, the ledger and posting (:func:`~taskcog.pipeline.remote.driver.ingest_remote`).
A history import hands its slices to the workers (read and parsed there) and stores them
itself, in order, with their cursors (:meth:`BackendManager.history_slices`).
The broker is started on first use, so ``cog_load`` stays fast; a broker that is down fails
the run with one line (transient: backoff); no worker answering alerts the owners once, until
a step succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

from ..engine.backends import (
    BackendUnavailable,
    NoWorkers,
    SecretBox,
    TaskiqBackend,
)
from ..engine.backends.brokers import (
    BrokerUnfit,
    check_prefix,
    check_url,
    make_broker,
    make_directory,
    ping,
    safe_url,
)
from ..engine.backends.secrets import ENV_KEY
from ..pipeline.history import RunSlice
from ..pipeline.killfeed import KillfeedReport, Observer
from ..pipeline.remote.driver import ingest_remote
from ..pipeline.remote.imports import Part, SliceResult, remote_slice
from ..pipeline.remote.ingest import make_job
from ..pipeline.sinks.discord import KillfeedSink
from .alerts import one_line

if TYPE_CHECKING:
    from .stores.servers import ServerInfo

log = logging.getLogger("red.taskcog.backend")

ANSWER_TIMEOUT = 30.0
PUBLIC = ("kind", "base_path", "host", "port", "username", "fingerprint")


class BackendManager:
    """The cog's current backend; ``remote`` says whether the killfeed should use it."""

    def __init__(self, cog: Any) -> None:  # the cog (MixinMeta), untyped: abc imports this
        self.cog = cog
        self.backend: TaskiqBackend | None = None
        self.box: SecretBox | None = None
        self.where = ""
        self.alerted = False
        self._lock = asyncio.Lock()
        self._started = False

    @property
    def kind(self) -> str:
        return "taskiq" if self.backend is not None else "local"

    @property
    def remote(self) -> bool:
        return self.backend is not None

    async def load(self) -> None:
        """Build (not start) the saved backend; a broken saved setting falls back to local."""
        stored = await self.cog.config.backend()
        if stored.get("kind") != "taskiq":
            return
        secrets = await self.cog.config.backend_secrets()
        try:
            self._build(check_url(secrets.get("broker_url") or ""), secrets.get("secret_key"))
        except Exception as exc:  # noqa: BLE001 - never block the cog on a bad saved setting
            log.error("taskiq backend not loaded, using local: %s", one_line(exc))

    def _build(self, url: str, stored_key: str | None) -> None:
        self.box = SecretBox(os.environ[ENV_KEY]) if os.environ.get(ENV_KEY) else None
        if self.box is None and stored_key:
            self.box = SecretBox(stored_key)
        prefix = check_prefix(url, os.environ.get("TASKCOG_PREFIX", "taskcog"))
        self.where = safe_url(url)
        self.backend = TaskiqBackend(
            make_broker(url, prefix),
            directory=make_directory(url, prefix),
            where=self.where,
            answer_timeout=ANSWER_TIMEOUT,
        )
        self._started = False

    async def _ready(self) -> TaskiqBackend:
        assert self.backend is not None
        async with self._lock:
            if not self._started:
                await self.backend.start()  # BackendUnavailable: the run retries later
                self._started = True
        return self.backend

    async def close(self) -> None:
        backend, self.backend = self.backend, None
        self._started = False
        if backend is not None:
            try:
                await backend.close()
            except Exception:  # noqa: BLE001 - a dead broker must not stop an unload
                log.debug("closing the taskiq backend failed", exc_info=True)

    # -- switching ---------------------------------------------------------------------------

    async def use_local(self) -> None:
        await self.cog.config.backend.set({"kind": "local"})
        await self.close()

    async def use_taskiq(self, url: str) -> str | None:
        """Check ``url`` (format, then a PING), save it, switch. Returns a new secret key to
        give the workers, or None if the bot's key comes from its environment. Raises
        ValueError (one line, never the URL) and changes nothing when the broker is no good."""
        url = check_url(url)
        check_prefix(url, os.environ.get("TASKCOG_PREFIX", "taskcog"))
        try:
            await ping(url)
        except BrokerUnfit as exc:
            raise ValueError(f"{exc} Nothing was changed.") from None
        except Exception as exc:  # noqa: BLE001 - any failure: refuse, change nothing
            raise ValueError(
                f"Could not reach the broker at {safe_url(url)} ({type(exc).__name__}); "
                "nothing was changed."
            ) from None
        secrets = await self.cog.config.backend_secrets()
        new_key = None
        key = secrets.get("secret_key")
        if not os.environ.get(ENV_KEY) and not key:
            key = new_key = SecretBox.new_key()
        await self.cog.config.backend_secrets.set({"broker_url": url, "secret_key": key})
        await self.cog.config.backend.set({"kind": "taskiq"})
        await self.close()
        self._build(url, key)
        self.alerted = False
        return new_key

    async def history_slices(self, guild_id: int, info: ServerInfo) -> RunSlice:
        """How a history import reads and parses its slices on the workers: the server's
        public settings and its secret (encrypted with the shared key) go with every slice.
        Raises :class:`BackendUnavailable` when the broker is down, and
        :class:`SecretKeyError` when there is a secret but no key to send it with."""
        backend = await self._ready()
        server = {k: v for k, v in info.to_dict().items() if k in PUBLIC}
        secrets = await self.cog.config.guild_from_id(guild_id).secrets()
        base = make_job(f"{guild_id}:{info.name}", server, secrets.get(info.name), None, self.box)
        base.pop("cursor", None)
        base.pop("max_bytes", None)

        async def run(parts: list[Part]) -> SliceResult:
            try:
                return await remote_slice(backend, base, parts)
            except NoWorkers as exc:
                await self._alert(str(exc), "the history import")
                raise

        return run

    # -- the killfeed's ingest step ----------------------------------------------------------

    async def ingest(
        self,
        guild_id: int,
        info: ServerInfo,
        sink: KillfeedSink,
        scope: str,
        observe: Observer | None = None,
    ) -> KillfeedReport:
        """One game server's killfeed step through a worker (raises what the step raised)."""
        backend = await self._ready()
        assert self.cog.ledger is not None
        server = {k: v for k, v in info.to_dict().items() if k in PUBLIC}
        secrets = await self.cog.config.guild_from_id(guild_id).secrets()
        try:
            report = await ingest_remote(
                backend,
                server,
                secrets.get(info.name),
                sink,
                self.cog.ledger,
                scope,
                self.box,
                observe=observe,
            )
        except NoWorkers as exc:
            await self._alert(str(exc))
            raise
        self.alerted = False
        return report

    async def _alert(self, text: str, what: str = "the killfeed") -> None:
        """One DM to the owners while no worker answers (again after one step succeeded)."""
        if self.alerted:
            return
        self.alerted = True
        if not self.cog.settings.globals.get("owner_alerts", True):
            return
        try:
            await self.cog.bot.send_to_owners(f"taskcog: {what} is waiting for workers. {text}")
        except Exception:  # noqa: BLE001
            log.exception("Could not DM the owners about the workers")

    # -- [p]tasks pool -----------------------------------------------------------------------

    async def status_text(self) -> str:
        """The backend and its live workers, for ``[p]tasks pool`` (never the URL's password)."""
        if self.backend is None:
            return "Backend: local (this process)."
        try:
            status = await asyncio.wait_for(self.backend.status(), 5)
        except (TimeoutError, BackendUnavailable) as exc:
            return f"Backend: taskiq on {self.where}. {one_line(exc)}"
        head = f"Backend: taskiq on {self.where}"
        if status.error:
            return f"{head}. {status.error}"
        if not status.workers:
            return f"{head}. No live worker: start one with `python -m taskcog.worker`."
        rows = [f"{'worker':<28}{'beat':>6}{'busy':>6}{'done':>8}{'failed':>8}{'queue':>7}"]
        for w in status.workers[:20]:
            rows.append(
                f"{w.id[:27]:<28}{w.age:>5.1f}s{w.in_flight:>6}{w.done:>8}{w.failed:>8}"
                f"{w.queued:>7}"
            )
        more = f" (+{len(status.workers) - 20} more)" if len(status.workers) > 20 else ""
        table = "\n".join(rows)
        return (
            f"{head}: {len(status.workers)} live worker(s){more}, shared queue "
            f"{status.shared_queue}.\n```\n{table}\n```"
        )
