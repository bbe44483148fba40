"""A folder on the bot host as a log source (the cog allows it for the bot owner only).

File work runs in a thread so a slow disk never stalls the event loop.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Callable, TypeVar

from .base import DirEntry, FileStat, PathNotFound, Source, SourceError

T = TypeVar("T")


class LocalSource(Source):
    """Reads a server's logs from ``base_path`` on this machine."""

    def describe(self) -> str:
        return f"local folder {self.base_path}"

    def join(self, *parts: str) -> str:
        return os.path.join(*parts)

    async def connect(self) -> None:
        """Check that the base folder exists and is a folder; there is nothing to open."""
        if await asyncio.to_thread(os.path.isdir, self.base_path):
            return
        if await asyncio.to_thread(os.path.exists, self.base_path):
            raise PathNotFound(f"{self.base_path} on the bot host is a file, not a folder.")
        raise PathNotFound(f"The folder {self.base_path} does not exist on the bot host.")

    async def close(self) -> None:
        return None

    async def list_dir(self, path: str) -> list[DirEntry]:
        self.round_trips += 1
        return await self._guard(path, _list_dir, path)

    async def stat(self, path: str) -> FileStat:
        self.round_trips += 1
        st = await self._guard(path, os.stat, path)
        return FileStat(st.st_size, st.st_mtime, f"{st.st_dev}:{st.st_ino}")

    async def read(self, path: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        self.round_trips += 1
        data = await self._guard(path, _read, path, offset, length)
        self.bytes_read += len(data)
        return data

    async def _guard(self, path: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except FileNotFoundError:
            raise PathNotFound(f"{path} does not exist on the bot host.") from None
        except NotADirectoryError:
            raise PathNotFound(f"{path} is not a folder.") from None
        except PermissionError:
            raise SourceError(f"The bot is not allowed to read {path}.") from None
        except OSError as exc:
            raise SourceError(f"Could not read {path}: {exc.strerror or exc}.") from exc


def _list_dir(path: str) -> list[DirEntry]:
    with os.scandir(path) as entries:
        return [DirEntry(e.name, e.is_dir()) for e in entries]


def _read(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(length)
