"""NATS connections and names for the JetStream backend: one place that knows how a client
connects, reconnects and is known to be up, and what every stream, subject and bucket is
called under a prefix (letters, digits, ``-`` and ``_``; one per bot)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import logging
import re
import weakref
from typing import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import BadRequestError

log = logging.getLogger("red.taskcog.engine.backends")

PREFIX_RE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CONNECT_TIMEOUT = 3.0
RECONNECT_GRACE = 1.0


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
        self.results = f"{prefix}_res"  # stream in memory: results as messages
        self.locks = f"{prefix}_locks"
        self.beats = f"{prefix}.hb.*"
        self.ask = f"{prefix}.ask"  # "beat now": a bot that just started wants the workers
        self.done = f"{prefix}.done"  # ids of jobs whose result was just saved

    def result(self, task_id: str) -> str:
        return f"{self.prefix}.r.{token(task_id)}"

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


async def declare_stream(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream ``config`` names; one that exists already is used as it is (declaring
    it again changes nothing, and an operator's changes to it are kept)."""
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != 10058:  # "exists with another configuration"
            raise
