"""Which broker a URL names, and the bot's and a worker's pieces for it.

``redis://`` and ``rediss://`` are Redis Streams (:mod:`.redis`); ``nats://`` and ``tls://``
are NATS JetStream (:mod:`.jetstream`). Both give the same broker and directory interface, so
nothing above this module knows which one runs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from taskiq import AsyncBroker

from .common import REDELIVER, safe_url

SCHEMES = {"redis": "redis", "rediss": "redis", "nats": "nats", "tls": "nats"}
USAGE = "The broker URL must look like redis://[:password@]host:6379/0 or nats://host:4222."


def kind_of(url: str) -> str:
    """``"redis"`` or ``"nats"`` for a URL :func:`check_url` accepted."""
    return SCHEMES[urlsplit(url).scheme]


def check_url(url: str) -> str:
    """A broker URL, or a one-line error (never echoing the URL: it may hold a password)."""
    url = url.strip().strip("<>`").strip()
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname:
        raise ValueError(USAGE)
    try:
        _ = parts.port
    except ValueError:
        raise ValueError("The broker URL has a bad port.") from None
    if kind_of(url) == "nats" and parts.path not in ("", "/"):
        raise ValueError("A NATS URL has no path: nats://[user:password@]host:4222.")
    return url


def check_prefix(url: str, prefix: str) -> str:
    """NATS names allow only letters, digits, ``-`` and ``_``; Redis keys allow anything."""
    if kind_of(url) == "nats":
        from .jetstream_conn import Names

        Names(prefix)  # raises ValueError
    return prefix


def make_broker(
    url: str, prefix: str, *, worker: str | None = None, redeliver: float = REDELIVER
) -> AsyncBroker:
    """The broker for the bot (``worker=None``: it only sends) or for one worker."""
    if kind_of(url) == "nats":
        from .jetstream import JetStreamBroker

        return JetStreamBroker(url, prefix, worker=worker, redeliver=redeliver)
    from . import redis

    return redis.make_broker(url, prefix, worker=worker, redeliver_ms=int(redeliver * 1000))


def make_directory(url: str, prefix: str, *, cache: float = 1.0) -> Any:
    """The worker directory (a :class:`~.taskiq.WorkerDirectory`) on the same broker.
    ``cache`` is Redis's (how long a list of live workers is reused); on NATS liveness is what
    the subscription heard, always current."""
    if kind_of(url) == "nats":
        from .jetstream_directory import Directory as NatsDirectory

        return NatsDirectory(url, prefix)
    from .redis import Directory as RedisDirectory

    return RedisDirectory(url, prefix, cache=cache)


class BrokerUnfit(Exception):
    """The broker answered but cannot serve taskcog; ``str()`` is one secret-free line."""


async def ping(url: str) -> None:
    """Connect once. Raises :class:`BrokerUnfit` (a line to show) when the server answers but
    cannot serve (NATS without JetStream), else what the client raised (the caller words it,
    never with the URL)."""
    if kind_of(url) == "nats":
        import nats
        from nats.errors import NoRespondersError
        from nats.js.errors import ServiceUnavailableError

        from .jetstream_conn import quiet

        # One attempt, no reconnecting: a wrong password fails at once instead of retrying.
        client = await nats.connect(
            url, allow_reconnect=False, connect_timeout=3, error_cb=quiet, name="taskcog"
        )
        try:
            await client.flush(timeout=3)
            try:
                await client.jetstream().account_info()
            except (ServiceUnavailableError, NoRespondersError):
                raise BrokerUnfit(
                    "That NATS server has JetStream off: start it with `-js`."
                ) from None
        finally:
            await client.close()
        return
    from redis.asyncio import Redis

    redis_client = Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await redis_client.ping()
    finally:
        await redis_client.aclose()


__all__ = ["BrokerUnfit", "check_prefix", "check_url", "kind_of", "make_broker"]
__all__ += ["make_directory", "ping", "safe_url"]
