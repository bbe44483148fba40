"""The ``serverlog`` task: each guild's game servers' Deadside.log, posted as it happens.

Per run and per game server: the server's shared pass (``cog.servers.poller``: one SFTP
connection, one pass per tick with the killfeed), a sink bound to the guild's server-log
channel, and one :func:`~taskcog.pipeline.serverlog.ingest_serverlog_once`. Joins, leaves and
the selected state changes are posted once; the online list is kept in the ledger's SQLite file
for ``[p]killfeed online`` and the optional voice channel name. One game server's failure does
not stop the others; the run then fails with one line per failing server.
"""

from __future__ import annotations

import logging
import time

import discord
from redbot.core.i18n import Translator

from ...engine.clock import SYSTEM_CLOCK
from ...engine.supervision import NeedsSetup
from ...pipeline.online import DEFAULT_SELECTION, Selection
from ...pipeline.serverlog import STATE_KEY, ingest_serverlog_once
from ...pipeline.sinks.discord import ChannelUnavailable, KillfeedSink
from ...pipeline.sources import SERVER_LOG, AuthFailed, HostKeyUntrusted, SourceError, Unreachable
from .. import formatting as fmt
from ..abc import MixinMeta
from ..live import VoiceThrottle, live_store, notice_embed, voice_name, wall_now
from ..registry import TaskContext, TaskSpec
from .killfeed import KillfeedError, KillfeedUnreachable, command, scope_of

log = logging.getLogger("red.taskcog.serverlog")
_ = Translator("TaskCog", __file__)

LOG_SCOPE = "#log"  # the server-log feed's ledger and live scope: "<guild>:<server>#log"


def log_scope(guild_id: int, server: str) -> str:
    return scope_of(guild_id, server) + LOG_SCOPE


def selection_of(options: dict) -> Selection:
    kinds = options.get("events") or DEFAULT_SELECTION
    return Selection(frozenset(kinds), bool(options.get("all_states")))


def serverlog_spec(cog: MixinMeta) -> TaskSpec:
    throttle = VoiceThrottle(getattr(cog, "clock", SYSTEM_CLOCK).monotonic)

    async def serverlog(ctx: TaskContext) -> str:
        guild = ctx.guild
        assert guild is not None and ctx.channel is not None
        servers = await cog.servers.list(guild.id)
        if not servers:
            add = await command(ctx.bot, guild, "taskset server add")
            raise NeedsSetup(_("No game servers yet: add one with {command}.").format(command=add))
        options = dict(ctx.options)
        selection = selection_of(options)
        live = live_store(cog)
        failures: list[str] = []
        transient = True
        posted = lines = 0
        health: list[str] = []
        missing: list[str] = []
        missing_voice: list[str] = []
        for info in servers:
            if info.login_failed:
                continue
            scope = log_scope(guild.id, info.name)
            poller = await cog.servers.poller(guild.id, info)
            sink = KillfeedSink(ctx.channel, cog.ledger, scope, render=notice_embed)
            try:
                report = await ingest_serverlog_once(
                    poller, sink, cog.ledger, live, ctx.pool, scope,
                    selection=selection, now=lambda: wall_now(cog),
                )  # fmt: skip
            except (ChannelUnavailable, NeedsSetup):
                raise
            except HostKeyUntrusted:
                failures.append(_("{server}: host key not trusted yet").format(server=info.name))
                transient = False
                continue
            except (AuthFailed, SourceError) as exc:
                failures.append(f"{info.name}: {poller.source.redact(str(exc))}")
                transient = transient and isinstance(exc, Unreachable)
                continue
            except Exception as exc:
                if getattr(exc, "status", None) == 429 or type(exc).__name__ == "RateLimited":
                    raise
                log.debug("serverlog %s failed", scope, exc_info=True)
                text = poller.source.redact(str(exc)) or type(exc).__name__
                failures.append(f"{info.name}: {type(exc).__name__}: {text}")
                transient = False
                continue
            if report.no_log:
                missing.append(info.name)
            posted += report.posted
            lines += report.lines
            stream = poller.health[SERVER_LOG]
            stream.record(time.monotonic(), report.lines, report.events)
            health.append(f"{info.name}: {stream.summary(time.monotonic())}")
            voice_problem = await _rename_voice(cog, guild, info.name, options, live, throttle)
            if voice_problem:
                missing_voice.append(voice_problem)
        note = _("posted {posts} from {lines}").format(
            posts=fmt.plural(posted, _("server-log post"), _("server-log posts")),
            lines=fmt.plural(lines, _("log line"), _("log lines")),
        )
        if missing:
            note += "; " + _("no Logs/Deadside.log found on {names}").format(
                names=", ".join(missing)
            )
        if missing_voice:
            note += "; " + "; ".join(missing_voice)
        if health:
            note += "\n" + "\n".join(health)
        cog.notes[(ctx.task, guild.id)] = note
        if failures:
            error = KillfeedUnreachable if transient else KillfeedError
            raise error("; ".join(failures)) from None
        return note

    return TaskSpec(
        name="serverlog",
        needs_channel=True,
        run=serverlog,
        description=_("Posts joins, leaves, restarts and events from the game servers' log."),
        scope="guild",
        default_schedule="every 60s",
        min_interval=2,
        timeout=600,
        default_options={"events": list(DEFAULT_SELECTION)},
    )


async def _rename_voice(
    cog: MixinMeta,
    guild: discord.Guild,
    server: str,
    options: dict,
    live,
    throttle: VoiceThrottle,
) -> str | None:
    """Rename the server's voice channel to its count, at most once per ``VOICE_MIN_GAP``.
    Returns a sentence for the task's note when it cannot, else None."""
    channel_id = (options.get("voice") or {}).get(server)
    if not channel_id:
        return None
    channel = guild.get_channel(int(channel_id))
    if not isinstance(channel, (discord.VoiceChannel, discord.StageChannel)):
        return _("the voice channel for {server} no longer exists").format(server=server)
    state = await live.state(log_scope(guild.id, server), STATE_KEY)
    name = voice_name(server, state, (options.get("max_players") or {}).get(server))
    if channel.name == name or not throttle.ready(channel.id):
        return None
    try:
        await channel.edit(name=name, reason="taskcog serverlog: player count")
    except discord.HTTPException as exc:
        log.debug("voice rename failed: %s", exc)
        return _(
            "could not rename the voice channel for {server} (I need Manage Channels)"
        ).format(server=server)
    throttle.renamed(channel.id)
    return name
