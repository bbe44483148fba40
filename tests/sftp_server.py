"""An in-process asyncssh SFTP server for source tests, with fault injection.

Serves ``root`` (chrooted) on 127.0.0.1 with a generated host key, password and public-key
login. Reads answer at most ``max_read`` bytes each (short reads), so a large read takes
several requests. ``fail_read(n)`` makes the n-th SFTP read request from now abort the whole
connection, which is what a game host rebooting mid-download looks like to the client.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import asyncssh

USERNAME = "deadside"
PASSWORD = "hunter2-correct-horse"


def new_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


class _Login(asyncssh.SSHServer):
    def __init__(self, server: SftpServer) -> None:
        self._server = server

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._server.connections.append(conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        self._server.auth_attempts += 1
        return username == self._server.username and password == self._server.password

    def public_key_auth_supported(self) -> bool:
        return self._server.client_key is not None

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        self._server.auth_attempts += 1
        allowed = self._server.client_key
        return (
            username == self._server.username
            and allowed is not None
            and key.public_data == allowed.public_data
        )


COUNTED = ("stat", "lstat", "fstat", "open", "close", "read", "scandir", "realpath")


def _counting(counter: Counter, name: str, method: Any) -> Any:
    def counted(*args: Any, **kwargs: Any) -> Any:
        counter[name] += 1
        return method(*args, **kwargs)

    return counted


class _FaultySFTP(asyncssh.SFTPServer):
    def __init__(self, chan: asyncssh.SSHServerChannel, server: SftpServer) -> None:
        super().__init__(chan, chroot=str(server.root).encode())
        self._server = server
        for name in COUNTED:  # every request of these kinds, counted on the server side
            setattr(self, name, _counting(server.requests, name, getattr(self, name)))

    def read(self, file_obj: object, offset: int, size: int) -> Any:
        server = self._server
        server.reads += 1
        if server.abort_at is not None and server.reads >= server.abort_at:
            server.abort_at = None
            server.aborted.set()
            self.channel.get_connection().abort()
            raise asyncssh.SFTPFailure("connection aborted by the test")
        if server.max_read is not None:
            size = min(size, server.max_read)  # short reads, as some servers do
        read = super().read
        hold = server.hold
        if hold is not None and not hold.is_set():  # a slow game host, until the test says
            server.held += 1

            async def later() -> Any:
                await hold.wait()
                return read(file_obj, offset, size)

            return later()
        return read(file_obj, offset, size)


class SftpServer:
    """Start with ``await SftpServer(root).start()``; ``stop()`` when done."""

    def __init__(
        self,
        root: Path,
        *,
        username: str = USERNAME,
        password: str = PASSWORD,
        client_key: asyncssh.SSHKey | None = None,
        max_read: int | None = 32 * 1024,
    ) -> None:
        self.root = root
        self.username = username
        self.password = password
        self.client_key = client_key
        self.max_read = max_read
        self.host_key = new_key()
        self.port = 0
        self.reads = 0
        self.requests: Counter[str] = Counter()  # SFTP requests served, by kind
        self.auth_attempts = 0
        self.abort_at: int | None = None
        self.aborted = asyncio.Event()
        self.hold: asyncio.Event | None = None  # reads wait for this event while it is unset
        self.held = 0  # reads that waited for ``hold``
        self.connections: list[asyncssh.SSHServerConnection] = []
        self._acceptor: asyncssh.SSHAcceptor | None = None

    @property
    def fingerprint(self) -> str:
        return self.host_key.get_fingerprint("sha256")

    @property
    def logins(self) -> int:
        return len(self.connections)

    def fail_read(self, nth: int) -> None:
        """Abort the connection on the ``nth`` SFTP read request from now."""
        self.abort_at = self.reads + nth
        self.aborted.clear()

    async def start(self) -> SftpServer:
        self._acceptor = await asyncssh.listen(
            "127.0.0.1",
            self.port,
            server_host_keys=[self.host_key],
            server_factory=lambda: _Login(self),
            sftp_factory=lambda chan: _FaultySFTP(chan, self),
            allow_scp=False,
        )
        self.port = self._acceptor.get_port()
        return self

    async def stop(self) -> None:
        if self._acceptor is not None:
            self._acceptor.close()
            await self._acceptor.wait_closed()
            self._acceptor = None
        for conn in self.connections:
            conn.close()
        for conn in self.connections:
            await conn.wait_closed()

    async def restart(self, *, new_host_key: bool = False) -> None:
        """Stop and listen again on the same port, optionally with a new host key."""
        await self.stop()
        if new_host_key:
            self.host_key = new_key()
        await self.start()


async def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


def sftp_spec(server: SftpServer) -> dict[str, object]:
    """A game server's public settings (what a worker job carries) for ``server``."""
    return {
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.username,
        "base_path": ".",
        "fingerprint": server.fingerprint,
    }
