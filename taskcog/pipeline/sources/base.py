"""What every log source offers: listing, stat, ranged reads, layout discovery and a probe.

A source is where a game server's log files live (an SFTP account, a folder on the bot host).
Tailing (:mod:`.tail`) and discovery only use the small set of abstract methods here, so a new
backend only has to implement those.

Failures surface as :class:`SourceError` subclasses whose ``str()`` is one sentence a Discord
user can act on. :class:`Unreachable` is also a ``ConnectionError``, so the engine's supervision
rules retry it with backoff as a transient error; the others count as real failures.
:class:`AuthFailed` is never transient: only new credentials help, so a source stops trying to
log in until it is rebuilt with them.
"""

from __future__ import annotations

import abc
import fnmatch
import posixpath
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable

from ..redact import redact

KILL_DIR = "deathlogs"
WORLD_PATTERN = "world_*"
KILL_SUFFIX = ".csv"
LOG_DIR = "Logs"
LOG_NAME = "Deadside.log"
MAX_DEPTH = 6
MAX_DIRS = 500


class SourceError(Exception):
    """A source could not do what was asked. ``str()`` is one sentence for a Discord user."""


class Unreachable(SourceError, ConnectionError):
    """The server could not be reached, or the connection dropped; retried with backoff."""


class AuthFailed(SourceError):
    """The server refused the login; retrying with the same credentials cannot help."""


class KeyUnreadable(AuthFailed):
    """The stored private key could not be read, so no login was tried."""


class HostKeyUntrusted(SourceError):
    """No host key is trusted yet for this source; ``fingerprint`` is what the server showed."""

    def __init__(self, fingerprint: str | None, where: str = "The server") -> None:
        self.fingerprint = fingerprint
        shown = fingerprint or "an unknown key"
        super().__init__(
            f"{where} presented host key {shown}, which is not trusted yet; "
            "an admin must trust this fingerprint before logs are fetched."
        )


class HostKeyChanged(SourceError):
    """The server's host key differs from the trusted one; the source stays blocked."""

    def __init__(self, expected: str, got: str, where: str = "the server") -> None:
        self.expected = expected
        self.got = got
        super().__init__(
            f"The host key of {where} changed from {expected} to {got}, so fetching is blocked "
            "until an admin trusts the new key (the server may have been reinstalled, or "
            "someone may be intercepting the connection)."
        )


class PathNotFound(SourceError):
    """A file or folder does not exist on the source."""


@dataclass(frozen=True)
class FileStat:
    """What tailing needs to know about a file. ``ident`` is an inode-like id, if available."""

    size: int
    mtime: float | None = None
    ident: str | None = None


@dataclass(frozen=True)
class DirEntry:
    name: str
    is_dir: bool


@dataclass(frozen=True)
class Layout:
    """Where a server's logs are: kill CSVs oldest first, and the server log if found.

    ``kill_dirs`` are the ``world_*`` folders, kept so :meth:`Source.refresh` can re-list
    only them instead of walking the whole tree again.
    """

    kill_files: list[str] = field(default_factory=list)
    server_log: str | None = None
    kill_dirs: tuple[str, ...] = ()


def kill_file_key(path: str) -> tuple[str, str]:
    """Sort key for kill files: the name is a timestamp (``2025.05.15-00.00.00.csv``)."""
    return posixpath.basename(path.replace("\\", "/")), path


@dataclass(frozen=True)
class ProbeCheck:
    """One line of a probe: what was checked, whether it passed, and a plain sentence."""

    name: str
    ok: bool
    message: str


@dataclass
class ProbeReport:
    """The result of ``[p]taskset server test``: sentences, never exceptions."""

    source: str
    checks: list[ProbeCheck] = field(default_factory=list)
    fingerprint: str | None = None
    layout: Layout | None = None
    logged_in: bool | None = None  # None: no login was tried (or the source has none)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def add(self, name: str, ok: bool, message: str) -> None:
        self.checks.append(ProbeCheck(name, ok, message))

    def sentences(self) -> list[str]:
        return [check.message for check in self.checks]


