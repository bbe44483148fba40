"""The ``killfeed`` task: each guild's game servers, tailed and posted exactly once.

Per run and per game server: the live Source (one reused SFTP connection), a sink bound to the
guild's killfeed channel, and one :func:`~taskcog.pipeline.killfeed.ingest_once`. One server's
failure does not stop the others; the run then fails with one line per failing server so the
task backs off and ``[p]tasks status`` says why. A channel problem stops the whole run before
anything is read, so no offset moves.
"""

from __future__ import annotations

import logging

from redbot.core.i18n import Translator

from ...pipeline.killfeed import KillfeedReport, ingest_once
from ...pipeline.sinks.discord import ChannelUnavailable, KillfeedSink
from ...pipeline.sources import HostKeyChanged, HostKeyUntrusted, SourceError, Unreachable
from ..abc import MixinMeta
from ..channels import channel_problem, resolve_channel
from ..registry import TaskContext, TaskSpec

log = logging.getLogger("red.taskcog.killfeed")
_ = Translator("TaskCog", __file__)


class KillfeedError(RuntimeError):
    """One or more game servers failed; the message has one redacted line per server."""


class KillfeedUnreachable(KillfeedError, ConnectionError):
    """Every failing server was unreachable: transient, retried with backoff, no circuit."""


def scope_of(guild_id: int, server: str) -> str:
    return f"{guild_id}:{server}"


def killfeed_spec(cog: MixinMeta) -> TaskSpec:
    async def killfeed(ctx: TaskContext) -> str:
        guild = ctx.guild
        assert guild is not None
        servers = await cog.servers.list(guild.id)
        if not servers:
            note = _("no game servers yet: add one with `[p]taskset server add`")
            cog.notes[(ctx.task, guild.id)] = note
            return note
        channel_id = cog.settings.effective(cog.registry.get(ctx.task), guild.id).channel_id
        channel = resolve_channel(guild, channel_id)
        problem = channel_problem(guild, channel, channel_id)
        if problem:
            raise ChannelUnavailable(problem)
        failures: list[str] = []
        transient = True
        posted = malformed = 0
        samples: list[str] = []
        for info in servers:
            scope = scope_of(guild.id, info.name)
            source = await cog.servers.source(guild.id, info)
            sink = KillfeedSink(channel, cog.ledger, scope)
            try:
                report: KillfeedReport = await ingest_once(
                    source, sink, cog.ledger, ctx.pool, scope
                )
            except (ChannelUnavailable, KillfeedError):
                raise
            except HostKeyUntrusted as exc:
                await cog.servers.update(guild.id, info.name, seen_fingerprint=exc.fingerprint)
                failures.append(f"{info.name}: {exc}")
                transient = False
            except HostKeyChanged as exc:
                await cog.servers.update(guild.id, info.name, seen_fingerprint=exc.got)
                failures.append(f"{info.name}: {exc}")
                transient = False
            except SourceError as exc:
                failures.append(f"{info.name}: {source.redact(str(exc))}")
                transient = transient and isinstance(exc, Unreachable)
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status == 429 or type(exc).__name__ == "RateLimited":
                    raise  # the supervisor waits retry_after; nothing was committed
                text = source.redact(str(exc)) or type(exc).__name__
                log.debug("killfeed %s failed", scope, exc_info=True)
                failures.append(f"{info.name}: {type(exc).__name__}: {text}")
                transient = transient and isinstance(exc, (OSError, ConnectionError))
            else:
                posted += report.posted
                malformed += report.malformed
                samples.extend(f"{info.name}: {s}" for s in report.samples)
        if samples:
            cog.samples[(ctx.task, guild.id)] = samples[-10:]
        note = _("posted {posted} kill(s) from {n} server(s)").format(
            posted=posted, n=len(servers)
        )
        if malformed:
            note += _("; skipped {n} malformed line(s)").format(n=malformed)
        cog.notes[(ctx.task, guild.id)] = note
        if failures:
            error = KillfeedUnreachable if transient else KillfeedError
            raise error("; ".join(failures)) from None
        return note

    return TaskSpec(
        name="killfeed",
        run=killfeed,
        description=_("Posts each kill from this server's game servers, exactly once."),
        scope="guild",
        default_schedule="every 60s",
        min_interval=10,
        timeout=600,
    )
