"""Where log files come from: SFTP or a local folder, and how they are tailed."""

from .base import (
    AuthFailed,
    DirEntry,
    FileStat,
    HostKeyChanged,
    HostKeyUntrusted,
    KeyUnreadable,
    Layout,
    PathNotFound,
    ProbeCheck,
    ProbeReport,
    Source,
    SourceError,
    Unreachable,
)
from .local import LocalSource
from .sftp import SftpSource
from .tail import KILLS, SERVER_LOG, Chunk, Cursor, TailBatch, initial_cursor, poll

__all__ = [
    "KILLS",
    "SERVER_LOG",
    "AuthFailed",
    "Chunk",
    "Cursor",
    "DirEntry",
    "FileStat",
    "HostKeyChanged",
    "HostKeyUntrusted",
    "KeyUnreadable",
    "Layout",
    "LocalSource",
    "PathNotFound",
    "ProbeCheck",
    "ProbeReport",
    "SftpSource",
    "Source",
    "SourceError",
    "TailBatch",
    "Unreachable",
    "initial_cursor",
    "poll",
]
