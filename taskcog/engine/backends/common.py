"""What every broker shares: secret-free URLs, worker ids, routing, and the result format."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid
from urllib.parse import urlsplit, urlunsplit

from taskiq.abc.serializer import TaskiqSerializer
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


def new_worker_id() -> str:
    return f"{socket.gethostname()[:24]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def pick(key: str, workers: list[str]) -> str | None:
    """Rendezvous hashing: the worker with the highest hash of (key, worker)."""
    if not workers:
        return None
    return max(workers, key=lambda w: hashlib.blake2b(f"{key}\0{w}".encode()).digest())
