"""Finding a player by platform id or by any name they have used: substring hits first
(prefix before infix), then fuzzy ones (rapidfuzz, difflib without it). The guild's names are
cached in memory and reloaded when a name is added."""

from __future__ import annotations

import bisect
import difflib
import sqlite3

from .model import PlayerMatch

try:
    from rapidfuzz import fuzz, process
except ImportError:  # pragma: no cover - Red ships rapidfuzz
    process = None


FUZZY_LENGTH = 3  # fuzzy matches differ in length from the text by at most this


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
        # one string for substring search at C speed; starts[i] = where name i begins
        self.blob = "\n".join(self.lower)
        self.starts = []
        self.by_length: dict[int, tuple[list[int], list[str]]] = {}
        at = 0
        for i, name in enumerate(self.lower):
            self.starts.append(at)
            at += len(name) + 1
            indexes, names = self.by_length.setdefault(len(name), ([], []))
            indexes.append(i)
            names.append(name)

    def containing(self, needle: str, cap: int = 5000) -> list[int]:
        """Indexes of the names containing ``needle`` (at most ``cap``)."""
        found: list[int] = []
        pos = self.blob.find(needle)
        while pos >= 0 and len(found) < cap:
            i = bisect.bisect_right(self.starts, pos) - 1
            if not found or found[-1] != i:
                found.append(i)
            pos = self.blob.find(needle, self.starts[i] + len(self.lower[i]) + 1)
        return found


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

    for i in index.containing(needle):
        name = index.lower[i]
        prefix = 100.0 if name == needle else 90.0 if name.startswith(needle) else 80.0
        offer(i, prefix - min(len(name) - len(needle), 20) * 0.1)
    if not scored:  # fuzzy only when no name holds the text (it scans every name)
        if process is not None:
            # a typo changes the length by a few characters at most: only those names
            for length in range(
                max(1, len(needle) - FUZZY_LENGTH), len(needle) + FUZZY_LENGTH + 1
            ):
                indexes, names = index.by_length.get(length, ((), ()))
                hits = process.extract(
                    needle, names, scorer=fuzz.ratio, limit=limit * 2, score_cutoff=60
                )
                for _name, score, j in hits:
                    offer(indexes[j], min(score, 79.0))
        else:
            for name in difflib.get_close_matches(needle, index.lower, n=limit * 2, cutoff=0.6):
                offer(index.lower.index(name), 70.0)
    ranked = sorted(scored.values(), key=lambda m: (-m.score, m.name.casefold(), m.player_id))
    return ranked[:limit]
