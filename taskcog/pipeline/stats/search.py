"""Finding a player by platform id or by any name they have used: substring hits first
(prefix before infix), then fuzzy ones (rapidfuzz, difflib without it). The guild's names are
cached in memory and reloaded when a name is added."""

from __future__ import annotations

import difflib
import sqlite3

from .model import PlayerMatch

try:
    from rapidfuzz import fuzz, process
except ImportError:  # pragma: no cover - Red ships rapidfuzz
    process = None


class NameIndex:
    """(pid, name, lower name, player_id, current name) of one guild, in memory."""

    def __init__(self, con: sqlite3.Connection, guild: int) -> None:
        rows = con.execute(
            "SELECT n.pid, n.name, p.player_id, p.name FROM names AS n"
            " JOIN players AS p ON p.pid = n.pid WHERE p.guild = ? ORDER BY n.pid, n.name",
            (guild,),
        ).fetchall()
        self.rows = rows
        self.lower = [row[1].casefold() for row in rows]


def search(
    con: sqlite3.Connection, index: NameIndex, guild: int, text: str, limit: int
) -> list[PlayerMatch]:
    text = text.strip()
    if not text:
        return []
    exact = con.execute(
        "SELECT player_id, name FROM players WHERE guild = ? AND player_id = ?", (guild, text)
    ).fetchone()
    if exact:
        return [PlayerMatch(exact[0], exact[1], exact[0], 100.0)]
    needle = text.casefold()
    scored: dict[str, PlayerMatch] = {}

    def offer(i: int, score: float) -> None:
        _pid, matched, player_id, current = index.rows[i]
        if matched == current:
            score += 0.5  # the current name beats an earlier one
        best = scored.get(player_id)
        if best is None or score > best.score:
            scored[player_id] = PlayerMatch(player_id, current, matched, score)

    for i, name in enumerate(index.lower):
        if needle in name:
            offer(
                i,
                (100.0 if name == needle else 90.0 if name.startswith(needle) else 80.0)
                - min(len(name) - len(needle), 20) * 0.1,
            )
    if len(scored) < limit:
        if process is not None:
            hits = process.extract(
                needle, index.lower, scorer=fuzz.WRatio, limit=limit * 2, score_cutoff=60
            )
            for _name, score, i in hits:
                offer(i, min(score, 79.0))
        else:
            for name in difflib.get_close_matches(needle, index.lower, n=limit * 2, cutoff=0.6):
                offer(index.lower.index(name), 70.0)
    ranked = sorted(scored.values(), key=lambda m: (-m.score, m.name.casefold(), m.player_id))
    return ranked[:limit]
