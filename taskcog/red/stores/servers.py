"""Game servers as log sources: their settings, their secrets, and one live Source each.

Secrets (SFTP passwords, private keys) live in their own Config group, are only ever collected
in a DM, and are never shown, echoed or logged. A server's Source is built once and reused (one
SFTP connection per server) until its settings change or the cog unloads. A refused login is
remembered with the server (``login_failed``) until a new secret is saved, so the killfeed
does not knock on the game host's door with the same wrong password every tick.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from typing import Any, Mapping

from redbot.core import Config

from ...pipeline.sources import LocalSource, SftpSource, Source
from ...pipeline.sources.shared import ServerPoller

log = logging.getLogger("red.taskcog.servers")

_ADDRESS = ("kind", "base_path", "host", "port", "username")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
DEFAULT_MAX_SERVERS = 5


class ServerError(ValueError):
    """A server command that cannot be done; the message is one line for the user."""


@dataclass(frozen=True)
class ServerInfo:
    """A game server's public settings (no secrets)."""

    name: str
    kind: str  # "sftp" | "local"
    base_path: str
    host: str | None = None
    port: int = 22
    username: str | None = None
    auth: str | None = None  # "password" | "key" | None (not supplied yet)
    fingerprint: str | None = None  # trusted SHA256 host-key fingerprint
    seen_fingerprint: str | None = None  # the last one a connection reported
    login_failed: str | None = None  # "refused" | "key" (unreadable) until a new secret is saved

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> ServerInfo:
        fields = {k: data.get(k) for k in cls.__dataclass_fields__ if k != "name" and k in data}
        return cls(name=name, **fields)

    def to_dict(self) -> dict[str, Any]:
        data = dict(self.__dict__)
        data.pop("name")
        return data

    def where(self) -> str:
        if self.kind == "local":
            return f"local folder {self.base_path}"
        return f"sftp://{self.username}@{self.host}:{self.port}{_slash(self.base_path)}"

    def host_key_state(self, prefix: str) -> str:
        """The host key's state for ``server list``; ``prefix`` is the invoking command's."""
        if self.kind == "local":
            return "not needed (local folder)"
        if self.fingerprint is None:
            if self.seen_fingerprint:
                return f"not trusted yet (the game server shows {self.seen_fingerprint})"
            return f"unknown (run `{prefix}taskset server test {self.name}` first)"
        if self.seen_fingerprint and self.seen_fingerprint != self.fingerprint:
            return (
                f"CHANGED: trusted {self.fingerprint}, "
                f"the game server now shows {self.seen_fingerprint}"
            )
        return f"trusted ({self.fingerprint})"


def _slash(path: str) -> str:
    return path if path.startswith("/") else "/" + path


def check_name(name: str) -> str:
    name = name.lower().strip()
    if not NAME.match(name):
        raise ServerError(
            f"Bad game server name '{name}': use 1-24 lowercase letters, digits, '-' or '_'."
        )
    return name


def parse_address(address: str) -> tuple[str, int]:
    """``host`` or ``host:port`` (IPv6 as ``[::1]:2022``) -> (host, port)."""
    match = re.fullmatch(
        r"\[([0-9a-fA-F:.]+)\](?::(\d+))?|([^:\s\[\]]+)(?::(\d+))?", address.strip()
    )
    if not match:
        raise ServerError(f"Bad address '{address}': use host or host:port.")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4) or 22)
    if not 1 <= port <= 65535:
        raise ServerError(f"Bad port {port}: use 1-65535.")
    return host, port


def classify_secret(text: str) -> tuple[str, dict[str, str]]:
    """A DM reply -> ("key", {...}) for a PEM/OpenSSH private key, else ("password", {...})."""
    stripped = text.strip().strip("`").strip()
    if stripped.startswith("-----BEGIN") and "PRIVATE KEY" in stripped:
        return "key", {"private_key": stripped + "\n"}
    if not stripped or "\n" in stripped:
        raise ServerError("That does not look like a password or a private key.")
    return "password", {"password": stripped}


