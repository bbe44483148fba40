"""The history import end to end: a real Red on simcord reading a real (in-process) SFTP server.

The live killfeed stores kills first; ``[p]tasks run history`` then imports every kill file,
is stopped mid-way by ``[p]tasks stop history`` and resumed, and the totals equal an independent
count of the lines: nothing is counted twice, nothing is lost, nothing is posted.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from redharness import red_world
from test_killfeed_cog import append, embeds_in, kill_line, setup_server, sftp  # noqa: F401

pytestmark = pytest.mark.asyncio

FILES = 4
LINES = 150
KILLERS = 5


def history_line(day: int, n: int) -> str:
    killer = n % KILLERS
    return (
        f"2025.05.{day:02d}-10.{n // 60:02d}.{n % 60:02d};Hunter {killer};"
        f"7656119810000000{killer};Prey {n};7656119820000{n:04d};SVD;{n}.5;PC;PS5;\n"
    )


def write_history(root) -> int:
    """Older kill files (one malformed line among them); returns the valid lines written."""
    folder = root / "game" / "deathlogs" / "world_0"
    for day in range(1, FILES + 1):
        lines = [history_line(day, n) for n in range(LINES)]
        if day == 2:
            lines.insert(7, "this is not a kill line\n")
        (folder / f"2025.05.{day:02d}-00.00.00.csv").write_text("".join(lines))
    return FILES * LINES


def numbers(text: str) -> dict[str, int]:
    found = re.search(r"([\d,]+) kills imported, ([\d,]+) already known, ([\d,]+) malformed", text)
    assert found, text
    new, known, malformed = (int(g.replace(",", "")) for g in found.groups())
    return {"new": new, "known": known, "malformed": malformed}


async def test_history_import_stops_resumes_and_counts_nothing_twice(
    tmp_path, sftp, monkeypatch  # noqa: F811 - the SFTP fixture of test_killfeed_cog
):
    valid = write_history(sftp.root_path) + 1  # + the newest file's line from before
    async with red_world(tmp_path / "red") as w:
        assert "Loaded `taskcog`" in await w.load()
        kills = await setup_server(w, sftp, trust=False)
        await w.reply(w.admin_a, w.chan_a, "!taskset server test eu1")
        trusted = await w.say(w.admin_a, w.chan_a, "!taskset server trust eu1")
        offer = trusted[-1]
        assert f"{FILES + 1} kill files" in offer.content and offer.components, offer.content

        # The live feed first: three new kills posted and stored.
        await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        append(sftp.root_path, kill_line(1), kill_line(2), kill_line(3))
        assert "posted 3 kills" in await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
        valid += 3

        # Bad input and permissions, before anything runs.
        refused = await w.reply(w.admin_a, w.chan_a, "!tasks run history eu9")
        assert "Unknown game server 'eu9'" in refused and "\n" not in refused
        await w.say(w.member_a, w.chan_a, "!tasks run history")
        w.refused()
        w.env.errors.clear()

        # Small chunks; the import's 5th read waits (an external input to simcord) until the
        # command `[p]tasks stop history` cancels the run.
        import taskcog.pipeline.history as history
        from taskcog.pipeline.sources import SftpSource

        monkeypatch.setattr(history, "CHUNK_BYTES", 4096)
        reads = 0
        original = SftpSource.read

        async def held(self, path, offset, length):
            nonlocal reads
            reads += 1
            if reads == 5:
                await w.env.external_wait(asyncio.Event().wait(), reason="a slow game host")
            return await original(self, path, offset, length)

        monkeypatch.setattr(SftpSource, "read", held)
        started = await w.say(w.admin_a, w.chan_a, "!tasks run history")
        assert any("Importing the kill history" in m.content for m in started), started
        stop = await w.say(w.admin_a, w.chan_a, "!tasks stop history")
        texts = [m.content for m in stop]
        assert any("Stopped `history`" in t for t in texts), texts
        assert any("Ran `history`" in t and "cancelled" in t for t in texts), texts
        monkeypatch.setattr(SftpSource, "read", original)
        progress = [m for m in w.chan_a.history() if "History import stopped" in m.content]
        assert len(progress) == 1 and progress[0].edited_at is not None
        stopped = numbers(progress[0].content)
        assert 0 < stopped["new"] < valid - 3

        resumed = await w.reply(w.admin_a, w.chan_a, "!tasks run history")
        assert ": ok" in resumed, resumed
        again = numbers(resumed)
        assert stopped["new"] + again["new"] == valid - 3  # every line, once
        assert stopped["known"] + again["known"] == 3  # the live feed's kills
        assert stopped["malformed"] + again["malformed"] == 1
        summary = [m for m in w.chan_a.history() if "History imported" in m.content]
        assert len(summary) == 1 and "redacted" in summary[0].content
        assert summary[0].edited_at is not None  # the same progress message, edited

        nothing = numbers(await w.reply(w.admin_a, w.chan_a, "!tasks run history eu1"))
        assert nothing == {"new": 0, "known": 0, "malformed": 0}

        # The button offered after trust runs the same import, for the admin who trusted only.
        await w.member_a.click(offer, label="Import history")
        await w.env.settle()
        assert sum("History imported" in m.content for m in w.chan_a.history()) == 2
        await w.admin_a.click(offer, label="Import history")
        await w.env.settle()
        imported = [m for m in w.chan_a.history() if "History imported" in m.content]
        assert len(imported) == 3 and numbers(imported[-1].content)["new"] == 0

        hunter = await w.say(w.member_a, w.chan_a, "!killfeed stats 76561198100000001")
        fields = {f.name: f.value for f in hunter[0].embeds[0].fields}
        assert fields["Kills"] == str(FILES * LINES // KILLERS)
        live = await w.say(w.member_a, w.chan_a, "!killfeed stats k0001")
        assert {f.name: f.value for f in live[0].embeds[0].fields}["Kills"] == "1"
        assert len(embeds_in(kills)) == 3  # the import posted nothing
