"""The ``history`` task: a guild's past kills imported into the stats store, never posted.

Not scheduled by default: ``[p]tasks run history [game server]`` (or the button offered after
``[p]taskset server trust``) runs it. The work is :mod:`taskcog.pipeline.history`, in the
pool's ``stats`` lane below the killfeed's (read and parsed by the taskiq workers when the
owner chose that backend, stored here either way); this module adds the one progress message
(edited at most every :data:`PROGRESS_EVERY` seconds) and the summary. ``[p]tasks stop history``
cancels the run between store calls; every file's cursor is committed with its bytes, so the
next run resumes where this one stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import discord
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import box, humanize_number, humanize_timedelta

from ...engine.supervision import NeedsSetup
from ...pipeline.history import (
    LOCAL_WINDOW,
    STATS_LANE,
    HistoryPlan,
    HistoryTotals,
    import_files,
    plan,
)
from ...pipeline.sources import Source
from .. import formatting as fmt
from ..abc import MixinMeta
from ..registry import TaskContext, TaskSpec
from ..statsfeed import HISTORY, flag_distance
from ..stores.servers import ServerInfo

log = logging.getLogger("red.taskcog.history")
_ = Translator("TaskCog", __file__)

PROGRESS_EVERY = 3.0  # seconds between edits of the progress message, at most
BAR_WIDTH = 20
EDIT_TIMEOUT = 10.0
REMOTE_WINDOW = 8  # slices in flight on the workers: enough to keep several of them busy


def bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return "`[" + "█" * filled + "░" * (width - filled) + f"]` {fraction * 100:.0f}%"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 1:
        return _("under a second")
    return humanize_timedelta(seconds=int(seconds)) or _("under a second")


def progress_text(names: list[str], totals: HistoryTotals) -> str:
    """The progress message while an import runs: a bar, files, lines, rate and ETA."""
    lines = totals.lines_estimate
    total = f"~{humanize_number(lines)}" if lines and totals.fraction < 1 else "?"
    if totals.fraction >= 1:
        total = humanize_number(totals.lines)
    return "\n".join(
        [
            _("\N{INBOX TRAY} Importing the kill history of {servers}").format(
                servers=", ".join(f"`{n}`" for n in names)
            ),
            bar(totals.fraction),
            _("Files {done}/{files} · lines {lines}/{total} · {rate} lines/s · ETA {eta}").format(
                done=totals.files_done,
                files=totals.files_total,
                lines=humanize_number(totals.lines),
                total=total,
                rate=humanize_number(round(totals.lines_per_second)),
                eta=_duration(totals.eta),
            ),
        ]
    )


def summary_line(totals: HistoryTotals) -> str:
    return _(
        "{new} kills imported, {known} already known, {malformed} malformed "
        "({lines} lines from {files} in {took})"
    ).format(
        new=humanize_number(totals.new),
        known=humanize_number(totals.known),
        malformed=humanize_number(totals.malformed),
        lines=humanize_number(totals.lines),
        files=fmt.plural(totals.files_done, _("file"), _("files")),
        took=_duration(totals.elapsed),
    )


def summary_text(names: list[str], totals: HistoryTotals, head: str) -> str:
    text = "\n".join([head, bar(totals.fraction), summary_line(totals)])
    if totals.samples:
        body = "\n".join(s[:160] for s in totals.samples)
        text += "\n" + _("Malformed lines (names and ids redacted):") + "\n" + box(body)
    return text[: fmt.MESSAGE_LIMIT]


class ProgressMessage:
    """One message, edited at most every :data:`PROGRESS_EVERY` seconds, then the summary."""

    def __init__(self, channel: discord.abc.Messageable | None, names: list[str]) -> None:
        self.channel = channel
        self.names = names
        self.message: discord.Message | None = None
        self.edited = 0.0

    async def start(self, totals: HistoryTotals) -> None:
        if self.channel is None:
            return
        try:
            self.message = await self.channel.send(
                progress_text(self.names, totals), allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException:
            log.debug("could not post the history progress message", exc_info=True)
        self.edited = time.monotonic()

    async def update(self, totals: HistoryTotals) -> None:
        if self.message is None or time.monotonic() - self.edited < PROGRESS_EVERY:
            return
        self.edited = time.monotonic()
        await self._edit(progress_text(self.names, totals))

    async def finish(self, text: str) -> None:
        await self._edit(text)

    async def _edit(self, text: str) -> None:
        if self.message is None:
            return
        try:
            await asyncio.wait_for(self.message.edit(content=text), EDIT_TIMEOUT)
        except (discord.HTTPException, TimeoutError):
            log.debug("could not edit the history progress message", exc_info=True)


async def all_or_none(runs: list[Any]) -> None:
    """Await every coroutine at once; the first error cancels the others and is raised."""
    tasks = [asyncio.ensure_future(run) for run in runs]
    try:
        done, _pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _ready(info: ServerInfo) -> bool:
    """Readable without an admin's help: logged in before, host key trusted."""
    return not info.login_failed and (info.kind != "sftp" or info.fingerprint is not None)


