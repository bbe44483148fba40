"""The ``taskiq`` backend: the bot sends the work to a broker, worker processes run it.

taskiq only executes work here; scheduling stays in taskcog's supervisor. The bot waits for
each result woken by the worker's announcement (Redis pub/sub or a NATS subject), with short,
growing polls as the fallback (1 ms doubling to 1 s; x1.5 to 100 ms without announcements), so
the broker hop adds milliseconds, not the 200 ms of taskiq's default poll.

Faults, as the bot sees them:

- the broker is down: :class:`BackendUnavailable` (a ``ConnectionError``: the task retries
  with backoff and says so in one line);
- no live worker, or none answers within ``answer_timeout``: :class:`NoWorkers`. If the worker
  a job was routed to dies meanwhile (its heartbeat expires; checked every second while the bot
  waits), the job is sent to the next worker: the bot's cursor never moved, so running it again
  is harmless. Ingest steps and history slices are both routed by their game server's key.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any, Mapping, Protocol

from taskiq import AsyncBroker
from taskiq.exceptions import TaskiqError
from taskiq.kicker import AsyncKicker

from .base import (
    IMPORT_SLICE,
    INGEST,
    BackendStatus,
    BackendUnavailable,
    IngestResult,
    NoWorkers,
    WorkerInfo,
)

log = logging.getLogger("red.taskcog.engine.backends")

try:  # the Redis client's errors are not OSErrors
    from redis.exceptions import ConnectionError as _RedisDown
    from redis.exceptions import TimeoutError as _RedisSlow
except ImportError:  # pragma: no cover - redis is installed with taskiq-redis
    _RedisDown = _RedisSlow = OSError  # type: ignore[assignment,misc]

try:  # nor are NATS' (a lost connection, a stream or bucket that a restart lost)
    from nats.errors import Error as _NatsError
except ImportError:  # pragma: no cover - nats-py is in the requirements
    _NatsError = OSError  # type: ignore[assignment,misc]

_DOWN = (
    OSError,
    ConnectionError,
    asyncio.TimeoutError,
    _RedisDown,
    _RedisSlow,
    _NatsError,
    TaskiqError,
)


class WorkerDirectory(Protocol):
    """Who the live workers are and where a key's work goes (:mod:`.redis`,
    :mod:`.jetstream_directory`)."""

    listening: bool  # subscribed to result announcements (polling is the fallback)

    async def route(self, key: str, *, fresh: bool = False) -> str | None: ...

    async def alive(self, worker: str) -> bool: ...

    async def workers(self) -> tuple[list[WorkerInfo], int]: ...

    async def close(self) -> None: ...

    def queue_of(self, worker: str) -> str: ...

    def expect(self, task_id: str) -> asyncio.Future[None]: ...

    def forget(self, task_id: str) -> None: ...


class _NoAnswer(Exception):
    pass


class _WorkerGone(Exception):
    """The worker a job was routed to stopped beating before it answered."""


LIVENESS_EVERY = 1.0  # seconds between checks that a job's worker still beats
ANNOUNCED_POLL = 0.25  # the first fallback poll of a job whose result will be announced


class TaskiqBackend:
    """Sends ingest steps and import slices through a taskiq broker and waits for results.

    ``directory`` (a :class:`WorkerDirectory`) routes a key's steps to one worker's queue and
    lists the workers; without one every job goes to the broker's shared queue (tests with
    ``InMemoryBroker``). ``where`` names the broker in messages and must be secret-free.
    """

    kind = "taskiq"

    def __init__(
        self,
        broker: AsyncBroker,
        *,
        directory: WorkerDirectory | None = None,
        where: str = "the broker",
        answer_timeout: float = 30.0,
        import_timeout: float = 600.0,
    ) -> None:
        self.broker = broker
        self.directory = directory
        self.where = where
        self.answer_timeout = answer_timeout
        self.import_timeout = import_timeout
        self.sent = 0
        self.resent = 0
        self._started = False

    async def start(self) -> None:
        try:
            await self.broker.startup()
        except _DOWN as exc:
            raise self._down(exc) from None
        self._started = True

    async def close(self) -> None:
        try:
            if self._started:
                await self.broker.shutdown()
        finally:
            self._started = False
            if self.directory is not None:
                await self.directory.close()

    async def ingest(self, job: Mapping[str, Any]) -> IngestResult:
        payload = await self._routed(INGEST, job, self.answer_timeout, attempts=2)
        return IngestResult.from_dict(payload)

    async def import_slice(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """A slice goes to the worker of its ``job["key"]`` (the game server), which already
        holds that server's connection; without a key, to the shared queue."""
        return await self._routed(IMPORT_SLICE, job, self.import_timeout, attempts=3)

    async def status(self) -> BackendStatus:
        status = BackendStatus("taskiq", self.where)
        if self.directory is None:
            return status
        try:
            status.workers, status.shared_queue = await self._call(self.directory.workers())
        except BackendUnavailable as exc:
            status.error = str(exc)
        return status

    # -- internals -------------------------------------------------------------------------

    async def _routed(
        self, name: str, job: Mapping[str, Any], timeout: float, *, attempts: int
    ) -> dict[str, Any]:
        """Send ``job`` to the worker its key routes to, and again to the next one if that
        worker dies meanwhile: progress lives in the bot, so running a job twice is harmless."""
        key = job.get("key")
        for attempt in range(attempts):
            fresh = attempt > 0  # not the cached list that still named the dead worker
            worker = await self._call(self._route(str(key), fresh)) if key is not None else None
            labels = (
                {"queue_name": self.directory.queue_of(worker)}
                if worker and self.directory
                else {}
            )
            try:
                return await self._run(name, job, labels, timeout, worker)
            except _WorkerGone:
                if attempt + 1 < attempts:
                    self.resent += 1
                    log.info("worker %s died during a job for %s; sending it again", worker, key)
                    continue
                raise NoWorkers(
                    f"Worker after worker died during a job for {key} on {self.where}."
                ) from None
            except _NoAnswer:
                where = "worker " + worker if worker else "the shared queue"
                raise NoWorkers(
                    f"No worker answered within {timeout:g} s ({where} on {self.where})."
                ) from None
        raise AssertionError("unreachable")

    async def _route(self, key: str, fresh: bool = False) -> str | None:
        if self.directory is None:
            return None
        worker = await self.directory.route(key, fresh=fresh)
        if worker is None:
            raise NoWorkers(
                f"No worker is running for {self.where}: start one with "
                "`python -m taskcog.worker`."
            )
        return worker

    async def _alive(self, worker: str) -> bool:
        assert self.directory is not None
        return await self.directory.alive(worker)

    async def _run(
        self,
        name: str,
        job: Mapping[str, Any],
        labels: dict[str, Any],
        timeout: float,
        worker: str | None = None,
    ) -> dict[str, Any]:
        """Kick the job and wait for its result; every :data:`LIVENESS_EVERY` seconds check
        that ``worker`` (the one it was routed to) still beats, else raise ``_WorkerGone``."""
        task_id = uuid.uuid4().hex
        kicker: AsyncKicker[Any, Any] = AsyncKicker(name, self.broker, labels)
        kicker.with_task_id(task_id)
        announced = self.directory.expect(task_id) if self.directory is not None else None
        try:
            handle = await self._call(kicker.kiq(dict(job)))
            self.sent += 1
            deadline = time.monotonic() + timeout
            check_at = time.monotonic() + LIVENESS_EVERY
            # Subscribed to announcements, a poll only covers a missed one: start slow (an
            # import keeps dozens of slices in flight; fast polls were most of the bot's
            # Redis traffic). Not subscribed (yet), poll fast.
            heard = announced is not None and self.directory is not None
            heard = heard and self.directory.listening  # type: ignore[union-attr]
            delay = ANNOUNCED_POLL if heard else 0.001
            ready = False if heard else await self._call(handle.is_ready())
            while not ready:
                now = time.monotonic()
                left = deadline - now
                if worker is not None and (now >= check_at or left <= 0):
                    check_at = now + LIVENESS_EVERY
                    if not await self._call(self._alive(worker)):
                        raise _WorkerGone()
                if left <= 0:
                    raise _NoAnswer()
                if announced is None:
                    await asyncio.sleep(min(delay, left))
                else:  # woken by the worker's announcement; the poll is only the fallback
                    await asyncio.wait({announced}, timeout=min(delay, left))
                    if announced.done():  # announced after the result was saved
                        break
                # Announced results need few polls: they only cover a missed announcement.
                delay = min(delay * 1.5, 0.1) if announced is None else min(delay * 2, 1.0)
                ready = await self._call(handle.is_ready())
        finally:
            if self.directory is not None:
                self.directory.forget(task_id)
        result = await self._call(handle.get_result())
        if result.is_err:
            error = result.error
            text = str(error) if error is not None else "unknown error"
            raise RuntimeError(f"The worker failed: {type(error).__name__}: {text}"[:500])
        value = result.return_value
        if not isinstance(value, dict):
            raise RuntimeError("The worker returned something that is not a result.")
        return value

    async def _call(self, work: Any) -> Any:
        try:
            return await work
        except NoWorkers:
            raise
        except _DOWN as exc:
            raise self._down(exc) from None

    def _down(self, exc: BaseException) -> BackendUnavailable:
        cause = exc.__cause__ if isinstance(exc, TaskiqError) and exc.__cause__ else exc
        reason = type(cause).__name__
        return BackendUnavailable(
            f"The broker at {self.where} is unreachable ({reason}); retrying with backoff."
        )
