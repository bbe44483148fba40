"""The stats store's place in the cog: opened on load, fed by the live killfeed, closed on unload.

Every call to the store goes through the worker pool, never the event loop: reads in the ``db``
lane, writes in the ``stats`` lane (a write may wait for the store's lock while an import's
transaction runs; it must not hold up the killfeed's ledger in ``db`` meanwhile). Jobs in a
lane run by priority (lower first): a user waiting on a command first, the live killfeed's
writes next, a history import last, so an import never holds up kills or replies.
"""

from __future__ import annotations

import logging

from redbot.core.data_manager import cog_data_path

from ..pipeline.events import KillEvent
from ..pipeline.killfeed import Observer
from ..pipeline.stats import StatsStore
from .abc import MixinMeta

log = logging.getLogger("red.taskcog.stats")

DB = "db"  # the store's reads: commands, autocomplete, the leaderboard
STATS = "stats"  # its writes (live and history): below the killfeed's lanes, see pipeline/history
STATS_FILE = "stats.sqlite3"
URGENT = 0  # a command or an autocomplete: someone is waiting
LIVE = 1  # the live killfeed's writes
HISTORY = 5  # a history import: whenever nothing more urgent waits
DEFAULT_FLAG_DISTANCE = 1500.0


async def open_stats(cog: MixinMeta) -> StatsStore | None:
    """Open (and migrate) the guilds' stats store in the pool: a migration may take a while.

    A store that cannot open is logged and left closed: the killfeed and every other task go
    on, and the stats commands say stats are unavailable."""
    assert cog.pool is not None
    path = cog_data_path(cog) / STATS_FILE  # type: ignore[arg-type]
    try:
        return await cog.pool.submit(DB, StatsStore, path, priority=URGENT)
    except Exception:
        log.exception("The stats store at %s could not be opened; stats are off", path)
        return None


def close_stats(cog: MixinMeta) -> None:
    """Close the store once the pool has finished its jobs (none may still write)."""
    if cog.stats is not None:
        cog.stats.close()
        cog.stats = None


async def flag_distance(cog: MixinMeta, guild_id: int) -> float:
    """Kills longer than this (metres) await review (``[p]taskset stats flagdistance``)."""
    value = await cog.config.guild_from_id(guild_id).stats_flag_distance()
    return float(value) if value else DEFAULT_FLAG_DISTANCE


def stats_feed(cog: MixinMeta, scope: str) -> Observer | None:
    """The killfeed's observer for one game server (``scope`` = ``guild:server``): each parsed
    slice goes to the store before it is posted, so a crash re-reads it and the store, keyed by
    event id, counts nothing twice."""
    store = cog.stats
    pool = cog.pool
    if store is None or pool is None:
        return None
    guild, _sep, server = scope.partition(":")
    guild_id = int(guild)

    async def observe(events: list[KillEvent]) -> None:
        flag = await flag_distance(cog, guild_id)
        await pool.submit(
            STATS, store.add_events, guild_id, server, events, flag_over=flag, priority=LIVE
        )

    return observe