def history_spec(cog: MixinMeta) -> TaskSpec:
    async def check_server(guild_id: int, text: str) -> str:
        return (await cog.servers.get(guild_id, text)).name  # ServerError is a ValueError

    async def history(ctx: TaskContext) -> str:
        guild = ctx.guild
        assert guild is not None
        store = cog.stats
        if store is None:
            raise RuntimeError("the stats store is not open")
        request = ctx.request
        servers = await cog.servers.list(guild.id)
        if request is not None and request.argument:
            servers = [s for s in servers if s.name == request.argument]
        if not servers:
            raise NeedsSetup(_("No game servers yet: add one with `taskset server add`."))
        waiting = [s.name for s in servers if not _ready(s)]
        servers = [s for s in servers if _ready(s)]
        if not servers:
            raise NeedsSetup(
                _("Test and trust {names} first (`taskset server test`, then `trust`).").format(
                    names=", ".join(waiting)
                )
            )
        channel = request.channel if request is not None and request.channel else ctx.channel
        names = [s.name for s in servers]
        totals = HistoryTotals()
        progress = ProgressMessage(channel, names)
        await progress.start(totals)
        try:
            plans: list[tuple[Source, HistoryPlan]] = []
            for info in servers:
                source = await cog.servers.source(guild.id, info)
                planned = await plan(
                    source, store, ctx.pool, guild.id, info.name, priority=HISTORY
                )
                plans.append((source, planned))
            totals.files_total = sum(len(p.pending) for _s, p in plans)
            totals.bytes_total = sum(p.left_bytes for _s, p in plans)
            flag = await flag_distance(cog, guild.id)

            async def step() -> None:
                ctx.progress(totals.bytes_done, totals.bytes_total, summary_line(totals))
                await progress.update(totals)

            async def one(source: Source, planned: HistoryPlan, info: ServerInfo) -> None:
                remote = None
                if cog.backends.remote:  # read and parsed by the server's worker, stored here
                    remote = await cog.backends.history_slices(guild.id, info)
                await import_files(
                    source,
                    planned,
                    store,
                    ctx.pool,
                    guild.id,
                    totals,
                    flag_over=flag,
                    priority=HISTORY,
                    on_chunk=step,
                    run_slice=remote,
                    window=REMOTE_WINDOW if remote else LOCAL_WINDOW,
                )

            work = [(s, p, i) for (s, p), i in zip(plans, servers, strict=True)]
            if cog.backends.remote:  # each server on its own worker: all of them at once
                await all_or_none([one(*w) for w in work])
            else:  # one at a time: the pool's parse threads stay free for the live killfeed
                for w in work:
                    await one(*w)
            await ctx.pool.submit(STATS_LANE, store.settle, guild.id, priority=HISTORY)
        except asyncio.CancelledError:
            head = _(
                "\N{BLACK SQUARE FOR STOP}\N{VARIATION SELECTOR-16} History import stopped: "
                "`tasks run history` resumes it where it stopped."
            )
            await progress.finish(summary_text(names, totals, head))
            raise
        except Exception as exc:
            text = fmt.one_line_error({"type": type(exc).__name__, "message": str(exc)})
            head = _("\N{CROSS MARK} History import failed: {error}").format(error=text[:300])
            await progress.finish(summary_text(names, totals, head))
            raise
        head = _("\N{WHITE HEAVY CHECK MARK} History imported for {servers}").format(
            servers=", ".join(f"`{n}`" for n in names)
        )
        if waiting:
            head += " " + _("(skipped until trusted: {names})").format(names=", ".join(waiting))
        await progress.finish(summary_text(names, totals, head))
        if totals.samples:
            cog.samples[(ctx.task, guild.id)] = list(totals.samples)
        note = summary_line(totals)
        cog.notes[(ctx.task, guild.id)] = note
        return note

    return TaskSpec(
        name="history",
        posts=True,
        run=history,
        description=_("Imports the game servers' past kills into the stats (run it by hand)."),
        scope="guild",
        default_schedule="every 24h",
        min_interval=3600,
        enabled_by_default=False,
        timeout=None,
        argument=_("game server"),
        check_argument=check_server,
    )


def estimate_text(history: HistoryPlan) -> dict[str, Any]:
    """Files and sizes for the offer after ``[p]taskset server trust``."""
    return {
        "files": len(history.files),
        "size": _size(history.total_bytes),
        "left": _size(history.left_bytes),
    }


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
