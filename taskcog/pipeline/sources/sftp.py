"""A game server's logs over SFTP, on one reused asyncssh connection per source.

Host keys are pinned by SHA256 fingerprint and checked during key exchange, before any
password or key signature is sent. With no fingerprint trusted yet the source refuses to
fetch (:class:`HostKeyUntrusted` carries the fingerprint an admin can trust); a different key
blocks the source (:class:`HostKeyChanged`) until :meth:`SftpSource.trust` is called.

After a drop the next request reconnects at once; failed connection attempts back off with
:class:`~taskcog.engine.supervision.RetryPolicy` so a down or banning server is not hammered.
A refused login (:class:`AuthFailed`, on the first connection or any reconnect) is not a
network fault: the source blocks like a host-key problem and tries no login again until it is
rebuilt with new credentials (or an admin's probe logs in).
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import math
import random
import stat as _stat
from typing import Any, Awaitable, Callable, TypeVar

import asyncssh

from taskcog.engine.clock import SYSTEM_CLOCK, Clock
from taskcog.engine.supervision import RetryPolicy

from .base import (
    AuthFailed,
    DirEntry,
    FileStat,
    HostKeyChanged,
    HostKeyUntrusted,
    KeyUnreadable,
    PathNotFound,
    ProbeReport,
    Source,
    SourceError,
    Unreachable,
)

T = TypeVar("T")
# AES-GCM first: in asyncssh it costs a fraction of ChaCha20's CPU per packet (bench_live.py).
_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com",
            "aes256-ctr", "aes192-ctr", "aes128-ctr")  # fmt: skip

RECONNECT_POLICY = RetryPolicy(base=2.0, cap=300.0)

# What asyncssh raises when the server refuses who we are or what we offered to prove it.
_REFUSED = (asyncssh.PermissionDenied, asyncssh.IllegalUserName, asyncssh.PasswordChangeRequired)

# Errors that mean the connection itself is gone (as opposed to one bad request).
_DROPPED = (
    asyncssh.SFTPConnectionLost,
    asyncssh.SFTPNoConnection,
    asyncssh.DisconnectError,
    asyncssh.ChannelOpenError,
    ConnectionError,
    OSError,
    EOFError,
    asyncio.IncompleteReadError,
)


async def _detached(coro: Awaitable[T]) -> T:
    """Run ``coro`` in a task with a fresh context and wait for it.

    The connection outlives the job that opened it (asyncssh keeps reader tasks for it), so it
    must not inherit that job's context variables: a framework that follows a command's
    context (Red's, a test harness's) would otherwise count the idle connection as the
    command's unfinished work.
    """
    task = contextvars.Context().run(asyncio.ensure_future, coro)
    return await task


def _trust_nothing(host: str, addr: str, port: int) -> tuple[list[Any], list[Any], list[Any]]:
    """known_hosts lookup that trusts no key, so every key goes to our fingerprint check."""
    return [], [], []


class _PinnedHostKeyClient(asyncssh.SSHClient):
    """Accepts the server only if its key's SHA256 fingerprint is the trusted one."""

    def __init__(self, trusted: str | None) -> None:
        self.trusted = trusted
        self.seen: str | None = None
        self.lost = False

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.seen = key.get_fingerprint("sha256")
        return self.trusted is not None and hmac.compare_digest(self.seen, self.trusted)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True


