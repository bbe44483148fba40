"""Redis for the ``taskiq`` backend: the brokers, the worker directory and per-server locks.

Keys, all under one prefix (so tests and several bots can share a Redis):

- ``<prefix>:q`` the shared stream (import slices; any worker), ``<prefix>:q:<worker>`` one
  stream per worker (ingest steps routed to it), one consumer group ``<prefix>:g``;
- ``<prefix>:workers`` the set of worker ids, ``<prefix>:hb:<worker>`` each worker's heartbeat
  (JSON, expires after three missed beats, so a SIGKILLed worker drops out by itself);
- ``<prefix>:lock:<key>`` held by the worker running a game server's step (SET NX PX, renewed
  while it runs, released only by its holder), so one server never runs on two workers;
- results under ``<prefix>`` through taskiq-redis' result backend, serialised as JSON (never
  pickle: whoever can write to Redis must not be able to run code in the bot).

Routing: an ingest step goes to the live worker that rendezvous-hashing picks for its key, so a
server stays on one worker (its SFTP connection stays warm) and moves only when that worker
dies or joins; the lock covers the moment of moving.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import os
import socket
import time
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq.result import TaskiqResult
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker
from taskiq_redis.exceptions import ResultIsMissingError

from .base import WorkerInfo
from .common import (  # noqa: F401 - re-exported: where they lived first
    HEARTBEAT,
    REDELIVER,
    dump_result,
    load_result,
    new_worker_id,
    pick,
    result_serializer,
    safe_url,
)

try:  # redis-py >= 6: without one, every new connection reads the package metadata again
    from redis.driver_info import DriverInfo
    from redis.utils import get_lib_version
except ImportError:  # pragma: no cover - older redis-py
    DriverInfo = None  # type: ignore[assignment,misc]

DEFAULT_PREFIX = "taskcog"
# An unacknowledged job (its worker died) is claimed by another worker after this long, so it
# must exceed the longest import slice: a slice still running would otherwise run twice.
REDELIVER_MS = int(REDELIVER * 1000)
ALIVE_CACHE = 0.5  # seconds a seen heartbeat answers "alive" without asking Redis again
_RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end "
    "return 0"
)
_RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


@functools.cache
def _driver() -> dict[str, Any]:
    """One ``DriverInfo`` for every connection. redis-py otherwise builds one per connection,
    reading its own version from the installed packages' metadata each time: a few ms of CPU
    per connection, which a bot opening pools under load (an import's slices) paid hundreds of
    times."""
    if DriverInfo is None:
        return {}
    return {"driver_info": DriverInfo(name="redis-py", lib_version=get_lib_version())}


def _connection(**extra: Any) -> dict[str, Any]:
    """Connection options: short timeouts, and one retry on a fresh connection, so a pooled
    connection from before a broker restart costs nothing once the broker is back."""
    return {
        "socket_connect_timeout": 3,
        "socket_timeout": 10,
        "health_check_interval": 5,
        "retry": Retry(NoBackoff(), 1),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        **_driver(),
        **extra,
    }


class Keys:
    """The key names under one prefix."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self.shared = f"{prefix}:q"
        self.group = f"{prefix}:g"
        self.workers = f"{prefix}:workers"
        self.done = f"{prefix}:done"  # pub/sub: ids of jobs whose result was just saved

    def queue(self, worker: str) -> str:
        return f"{self.prefix}:q:{worker}"

    def heartbeat(self, worker: str) -> str:
        return f"{self.prefix}:hb:{worker}"

    def lock(self, key: str) -> str:
        return f"{self.prefix}:lock:{key}"


class _Results(RedisAsyncResultBackend[Any]):
    """taskiq-redis's result backend, asking whether a result is ready through one client: its
    own builds a client for every call, and a bot asks for each slice in flight (about half of
    each poll's CPU in a profile of an import through workers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client = Redis(connection_pool=self.redis_pool)

    async def is_result_ready(self, task_id: str) -> bool:
        return bool(await self._client.exists(self._task_name(task_id)))

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        """As taskiq-redis's, with bytes in the value stored raw (``common.dump_result``)."""
        value = dump_result(self.serializer, result)
        await self._client.set(self._task_name(task_id), value, ex=self.result_ex_time)

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        name = self._task_name(task_id)
        client = self._client
        data = await (client.get(name) if self.keep_results else client.getdel(name))
        if data is None:
            raise ResultIsMissingError
        result = load_result(self.serializer, data)
        if not with_logs:
            result.log = None
        return result


def make_broker(
    url: str,
    prefix: str = DEFAULT_PREFIX,
    *,
    worker: str | None = None,
    redeliver_ms: int = REDELIVER_MS,
) -> RedisStreamBroker:
    """The broker for the bot (``worker=None``: it only sends) or for one worker."""
    keys = Keys(prefix)
    extra = {keys.queue(worker): ">"} if worker else {}
    broker = RedisStreamBroker(
        url,
        queue_name=keys.shared,
        consumer_group_name=keys.group,
        consumer_name=worker,
        consumer_id="0",
        xread_block=1000,
        idle_timeout=redeliver_ms,
        unacknowledged_lock_timeout=5,
        additional_streams=extra,
        xread_count=1,  # take one job at a time: a batch would sit claimed by a busy worker
        maxlen=100_000,
        **_connection(),
    )
    backend = _Results(
        url,
        keep_results=False,
        result_ex_time=3600,
        serializer=result_serializer(),
        prefix_str=prefix,
        **_connection(),
    )
    return broker.with_result_backend(backend)


class Directory:
    """The bot's view of the workers (and each worker's own heartbeat and locks)."""

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX, *, cache: float = 1.0) -> None:
        self.keys = Keys(prefix)
        self.redis: Redis = Redis.from_url(url, **_connection())
        self._cache = cache
        self._live: tuple[float, list[str]] | None = None
        self._waiting: dict[str, asyncio.Future[None]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._beats: dict[str, float] = {}  # worker -> when its heartbeat was last seen
        self.listening = False  # subscribed to result announcements (polling is the fallback)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
            self._listener = None
        await self.redis.aclose()

    # -- result notifications (the bot waits on them; polling stays as the fallback) --------

    def expect(self, task_id: str) -> asyncio.Future[None]:
        """A future set when a worker announces ``task_id``'s result; :meth:`forget` it."""
        if self._listener is None or self._listener.done():
            # A fresh context: the listener outlives the job that started it, and a framework
            # following that job's context (Red's, a test harness's) must not wait for it.
            self._listener = contextvars.Context().run(asyncio.ensure_future, self._listen())
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting[task_id] = future
        return future

    def forget(self, task_id: str) -> None:
        self._waiting.pop(task_id, None)

    async def _listen(self) -> None:
        delay = 0.5
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.keys.done)
                    self.listening = True
                    delay = 0.5
                    async for message in pubsub.listen():
                        future = self._waiting.get(_text(message.get("data")))
                        if future is not None and not future.done():
                            future.set_result(None)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the broker went away: polling covers the gap
                self.listening = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def announce(self, task_id: str) -> None:
        """A worker's side: ``task_id``'s result is saved."""
        await self.redis.publish(self.keys.done, task_id)

    # -- the bot's side --------------------------------------------------------------------

    async def live(self, *, fresh: bool = False) -> list[str]:
        """Ids of the workers whose heartbeat has not expired (cached for ``cache`` s, unless
        there were none: a worker that just started is seen at once)."""
        now = time.monotonic()
        if not fresh and self._live and self._live[1] and now - self._live[0] < self._cache:
            return self._live[1]
        ids = sorted(m.decode() for m in await self.redis.smembers(self.keys.workers))
        alive = await self.redis.mget([self.keys.heartbeat(w) for w in ids]) if ids else []
        dead = [w for w, beat in zip(ids, alive, strict=True) if beat is None]
        if dead:  # forget them and their queues: their jobs are sent again by the bot
            await self.redis.srem(self.keys.workers, *dead)
            await self.redis.delete(*[self.keys.queue(w) for w in dead])
        live = [w for w, beat in zip(ids, alive, strict=True) if beat is not None]
        self._live = (now, live)
        return live

    def queue_of(self, worker: str) -> str:
        return self.keys.queue(worker)

    async def route(self, key: str, *, fresh: bool = False) -> str | None:
        return pick(key, await self.live(fresh=fresh))

    async def alive(self, worker: str) -> bool:
        """Whether ``worker`` still beats; a beat seen in the last half second answers for
        every job in flight to that worker (an import keeps dozens waiting on one)."""
        now = time.monotonic()
        seen = self._beats.get(worker)
        if seen is not None and now - seen < ALIVE_CACHE:
            return True
        if await self.redis.exists(self.keys.heartbeat(worker)):
            self._beats[worker] = now
            return True
        self._beats.pop(worker, None)
        return False

    async def workers(self) -> tuple[list[WorkerInfo], int]:
        """Every live worker's last heartbeat, and the jobs waiting in the shared queue."""
        infos: list[WorkerInfo] = []
        for worker in await self.live(fresh=True):
            key = self.keys.heartbeat(worker)
            raw, pttl = await self.redis.get(key), await self.redis.pttl(key)
            if raw is None:
                continue
            beat = json.loads(raw)
            age = max(0.0, beat.get("ttl", 0) - max(pttl, 0) / 1000)
            infos.append(
                WorkerInfo(
                    id=worker,
                    host=str(beat.get("host", "?")),
                    pid=int(beat.get("pid", 0)),
                    age=age,
                    in_flight=int(beat.get("in_flight", 0)),
                    done=int(beat.get("done", 0)),
                    failed=int(beat.get("failed", 0)),
                    queued=await self._lag(self.keys.queue(worker)),
                    servers=int(beat.get("servers", 0)),
                )
            )
        return infos, await self._lag(self.keys.shared)

    async def _lag(self, stream: str) -> int:
        """Entries of ``stream`` not yet read by the group (or the whole stream if unknown)."""
        try:
            groups = await self.redis.xinfo_groups(stream)
        except Exception:  # noqa: BLE001 - no stream yet: nothing waits
            return 0
        for group in groups:
            if _text(group.get("name")) == self.keys.group:
                lag = group.get("lag")
                return int(lag) if lag is not None else int(await self.redis.xlen(stream))
        return 0

    # -- a worker's side -------------------------------------------------------------------

    def answer_asks(self, beat_now: Any) -> None:
        """Nothing to answer: a bot reads the heartbeats from Redis whenever it needs them."""

    def lock_ttl(self, wanted: float) -> float:
        return wanted

    async def beat(self, worker: str, state: dict[str, Any], interval: float = HEARTBEAT) -> None:
        ttl = interval * 3
        beat = json.dumps({**state, "host": socket.gethostname(), "pid": os.getpid(), "ttl": ttl})
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.heartbeat(worker), beat, px=int(ttl * 1000))
            pipe.sadd(self.keys.workers, worker)
            await pipe.execute()

    async def leave(self, worker: str) -> None:
        await self.redis.delete(self.keys.heartbeat(worker))
        await self.redis.srem(self.keys.workers, worker)
        await self.redis.delete(self.keys.queue(worker))

    async def acquire(self, key: str, token: str, ttl: float, wait: float) -> bool:
        """Take ``key``'s lock for ``ttl`` s, waiting up to ``wait`` s for its holder."""
        deadline = time.monotonic() + wait
        delay = 0.01
        while True:
            if await self.redis.set(self.keys.lock(key), token, nx=True, px=int(ttl * 1000)):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def renew(self, key: str, token: str, ttl: float) -> bool:
        return bool(await self.redis.eval(_RENEW, 1, self.keys.lock(key), token, int(ttl * 1000)))

    async def requeue_idle(self, worker: str, min_idle_ms: int, count: int = 50) -> int:
        """Put shared-queue jobs unacknowledged for ``min_idle_ms`` back as new messages.

        taskiq-redis reclaims pending messages only after a read that returned new work, so on
        a quiet queue a dead worker's job would wait for the next job. XAUTOCLAIM is atomic
        (one worker wins each entry); the entry is added again and the old one acknowledged,
        so any worker takes it from the queue as usual. Returns how many were requeued.
        """
        stream, group = self.keys.shared, self.keys.group
        try:
            claimed = await self.redis.xautoclaim(
                stream, group, worker, min_idle_time=min_idle_ms, count=count
            )
        except Exception:  # noqa: BLE001 - no stream or group yet: nothing is pending
            return 0
        moved = 0
        for entry_id, fields in claimed[1]:
            if not fields:  # trimmed meanwhile: only acknowledge
                await self.redis.xack(stream, group, entry_id)
                continue
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xadd(stream, fields)
                pipe.xack(stream, group, entry_id)
                await pipe.execute()
            moved += 1
        return moved

    async def release(self, key: str, token: str) -> None:
        await self.redis.eval(_RELEASE, 1, self.keys.lock(key), token)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
