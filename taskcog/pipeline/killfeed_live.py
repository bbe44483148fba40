"""The killfeed's sink with its per-guild options: deaths routing, announcements and delay.

:class:`LiveKillSink` is what :func:`~.killfeed.ingest_once` posts to when a guild uses any of
them; it keeps ``ingest_once``'s contract (``recover()``, then ``post(events)`` returning how
many were taken) so the exactly-once order stays the killfeed's own:

- without a delay, kills go straight to the feed sink (suicides and environmental deaths to the
  feed, the deaths sink, or nowhere), then the announcements the kills caused;
- with a delay, kills and their announcements are queued in the outbox with their due time, in
  the same transaction that marks them applied, and posted by a later run once due, in order.

The outbox lives in the ledger's SQLite file, so the delay holds across restarts and a crash
between queueing and posting loses and repeats nothing.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .announce import DEATHS_CHANNEL, DEATHS_FEED, DEATHS_HIDDEN, KillOptions, kill_reducer, route
from .events import KillEvent
from .livestore import AsyncLiveStore
from .outbox import flush_outbox

STATE_KEY = "kills"


class LiveKillSink:
    """Routes, announces and delays kills; see the module docstring."""

    def __init__(
        self,
        feed: Any,
        live: AsyncLiveStore,
        scope: str,
        options: KillOptions,
        *,
        now: Callable[[], float],
        deaths: Any | None = None,
    ) -> None:
        self.feed = feed
        self.deaths = deaths
        self.live = live
        self.scope = scope
        self.options = options
        self._now = now
        self.queued = 0

    @property
    def sinks(self) -> dict[str, Any]:
        deaths = self.deaths if self.options.deaths == DEATHS_CHANNEL else None
        return {DEATHS_FEED: self.feed, DEATHS_CHANNEL: deaths, DEATHS_HIDDEN: None}

    async def recover(self) -> int:
        marked = await self.feed.recover()
        if self.deaths is not None:
            marked += await self.deaths.recover()
        await self.flush()
        return marked

    async def flush(self) -> int:
        """Post what is due (delayed kills, announcements); returns how many were posted."""
        return await flush_outbox(self.live, self.scope, self._now(), self.sinks)

    async def post(self, events: Sequence[KillEvent]) -> int:
        options = self.options
        if options.delay > 0 or options.announces:
            reduce = kill_reducer(options, self._now())
            fresh, _state = await self.live.apply(
                self.scope, STATE_KEY, events, reduce, self._now()
            )
            if options.delay > 0:
                self.queued += fresh
                await self.flush()
                return fresh
        posted = 0
        group: list[KillEvent] = []
        where = None
        for event in events:  # consecutive runs per route, so the order holds
            this = route(event, options)
            if group and this != where:
                posted += await self._post(where, group)
                group = []
            where = this
            group.append(event)
        if group:
            posted += await self._post(where, group)
        await self.flush()
        return posted

    async def _post(self, where: str | None, events: list[KillEvent]) -> int:
        sink = self.sinks.get(where or DEATHS_FEED)
        if sink is None:
            return 0
        return await sink.post(events)
