"""What every broker shares: secret-free URLs, worker ids, routing, and the result format."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from taskiq.abc.serializer import TaskiqSerializer
from taskiq.result import TaskiqResult
from taskiq.serializers import JSONSerializer

REDELIVER = 120.0  # s before a job a dead worker left unacknowledged is taken by another
HEARTBEAT = 2.0  # seconds between beats; a worker is gone after three missed beats


def safe_url(url: str) -> str:
    """``url`` without its password (or NATS token), for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None and not (parts.username and parts.scheme in ("nats", "tls")):
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.password is None:  # nats://TOKEN@host: the user part is the secret
        user = "***@"
    else:
        user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, "", ""))


def result_serializer() -> TaskiqSerializer:
    """JSON for results, never pickle; orjson's when installed (Red depends on it), which
    reads and writes an import slice's ~1 MB of columns several times faster than ``json``.
    Both write plain JSON, so a bot and a worker may differ."""
    try:
        from taskiq.serializers import ORJSONSerializer

        return ORJSONSerializer()
    except ImportError:
        return JSONSerializer()


# A result whose value holds bytes (an import slice's Arrow columns) is stored as this magic, the
# JSON's length, the JSON, then the bytes themselves: not as base64 inside the JSON, which
# costs a third more bytes on the broker and, in the bot, a decode of ~5 ms per 1 MB slice.
_BLOBS = b"\x00tcr1"
_BLOB_KEYS = "_blobs"


def dump_result(serializer: TaskiqSerializer, result: TaskiqResult[Any]) -> bytes:
    """``result`` as bytes for a result backend; the top-level ``bytes`` values of a dict
    return value travel raw after the JSON (see :func:`load_result`)."""
    value = result.return_value
    blobs: list[tuple[str, bytes]] = []
    if isinstance(value, dict):
        blobs = [(k, bytes(v)) for k, v in value.items() if isinstance(v, (bytes, bytearray))]
    if not blobs:
        return serializer.dumpb(result.model_dump(mode="json"))
    rest = {k: v for k, v in value.items() if not isinstance(v, (bytes, bytearray))}
    rest[_BLOB_KEYS] = [[k, len(v)] for k, v in blobs]
    head = serializer.dumpb(
        result.model_copy(update={"return_value": rest}).model_dump(mode="json")
    )
    return b"".join([_BLOBS, len(head).to_bytes(4, "big"), head, *(v for _k, v in blobs)])


def load_result(serializer: TaskiqSerializer, data: bytes) -> TaskiqResult[Any]:
    """What :func:`dump_result` wrote (or any plain JSON result) as a ``TaskiqResult``."""
    if not data.startswith(_BLOBS):
        return TaskiqResult.model_validate(serializer.loadb(data))
    at = len(_BLOBS) + 4
    end = at + int.from_bytes(data[len(_BLOBS) : at], "big")
    body = serializer.loadb(data[at:end])
    value = body["return_value"]
    view = memoryview(data)
    for key, size in value.pop(_BLOB_KEYS):
        value[key] = bytes(view[end : end + size])
        end += size
    if end != len(data):
        raise ValueError(f"a result of {len(data)} bytes ends at {end}")
    return TaskiqResult.model_validate(body)


def new_worker_id() -> str:
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def pick(key: str, workers: list[str]) -> str | None:
    """Rendezvous hashing: the worker with the highest hash of (key, worker)."""
    if not workers:
        return None
    return max(workers, key=lambda w: hashlib.blake2b(f"{key}\0{w}".encode()).digest())
