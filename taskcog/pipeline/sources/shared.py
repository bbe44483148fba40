"""One pass per game server per tick, shared by the killfeed and the server-log feed.

A :class:`ServerPoller` wraps a server's one :class:`~.base.Source` (one SFTP connection). The
first task of a tick that asks for its stream does the *pass*: it stats (and reads what was
appended to) its own file **and** the other active stream's file, from the cursor that task last
committed, and keeps the other stream's batch. The second task, asking within
``share_window`` seconds with that same cursor, gets the kept batch without a request. A cursor
that differs (a crash, a reload) simply misses and polls again, so sharing never changes what is
read.

Listing folders is the expensive part of a poll, so the layout is kept and re-listed only every
``relist_every`` seconds, or (at most every ``relist_stopped`` seconds) when a file that was
growing stopped growing, which is how a rotation to a new kill file looks. An unchanged tick
therefore costs one ``stat`` per tailed file and nothing else.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable

from ...engine.clock import SYSTEM_CLOCK
from .base import Layout, Source, SourceError
from .tail import KILLS, SERVER_LOG, Cursor, TailBatch, poll

SHARE_WINDOW = 0.5
RELIST_EVERY = 60.0
RELIST_STOPPED = 10.0
ACTIVE_FOR = 120.0  # a stream nobody asked for this long is left out of passes


@dataclass
class StreamHealth:
    """Figures for ``[p]tasks status``: per-minute rates over a sliding minute, and samples."""

    marks: list[tuple[float, int, int]] = field(default_factory=list)  # (t, lines, events)
    poll_ms: list[float] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)  # seconds from append to post

    def record(self, now: float, lines: int, events: int) -> None:
        self.marks.append((now, lines, events))
        cutoff = now - 60
        while self.marks and self.marks[0][0] < cutoff:
            self.marks.pop(0)

    def record_poll(self, ms: float) -> None:
        self.poll_ms = (self.poll_ms + [ms])[-200:]

    def record_delay(self, seconds: float) -> None:
        self.delays = (self.delays + [max(0.0, seconds)])[-1000:]

    def per_minute(self, now: float) -> tuple[int, int]:
        recent = [m for m in self.marks if m[0] >= now - 60]
        return sum(m[1] for m in recent), sum(m[2] for m in recent)

    def summary(self, now: float) -> str:
        lines, events = self.per_minute(now)
        text = f"{lines} lines/min, {events} events/min"
        if self.poll_ms:
            text += f", poll {percentile(self.poll_ms, 50):.0f} ms"
        if self.delays:
            text += (
                f", append-to-post p50 {percentile(self.delays, 50):.1f} s"
                f" p99 {percentile(self.delays, 99):.1f} s"
            )
        return text


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, int(round(pct / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


class ServerPoller:
    """The shared pass over one game server's source; see the module docstring."""

    def __init__(
        self,
        source: Source,
        *,
        monotonic: Callable[[], float] = SYSTEM_CLOCK.monotonic,
        share_window: float = SHARE_WINDOW,
        relist_every: float = RELIST_EVERY,
        relist_stopped: float = RELIST_STOPPED,
        shared: bool = True,
    ) -> None:
        self.source = source
        self.share_window = share_window
        self.relist_every = relist_every
        self.relist_stopped = relist_stopped
        self.shared = shared
        self.passes = 0
        self.shared_hits = 0
        self.listings = 0
        self.health: dict[str, StreamHealth] = {KILLS: StreamHealth(), SERVER_LOG: StreamHealth()}
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._layout: Layout | None = None
        self._listed_at = 0.0
        self._relist = False
        self._cache: dict[str, tuple[Cursor, TailBatch, float]] = {}
        self._wanted: dict[str, tuple[Cursor, float]] = {}
        self._grew: dict[str, bool] = {}  # per stream: did its last poll find new bytes
        self.last_mtime: dict[str, float] = {}  # per stream: mtime when bytes were last read

    async def layout(self) -> Layout:
        """The kept layout, listed again only when due (see the module docstring)."""
        async with self._lock:
            return await self._current_layout(self._monotonic())

    def forget_layout(self) -> None:
        self._layout = None

    async def batch(self, stream: str, cursor: Cursor, *, max_bytes: int) -> TailBatch:
        """What was appended to ``stream`` since ``cursor``: kept from this tick's pass, or read
        now in a new pass (which also reads the other active stream)."""
        async with self._lock:
            now = self._monotonic()
            self._wanted[stream] = (cursor, now)
            kept = self._cache.pop(stream, None)
            if kept is not None and kept[0] == cursor and now - kept[2] <= self.share_window:
                self.shared_hits += 1
                return kept[1]
            layout = await self._current_layout(now)
            started = time.perf_counter()
            result = await self._poll(stream, cursor, layout, max_bytes)
            if self.shared:
                for other, (other_cursor, asked) in list(self._wanted.items()):
                    if other == stream or now - asked > ACTIVE_FOR:
                        continue
                    ahead = self._cache.get(other)
                    if ahead is not None and now - ahead[2] <= self.share_window:
                        continue
                    try:
                        other_batch = await self._poll(other, other_cursor, layout, max_bytes)
                    except SourceError:  # that stream's own task will meet it and say so
                        continue
                    self._cache[other] = (other_cursor, other_batch, now)
            self.passes += 1
            ms = (time.perf_counter() - started) * 1000
            self.health[stream].record_poll(ms)
            return result

    def committed(self, stream: str, cursor: Cursor) -> None:
        """``stream``'s task committed ``cursor``: the next pass reads its stream from there."""
        asked = self._wanted.get(stream)
        self._wanted[stream] = (cursor, asked[1] if asked else self._monotonic())

    async def _poll(
        self, stream: str, cursor: Cursor, layout: Layout, max_bytes: int
    ) -> TailBatch:
        batch = await poll(self.source, cursor, layout, max_bytes=max_bytes)
        nxt = batch.next_cursor
        if batch.chunks and nxt.mtime is not None:
            self.last_mtime[stream] = nxt.mtime
        grew = bool(batch.chunks) or nxt.path != cursor.path
        if not grew and cursor.path is not None and nxt.size == cursor.size:
            # Unchanged: a file that was growing and stopped may have rotated.
            if self._grew.get(stream):
                self._relist = True
        self._grew[stream] = grew
        return batch

    async def _current_layout(self, now: float) -> Layout:
        age = now - self._listed_at
        due = (
            self._layout is None
            or age >= self.relist_every
            or (self._relist and age >= self.relist_stopped)
        )
        if due:
            known = self._layout
            if known is None or known.server_log is None:
                self._layout = await self.source.discover()
            else:
                self._layout = await self.source.refresh(known)
            self._listed_at = now
            self._relist = False
            self.listings += 1
        assert self._layout is not None
        return self._layout