class SftpSource(Source):
    """Logs read over SFTP with a pinned host key, keepalive and reconnect backoff."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        *,
        password: str | None = None,
        private_key: str | None = None,
        base_path: str = ".",
        trusted_fingerprint: str | None = None,
        keepalive_interval: float = 30,
        connect_timeout: float = 10,
        clock: Clock = SYSTEM_CLOCK,
        reconnect_policy: RetryPolicy = RECONNECT_POLICY,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(base_path)
        self.host = host
        self.port = port
        self.username = username
        self.trusted_fingerprint = trusted_fingerprint
        self.keepalive_interval = keepalive_interval
        self.connect_timeout = connect_timeout
        self.connects = 0  # connection attempts that reached the network
        self._password = password
        self._private_key = private_key
        self._clock = clock
        self._policy = reconnect_policy
        self._rng = rng
        self._lock = asyncio.Lock()
        self._conn: asyncssh.SSHClientConnection | None = None
        self._client: _PinnedHostKeyClient | None = None
        self._sftp: asyncssh.SFTPClient | None = None
        self._failures = 0
        self._retry_at: float | None = None
        self._blocked: SourceError | None = None

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._password, self._private_key) if s)

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._sftp is not None and self._client is not None and not self._client.lost

    def describe(self) -> str:
        return f"sftp://{self.username}@{self.where}/{self.base_path.lstrip('/')}"

    def trust(self, fingerprint: str) -> None:
        """Trust this host key fingerprint (``SHA256:...``) and lift a host-key block."""
        self.trusted_fingerprint = fingerprint
        self._blocked = None
        self._retry_at = None
        self._failures = 0

    # -- connection ----------------------------------------------------------------------

    async def connect(self) -> None:
        """Make sure the connection is up; raises a :class:`SourceError` if it cannot be."""
        await self._ensure()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

    async def _ensure(self, *, force: bool = False) -> asyncssh.SFTPClient:
        async with self._lock:
            if self.connected:
                assert self._sftp is not None
                return self._sftp
            await self._drop()
            if not force:
                if self._blocked is not None:
                    raise self._blocked.with_traceback(None)  # don't grow one traceback forever
                now = self._clock.monotonic()
                if self._retry_at is not None and now < self._retry_at:
                    raise Unreachable(
                        f"Could not reach {self.where} recently; the next attempt is in "
                        f"{math.ceil(self._retry_at - now)} s."
                    )
            try:
                self._sftp = await _detached(self._open())
            except AuthFailed as exc:
                self._blocked = exc  # the same credentials would be refused again
                raise
            except SourceError as exc:
                if not isinstance(exc, (HostKeyUntrusted, HostKeyChanged)):
                    self._failures += 1
                    delay = self._policy.backoff(min(self._failures, 16), self._rng)
                    self._retry_at = self._clock.monotonic() + delay
                raise
            self._failures = 0
            self._retry_at = None
            self._blocked = None
            return self._sftp

    async def _open(self) -> asyncssh.SFTPClient:
        client_keys = None
        if self._private_key:
            try:
                client_keys = [asyncssh.import_private_key(self._private_key)]
            except (asyncssh.KeyImportError, ValueError):
                raise KeyUnreadable(
                    "The private key could not be read; use an unencrypted OpenSSH or PEM key."
                ) from None
        client = _PinnedHostKeyClient(self.trusted_fingerprint)
        self.connects += 1
        try:
            conn = await asyncssh.connect(
                self.host,
                self.port,
                username=self.username,
                password=self._password,
                client_keys=client_keys,
                client_factory=lambda: client,
                known_hosts=_trust_nothing,
                server_host_key_algs="default",
                encryption_algs=_CIPHERS,
                agent_path=None,
                config=[],
                gss_host=None,
                keepalive_interval=self.keepalive_interval,
                connect_timeout=self.connect_timeout,
                login_timeout=self.connect_timeout,
            )
        except asyncssh.HostKeyNotVerifiable as exc:
            raise self._host_key_error(client) from exc
        except _REFUSED as exc:
            raise AuthFailed(
                f"{self.where} refused the login for user {self.username[:64]!r}; "
                "check the username and the password or key."
            ) from exc
        except TimeoutError as exc:
            raise Unreachable(
                f"Could not reach {self.where}: no answer within {self.connect_timeout:g} s."
            ) from exc
        except (asyncssh.DisconnectError, OSError) as exc:
            raise Unreachable(
                self.redact(f"Could not reach {self.where}: {_reason(exc)}.")
            ) from exc
        self._conn, self._client = conn, client
        try:
            sftp = await conn.start_sftp_client()
        except (asyncssh.ChannelOpenError, asyncssh.SFTPError) as exc:
            conn.close()
            raise SourceError(
                self.redact(
                    f"{self.where} accepted the login but has no SFTP service: {_reason(exc)}."
                )
            ) from exc
        _count_requests(sftp, self)
        return sftp

    def _host_key_error(self, client: _PinnedHostKeyClient) -> SourceError:
        if client.seen is None:
            return SourceError(f"{self.where} sent a host key that could not be checked.")
        if self.trusted_fingerprint is None:
            error: SourceError = HostKeyUntrusted(client.seen, self.where)
        else:
            error = HostKeyChanged(self.trusted_fingerprint, client.seen, self.where)
        self._blocked = error
        return error

    async def _drop(self) -> None:
        """Forget the connection (it is gone or going); the next request opens a new one."""
        sftp, conn = self._sftp, self._conn
        self._sftp = self._conn = self._client = None
        if sftp is not None:
            sftp.exit()
        if conn is not None:
            conn.close()
            try:
                await asyncio.wait_for(conn.wait_closed(), 5)
            except (TimeoutError, OSError, asyncssh.Error):
                pass

    async def _request(self, path: str, call: Callable[[asyncssh.SFTPClient], Awaitable[T]]) -> T:
        sftp = await self._ensure()
        try:
            return await call(sftp)
        except asyncssh.SFTPNoSuchFile:
            raise PathNotFound(f"{path} does not exist on {self.where}.") from None
        except asyncssh.SFTPPermissionDenied:
            raise SourceError(f"{self.username!r} is not allowed to read {path}.") from None
        except _DROPPED as exc:
            async with self._lock:
                if self._sftp is sftp:
                    await self._drop()
            raise Unreachable(
                self.redact(f"The connection to {self.where} dropped: {_reason(exc)}.")
            ) from exc
        except asyncssh.SFTPError as exc:
            raise SourceError(
                self.redact(f"{self.where} could not serve {path}: {_reason(exc)}.")
            ) from exc

    # -- file access ---------------------------------------------------------------------

    async def list_dir(self, path: str) -> list[DirEntry]:
        async def call(sftp: asyncssh.SFTPClient) -> list[DirEntry]:
            return [
                DirEntry(name.filename, _is_dir(name.attrs))
                async for name in sftp.scandir(path)
                if name.filename not in (".", "..")
            ]

        return await self._request(path, call)

    async def stat(self, path: str) -> FileStat:
        attrs = await self._request(path, lambda sftp: sftp.stat(path))
        mtime = attrs.mtime
        if mtime is not None and attrs.mtime_ns is not None:
            mtime += attrs.mtime_ns / 1e9
        return FileStat(attrs.size or 0, mtime, None)

    async def read(self, path: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""

        async def call(sftp: asyncssh.SFTPClient) -> bytes:
            async with sftp.open(path, "rb") as handle:
                return await handle.read(length, offset)

        data = await self._request(path, call)
        self.bytes_read += len(data)
        return data

    # -- probe ---------------------------------------------------------------------------

    async def _probe_connection(self, report: ProbeReport) -> bool:
        try:
            await self._ensure(force=True)
        except HostKeyUntrusted as exc:
            report.fingerprint = exc.fingerprint
            report.add("reachable", True, f"{self.where} answered.")
            report.add("host key", False, str(exc))
            report.add(
                "login", False, "The login was not tried because the host key is not trusted."
            )
            return False
        except HostKeyChanged as exc:
            report.fingerprint = exc.got
            report.add("reachable", True, f"{self.where} answered.")
            report.add("host key", False, str(exc))
            report.add("login", False, "The login was not tried because the host key changed.")
            return False
        except KeyUnreadable as exc:
            report.logged_in = False
            report.add("login", False, self.redact(str(exc)))
            return False
        except AuthFailed as exc:
            report.fingerprint = self.trusted_fingerprint
            report.logged_in = False
            report.add("reachable", True, f"{self.where} answered.")
            report.add("host key", True, f"The host key matches {self.trusted_fingerprint}.")
            report.add("login", False, self.redact(str(exc)))
            return False
        except SourceError as exc:
            report.add("reachable", False, self.redact(str(exc)))
            return False
        report.fingerprint = self.trusted_fingerprint
        report.logged_in = True
        report.add("reachable", True, f"{self.where} answered.")
        report.add("host key", True, f"The host key matches {self.trusted_fingerprint}.")
        report.add("login", True, f"Logged in as {self.username!r} and opened SFTP.")
        return True


def _is_dir(attrs: asyncssh.SFTPAttrs) -> bool:
    if attrs.type == asyncssh.FILEXFER_TYPE_DIRECTORY:
        return True
    return attrs.permissions is not None and _stat.S_ISDIR(attrs.permissions)


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
    return str(reason).rstrip(".") or type(exc).__name__


def _count_requests(sftp: asyncssh.SFTPClient, source: Source) -> None:
    """Count every SFTP request packet the client sends, for ``source.round_trips``."""
    handler = getattr(sftp, "_handler", None)
    send = getattr(handler, "_send_request", None)
    if send is None:  # asyncssh internals moved; the counter stays at 0 rather than lie
        return

    def counted(*args: Any, **kwargs: Any) -> Any:
        source.round_trips += 1
        return send(*args, **kwargs)

    handler._send_request = counted  # type: ignore[union-attr]
