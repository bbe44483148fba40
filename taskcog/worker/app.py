"""One worker process: a taskiq receiver, its heartbeat, and the game servers routed to it.

The worker reads the shared queue (import slices, and a step that a dead worker left
unacknowledged) and its own queue (ingest steps the bot routes to it by server key). Each step
runs under the server's lock (a Redis key or a NATS KV key), so even while a server moves
between workers (one died, one joined) its work never runs twice at once. Acknowledgement is
after the result is saved: a worker SIGKILLed mid-step leaves the message pending, and the bot
sends the step again.

History-import slices are routed like ingest steps (by their server's key) and read through
the same cached connection. They take no lock: a slice is read-only byte ranges, so it never
waits behind a killfeed step, and the bot stores slices in order with their cursors, so a
slice run twice (its first worker died) is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from taskiq import TaskiqMessage, TaskiqMiddleware, TaskiqResult
from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

from ..engine.backends import IMPORT_SLICE, INGEST
from ..engine.backends.brokers import make_broker, make_directory
from ..engine.backends.common import HEARTBEAT, new_worker_id, safe_url
from ..engine.backends.secrets import SecretBox
from ..pipeline.remote.imports import import_step
from ..pipeline.remote.ingest import SourceCache, ingest_step

log = logging.getLogger("taskcog.worker")


class _Announce(TaskiqMiddleware):
    """Tells the bot a result is saved, so it need not poll for it."""

    def __init__(self, directory: Any) -> None:
        super().__init__()
        self.directory = directory

    async def post_save(self, message: TaskiqMessage, result: TaskiqResult[Any]) -> None:
        with contextlib.suppress(Exception):  # the bot's poll still finds the result
            await self.directory.announce(message.task_id)


class Worker:
    """Everything one ``python -m taskcog.worker`` runs; :meth:`run` until ``stop`` is set."""

    def __init__(
        self,
        url: str,
        box: SecretBox,
        *,
        prefix: str = "taskcog",
        worker_id: str | None = None,
        heartbeat: float = HEARTBEAT,
        concurrency: int = 32,
        lock_ttl: float = 60.0,
        lock_wait: float = 10.0,
        redeliver: float = 120.0,
    ) -> None:
        self.id = worker_id or new_worker_id()
        self.where = safe_url(url)
        self.heartbeat = heartbeat
        self.concurrency = concurrency
        self.lock_ttl = lock_ttl
        self.lock_wait = lock_wait
        self.redeliver = redeliver
        self.in_flight = self.done = self.failed = 0
        self.broker = make_broker(url, prefix, worker=self.id, redeliver=redeliver)
        self.directory = make_directory(url, prefix)
        self.directory.answer_asks(self._beat_now)
        self.cache = SourceCache(box)

        async def ingest(job: dict[str, Any]) -> dict[str, Any]:
            return await self._ingest(job)

        async def slice_(job: dict[str, Any]) -> dict[str, Any]:
            return await self._import_slice(job)

        self.broker.add_middlewares(_Announce(self.directory))
        self.broker.register_task(ingest, task_name=INGEST)
        self.broker.register_task(slice_, task_name=IMPORT_SLICE)

    # -- the tasks ---------------------------------------------------------------------------

    async def _ingest(self, job: dict[str, Any]) -> dict[str, Any]:
        key, token = str(job["key"]), uuid.uuid4().hex
        self.in_flight += 1
        try:
            if not await self.directory.acquire(key, token, self.lock_ttl, self.lock_wait):
                self.failed += 1
                return {
                    "error": {
                        "type": "RemoteBusy",
                        "message": f"another worker is still reading {key}; retrying",
                    },
                    "worker": self.id,
                }
            renew = asyncio.create_task(self._renew(key, token))
            try:
                result = await ingest_step(job, self.cache)
            finally:
                renew.cancel()
                with contextlib.suppress(Exception):
                    await self.directory.release(key, token)
            self.failed += bool(result.get("error"))
            self.done += not result.get("error")
            result["worker"] = self.id
            return result
        except BaseException:
            self.failed += 1
            raise
        finally:
            self.in_flight -= 1

    async def _renew(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(self.directory.lock_ttl(self.lock_ttl) / 3)
            await self.directory.renew(key, token, self.lock_ttl)

    async def _import_slice(self, job: dict[str, Any]) -> dict[str, Any]:
        self.in_flight += 1
        try:
            result = await import_step(job, self.cache)
        except BaseException:
            self.failed += 1
            raise
        finally:
            self.in_flight -= 1
        self.failed += bool(result.get("error"))
        self.done += not result.get("error")
        result["worker"] = self.id
        return result

    # -- running -----------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "done": self.done,
            "failed": self.failed,
            "servers": len(self.cache),
        }

    async def _beat_now(self) -> None:
        await self.directory.beat(self.id, self.state(), self.heartbeat)

    async def run(self, stop: asyncio.Event) -> None:
        """Listen and beat until ``stop``; a lost broker is retried with backoff, one line."""
        beating = asyncio.create_task(self._beat_forever(stop))
        try:
            delay = 0.5
            while not stop.is_set():
                try:
                    await self.broker.startup()  # declares the consumer group on our queue
                    await self.directory.beat(self.id, self.state(), self.heartbeat)
                    log.info("worker %s listening on %s", self.id, self.where)
                    delay = 0.5
                    await self._listen(stop)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the broker went away: wait, retry
                    log.warning(
                        "broker %s unavailable (%s); retrying in %.1f s",
                        self.where,
                        type(exc).__name__,
                        delay,
                    )
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
                    delay = min(delay * 2, 10.0)
        finally:
            beating.cancel()
            with contextlib.suppress(BaseException):
                await beating
            with contextlib.suppress(Exception):
                await self.directory.leave(self.id)
            await self.cache.close()
            with contextlib.suppress(Exception):
                await self.broker.shutdown()
            await self.directory.close()

    async def _listen(self, stop: asyncio.Event) -> None:
        self.broker.is_worker_process = True
        receiver = Receiver(
            self.broker,
            run_startup=False,
            max_async_tasks=self.concurrency,
            ack_type=AcknowledgeType.WHEN_SAVED,
        )
        listening = asyncio.create_task(receiver.listen(stop))
        stopping = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait(
                {listening, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
            if listening in done:
                listening.result()  # raises the broker's error
        finally:
            for task in (listening, stopping):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _beat_forever(self, stop: asyncio.Event) -> None:
        """Heartbeats, and every ``redeliver / 4`` s the jobs a dead worker left pending."""
        next_requeue = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await self.directory.beat(self.id, self.state(), self.heartbeat)
                if loop.time() >= next_requeue:
                    next_requeue = loop.time() + self.redeliver / 4
                    moved = await self.directory.requeue_idle(self.id, int(self.redeliver * 1000))
                    if moved:
                        log.info("requeued %d job(s) a dead worker left unacknowledged", moved)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.heartbeat)