class ServerStore:
    """Per-guild server settings and secrets in Red Config, plus the live Sources."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._sources: dict[tuple[int, str], tuple[str, Source]] = {}
        self._pollers: dict[tuple[int, str], ServerPoller] = {}
        self.shared_pass = True  # the killfeed and server-log feed share one pass per tick

    async def list(self, guild_id: int) -> list[ServerInfo]:
        servers = await self.config.guild_from_id(guild_id).servers()
        return [ServerInfo.from_dict(name, data) for name, data in sorted(servers.items())]

    async def get(self, guild_id: int, name: str) -> ServerInfo:
        name = check_name(name)
        servers = await self.config.guild_from_id(guild_id).servers()
        if name not in servers:
            known = ", ".join(sorted(servers)) or "none"
            raise ServerError(f"Unknown game server '{name}'. Game servers here: {known}.")
        return ServerInfo.from_dict(name, servers[name])

    async def add(self, guild_id: int, info: ServerInfo, limit: int) -> None:
        async with self.config.guild_from_id(guild_id).servers() as servers:
            if info.name in servers:
                raise ServerError(
                    f"A game server named '{info.name}' already exists; remove it first."
                )
            if len(servers) >= limit:
                many = "1 game server" if limit == 1 else f"{limit} game servers"
                raise ServerError(f"This server already has {many} (the limit).")
            servers[info.name] = info.to_dict()

    async def discard(self, guild_id: int, info: ServerInfo) -> bool:
        """Undo an ``add`` whose secret never came: remove the server if it is still the one
        added (same address, no secret saved meanwhile). Returns whether it was removed."""
        async with self.config.guild_from_id(guild_id).servers() as servers:
            stored = servers.get(info.name)
            if stored is None or stored.get("auth") is not None:
                return False
            if any(stored.get(k) != v for k, v in info.to_dict().items() if k in _ADDRESS):
                return False
            servers.pop(info.name)
        async with self.config.guild_from_id(guild_id).secrets() as secrets:
            secrets.pop(info.name, None)
        await self.drop_source(guild_id, info.name)
        return True

    async def update(self, guild_id: int, name: str, **changes: Any) -> ServerInfo:
        async with self.config.guild_from_id(guild_id).servers() as servers:
            if name not in servers:
                raise ServerError(f"Unknown game server '{name}'.")
            servers[name].update(changes)
            info = ServerInfo.from_dict(name, servers[name])
        return info

    async def remove(self, guild_id: int, name: str) -> None:
        await self.get(guild_id, name)
        async with self.config.guild_from_id(guild_id).servers() as servers:
            servers.pop(name, None)
        async with self.config.guild_from_id(guild_id).secrets() as secrets:
            secrets.pop(name, None)
        await self.drop_source(guild_id, name)

    async def set_secret(
        self, guild_id: int, name: str, kind: str, secret: dict[str, str]
    ) -> None:
        async with self.config.guild_from_id(guild_id).secrets() as secrets:
            secrets[name] = dict(secret)
        await self.update(guild_id, name, auth=kind, login_failed=None)
        await self.drop_source(guild_id, name)

    async def note_login_failed(self, guild_id: int, name: str, source: Source, why: str) -> bool:
        """Remember that ``source`` could not log in (``why``: "refused" or "key"), unless a
        new secret (or setting) replaced it meanwhile. Returns whether it was remembered."""
        current = self._sources.get((guild_id, name))
        if current is None or current[1] is not source:
            return False
        try:
            info = await self.get(guild_id, name)
        except ServerError:  # removed meanwhile
            return False
        if (await self._stamp(guild_id, info))[0] != current[0]:
            return False
        await self.update(guild_id, name, login_failed=why)
        return True

    async def _stamp(self, guild_id: int, info: ServerInfo) -> tuple[str, dict[str, str]]:
        """A digest of what a server's Source is built from, and its secret."""
        secrets = (await self.config.guild_from_id(guild_id).secrets()).get(info.name, {})
        settings = {k: v for k, v in info.to_dict().items() if k != "login_failed"}
        stamp = hashlib.sha256(
            json.dumps([settings, secrets], sort_keys=True, default=str).encode()
        ).hexdigest()
        return stamp, secrets

    async def source(self, guild_id: int, info: ServerInfo) -> Source:
        """The live Source for a server, rebuilt only when its settings or secret changed."""
        stamp, secrets = await self._stamp(guild_id, info)
        current = self._sources.get((guild_id, info.name))
        if current is not None and current[0] == stamp:
            return current[1]
        if current is not None:
            await _close_quietly(current[1])
        if info.kind == "local":
            source: Source = LocalSource(info.base_path)
        else:
            source = SftpSource(
                info.host or "",
                info.port,
                info.username or "",
                password=secrets.get("password"),
                private_key=secrets.get("private_key"),
                base_path=info.base_path,
                trusted_fingerprint=info.fingerprint,
            )
        self._sources[(guild_id, info.name)] = (stamp, source)
        return source

    async def poller(self, guild_id: int, info: ServerInfo) -> ServerPoller:
        """The server's shared pass (see ``pipeline/sources/shared.py``), on its live Source."""
        source = await self.source(guild_id, info)
        current = self._pollers.get((guild_id, info.name))
        if current is None or current.source is not source:
            current = ServerPoller(source, shared=self.shared_pass)
            self._pollers[(guild_id, info.name)] = current
        return current

    def pollers(self, guild_id: int) -> dict[str, ServerPoller]:
        return {name: p for (gid, name), p in self._pollers.items() if gid == guild_id}

    async def drop_source(self, guild_id: int, name: str) -> None:
        self._pollers.pop((guild_id, name), None)
        current = self._sources.pop((guild_id, name), None)
        if current is not None:
            await _close_quietly(current[1])

    async def close_all(self) -> None:
        for _stamp, source in list(self._sources.values()):
            await _close_quietly(source)
        self._sources.clear()
        self._pollers.clear()


async def _close_quietly(source: Source) -> None:
    try:
        await source.close()
    except Exception:  # closing a dead connection must not stop an unload
        log.debug("closing a source failed", exc_info=True)
