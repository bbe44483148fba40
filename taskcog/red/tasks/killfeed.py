"""The ``killfeed`` task: each guild's game servers, tailed and posted exactly once.

Per run and per game server: the live Source (one reused SFTP connection), a sink bound to the
guild's killfeed channel, and one :func:`~taskcog.pipeline.killfeed.ingest_once`. One server's
failure does not stop the others; the run then fails with one line per failing server so the
task backs off and ``[p]tasks status`` says why. A channel problem stops the whole run before
anything is read, so no offset moves.

A refused login fails its run once and is remembered with the game server; later runs skip
that game server (no new login, no failure, so the others keep their schedule and no circuit
opens) and say so in their note, until ``[p]taskset server password`` saves a new secret.
Text here is shown later by commands, so it names commands with the guild's own prefix.
"""

from __future__ import annotations

import logging

import discord
from redbot.core.bot import Red
from redbot.core.i18n import Translator

from ...engine.backends import BackendUnavailable
from ...engine.supervision import NeedsSetup
from ...pipeline.killfeed import KillfeedReport, ingest_once
from ...pipeline.sinks.discord import ChannelUnavailable
from ...pipeline.sources import (
    AuthFailed,
    HostKeyChanged,
    HostKeyUntrusted,
    KeyUnreadable,
    SourceError,
    Unreachable,
)
from .. import formatting as fmt
from ..abc import MixinMeta
from ..channels import channel_problem, resolve_channel
from ..live import killfeed_sink, record_kill_health, wall_now
from ..registry import TaskContext, TaskSpec
from ..statsfeed import stats_feed

log = logging.getLogger("red.taskcog.killfeed")
_ = Translator("TaskCog", __file__)


class KillfeedError(RuntimeError):
    """One or more game servers failed; the message has one redacted line per server."""


class KillfeedUnreachable(KillfeedError, ConnectionError):
    """Every failing server was unreachable: transient, retried with backoff, no circuit."""


def scope_of(guild_id: int, server: str) -> str:
    return f"{guild_id}:{server}"


async def command(bot: Red, guild: discord.Guild, text: str) -> str:
    """``text`` as a command in backticks, after the guild's first typed prefix (Red caches
    them), or bare if the bot only answers mentions. Never a literal ``[p]``."""
    return f"`{await fmt.typed_prefix(bot, guild)}{text}`"


async def login_problem(bot: Red, guild: discord.Guild, names: list[str], why: str) -> str:
    """One line for the game servers whose stored password or key cannot log in."""
    name = names[0] if len(names) == 1 else "<name>"
    fix = await command(bot, guild, f"taskset server password {name}")
    if why == "key":
        return _(
            "the private key for {names} could not be read: run {fix} with an unencrypted "
            "OpenSSH or PEM key"
        ).format(names=", ".join(names), fix=fix)
    return _("login refused for {names}: check the username and run {fix}").format(
        names=", ".join(names), fix=fix
    )


def killfeed_spec(cog: MixinMeta) -> TaskSpec:
    async def killfeed(ctx: TaskContext) -> str:
        guild = ctx.guild
        assert guild is not None
        servers = await cog.servers.list(guild.id)
        if not servers:
            add = await command(ctx.bot, guild, "taskset server add")
            note = _("No game servers yet: add one with {command}.").format(command=add)
            cog.notes[(ctx.task, guild.id)] = note
            raise NeedsSetup(note)  # waiting for an admin, not failing
        channel_id = cog.settings.effective(cog.registry.get(ctx.task), guild.id).channel_id
        channel = resolve_channel(guild, channel_id)
        problem = channel_problem(guild, channel, channel_id)
        if problem:
            raise ChannelUnavailable(problem)
        failures: list[str] = []
        transient = True
        posted = malformed = 0
        samples: list[str] = []
        health: list[str] = []  # per game server: lines/min, events/min, poll time, delay
        waiting: dict[str, list[str]] = {}  # why -> game servers skipped until a new secret
        untrusted: list[str] = []  # new game servers whose host key an admin has not trusted
        for info in servers:
            scope = scope_of(guild.id, info.name)
            if info.login_failed:
                waiting.setdefault(info.login_failed, []).append(info.name)
                continue
            source = await cog.servers.source(guild.id, info)
            sink = killfeed_sink(cog, guild, channel, scope, ctx.options)
            poller = await cog.servers.poller(guild.id, info)
            try:
                if cog.backends.remote:  # the taskiq backend: a worker reads, the bot posts
                    report: KillfeedReport = await cog.backends.ingest(
                        guild.id, info, sink, scope, observe=stats_feed(cog, scope)
                    )
                else:
                    report = await ingest_once(
                        source,
                        sink,
                        cog.ledger,
                        ctx.pool,
                        scope,
                        poller=poller,
                        observe=stats_feed(cog, scope),
                    )
            except (ChannelUnavailable, KillfeedError, BackendUnavailable):
                raise  # a broker that is down is one line for the whole run, not one per server
            except HostKeyUntrusted as exc:
                await cog.servers.update(guild.id, info.name, seen_fingerprint=exc.fingerprint)
                untrusted.append(info.name)  # configuration, not failure (a *changed* key is)
            except HostKeyChanged as exc:
                await cog.servers.update(guild.id, info.name, seen_fingerprint=exc.got)
                failures.append(f"{info.name}: {exc}")
                transient = False
            except AuthFailed as exc:
                why = "key" if isinstance(exc, KeyUnreadable) else "refused"
                await cog.servers.note_login_failed(guild.id, info.name, source, why)
                failures.append(await login_problem(ctx.bot, guild, [info.name], why))
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
                health.append(f"{info.name}: " + record_kill_health(
                    poller, report, cog.clock.monotonic(), wall_now(cog)))  # fmt: skip
                malformed += report.malformed
                samples.extend(f"{info.name}: {s}" for s in report.samples)
        if samples:
            cog.samples[(ctx.task, guild.id)] = samples[-10:]
        read = len(servers) - sum(len(names) for names in waiting.values())
        note = _("posted {kills} from {servers}").format(
            kills=fmt.plural(posted, _("kill"), _("kills")),
            servers=fmt.plural(read, _("game server"), _("game servers")),
        )
        if malformed:
            note += "; " + _("skipped {lines}").format(
                lines=fmt.plural(malformed, _("malformed line"), _("malformed lines"))
            )
        for why, names in sorted(waiting.items()):
            note += "; " + _("skipped until a new password or key: {problem}").format(
                problem=await login_problem(ctx.bot, guild, names, why)
            )
        cog.notes[(ctx.task, guild.id)] = note + "".join(f"\n{line}" for line in health)
        if failures:
            error = KillfeedUnreachable if transient else KillfeedError
            raise error("; ".join(failures)) from None
        if untrusted:
            test = await command(ctx.bot, guild, "taskset server test")
            trust = await command(ctx.bot, guild, "taskset server trust")
            raise NeedsSetup(
                _(
                    "Host key not trusted yet for {names}: check it with {test} <name>, "
                    "then {trust} <name>."
                ).format(names=", ".join(untrusted), test=test, trust=trust)
            )
        return note

    return TaskSpec(
        name="killfeed",
        posts=True,
        run=killfeed,
        description=_("Posts each kill from this server's game servers, exactly once."),
        scope="guild",
        default_schedule="every 60s",
        min_interval=2,
        timeout=600,
        priority="high",  # never deferred under load
    )
