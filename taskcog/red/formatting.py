"""Everything taskcog says: status lines, detail views, error lists, the pool table, alerts.

Pure functions of plain values, so they are unit-tested without a bot.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass
from typing import Any, Hashable, Iterable, Mapping, Sequence

from discord.utils import escape_markdown, escape_mentions
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import box, humanize_number, humanize_timedelta

from ..engine.schedules import Schedule, format_duration
from ..engine.schedules.errors import shown
from ..engine.supervision import ErrorRecord, TaskStatus
from .stores.state import Summary

log = logging.getLogger("red.taskcog")
_ = Translator("TaskCog", __file__)

MESSAGE_LIMIT = 2000  # Discord's limit for one message
PAGE_LIMIT = 1900  # a page of a paged reply, with room for the page counter
ECHO_LIMIT = 100  # user input a reply repeats

STATE_EMOJI = {
    "running": "\N{BLACK RIGHT-POINTING TRIANGLE}\N{VARIATION SELECTOR-16}",
    "sleeping": "\N{SLEEPING SYMBOL}",
    "backoff": "\N{HOURGLASS WITH FLOWING SAND}",
    "needs-setup": "\N{WRENCH}",
    "circuit-open": "\N{LARGE RED CIRCLE}",
    "stopped": "\N{BLACK SQUARE FOR STOP}\N{VARIATION SELECTOR-16}",
    "disabled": "\N{NO ENTRY}",
    "finished": "\N{WHITE HEAVY CHECK MARK}",
    "starting": "\N{HOURGLASS}",
    "unavailable": "\N{WARNING SIGN}\N{VARIATION SELECTOR-16}",  # its status could not be read
}


@dataclass
class JobView:
    """One (task, guild) as a status command shows it."""

    task: str
    key: Hashable
    guild_name: str | None
    state: str
    schedule: Schedule
    schedule_source: str
    enabled: bool
    channel: str | None
    summary: Summary
    live: TaskStatus | None
    note: str | None = None
    description: str = ""


def user_text(text: str, limit: int = ECHO_LIMIT) -> str:
    """User input as a reply repeats it: one line, cut to ``limit`` characters with "…", and
    escaped so that it cannot ping anyone or turn into markdown."""
    return escape_markdown(escape_mentions(shown(text, limit)))


def error_text(message: str) -> str:
    """An error that may quote user input (e.g. a ScheduleError) as one line of a reply:
    escaped, bounded, starting with a capital letter."""
    line = shown(message, 300)
    return escape_markdown(escape_mentions(line[:1].upper() + line[1:]))


def schedule_text(schedule: Schedule) -> str:
    """A schedule as replies show it (cron's ``*`` must not turn into italics)."""
    return escape_markdown(schedule.describe())


async def typed_prefix(bot: Any, guild: Any) -> str:
    """The first prefix a person types here (not a mention), for commands in texts the bot
    sends on its own; empty if the bot only answers mentions. Never a literal ``[p]``."""
    try:
        prefixes = await bot.get_valid_prefixes(guild)
    except Exception:  # noqa: BLE001 - a message must not fail for want of a prefix
        return ""
    return next((p for p in prefixes if not p.strip().startswith("<@")), "")


def plural(n: int, one: str, many: str) -> str:
    """``1 run``, ``2 runs``: pass both forms, translated."""
    return f"{humanize_number(n)} {one if n == 1 else many}"


def display_state(enabled: bool, live: TaskStatus | None) -> str:
    """The state word shown to users: a disabled job is 'disabled' unless it is running."""
    if live is not None and live.state.value == "running":
        return "running"
    if not enabled:
        return "disabled"
    if live is None:
        return "starting"
    return live.state.value


def ago(when: _dt.datetime | None, now: _dt.datetime) -> str:
    if when is None:
        return _("never")
    delta = now - when
    if delta.total_seconds() < 1:
        return _("just now")
    return _("{delta} ago").format(delta=humanize_timedelta(timedelta=delta, maximum_units=2))


def discord_time(when: _dt.datetime | None, style: str = "R") -> str:
    if when is None:
        return _("not scheduled")
    return f"<t:{int(when.timestamp())}:{style}>"


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return format_duration(value) if value >= 0.001 else "<1ms"


def last_run(summary: Summary, now: _dt.datetime) -> str:
    if summary.last_start is None:
        return _("never run")
    outcome = summary.last_outcome or "?"
    return _("{ago} ({took}, {outcome})").format(
        ago=ago(summary.last_end or summary.last_start, now),
        took=seconds(summary.last_duration),
        outcome=outcome,
    )


def _unshowable(view: JobView) -> str:
    """What a reply shows for a job that cannot be formatted (one bad job must not take a whole
    list down); the reason goes to the log."""
    log.exception("Could not format %s (%s)", view.task, view.key)
    return "\N{BLACK QUESTION MARK ORNAMENT} " + _(
        "**{task}**: its status cannot be shown right now (details in the bot's log)."
    ).format(task=view.task)


def status_line(view: JobView, now: _dt.datetime) -> str:
    """One line per job: state emoji, schedule, last run, next run, runs and failures.
    Never raises: a job that cannot be shown gets a line that says so."""
    try:
        return _status_line(view, now)
    except Exception:
        return _unshowable(view)


def settings_line(view: JobView, is_global: bool, takes_channel: bool) -> str:
    """One task's settings for ``[p]taskset show``: on/off, schedule and its source, channel.
    Never raises, like :func:`status_line`."""
    try:
        row = _("**{task}** ({scope}): {on} · {schedule} ({source})").format(
            task=view.task,
            scope=_("global") if is_global else _("this server"),
            on=_("enabled") if view.enabled else _("disabled"),
            schedule=schedule_text(view.schedule),
            source=view.schedule_source,
        )
        if takes_channel or view.channel:
            row += " · " + _("channel: {ch}").format(ch=view.channel or _("not set"))
        return row
    except Exception:
        return _unshowable(view)


def _status_line(view: JobView, now: _dt.datetime) -> str:
    emoji = STATE_EMOJI.get(view.state, "\N{BLACK QUESTION MARK ORNAMENT}")
    next_run = view.live.next_run if view.live is not None and view.enabled else None
    parts = [
        f"{emoji} **{view.task}** ({view.state})",
        schedule_text(view.schedule),
        _("last: {last}").format(last=last_run(view.summary, now)),
        _("next: {next}").format(next=discord_time(next_run)) if next_run else _("next: none"),
        _("{runs}, {fails} failed").format(
            runs=plural(view.summary.iterations, _("run"), _("runs")),
            fails=humanize_number(view.summary.total_failures),
        ),
    ]
    if view.guild_name is not None:
        parts.insert(1, user_text(view.guild_name))
    line = " · ".join(parts)
    return line if len(line) <= PAGE_LIMIT else line[: PAGE_LIMIT - 1] + "…"


def status_pages(views: Sequence[JobView], now: _dt.datetime, per_page: int = 10) -> list[str]:
    """One line per job, grouped into pages for SimpleMenu: at most ``per_page`` lines and
    :data:`PAGE_LIMIT` characters a page."""
    if not views:
        return [_("No tasks to show.")]
    chunks: list[list[str]] = [[]]
    for line in (status_line(view, now) for view in views):
        chunk = chunks[-1]
        if chunk and (
            len(chunk) >= per_page or sum(len(x) + 1 for x in chunk) + len(line) > PAGE_LIMIT
        ):
            chunks.append(chunk := [])
        chunk.append(line)
    pages = []
    for n, chunk in enumerate(chunks, 1):
        page = "\n".join(chunk)
        if len(chunks) > 1:
            page += "\n\n" + _("Page {n}/{total}").format(n=n, total=len(chunks))
        pages.append(page)
    return pages


def detail(view: JobView, now: _dt.datetime, prefix: str = "") -> str:
    """The single-task view: every field of the status record, humanized. Never raises.
    ``prefix`` is the invoker's, for the command that fixes an open circuit."""
    try:
        return _detail(view, now, prefix)
    except Exception:
        return _unshowable(view)


def _detail(view: JobView, now: _dt.datetime, prefix: str) -> str:
    live = view.live
    summary = view.summary
    emoji = STATE_EMOJI.get(view.state, "")
    rows = [(_("State"), f"{emoji} {view.state}")]
    if live is not None and live.needs_setup and view.state == "needs-setup":
        rows.append((_("Needs setup"), live.needs_setup[:300]))
    if view.state == "circuit-open":
        rows.append(
            (
                _("To fix"),
                _("fix the cause, then run `{p}tasks restart {task}`").format(
                    p=prefix, task=view.task
                ),
            )
        )
    rows += [
        (_("Schedule"), f"{schedule_text(view.schedule)} ({view.schedule_source})"),
        (_("Enabled"), _("yes") if view.enabled else _("no")),
    ]
    if view.channel is not None:
        rows.append((_("Channel"), view.channel))
    rows += [
        (_("Last run"), last_run(summary, now)),
        (
            _("Next run"),
            discord_time(live.next_run if live and view.enabled else None, "F")
            + (
                f" ({discord_time(live.next_run)})"
                if live and live.next_run and view.enabled
                else ""
            ),
        ),
        (_("Runs"), humanize_number(summary.iterations)),
        (
            _("Failures"),
            _("{total} total, {streak} in a row").format(
                total=humanize_number(summary.total_failures),
                streak=live.consecutive_failures if live else 0,
            ),
        ),
    ]
    if live is not None and live.depends_on:
        rows.append((_("Depends on"), escape_markdown(live.depends_on)))
    if live is not None and live.last_skip:
        rows.append(
            (
                _("Last skipped"),
                f"{ago(live.last_skip_at, now)}: {live.last_skip[:300]}"
                + _(" ({n} skipped)").format(n=humanize_number(live.skipped)),
            )
        )
    if live is not None and live.deferred:
        rows.append((_("Deferred under load"), humanize_number(live.deferred)))
    if live is not None:
        rows.append((_("Restarts"), humanize_number(live.restarts)))
        if live.p50 is not None:
            rows.append((_("Duration"), f"p50 {seconds(live.p50)} · p95 {seconds(live.p95)}"))
    if summary.last_error:
        rows.append((_("Last error"), one_line_error(summary.last_error)))
    if view.note:
        rows.append((_("Last note"), view.note))
    header = f"**{view.task}**"
    if view.guild_name:
        header += f" — {user_text(view.guild_name)}"
    if view.description:
        header += f"\n{view.description}"
    return header + "\n" + "\n".join(f"**{label}:** {value}" for label, value in rows)


def one_line_error(error: Mapping[str, str] | ErrorRecord) -> str:
    if isinstance(error, ErrorRecord):
        kind, message = error.type, error.message
    else:
        kind, message = error.get("type", "Error"), error.get("message", "")
    first = (message.splitlines() or [""])[0]
    if len(first) > 300:
        first = first[:297] + "..."
    return f"{kind}: {first}" if first and first != kind else kind


def error_list(
    errors: Iterable[ErrorRecord], now: _dt.datetime, *, tracebacks: bool, limit: int = 10
) -> str:
    """Recent errors, newest first: messages for admins, full tracebacks for the owner."""
    recent = list(errors)[-limit:][::-1]
    if not recent:
        return _("No recent errors.")
    blocks = []
    for record in recent:
        head = f"**{ago(record.at, now)}** ({record.outcome.value}) {one_line_error(record)}"
        if tracebacks:
            head += "\n" + box(record.traceback[-1800:], lang="py")
        blocks.append(head)
    return "\n".join(blocks)


def sample_list(samples: Sequence[str]) -> str:
    """Redacted malformed input lines a task skipped, as a short block (or nothing)."""
    if not samples:
        return ""
    body = "\n".join(s[:160] for s in samples[-5:])
    return "\n" + _("Malformed lines skipped (names and ids redacted):") + "\n" + box(body)


def pool_table(metrics: Mapping[str, Any], lag: Any) -> str:
    """The worker-pool lanes and the event-loop lag, as a fixed-width table."""
    header = (
        f"{'lane':<8}{'workers':>8}{'queued':>8}{'running':>8}{'done':>8}{'failed':>8}{'p95':>9}"
    )
    lines = [header, "-" * len(header)]
    for name, lane in metrics.items():
        p95 = getattr(lane, "p95", None)
        lines.append(
            f"{name:<8}{getattr(lane, 'workers', 0):>8}{lane.queued:>8}{lane.running:>8}"
            f"{lane.done:>8}{lane.failed:>8}{seconds(p95):>9}"
        )
    lag_line = _("Event-loop lag: p50 {p50} · p99 {p99} · max {max} ({n} samples)").format(
        p50=seconds(lag.p50), p99=seconds(lag.p99), max=seconds(lag.max), n=lag.samples
    )
    return box("\n".join(lines)) + "\n" + lag_line


def preview_lines(times: Sequence[_dt.datetime]) -> str:
    return "\n".join(f"- {discord_time(t, 'F')} ({discord_time(t)})" for t in times)
