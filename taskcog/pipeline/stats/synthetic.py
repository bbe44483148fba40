"""Synthetic Deadside kill logs for tests and benchmarks: files that look like a server's (one
per day, time-ordered lines, 9 columns with platforms, suicides, vehicle and environmental
deaths), a few malformed lines, and optionally lines repeated from the day before."""

from __future__ import annotations

import datetime as _dt
import random
from pathlib import Path

WEAPONS = ("MR5", "IZH-43", "BB-19", "AK-SU", "UAG", "AK-SM", "Skar", "Mosin", "M99", "VSD")


def player_ids(n: int) -> list[str]:
    """``n`` EOS-like ids (32 hex) and names."""
    return [f"0002{i:028x}" for i in range(n)]


def day_lines(
    day: int, lines: int, players: int, rng: random.Random, start: _dt.datetime
) -> list[str]:
    """One day's log lines (with newlines), in time order."""
    base = int(start.timestamp()) + day * 86400
    seconds = sorted(rng.randrange(86400) for _ in range(lines))
    out = []
    stamps: dict[int, str] = {}
    for i in range(lines):
        second = base + seconds[i]
        stamp = stamps.get(second)
        if stamp is None:
            at = _dt.datetime.fromtimestamp(second, _dt.UTC)
            stamp = stamps[second] = at.strftime("%Y.%m.%d-%H.%M.%S")
        k, v, x = rng.randrange(players), rng.randrange(players), rng.random()
        weapon, dist = WEAPONS[rng.randrange(len(WEAPONS))], rng.randrange(400)
        if k == v:
            k = (v + 1) % players
        kid, vid = f"0002{k:028x}", f"0002{v:028x}"
        if x < 0.08:
            k, kid, weapon, dist = v, vid, "suicide_by_relocation", 0
        elif x < 0.12:
            k, kid, weapon, dist = v, vid, "falling", 0
        elif x < 0.14:
            weapon, dist = "land_vehicle", 1
        elif x < 0.15:
            out.append(f"{stamp};;;P{v};{vid};;1;;PS5;\n")
            continue
        elif x < 0.155:
            out.append(f"{stamp};P{k};{kid};P{v};{vid};{weapon};far;PS5;XSX;\n")  # malformed
            continue
        out.append(f"{stamp};P{k};{kid};P{v};{vid};{weapon};{dist};PS5;XSX;\n")
    return out


def write_logs(
    folder: Path,
    files: int,
    lines_per_file: int,
    *,
    players: int = 1000,
    seed: int = 7,
    repeat: int = 0,
    start: _dt.datetime = _dt.datetime(2025, 1, 1, tzinfo=_dt.UTC),
) -> list[Path]:
    """Write ``files`` daily logs into ``folder``; each also repeats the previous day's last
    ``repeat`` lines (servers rotate files late), which an import must not count twice."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    previous: list[str] = []
    for day in range(files):
        lines = day_lines(day, lines_per_file, players, rng, start)
        at = start + _dt.timedelta(days=day)
        path = folder / f"{at:%Y.%m.%d}-00.00.00.csv"
        path.write_text("".join(previous[-repeat:] if repeat else []) + "".join(lines))
        previous = lines
        paths.append(path)
    return paths
