"""What the stats commands and the leaderboard task show: boards, player cards, flagged kills.

Pure functions of the store's records, within Discord's embed limits (25 fields, 256-character
titles, 1,024-character field values, 4,096-character descriptions, 6,000 characters per
message). Player names come from game logs: they are escaped and cut, never trusted.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Mapping, Sequence

import discord
from discord.utils import escape_markdown, escape_mentions
from redbot.core.i18n import Translator
from redbot.core.utils.chat_formatting import humanize_number

from ..pipeline.stats import BOARDS, PERIODS

_ = Translator("TaskCog", __file__)

EMBED_TOTAL = 6000
COLOUR = discord.Colour(0xB5412B)
NAME_LIMIT = 32
BOARD_TITLES = {
    "kills": "Kills",
    "deaths": "Deaths",
    "kd": "K/D",
    "distance": "Longest kill",
    "streak": "Best kill streak",
    "weapon": "Weapons",
}
PERIOD_TITLES = {"today": "Today", "week": "This week", "month": "This month", "all": "All time"}
MODES = ("post", "edit")
DEFAULT_BOARDS = ("kills", "kd", "distance")
MEDALS = {1: "\N{FIRST PLACE MEDAL}", 2: "\N{SECOND PLACE MEDAL}", 3: "\N{THIRD PLACE MEDAL}"}


def name_text(name: str, limit: int = NAME_LIMIT) -> str:
    """A game name as shown: one line, cut, markdown and mentions escaped."""
    flat = " ".join(str(name).split()) or "?"
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return escape_markdown(escape_mentions(flat))


def value_text(board: str, value: float) -> str:
    if board == "kd":
        return f"{value:.2f}"
    if board == "distance":
        return f"{humanize_number(round(value))} m"
    return humanize_number(int(value))


def row_line(board: str, row: Any) -> str:
    rank = MEDALS.get(row.rank, f"`{row.rank:>2}.`")
    line = f"{rank} **{name_text(row.name)}** — {value_text(board, row.value)}"
    detail = _detail(board, row)
    if detail:
        line += f" · {name_text(detail, 60)}"
    return line


def _detail(board: str, row: Any) -> str:
    """The row's detail without what the value already says ("1500 m, SVD" -> "SVD")."""
    detail = str(row.detail or "")
    first, _sep, rest = detail.partition(", ")
    digits = first.split(" ")[0].replace(",", "")
    if digits.replace(".", "", 1).isdigit() and round(float(digits)) == round(row.value):
        return rest
    return detail


def board_title(board: str, period: str, server: str | None) -> str:
    where = f" · {server}" if server else ""
    return f"{BOARD_TITLES[board]} — {PERIOD_TITLES[period]}{where}"


def board_embed(
    board: str,
    period: str,
    server: str | None,
    rows: Sequence[Any],
    *,
    page: int = 1,
    pages: int = 1,
    ranked: int | None = None,
    last_wipe: Sequence[Any] = (),
) -> discord.Embed:
    """One page of a board; the previous season's podium as a "Last wipe" field if given."""
    embed = discord.Embed(title=board_title(board, period, server), colour=COLOUR)
    embed.description = "\n".join(row_line(board, r) for r in rows) or _("Nobody yet.")
    if last_wipe:
        embed.add_field(
            name=_("Last wipe"),
            value="\n".join(row_line(board, r) for r in last_wipe[:3])[:1024],
            inline=False,
        )
    footer = _("Page {page}/{pages}").format(page=page, pages=pages)
    if ranked is not None:
        footer += " · " + _("{n} ranked").format(n=humanize_number(ranked))
    embed.set_footer(text=footer)
    return embed


def fit_embeds(embeds: list[discord.Embed]) -> list[discord.Embed]:
    """Drop trailing rows until the embeds of one message fit 6,000 characters together."""
    while sum(len(e) for e in embeds) > EMBED_TOTAL:
        widest = max(embeds, key=len)
        lines = (widest.description or "").split("\n")
        if len(lines) <= 1:
            embeds.remove(widest)
            continue
        widest.description = "\n".join(lines[:-1])
    return embeds


def parse_board_args(
    tokens: Sequence[str | None],
) -> tuple[str, str, str | None, int | None, list[str]]:
    """``[p]killfeed top`` arguments in any order: (board, period, server word, limit, clashes).

    ``clashes`` names what was given twice; a word that is no board or period is the server."""
    board = period = server = None
    limit: int | None = None
    clashes: list[str] = []
    for token in tokens:
        if token is None:
            continue
        word = str(token).strip().lower()
        if word in BOARDS or word in ("k/d", "longest"):
            clashes += ["board"] if board else []
            board = {"k/d": "kd", "longest": "distance"}.get(word, word)
        elif word in PERIODS or word in ("day", "alltime", "all-time"):
            clashes += ["period"] if period else []
            period = {"day": "today", "alltime": "all", "all-time": "all"}.get(word, word)
        elif word.lstrip("-").isdigit():
            clashes += ["limit"] if limit is not None else []
            limit = int(word)
        else:
            clashes += ["server"] if server else []
            server = str(token).strip()
    return board or "kills", period or "all", server, limit, clashes


