"""The ingest step a worker runs for one game server: poll from a cursor, parse, return.

A worker keeps one :class:`SourceCache` for its life: a source per game server (one SFTP
connection, reused) and what it learnt of the server's layout. An unchanged poll on a warm
worker costs two SFTP requests: one ``stat`` of the kill folder (a new file changes its mtime)
and one ``stat`` of the current file. The folder is listed again when its mtime moved, once a
minute anyway, and until one listing was taken more than :data:`SETTLE` seconds after its mtime
was first seen: SFTP mtimes are whole seconds, so a file created in the same second as a
listing leaves the folder's mtime unchanged, but cannot be created after that second ended.

The step is stateless about progress: the cursor comes with the job and goes back with the
result; the bot commits it after posting. Running a step twice is therefore harmless.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from ...engine.backends.secrets import SecretBox, SecretKeyError
from ...engine.clock import SYSTEM_CLOCK, Clock
from ..parsers.deadside import FAST_PATH_MIN_BYTES, parse_kills
from ..sources import (
    KILLS,
    Cursor,
    Layout,
    LocalSource,
    SftpSource,
    Source,
    SourceError,
    initial_cursor,
    poll,
)
from .codec import error_to_dict, event_to_dict

RELIST_EVERY = 60.0  # seconds: list the kill folders at least this often
SETTLE = 1.5  # seconds after a folder mtime was first seen before a listing is trusted for it
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


@dataclass
class _Server:
    stamp: str
    source: Source
    layout: Layout | None = None
    dir_mtimes: dict[str, float | None] = field(default_factory=dict)
    mtimes_seen_at: float = 0.0  # when these mtimes were first seen (local monotonic time)
    listed_at: float = 0.0


class SourceCache:
    """The live sources of the game servers routed to this worker, keyed by job key."""

    def __init__(self, box: SecretBox | None, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.box = box
        self.clock = clock
        self._servers: dict[str, _Server] = {}

    def __len__(self) -> int:
        return len(self._servers)

    def server(self, key: str, spec: Mapping[str, Any], token: str | None) -> _Server:
        """The cached source for ``key``, rebuilt only when its settings or secret changed."""
        secret = self._secret(token)  # tokens differ each time (Fernet's IV): hash the secret
        stamp = hashlib.sha256(json.dumps([spec, secret], sort_keys=True).encode()).hexdigest()
        current = self._servers.get(key)
        if current is not None and current.stamp == stamp:
            return current
        if current is not None:
            asyncio.ensure_future(_close(current.source))
        source = build_source(spec, secret)
        self._servers[key] = _Server(stamp, source)
        return self._servers[key]

    def _secret(self, token: str | None) -> dict[str, Any]:
        if token is None:
            return {}
        if self.box is None:
            raise SecretKeyError("This worker has no secret key, so it cannot log in.")
        return self.box.decrypt(token)

    async def close(self) -> None:
        for server in self._servers.values():
            await _close(server.source)
        self._servers.clear()


def build_source(spec: Mapping[str, Any], secret: Mapping[str, Any]) -> Source:
    if spec.get("kind") == "local":
        return LocalSource(str(spec["base_path"]))
    return SftpSource(
        str(spec.get("host") or ""),
        int(spec.get("port") or 22),
        str(spec.get("username") or ""),
        password=secret.get("password"),
        private_key=secret.get("private_key"),
        base_path=str(spec.get("base_path") or "."),
        trusted_fingerprint=spec.get("fingerprint"),
    )


async def ingest_step(job: Mapping[str, Any], cache: SourceCache) -> dict[str, Any]:
    """Run one step of ``job`` (see :func:`make_job`) and return an ``IngestResult`` dict."""
    try:
        server = cache.server(str(job["key"]), job["server"], job.get("secret"))
    except SecretKeyError as exc:
        return {"error": error_to_dict(exc, str(exc))}
    source = server.source
    before = source.round_trips
    try:
        result = await _step(server, job, cache.clock)
    except SourceError as exc:
        return {"error": error_to_dict(exc, source.redact(str(exc)))}
    result["requests"] = source.round_trips - before
    return result


async def _step(server: _Server, job: Mapping[str, Any], clock: Clock) -> dict[str, Any]:
    source = server.source
    layout = await _layout(server, clock)
    stored = job.get("cursor")
    if stored is None:
        start = await initial_cursor(source, layout, KILLS)
        return {"first_run": True, "next_cursor": start.to_dict()}
    cursor = Cursor.from_dict(stored)
    batch = await poll(
        source, cursor, layout, max_bytes=int(job.get("max_bytes") or DEFAULT_MAX_BYTES)
    )
    result: dict[str, Any] = {
        "events": [],
        "next_cursor": batch.next_cursor.to_dict(),
        "more": batch.more,
        "lines": 0,
        "malformed": 0,
        "samples": [],
        "bytes_read": batch.size,
    }
    for chunk in batch.chunks:
        if len(chunk.data) < FAST_PATH_MIN_BYTES:
            parsed = parse_kills(chunk.data, final=True, fast=False)
        else:
            parsed = await asyncio.to_thread(parse_kills, chunk.data, final=True)
        result["events"].extend(event_to_dict(event) for event in parsed.events)
        result["lines"] += parsed.lines
        result["malformed"] += parsed.malformed
        result["samples"].extend(parsed.samples[: 5 - len(result["samples"])])
    return result


async def _layout(server: _Server, clock: Clock) -> Layout:
    """The kill files, re-listed only when the kill folders may have changed (see above)."""
    source, layout = server.source, server.layout
    now = clock.monotonic()
    if layout is not None and layout.kill_dirs and now - server.listed_at < RELIST_EVERY:
        mtimes = await _dir_mtimes(source, layout.kill_dirs)
        if mtimes is not None and mtimes == server.dir_mtimes:
            if server.listed_at >= server.mtimes_seen_at + SETTLE:
                return layout
        elif mtimes is not None:
            server.dir_mtimes, server.mtimes_seen_at = mtimes, now
    fresh = await (source.refresh(layout) if layout is not None else source.discover())
    mtimes = await _dir_mtimes(source, fresh.kill_dirs) or {}
    if mtimes != server.dir_mtimes:
        server.dir_mtimes, server.mtimes_seen_at = mtimes, now
    server.layout, server.listed_at = fresh, now
    return fresh


async def _dir_mtimes(source: Source, dirs: tuple[str, ...]) -> dict[str, float | None] | None:
    try:
        return {d: (await source.stat(d)).mtime for d in dirs}
    except SourceError:
        return None


def make_job(
    key: str,
    server: Mapping[str, Any],
    secret: Mapping[str, Any] | None,
    cursor: Mapping[str, Any] | None,
    box: SecretBox | None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> dict[str, Any]:
    """An ingest job: the server's public settings, its secret as a Fernet token, the cursor.

    Raises :class:`SecretKeyError` if there is a secret and no key: it never travels in clear.
    """
    token = None
    if secret:
        if box is None:
            raise SecretKeyError("No secret key, so a game server's secret cannot be sent.")
        token = box.encrypt(secret)
    return {
        "key": key,
        "server": dict(server),
        "secret": token,
        "cursor": dict(cursor) if cursor is not None else None,
        "max_bytes": max_bytes,
    }


async def _close(source: Source) -> None:
    try:
        await source.close()
    except Exception:  # noqa: BLE001 - a dead connection must not stop the worker
        pass
