"""Where results wait on NATS: one message each, or the object store when too large.

A result (JSON, never pickle) that fits a NATS message is one message on
``<prefix>.r.<task id>`` in the stream ``<prefix>_res``, kept in memory (results live for
seconds; a server restart loses only results nobody will read, and their jobs are sent again).
A larger one (an import slice's columns can pass 1 MB) goes to the object store
``<prefix>_results``, in chunks. Both expire after :data:`RESULTS_TTL` s; the bot deletes each
result once read. Measured on one machine: a message costs 1.6 ms to put, read and delete, an
object 7 ms (see ``docs/benchmarks.md``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType, StreamConfig
from nats.js.errors import (
    BadRequestError,
    BucketNotFoundError,
    NotFoundError,
    ObjectNotFoundError,
)
from nats.js.object_store import ObjectStore
from taskiq import AsyncResultBackend
from taskiq.exceptions import ResultGetError
from taskiq.result import TaskiqResult

from .common import result_serializer
from .jetstream_conn import Names, connect, ready

RESULTS_TTL = 600.0  # s a result nobody read is kept (the bot reads each within seconds)
SMALL_BYTES = 256 * 2**20  # memory the small-result stream may hold (oldest dropped first)
HEADROOM = 4096  # bytes of a message kept for its headers


async def ensure_results(js: JetStreamContext, names: Names) -> ObjectStore:
    """The small-result stream and the object store (declaring them again changes nothing)."""
    config = StreamConfig(
        name=names.small,
        subjects=[f"{names.prefix}.r.>"],
        storage=StorageType.MEMORY,
        max_age=RESULTS_TTL,
        max_bytes=SMALL_BYTES,
        allow_direct=True,
    )
    try:
        await js.add_stream(config)
    except BadRequestError as exc:
        if exc.err_code != 10058:  # exists with another configuration: use it as it is
            raise
    try:
        return await js.object_store(names.results)
    except BucketNotFoundError:
        return await js.create_object_store(names.results, ObjectStoreConfig(ttl=RESULTS_TTL))


class JetStreamResults(AsyncResultBackend[Any]):
    """Results as JSON, small ones as one message, large ones in the object store."""

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

    async def _open(self) -> tuple[JetStreamContext, ObjectStore, int]:
        client = await ready(self.client)
        if self.store is None:
            raise ConnectionError("the result store is not open")
        return client.jetstream(), self.store, client.max_payload

    async def set_result(self, task_id: str, result: TaskiqResult[Any]) -> None:
        js, store, limit = await self._open()
        data = self.serializer.dumpb(result.model_dump(mode="json"))
        if len(data) <= limit - HEADROOM:
            await js.publish(self.names.result(task_id), data, timeout=5)
        else:
            await store.put(task_id, data)

    async def _small(self, js: JetStreamContext, task_id: str) -> Any:
        try:
            return await js.get_last_msg(self.names.small, self.names.result(task_id), direct=True)
        except NotFoundError:
            return None

    async def is_result_ready(self, task_id: str) -> bool:
        js, store, _ = await self._open()
        if await self._small(js, task_id) is not None:
            return True
        try:
            await store.get_info(task_id)
        except ObjectNotFoundError:
            return False
        return True

    async def get_result(self, task_id: str, with_logs: bool = False) -> TaskiqResult[Any]:
        js, store, _ = await self._open()
        message = await self._small(js, task_id)
        if message is not None:
            data = message.data or b""
            with contextlib.suppress(Exception):  # it expires anyway
                await js.delete_msg(self.names.small, message.seq)
        else:
            try:
                found = await store.get(task_id)
            except ObjectNotFoundError as exc:
                raise ResultGetError from exc
            data = found.data or b""
            with contextlib.suppress(Exception):
                await store.delete(task_id)
        result: TaskiqResult[Any] = TaskiqResult.model_validate(self.serializer.loadb(data))
        if not with_logs:
            result.log = None
        return result
