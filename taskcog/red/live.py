"""What the live feeds need from the Red layer: their stores, their embeds, the voice name.

The pipeline decides *what* to post (:mod:`taskcog.pipeline.online`, ``announce``); this module
decides how it looks in Discord. Every notice's footer ends ``log <id>`` and every kill's
``kill <id>``, which is how the sink finds a message a crash left unrecorded.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace
from typing import Any, Callable

import discord

from ..pipeline.announce import KillOptions
from ..pipeline.livestore import AsyncLiveStore, LiveStore
from ..pipeline.notices import Notice
from ..pipeline.sinks.discord import kill_embed
from .abc import MixinMeta

VOICE_MIN_GAP = 300.0  # seconds between renames of one channel (Discord allows 2 per 10 min)
_NAME = 48
_HIDE = {
    "show_distance": ("**Distance:**",),
    "show_weapon": ("**Weapon:**", "**Vehicle:**"),
    "show_platform": ("**Platforms:**", "**Platform:**"),
}
_STATE_TITLES = {
    "mission": "🎯 Mission",
    "airdrop": "📦 Airdrop",
    "helicrash": "🚁 Helicrash",
    "trader": "🧳 Roaming trader",
    "convoy": "🚚 Convoy",
}


def live_store(cog: MixinMeta) -> AsyncLiveStore:
    """The live tables in the ledger's SQLite file, created on first use."""
    assert cog.ledger is not None and cog.pool is not None
    live = getattr(cog.ledger, "live", None)
    if live is None:
        live = AsyncLiveStore(LiveStore(cog.ledger.ledger), cog.pool)
        cog.ledger.live = live  # type: ignore[attr-defined]
    return live


def wall_now(cog: MixinMeta) -> float:
    return (
        cog.clock.now().timestamp()
        if hasattr(cog, "clock")
        else discord.utils.utcnow().timestamp()
    )


def clean(text: Any, limit: int = _NAME) -> str:
    text = str(text or "").strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def kill_renderer(options: KillOptions) -> Callable[[Any], discord.Embed]:
    """Kills as the guild chose to show them; notices (announcements) as :func:`notice_embed`."""

    def render(item: Any) -> discord.Embed:
        if isinstance(item, Notice):
            return notice_embed(item)
        embed = kill_embed(item)
        hidden = [
            p for opt, prefixes in _HIDE.items() if not getattr(options, opt) for p in prefixes
        ]
        if hidden and embed.description:
            lines = embed.description.split("\n")
            embed.description = "\n".join(x for x in lines if not x.startswith(tuple(hidden)))
        return embed

    return render


def notice_embed(notice: Notice) -> discord.Embed:
    """One server-log notice or killfeed announcement as an embed."""
    d = notice.data
    name = clean(d.get("name")) or "A player"
    kind = notice.kind
    colour = discord.Colour(0x2980B9)
    lines: list[str] = []
    if kind == "join":
        title, colour = f"🟢 {name} joined", discord.Colour(0x27AE60)
    elif kind == "leave":
        title, colour = f"🔴 {name} {d.get('reason') or 'left'}", discord.Colour(0x7F8C8D)
    elif kind == "kick":
        title, colour = f"👢 {name} was kicked", discord.Colour(0xE67E22)
        if d.get("reason"):
            lines.append(f"**Reason:** {clean(d['reason'], 200)}")
    elif kind == "restart":
        title, colour = "🔄 The server restarted", discord.Colour(0x8E44AD)
    elif kind in _STATE_TITLES:
        subject = clean(d.get("subject"), 80)
        title = f"{_STATE_TITLES[kind]} {clean(d.get('state'), 24).lower()}"
        if subject:
            lines.append(f"`{subject}`")
    elif kind == "long_shot":
        title, colour = f"🎯 Long shot by {name}: {d.get('distance', 0):.0f} m", discord.Colour(
            0xF1C40F
        )
        lines.append(f"{name} → {clean(d.get('victim'))} ({clean(d.get('weapon'), 64)})")
    elif kind == "streak":
        title, colour = f"🔥 {name} is on a {d.get('kills')}-kill streak", discord.Colour(0xE74C3C)
    elif kind == "streak_end":
        by = clean(d.get("by"))
        title = f"🧊 {name}'s {d.get('kills')}-kill streak ended" + (f" by {by}" if by else "")
        colour = discord.Colour(0x3498DB)
    else:
        title = clean(kind)
    if kind in ("join", "leave", "kick") and d.get("online") is not None:
        lines.append(f"{_count(d)} online")
    lines.append(discord.utils.format_dt(notice.at, "T"))
    embed = discord.Embed(title=title[:256], description="\n".join(lines), colour=colour)
    embed.set_footer(text=f"log {notice.id}")
    return embed


