"""NATS JetStream for the ``taskiq`` backend: the broker and where results wait.

Names, all under one prefix (letters, digits, ``-`` and ``_``; one per bot):

- stream ``<prefix>_jobs`` (work-queue retention: a job is gone once acknowledged), subjects
  ``<prefix>.q.shared`` (any worker; a durable pull consumer ``shared`` that every worker
  pulls from) and ``<prefix>.q.w.<worker>`` (ingest steps routed to one worker; its own durable
  consumer ``w_<worker>``, which the server drops a minute after the worker stops pulling);
- results (JSON, never pickle) in :mod:`.jetstream_results`.

Acknowledgement is after the result is saved; a job not acknowledged within ``redeliver`` s
(its worker was SIGKILLed) is delivered again by the server itself. The worker directory
(heartbeats, locks, announcements) is in :mod:`.jetstream_directory`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any, AsyncGenerator

from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    RetentionPolicy,
    StreamConfig,
)
from nats.js.errors import (
    NoStreamResponseError,
)
from taskiq import AckableMessage, AsyncBroker, BrokerMessage

from .common import REDELIVER
from .jetstream_conn import Names, connect, declare_stream, ready
from .jetstream_results import JetStreamResults

JOBS_TTL = 3600.0  # s a job nobody took is kept
IDLE_CONSUMER = 60.0  # s after which the server drops a worker's consumer nobody pulls from
CHECK_EVERY = 10  # empty 1 s pulls between checks that a worker's consumer still exists


async def ensure_stream(js: JetStreamContext, names: Names) -> None:
    config = StreamConfig(
        name=names.stream,
        subjects=[f"{names.prefix}.q.>"],
        retention=RetentionPolicy.WORK_QUEUE,
        max_msgs=100_000,
        max_age=JOBS_TTL,
    )
    await declare_stream(js, config)


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
        """Both queues, merged, pulled on demand: taskiq's receiver asks for the next job only
        when it has room for it, and only then do the queues get a pull request (for one job,
        living at most 1 s). A busy worker therefore holds at most one job per queue, one that
        came within a second of its last pull, instead of a job on every pull loop; a pull is
        never cancelled, since a job it was already given would wait out ``redeliver``."""
        assert self.js is not None and self.worker is not None
        js = self.js
        subs = [
            await js.pull_subscribe_bind(c, self.names.stream) for c, _, _ in self._consumers()
        ]
        pulls: dict[Any, asyncio.Task[list[Any]]] = {}
        ready_: deque[Any] = deque()
        quiet = 0
        try:
            while True:
                if ready_:
                    message = ready_.popleft()
                    yield AckableMessage(data=message.data, ack=message.ack)
                    continue
                for sub in subs:
                    if sub not in pulls:
                        pulls[sub] = asyncio.ensure_future(sub.fetch(1, timeout=1.0))
                done, _ = await asyncio.wait(pulls.values(), return_when=asyncio.FIRST_COMPLETED)
                for sub, pull in list(pulls.items()):
                    if pull not in done:
                        continue
                    del pulls[sub]
                    try:
                        ready_.extend(pull.result())
                    except NatsTimeout:
                        quiet += 1
                        if quiet % CHECK_EVERY == 0:  # a server that lost its streams only
                            await sub.consumer_info()  # times out: NotFoundError -> startup
        finally:
            for pull in pulls.values():
                pull.cancel()
            for pull in pulls.values():
                with contextlib.suppress(BaseException):
                    await pull