class Source(abc.ABC):
    """A place log files are read from, with request and byte counters."""

    def __init__(self, base_path: str) -> None:
        self.base_path = base_path
        self.bytes_read = 0
        self.round_trips = 0

    # -- what a backend implements -------------------------------------------------------

    @abc.abstractmethod
    def describe(self) -> str:
        """A short, secret-free name for messages, e.g. ``sftp://user@host:22/base``."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the connection (or check the folder); raises a :class:`SourceError`."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection; the source may connect again later."""

    @abc.abstractmethod
    async def list_dir(self, path: str) -> list[DirEntry]:
        """The entries of a folder; raises :class:`PathNotFound` if it does not exist."""

    @abc.abstractmethod
    async def stat(self, path: str) -> FileStat:
        """Size, mtime and identity of a file; raises :class:`PathNotFound`."""

    @abc.abstractmethod
    async def read(self, path: str, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes from ``offset`` (fewer at end of file)."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Credentials that must never appear in a message."""
        return ()

    # -- shared behaviour ----------------------------------------------------------------

    def join(self, *parts: str) -> str:
        return posixpath.join(*parts)

    def redact(self, text: str) -> str:
        """Mask this source's secrets in ``text``; pass it to supervision as ``redact=``."""
        return redact(text, self.secrets)

    def reset_counters(self) -> None:
        self.bytes_read = 0
        self.round_trips = 0

    async def discover(self) -> Layout:
        """Find ``**/deathlogs/world_*/*.csv`` and ``**/Logs/Deadside.log`` under the base path.

        A breadth-first walk, bounded in depth and folder count, so a huge home folder costs a
        bounded number of listings; the shallowest server log wins.
        """
        kill_dirs: list[str] = []
        server_log: str | None = None
        queue: deque[tuple[str, int]] = deque([(self.base_path, 0)])
        visited = 0
        while queue and visited < MAX_DIRS:
            path, depth = queue.popleft()
            visited += 1
            entries = await self.list_dir(path)
            for entry in entries:
                if not entry.is_dir or entry.name.startswith("."):
                    continue
                child = self.join(path, entry.name)
                if entry.name == KILL_DIR:
                    kill_dirs.extend(await self._world_dirs(child))
                elif entry.name == LOG_DIR:
                    if server_log is None and await self._has_file(child, LOG_NAME):
                        server_log = self.join(child, LOG_NAME)
                elif depth + 1 < MAX_DEPTH:
                    queue.append((child, depth + 1))
        kill_files = await self._kill_files(kill_dirs)
        return Layout(kill_files, server_log, tuple(sorted(kill_dirs)))

    async def refresh(self, layout: Layout) -> Layout:
        """Re-list only the known kill folders (cheap); walk again if none are known or gone."""
        if not layout.kill_dirs:
            return await self.discover()
        try:
            kill_files = await self._kill_files(layout.kill_dirs)
        except PathNotFound:
            return await self.discover()
        return Layout(kill_files, layout.server_log, layout.kill_dirs)

    async def probe(self) -> ProbeReport:
        """Check connection, login, host key and layout; report each as a sentence."""
        report = ProbeReport(self.describe())
        try:
            if await self._probe_connection(report):
                await self._probe_layout(report)
        except Exception as exc:  # noqa: BLE001 - a probe reports, it never raises
            report.add("error", False, self.redact(f"Unexpected error: {exc}"))
        return report

    async def _probe_connection(self, report: ProbeReport) -> bool:
        try:
            await self.connect()
        except SourceError as exc:
            report.add("connect", False, self.redact(str(exc)))
            return False
        report.add("connect", True, f"Opened {self.describe()}.")
        return True

    async def _probe_layout(self, report: ProbeReport) -> None:
        try:
            layout = await self.discover()
            newest = layout.kill_files[-1] if layout.kill_files else None
            stat = await self.stat(newest) if newest else None
        except SourceError as exc:
            report.add("layout", False, self.redact(str(exc)))
            return
        report.layout = layout
        if newest and stat:
            report.add(
                "kill files",
                True,
                f"Found {_count(len(layout.kill_files), 'kill log file')}; the newest is "
                f"{newest} ({_count(stat.size, 'byte')}).",
            )
        else:
            report.add(
                "kill files",
                False,
                f"Found no kill logs (deathlogs/world_*/*.csv) under {self.base_path}.",
            )
        if layout.server_log:
            report.add("server log", True, f"Found the server log at {layout.server_log}.")
        else:
            report.add("server log", False, f"Found no Logs/{LOG_NAME} under {self.base_path}.")

    async def _world_dirs(self, path: str) -> list[str]:
        entries = await self.list_dir(path)
        return [
            self.join(path, entry.name)
            for entry in entries
            if entry.is_dir and fnmatch.fnmatchcase(entry.name, WORLD_PATTERN)
        ]

    async def _has_file(self, path: str, name: str) -> bool:
        return any(not e.is_dir and e.name == name for e in await self.list_dir(path))

    async def _kill_files(self, kill_dirs: Iterable[str]) -> list[str]:
        files: list[str] = []
        for directory in kill_dirs:
            for entry in await self.list_dir(directory):
                if not entry.is_dir and entry.name.lower().endswith(KILL_SUFFIX):
                    files.append(self.join(directory, entry.name))
        return sorted(files, key=kill_file_key)


def _count(n: int, thing: str) -> str:
    """``1 kill log file``, ``2 kill log files``."""
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"
