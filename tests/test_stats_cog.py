"""Stats, boards, flags, wipes and the leaderboard task through a real Red on simcord.

Kills reach the real stats store the way the live killfeed hands them over: parsed by the real
parser, then ``add_events`` in the bot's pool.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_cog_simcord import in_world

pytestmark = pytest.mark.asyncio


def line(n: int, killer: str, killer_id: str, victim: str, victim_id: str, **kw) -> str:
    weapon = kw.get("weapon", "M4A1")
    distance = kw.get("distance", 100 + n)
    stamp = f"2025.05.15-11.{n // 60:02d}.{n % 60:02d}"
    return f"{stamp};{killer};{killer_id};{victim};{victim_id};{weapon};{distance};PC;PS5;\n"


WOLF = ("Alpha Wolf", "76561198000000001")
DOG = ("Alpha Dog", "76561198000000002")
BRAVO = ("Bravo", "76561198000000003")


def season_lines() -> list[str]:
    lines = []
    n = 0
    for _ in range(5):  # Wolf kills Bravo 5 times, Dog kills Bravo 3 times, Bravo kills Dog twice
        n += 1
        lines.append(line(n, *WOLF, *BRAVO))
    for _ in range(3):
        n += 1
        lines.append(line(n, *DOG, *BRAVO))
    for _ in range(2):
        n += 1
        lines.append(line(n, *BRAVO, *DOG))
    return lines


async def feed(w, lines: list[str], server: str = "eu1") -> None:
    from taskcog.pipeline.parsers.deadside import parse_kills

    cog = w.cog
    result = parse_kills("".join(lines).encode(), final=True, fast=False)
    assert not result.malformed, result.samples
    await cog.pool.submit("db", cog.stats.add_events, w.guild_a.id, server, result.events)


async def add_local_server(w, tmp_path) -> None:
    folder = tmp_path / "game"
    (folder / "deathlogs" / "world_0").mkdir(parents=True, exist_ok=True)
    reply = await w.reply(w.owner, w.chan_a, f"!taskset server add eu1 local {folder}")
    assert "Added `eu1`" in reply, reply


@in_world
async def test_stats_with_an_ambiguous_name_offers_a_select_menu(world):
    w = world
    await feed(w, season_lines())
    replies = await w.say(w.member_a, w.chan_a, "!killfeed stats alpha")
    assert len(replies) == 1 and "2 players match 'alpha'" in replies[0].content
    menu = replies[0]
    await w.member_a.select(menu, [DOG[1]])
    await w.env.settle()
    shown = [m for m in w.chan_a.history() if m.id == menu.id][0]
    embed = shown.embeds[0]
    assert embed.title == "Alpha Dog"
    fields = {f.name: f.value for f in embed.fields}
    assert fields["Kills"] == "3" and fields["Deaths"] == "2" and fields["K/D"] == "1.50"
    for name in (
        "Suicides",
        "Longest kill",
        "Favourite weapon",
        "Kill streak",
        "Nemesis",
        "Prey",
        "First seen",
        "Last seen",
        "Environmental deaths",
        "Unknown deaths",
    ):
        assert name in fields, name
    assert "Bravo" in fields["Nemesis"] and "Bravo" in fields["Prey"]
    # An exact name (or id) goes straight to the card.
    exact = await w.say(w.member_a, w.chan_a, f"!killfeed stats {WOLF[1]}")
    assert exact[0].embeds[0].title == "Alpha Wolf"
    assert "No player matches" in await w.reply(w.member_a, w.chan_a, "!killfeed stats zzzz")
    choices = await w.cog._player_autocomplete(
        SimpleNamespace(guild=w.bot.get_guild(w.guild_a.id), user=None), "alp"
    )
    assert {c.value for c in choices} == {WOLF[1], DOG[1]}


@in_world
async def test_top_pages_and_refuses_bad_input_in_one_line(world):
    w = world
    await feed(w, season_lines())
    board = await w.say(w.member_a, w.chan_a, "!killfeed top")
    embed = board[0].embeds[0]
    assert embed.title.startswith("Kills — All time")
    rows = embed.description.split("\n")
    assert "Alpha Wolf" in rows[0] and "5" in rows[0] and "Alpha Dog" in rows[1]
    kd = (await w.say(w.member_a, w.chan_a, "!killfeed top kd 2"))[0]
    assert len(kd.embeds[0].description.split("\n")) == 2 and kd.components  # a menu of pages
    cases = {
        "!killfeed top nosuch": "is no board, period or game server",
        "!killfeed top kills 26": "1 to 25 players",
        "!killfeed top kills 0": "1 to 25 players",
        "!killfeed top kills week month": "Give the period once",
        "!killfeed top kills kd": "Give the board once",
        "!killfeed top kills all eu9": "is no board, period or game server",
    }
    for command, expected in cases.items():
        text = await w.reply(w.member_a, w.chan_a, command)
        assert expected in text and "\n" not in text.strip(), (command, text)


@in_world
async def test_wipe_needs_the_admins_confirm_and_keeps_the_podium(world):
    w = world
    await add_local_server(w, Path(tempfile.mkdtemp()))
    await feed(w, season_lines())
    question = (await w.say(w.admin_a, w.chan_a, "!taskset server wipe eu1"))[-1]
    assert "Start a new season for `eu1`?" in question.content
    await w.member_a.click(question, label="Wipe eu1")  # not theirs: refused, nothing wiped
    await w.env.settle()
    assert (
        "Alpha Wolf"
        in (await w.say(w.member_a, w.chan_a, "!killfeed top"))[0].embeds[0].description
    )
    await w.admin_a.click(question, label="Wipe eu1")
    await w.env.settle()
    done = [m for m in w.chan_a.history() if m.id == question.id][0]
    assert "New season" in done.content and "Alpha Wolf" in done.content and not done.components
    after = (await w.say(w.member_a, w.chan_a, "!killfeed top"))[0].embeds[0]
    assert "Alpha Wolf" not in after.description
    podium = {f.name: f.value for f in after.fields}["Last wipe"]
    assert "Alpha Wolf" in podium
    assert "Unknown game server" in await w.reply(w.admin_a, w.chan_a, "!taskset server wipe eu9")


@in_world
async def test_flags_are_for_admins_and_approval_counts(world):
    w = world
    await feed(w, [line(1, *WOLF, *BRAVO, distance=2500), line(2, *DOG, *BRAVO, distance=300)])
    await w.say(w.member_a, w.chan_a, "!killfeed flags")
    w.refused()
    w.env.errors.clear()
    longest = (await w.say(w.member_a, w.chan_a, "!killfeed top distance"))[0].embeds[0]
    assert "Alpha Wolf" not in longest.description  # flagged: out of records until approved
    review = (await w.say(w.admin_a, w.chan_a, "!killfeed flags"))[-1]
    assert "Flagged kill 1/1" in review.embeds[0].title
    await w.admin_a.click(review, label="Approve")
    await w.env.settle()
    done = [m for m in w.chan_a.history() if m.id == review.id][0]
    assert "1 approved" in done.content
    longest = (await w.say(w.member_a, w.chan_a, "!killfeed top distance"))[0].embeds[0]
    assert "Alpha Wolf" in longest.description.split("\n")[0]
    assert "1,500" in await w.reply(w.admin_a, w.chan_a, "!taskset stats flagdistance")
    assert "1,200" in await w.reply(w.admin_a, w.chan_a, "!taskset stats flagdistance 1200")
    assert "100 to" in await w.reply(w.admin_a, w.chan_a, "!taskset stats flagdistance 5")
    assert "stored kills" in await w.reply(w.admin_a, w.chan_a, "!taskset stats rebuild")


@in_world
async def test_leaderboard_posts_then_edits_its_message(world):
    w = world
    await feed(w, season_lines())
    board = w.guild_a.create_text_channel("boards")
    await w.env.settle()
    unset = await w.reply(w.admin_a, w.chan_a, "!tasks run leaderboard")
    assert "needs-setup" in unset and "No channel is set" in unset, unset
    await w.reply(w.admin_a, w.chan_a, f"!taskset channel leaderboard {board.mention}")
    assert "Unknown board 'foo'" in await w.reply(
        w.admin_a, w.chan_a, "!taskset leaderboard boards kills,foo"
    )
    assert "kills, streak" in await w.reply(
        w.admin_a, w.chan_a, "!taskset leaderboard boards kills,streak"
    )
    assert ": ok" in await w.reply(w.admin_a, w.chan_a, "!tasks run leaderboard")
    posted = board.history()
    assert len(posted) == 1 and [e.title.split(" — ")[0] for e in posted[0].embeds] == [
        "Kills",
        "Best kill streak",
    ]
    assert "Unknown mode" in await w.reply(w.admin_a, w.chan_a, "!taskset leaderboard mode x")
    assert "`edit`" in await w.reply(w.admin_a, w.chan_a, "!taskset leaderboard mode edit")
    await feed(w, [line(99, *DOG, *WOLF)])
    assert "edited" in await w.reply(w.admin_a, w.chan_a, "!tasks run leaderboard")
    assert len(board.history()) == 1
    await w.bot.get_channel(board.id).get_partial_message(posted[0].id).delete()
    await w.env.settle()
    assert "posted" in await w.reply(w.admin_a, w.chan_a, "!tasks run leaderboard")
    assert len(board.history()) == 1
    await w.reply(w.admin_a, w.chan_a, "!taskset leaderboard mode post")
    await w.reply(w.admin_a, w.chan_a, "!tasks run leaderboard")
    assert len(board.history()) == 2
    await w.say(w.member_a, w.chan_a, "!taskset leaderboard mode edit")
    w.refused()
