"""NATS JetStream for the ``taskiq`` backend: the broker and where results wait.

Names, all under one prefix (letters, digits, ``-`` and ``_``; one per bot):

- stream ``<prefix>_jobs`` (work-queue retention: a job is gone once acknowledged), subjects
  ``<prefix>.q.shared`` (any worker; a durable pull consumer ``shared`` that every worker
  pulls from) and ``<prefix>.q.w.<worker>`` (ingest steps routed to one worker; its own durable
  consumer ``w_<worker>``, which the server drops a minute after the worker stops pulling);
- object store ``<prefix>_results``: each result as JSON (never pickle), deleted once the bot
  read it, else expired after an hour. An object store because a slice's result (~1 MB) is
  larger than a NATS message may be.

Acknowledgement is after the result is saved; a job not acknowledged within ``redeliver`` s
(its worker was SIGKILLed) is delivered again by the server itself. The worker directory
(heartbeats, locks, announcements) is in :mod:`.jetstream_directory`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import re
import weakref
from typing import Any, AsyncGenerator, Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StreamConfig,
)
from nats.js.errors import (
    BadRequestError,
    BucketNotFoundError,
    NoStreamResponseError,
    ObjectNotFoundError,
)
from nats.js.object_store import ObjectStore
from taskiq import AckableMessage, AsyncBroker, AsyncResultBackend, BrokerMessage
from taskiq.exceptions import ResultGetError
from taskiq.result import TaskiqResult

from .common import REDELIVER, result_serializer

log = logging.getLogger("red.taskcog.engine.backends")

PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
RESULTS_TTL = 3600.0  # s a result nobody read is kept
IDLE_CONSUMER = 60.0  # s after which the server drops a worker's consumer nobody pulls from
CONNECT_TIMEOUT = 3.0
RECONNECT_GRACE = 1.0
CHECK_EVERY = 10  # empty 1 s pulls between checks that a worker's consumer still exists


def token(name: str) -> str:
    """``name`` as one subject token and consumer name: itself when it is plain, else a
    cleaned form with a hash (so two names never share a queue)."""
    if _TOKEN_RE.match(name):
        return name
    clean = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:40]
    return f"{clean}-{hashlib.blake2b(name.encode(), digest_size=6).hexdigest()}"


class Names:
    """The stream, subject, consumer and bucket names under one prefix."""

    def __init__(self, prefix: str) -> None:
        if not PREFIX_RE.match(prefix):
            raise ValueError("A NATS prefix may hold only letters, digits, - and _.")
        self.prefix = prefix
        self.stream = f"{prefix}_jobs"
        self.shared = f"{prefix}.q.shared"
        self.shared_consumer = "shared"
        self.results = f"{prefix}_results"
        self.locks = f"{prefix}_locks"
        self.beats = f"{prefix}.hb.*"
        self.ask = f"{prefix}.ask"  # "beat now": a bot that just started wants the workers
        self.done = f"{prefix}.done"  # ids of jobs whose result was just saved

    def queue(self, worker: str) -> str:
        return f"{self.prefix}.q.w.{token(worker)}"

    def consumer(self, worker: str) -> str:
        return f"w_{token(worker)}"

    def beat(self, worker: str) -> str:
        return f"{self.prefix}.hb.{token(worker)}"


async def quiet(exc: Exception) -> None:
    """nats-py logs every failed reconnect with a traceback; one debug line is enough (the
    backend reports a down broker itself, in one line)."""
    log.debug("nats: %s", type(exc).__name__)


_UP: weakref.WeakKeyDictionary[Client, asyncio.Event] = weakref.WeakKeyDictionary()


async def connect(
    url: str,
    reconnected: Callable[[], Awaitable[None]] | None = None,
    setup: Callable[[Client], Awaitable[None]] | None = None,
) -> Client:
    """A client that reconnects by itself for as long as it lives (``reconnected`` runs after
    each reconnect); the first connect gives up after :data:`CONNECT_TIMEOUT` s
    (``TimeoutError``) instead of retrying forever. ``setup`` (subscriptions) runs with the
    connect, in its own context (below)."""
    up = asyncio.Event()

    async def on_reconnect() -> None:
        up.set()
        if reconnected is not None:
            await reconnected()

    async def on_disconnect() -> None:
        up.clear()

    async def connecting() -> Client:
        client = await nats.connect(
            url,
            connect_timeout=2,
            reconnect_time_wait=0.5,
            max_reconnect_attempts=-1,
            error_cb=quiet,
            reconnected_cb=on_reconnect,
            disconnected_cb=on_disconnect,
            name="taskcog",
        )
        try:
            await client.jetstream().account_info()  # JetStream is on; starts the reply inbox
            if setup is not None:
                await setup(client)
        except BaseException:
            await client.close()
            raise
        return client

    # A fresh context: the client's reader, flusher, reply-inbox and subscription tasks
    # outlive the job that connected, and a framework following that job's context (Red's, a
    # test harness's) must not wait for them.
    task = contextvars.Context().run(asyncio.ensure_future, connecting())
    client = await asyncio.wait_for(task, CONNECT_TIMEOUT)
    up.set()
    _UP[client] = up
    return client


async def ready(client: Client | None) -> Client:
    """``client`` if it is connected, else ``ConnectionError`` at once: nats-py would buffer a
    publish while it reconnects and only time out seconds later. The one wait: the server is
    back (another client of this process is connected) and this one is about to, since each
    client reconnects on its own, a moment apart; it gets :data:`RECONNECT_GRACE` s."""
    if client is None or client.is_closed:
        raise ConnectionError("not connected to NATS")
    if client.is_connected:
        return client
    up = _UP.get(client)
    if up is not None and any(c.is_connected for c in list(_UP) if c is not client):
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(up.wait(), RECONNECT_GRACE)
    if not client.is_connected:
        raise ConnectionError("not connected to NATS")
    return client


async def ensure_stream(js: JetStreamContext, names: Names) -> None:
    config = StreamConfig(
        name=names.stream,
        subjects=[f"{names.prefix}.q.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        max_msgs=100_000,
        max_age=RESULTS_TTL,
    )
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != 10058:  # exists with another configuration: use it as it is
            raise


async def ensure_results(js: JetStreamContext, names: Names) -> ObjectStore:
    try:
        return await js.object_store(names.results)
    except BucketNotFoundError:
        return await js.create_object_store(names.results, ObjectStoreConfig(ttl=RESULTS_TTL))


class JetStreamResults(AsyncResultBackend[Any]):
    """Results in the object store, as JSON; the bot deletes each one after reading it."""

    def __init__(self, url: str, names: Names) -> None:
        self.url = url
        self.names = names
        self.serializer = result_serializer()
        self.client: Client | None = None
        self.store: ObjectStore | None = None

    async def startup(self) -> None:
        await self.shutdown()
        self.client = await connect(self.url, self._redeclare)
        self.store = await ensure_results(self.client.jetstream(), self.names)

    async def _redeclare(self) -> None:
        """After a reconnect: the server may have come back without its store."""
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.store = await ensure_results(self.client.jetstream(), self.names)

    async def shutdown(self) -> None:
        client, self.client, self.store = self.client, None, None
        if client is not None and not client.is_closed:
            await client.close()

    async def _store(self) -> ObjectStore:
        await ready(self.client)
        if self.store is None:
            raise ConnectionError("the result store is not open")
        return self.store

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        await (await self._store()).put(
            task_id, self.serializer.dumpb(result.model_dump(mode="json"))
        )

    async def is_result_ready(self, task_id: str) -> bool:
        try:
            await (await self._store()).get_info(task_id)
        except ObjectNotFoundError:
            return False
        return True

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        store = await self._store()
        try:
            found = await store.get(task_id)
        except ObjectNotFoundError as exc:
            raise ResultGetError from exc
        with contextlib.suppress(Exception):  # it expires anyway
            await store.delete(task_id)
        result: TaskiqResult[Any] = TaskiqResult.model_validate(
            self.serializer.loadb(found.data or b"")
        )
        if not with_logs:
            result.log = None
        return result


class JetStreamBroker(AsyncBroker):
    """Sends a job to the subject its ``queue_name`` label names (a worker's queue) or to the
    shared one; a worker (``worker`` given) pulls from both, one job at a time per queue."""

    def __init__(
        self, url: str, prefix: str, *, worker: str | None = None, redeliver: float = REDELIVER
    ) -> None:
        self.names = Names(prefix)
        super().__init__()
        self.with_result_backend(JetStreamResults(url, self.names))
        self.url = url
        self.worker = worker
        self.redeliver = redeliver
        self.client: Client | None = None
        self.js: JetStreamContext | None = None

    async def startup(self) -> None:
        await self._close()
        await super().startup()  # the result store
        self.client = await connect(self.url, self._redeclare)
        self.js = self.client.jetstream()
        await self._declare()

    async def _declare(self) -> None:
        """The stream, and a worker's two consumers (declaring them again changes nothing)."""
        assert self.js is not None
        await ensure_stream(self.js, self.names)
        if self.worker is not None:
            for consumer, subject, idle in self._consumers():
                config = ConsumerConfig(
                    durable_name=consumer,
                    filter_subject=subject,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=self.redeliver,
                    max_ack_pending=-1,
                    inactive_threshold=idle,
                )
                await self.js.add_consumer(self.names.stream, config)

    async def _redeclare(self) -> None:
        """After a reconnect: a server that came back without its store has lost them."""
        if self.js is not None:
            with contextlib.suppress(Exception):
                await self._declare()

    def _consumers(self) -> list[tuple[str, str, float | None]]:
        assert self.worker is not None
        return [
            (self.names.shared_consumer, self.names.shared, None),
            (self.names.consumer(self.worker), self.names.queue(self.worker), IDLE_CONSUMER),
        ]

    async def shutdown(self) -> None:
        await self._close()
        await super().shutdown()

    async def _close(self) -> None:
        client, self.client, self.js = self.client, None, None
        if client is not None and not client.is_closed:
            await client.close()

    async def kick(self, message: BrokerMessage) -> None:
        await ready(self.client)
        assert self.js is not None
        subject = str(message.labels.get("queue_name") or self.names.shared)
        try:
            await self.js.publish(subject, message.message, timeout=5)
        except NoStreamResponseError:  # the server lost the stream (restarted without its store)
            await ensure_stream(self.js, self.names)
            await self.js.publish(subject, message.message, timeout=5)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """Both queues, merged: each pulls its next job only once the last one was handed on,
        so a busy worker never sits on jobs another could run."""
        assert self.js is not None and self.worker is not None
        js = self.js
        handed: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)

        async def pull(consumer: str) -> None:
            sub = await js.pull_subscribe_bind(consumer, self.names.stream)
            quiet = 0
            while True:
                try:
                    messages = await sub.fetch(1, timeout=1.0)
                except NatsTimeout:
                    quiet += 1
                    if quiet % CHECK_EVERY == 0:  # a server that lost its streams only
                        await sub.consumer_info()  # times out: NotFoundError -> startup again
                    continue
                for message in messages:
                    await handed.put(message)

        pullers = [asyncio.create_task(pull(c)) for c, _, _ in self._consumers()]
        try:
            while True:
                getting = asyncio.ensure_future(handed.get())
                await asyncio.wait({getting, *pullers}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    for puller in pullers:
                        if puller.done():
                            puller.result()  # the broker's error: the worker reconnects
                    raise ConnectionError("a NATS consumer stopped")
                message = getting.result()
                yield AckableMessage(data=message.data, ack=message.ack)
        finally:
            for puller in pullers:
                puller.cancel()
            for puller in pullers:
                with contextlib.suppress(BaseException):
                    await puller
