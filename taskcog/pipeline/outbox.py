"""Post what the outbox holds and is due, in order, exactly once.

Each due row goes to the sink its route names (``feed``, or ``deaths`` for the killfeed's
other channel); consecutive rows of one route are posted together (ten to a message). Rows are
deleted only after their sink recorded them as posted, and the sink skips ids the ledger already
holds, so a crash between the two posts nothing twice.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from .livestore import AsyncLiveStore
from .notices import decode, route_of


class Sink(Protocol):
    async def post(self, events: Sequence[Any]) -> int: ...


async def flush_outbox(
    live: AsyncLiveStore, scope: str, now: float, sinks: Mapping[str, Sink | None]
) -> int:
    """Post every row of ``scope`` due by ``now``; returns how many were posted now. A route
    without a sink (``None``) drops its rows: that kind is hidden."""
    posted = 0
    while True:
        rows = await live.due(scope, now)
        if not rows:
            return posted
        group: list[tuple[int, Any]] = []
        route = None
        for seq, event_id, payload in rows:
            this = route_of(payload)
            if group and this != route:
                posted += await _post_group(live, scope, sinks.get(route or "feed"), group)
                group = []
            route = this
            group.append((seq, decode(event_id, payload)))
        posted += await _post_group(live, scope, sinks.get(route or "feed"), group)
        if len(rows) < 500:
            return posted


async def _post_group(
    live: AsyncLiveStore, scope: str, sink: Sink | None, group: list[tuple[int, Any]]
) -> int:
    count = 0
    if sink is not None:
        count = await sink.post([item for _seq, item in group])
    await live.done(scope, [seq for seq, _item in group])
    return count
