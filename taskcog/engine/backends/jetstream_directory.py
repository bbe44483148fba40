"""The worker directory on NATS: heartbeats, per-server locks and result announcements.

- Heartbeats are plain NATS messages on ``<prefix>.hb.<worker>`` (JSON: the worker's counts
  and its ``ttl``, three beats). The bot hears them as they come and judges a worker alive by
  its own monotonic clock, so no two machines' clocks are ever compared. A bot that just
  started asks every worker to beat at once (``<prefix>.ask``) and listens for a moment.
- A game server's lock is a key of the KV bucket ``<prefix>_locks``: created only when absent,
  renewed by its holder by revision, deleted only by its holder, and expired by the server
  after the bucket's TTL, so a SIGKILLed worker's lock frees itself.
- ``<prefix>.done`` announces a saved result; polling stays as the fallback.

When the bot sees a worker's beats stop, it deletes that worker's consumer and drops its
queued jobs: the bot sends them again, to the next worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import json
import os
import socket
import time
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import KeyValueConfig
from nats.js.errors import (
    BucketNotFoundError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoStreamResponseError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from .base import WorkerInfo
from .common import HEARTBEAT, pick
from .jetstream_conn import Names, connect, ready

ASK_WINDOW = 0.3  # s a bot that just asked waits for the workers' beats


class Directory:
    """The bot's view of the workers (and each worker's own heartbeat and locks)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.names = Names(prefix)
        self.client: Client | None = None
        self._connecting = asyncio.Lock()
        self._beats: dict[str, tuple[float, dict[str, Any]]] = {}  # id -> (seen, beat)
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._asked = False
        self._asking = asyncio.Lock()
        self._kv: KeyValue | None = None
        self._revisions: dict[str, int] = {}  # lock key -> our revision
        self._lock_ttl: float | None = None
        self._on_ask: Any = None  # a worker's "beat now" callback

    @property
    def listening(self) -> bool:
        """Subscribed to result announcements now (polling is the fallback)."""
        return self.client is not None and self.client.is_connected

    async def _client(self) -> Client:
        if self.client is not None and not self.client.is_closed:
            return await ready(self.client)
        async with self._connecting:
            if self.client is None or self.client.is_closed:
                self.client = await connect(self.url, setup=self._subscribe)
        return self.client

    async def _subscribe(self, client: Client) -> None:
        if self._on_ask is not None:  # a worker: it only answers the bots' asks
            await client.subscribe(self.names.ask, cb=self._on_ask)
        else:
            await client.subscribe(self.names.beats, cb=self._heard)
            await client.subscribe(self.names.done, cb=self._announced)

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):
                await client.close()

    # -- result announcements ----------------------------------------------------------------

    def expect(self, task_id: str) -> asyncio.Future[None]:
        if self.client is None:  # subscribe soon; polling covers the moment until then
            contextvars.Context().run(asyncio.ensure_future, self._quiet_connect())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[task_id] = future
        return future

    async def _quiet_connect(self) -> None:
        with contextlib.suppress(Exception):
            await self._client()

    def forget(self, task_id: str) -> None:
        self._waiting.pop(task_id, None)

    async def _announced(self, message: Msg) -> None:
        future = self._waiting.get(message.data.decode(errors="replace"))
        if future is not None and not future.done():
            future.set_result(None)

    async def announce(self, task_id: str) -> None:
        await (await self._client()).publish(self.names.done, task_id.encode())

    # -- the bot's side ----------------------------------------------------------------------

    async def _heard(self, message: Msg) -> None:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            beat = json.loads(message.data)
            if beat.get("gone"):
                self._beats.pop(str(beat["id"]), None)
            else:
                self._beats[str(beat["id"])] = (time.monotonic(), beat)

    async def live(self, *, fresh: bool = False) -> list[str]:
        """Ids of the workers heard within their ``ttl``. The first call asks every worker
        to beat at once and listens for :data:`ASK_WINDOW` s; ``fresh`` first makes sure the
        connection is alive now (one round trip), not only not yet seen to be lost."""
        client = await self._client()
        if fresh:
            try:
                await client.flush(timeout=2)
            except (TimeoutError, NatsError) as exc:
                raise ConnectionError(f"NATS did not answer ({type(exc).__name__})") from None
        if not self._asked:
            async with self._asking:  # every first caller waits for the one ask
                if not self._asked:
                    await client.publish(self.names.ask, b"")
                    await client.flush(timeout=2)
                    await asyncio.sleep(ASK_WINDOW)
                    self._asked = True
        now = time.monotonic()
        live, dead = [], []
        for worker, heard in self._beats.items():
            (live if _within_ttl(heard, now) else dead).append(worker)
        for worker in dead:  # its queued jobs are sent again by the bot, to the next worker
            del self._beats[worker]
            await self._drop_queue(client, worker)
        return sorted(live)

    async def _drop_queue(self, client: Client, worker: str) -> None:
        js = client.jetstream()
        with contextlib.suppress(Exception):  # gone already, or the server dropped it idle
            await js.delete_consumer(self.names.stream, self.names.consumer(worker))
        with contextlib.suppress(Exception):
            await js.purge_stream(self.names.stream, subject=self.names.queue(worker))

    def queue_of(self, worker: str) -> str:
        return self.names.queue(worker)

    async def route(self, key: str, *, fresh: bool = False) -> str | None:
        return pick(key, await self.live(fresh=fresh))

    async def alive(self, worker: str) -> bool:
        await self._client()  # a broker that went away is the bot's error, not a dead worker
        heard = self._beats.get(worker)
        return heard is not None and _within_ttl(heard, time.monotonic())

    async def workers(self) -> tuple[list[WorkerInfo], int]:
        """Every live worker's last heartbeat, and the jobs waiting in the shared queue."""
        client = await self._client()
        infos: list[WorkerInfo] = []
        now = time.monotonic()
        for worker in await self.live(fresh=True):
            seen, beat = self._beats[worker]
            infos.append(
                WorkerInfo(
                    id=worker,
                    host=str(beat.get("host", "?")),
                    pid=int(beat.get("pid", 0)),
                    age=max(0.0, now - seen),
                    in_flight=int(beat.get("in_flight", 0)),
                    done=int(beat.get("done", 0)),
                    failed=int(beat.get("failed", 0)),
                    queued=await self._lag(client, self.names.consumer(worker)),
                    servers=int(beat.get("servers", 0)),
                )
            )
        return infos, await self._lag(client, self.names.shared_consumer)

    async def _lag(self, client: Client, consumer: str) -> int:
        """Jobs of ``consumer`` not yet delivered to a worker."""
        try:
            info = await client.jetstream().consumer_info(self.names.stream, consumer)
        except NotFoundError:
            return 0
        return int(info.num_pending or 0)

    # -- a worker's side ---------------------------------------------------------------------

    def answer_asks(self, beat_now: Any) -> None:
        """A worker: call ``beat_now()`` whenever a bot asks (before the first connect)."""

        async def on_ask(_: Msg) -> None:
            with contextlib.suppress(Exception):
                await beat_now()

        self._on_ask = on_ask

    async def beat(self, worker: str, state: dict[str, Any], interval: float = HEARTBEAT) -> None:
        beat = {**state, "id": worker, "host": socket.gethostname(), "pid": os.getpid()}
        beat["ttl"] = interval * 3
        client = await self._client()
        await client.publish(self.names.beat(worker), json.dumps(beat).encode())

    async def leave(self, worker: str) -> None:
        client = await self._client()
        gone = json.dumps({"id": worker, "gone": True}).encode()
        await client.publish(self.names.beat(worker), gone)
        await client.flush(timeout=2)
        await self._drop_queue(client, worker)

    async def _locks(self, ttl: float) -> KeyValue:
        client = await self._client()
        if self._kv is None:
            js = client.jetstream()
            try:
                self._kv = await js.key_value(self.names.locks)
            except BucketNotFoundError:
                self._kv = await js.create_key_value(
                    KeyValueConfig(bucket=self.names.locks, history=1, ttl=ttl)
                )
            self._lock_ttl = (await self._kv.status()).ttl or ttl
        return self._kv

    def lock_ttl(self, wanted: float) -> float:
        """The locks' real TTL: the bucket's (its first creator chose it), once known."""
        return min(wanted, self._lock_ttl) if self._lock_ttl else wanted

    async def acquire(self, key: str, token: str, ttl: float, wait: float) -> bool:
        """Take ``key``'s lock, waiting up to ``wait`` s for its holder (or its expiry)."""
        kv = await self._locks(ttl)
        name = _lock_key(key)
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            try:
                self._revisions[key] = await kv.create(name, token.encode())
                return True
            except (KeyWrongLastSequenceError, KeyNotFoundError):  # held (or expiring now)
                pass
            except NoStreamResponseError:  # the server came back without the bucket
                self._kv = None
                kv = await self._locks(ttl)
                continue
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def renew(self, key: str, token: str, ttl: float) -> bool:
        kv = await self._locks(ttl)
        try:
            self._revisions[key] = await kv.update(
                _lock_key(key), token.encode(), last=self._revisions.get(key)
            )
        except KeyWrongLastSequenceError:
            return False
        return True

    async def release(self, key: str, token: str) -> None:
        revision = self._revisions.pop(key, None)
        if self._kv is not None and revision is not None:
            with contextlib.suppress(KeyWrongLastSequenceError):
                await self._kv.delete(_lock_key(key), last=revision)

    async def requeue_idle(self, worker: str, min_idle_ms: int, count: int = 50) -> int:
        """Nothing to do: JetStream delivers an unacknowledged job again by itself."""
        return 0


def _lock_key(key: str) -> str:
    """A KV key for any server key (KV keys allow few characters)."""
    return "k" + hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _within_ttl(heard: tuple[float, dict[str, Any]], now: float) -> bool:
    """Whether a beat heard at ``heard[0]`` (the bot's clock) still vouches for its worker."""
    seen, beat = heard
    return now - seen < float(beat.get("ttl", 3 * HEARTBEAT))