def _when(at: _dt.datetime | None) -> str:
    if at is None:
        return "—"
    return discord.utils.format_dt(at, "D")


def _get(obj: Any, name: str, index: int) -> Any:
    """A field of a small record that may be a tuple or an object."""
    if obj is None:
        return None
    if isinstance(obj, (tuple, list)):
        return obj[index] if len(obj) > index else None
    return getattr(obj, name, None)


def player_embed(stats: Any, server: str | None = None) -> discord.Embed:
    """Every stats field of one player (combined across servers unless ``server``)."""
    title = name_text(stats.name, 64)
    if server:
        title += f" · {server}"
    embed = discord.Embed(title=title, colour=COLOUR)
    embed.description = f"`{stats.player_id}`"
    earlier = [n for n in (stats.names or []) if n != stats.name]
    if earlier:
        embed.description += "\n" + _("Also known as: {names}").format(
            names=", ".join(name_text(n) for n in earlier[:10])
        )
    add = embed.add_field
    add(name=_("Kills"), value=humanize_number(stats.kills))
    add(name=_("Deaths"), value=humanize_number(stats.deaths))
    add(name=_("K/D"), value=f"{stats.kd:.2f}")
    suicides: Mapping[str, int] = stats.suicides or {}
    parts = [f"{kind} {n}" for kind, n in sorted(suicides.items()) if n]
    add(
        name=_("Suicides"),
        value=f"{sum(suicides.values())}" + (f" ({', '.join(parts)})" if parts else ""),
    )
    add(name=_("Environmental deaths"), value=humanize_number(stats.environmental))
    add(name=_("Unknown deaths"), value=humanize_number(stats.unknown))
    longest = stats.longest
    if longest:
        distance = _get(longest, "distance", 0) or 0
        weapon = _get(longest, "weapon", 1) or "?"
        victim = _get(longest, "victim", 2) or "?"
        at = _get(longest, "at", 3)
        text = _("{distance} with {weapon} on {victim}, {when}").format(
            distance=value_text("distance", distance),
            weapon=name_text(weapon),
            victim=name_text(victim),
            when=_when(at),
        )
    else:
        text = "—"
    add(name=_("Longest kill"), value=text[:1024], inline=False)
    add(name=_("Favourite weapon"), value=name_text(stats.favourite_weapon or "—"))
    add(
        name=_("Kill streak"),
        value=_("{now} now, best {best}").format(now=stats.streak, best=stats.best_streak),
    )
    for label, pair in ((_("Nemesis"), stats.nemesis), (_("Prey"), stats.prey)):
        if pair:
            value = f"{name_text(_get(pair, 'name', 0) or '?')} ({_get(pair, 'n', 1) or 0})"
        else:
            value = "—"
        add(name=label, value=value)
    weapons = sorted((stats.weapons or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    if weapons:
        add(
            name=_("Weapons"),
            value="\n".join(f"{name_text(w)}: {n}" for w, n in weapons)[:1024],
            inline=False,
        )
    add(name=_("First seen"), value=_when(stats.first_seen))
    add(name=_("Last seen"), value=_when(stats.last_seen))
    return embed


def flag_embed(flag: Any, position: int, total: int) -> discord.Embed:
    embed = discord.Embed(
        title=_("Flagged kill {n}/{total}").format(n=position, total=total), colour=COLOUR
    )
    embed.description = _(
        "**{killer}** killed **{victim}** with {weapon} at **{distance}** on `{server}`, {when}."
    ).format(
        killer=name_text(flag.killer),
        victim=name_text(flag.victim),
        weapon=name_text(flag.weapon),
        distance=value_text("distance", flag.distance),
        server=flag.server,
        when=_when(flag.at),
    )
    embed.set_footer(text=_("Approve: it counts toward records. Reject: it never does."))
    return embed


def leaderboard_options(options: Mapping[str, Any]) -> tuple[list[str], str]:
    """The boards and mode the leaderboard task uses, from its saved options."""
    boards = [b for b in (options.get("boards") or DEFAULT_BOARDS) if b in BOARDS]
    mode = options.get("mode") if options.get("mode") in MODES else "post"
    return boards or list(DEFAULT_BOARDS), str(mode)