def _count(d: dict) -> str:
    text = f"{d.get('online', 0)}"
    if d.get("max_players"):
        text += f"/{d['max_players']}"
    if d.get("queued"):
        text += f" ({d['queued']} queued)"
    return text


def voice_name(server: str, state: dict, max_players: int | None) -> str:
    """``🟢 EU1 23/50 (2 queued)``: the server's count for a voice channel's name."""
    online = len(state.get("online", {}))
    queued = len(state.get("queue", {}))
    top = max_players or state.get("max_players")
    text = f"{'🟢' if state else '🔴'} {server.upper()} {online}" + (f"/{top}" if top else "")
    if queued:
        text += f" ({queued} queued)"
    return text[:100]


class VoiceThrottle:
    """At most one rename per channel every ``gap`` seconds, on the monotonic clock given."""

    def __init__(self, monotonic: Callable[[], float], gap: float = VOICE_MIN_GAP) -> None:
        self._monotonic = monotonic
        self.gap = gap
        self._last: dict[int, float] = {}

    def ready(self, channel_id: int) -> bool:
        last = self._last.get(channel_id)
        return last is None or self._monotonic() - last >= self.gap

    def renamed(self, channel_id: int) -> None:
        self._last[channel_id] = self._monotonic()


def online_lines(state: dict, now: _dt.datetime, limit: int = 40) -> list[str]:
    """``name — online for 1h 05m`` per player (longest first), then the queue."""
    names = state.get("names", {})
    offset = _dt.timedelta(seconds=float(state.get("offset") or 0.0))
    rows = []
    for pid, joined in sorted(state.get("online", {}).items(), key=lambda kv: kv[1]):
        since = _dt.datetime.fromisoformat(joined) + offset
        rows.append(f"{clean(names.get(pid) or pid[:12])} — {_span(now - since)}")
    if len(rows) > limit:
        rows = rows[:limit] + [f"… and {len(rows) - limit} more"]
    queue = [clean(name or pid[:12]) for pid, (name, _at) in state.get("queue", {}).items()]
    if queue:
        rows.append("**Queued:** " + ", ".join(queue[:20]) + (" …" if len(queue) > 20 else ""))
    return rows


def _span(delta: _dt.timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def killfeed_sink(cog: MixinMeta, guild: discord.Guild, channel: Any, scope: str, options: Any):
    """The killfeed's sink for one game server, with the guild's display options,
    announcements, deaths routing and delay (a plain sink when none is set)."""
    from ..pipeline.announce import DEATHS_CHANNEL, DEATHS_FEED
    from ..pipeline.killfeed_live import LiveKillSink
    from ..pipeline.sinks.discord import KillfeedSink
    from .channels import channel_problem, resolve_channel

    kill_options = KillOptions.from_options(dict(options or {}))
    render = kill_renderer(kill_options)
    feed = KillfeedSink(channel, cog.ledger, scope, render=render)
    deaths = None
    if kill_options.deaths == DEATHS_CHANNEL:
        deaths_id = (options or {}).get("deaths_channel")
        target = resolve_channel(guild, deaths_id) if deaths_id else None
        if target is None or channel_problem(guild, target, deaths_id):
            kill_options = replace(kill_options, deaths=DEATHS_FEED)  # never lose them
        else:
            deaths = KillfeedSink(target, cog.ledger, scope + "#deaths", render=render)
    return LiveKillSink(
        feed, live_store(cog), scope, kill_options, now=lambda: wall_now(cog), deaths=deaths
    )


def record_kill_health(poller: Any, report: Any, now: float, wall: float) -> str:
    """Note a killfeed run's figures on the server's poller; returns its summary."""
    from ..pipeline.sources import KILLS

    stream = poller.health[KILLS]
    stream.record(now, report.lines, report.events)
    mtime = getattr(poller, "last_mtime", {}).get(KILLS)
    if report.posted and mtime:
        stream.record_delay(wall - mtime)
    return stream.summary(now)
