"""The killfeed end to end: real log files (local and SFTP), the worker pool, a SQLite ledger
and discord.py talking to simcord's simulated Discord.

A "crash" is simulated by a ledger whose write raises a BaseException at the chosen moment
(as SIGKILL would stop the process there), then a fresh Ledger and sink on the same file.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import discord
import pytest
import simcord
from discord.ext import commands
from sftp_server import PASSWORD, USERNAME, SftpServer

from taskcog.engine.pool import WorkerPool
from taskcog.engine.supervision import ErrorKind, classify
from taskcog.pipeline import killfeed
from taskcog.pipeline.events import KILL, SUICIDE, UNKNOWN, VEHICLE, KillEvent
from taskcog.pipeline.killfeed import KillfeedReport, ingest_once
from taskcog.pipeline.ledger import AsyncLedger, Ledger
from taskcog.pipeline.parsers.deadside import parse_kills
from taskcog.pipeline.sinks.discord import (
    ChannelUnavailable,
    KillfeedSink,
    ids_in_message,
    kill_embed,
)
from taskcog.pipeline.sources import KILLS, LocalSource, SftpSource

FIXTURES = Path(__file__).parent / "fixtures" / "deadside"
SCOPE = "1234:Main server"
KILL_DIR = "Deadside/Saved/actual1/deathlogs/world_0"
FIRST = "2025.05.01-00.00.00.csv"
SECOND = "2025.05.02-00.00.00.csv"


def line(i: int, *, killer: str | None = None, victim: str | None = None) -> bytes:
    """A valid 9-column kill line, unique per ``i``."""
    stamp = f"2025.05.01-{i // 3600 % 24:02d}.{i // 60 % 60:02d}.{i % 60:02d}"
    killer = killer if killer is not None else f"Killer{i}"
    victim = victim if victim is not None else f"Victim{i}"
    return f"{stamp};{killer};0002{i:028x};{victim};0003{i:028x};M99;{i % 400};PS5;XSX;\n".encode()


def lines(start: int, stop: int) -> bytes:
    return b"".join(line(i) for i in range(start, stop))


class Crash(BaseException):
    """Stands in for SIGKILL: nothing after it runs, and it is no ordinary error."""


class CrashingLedger(AsyncLedger):
    """An AsyncLedger that "dies" right after the n-th begin_batch or before the n-th commit."""

    def __init__(self, ledger: Ledger, pool: WorkerPool, *, at: str, nth: int) -> None:
        super().__init__(ledger, pool)
        self.at = at
        self.left = nth

    def _tick(self, where: str) -> None:
        if where == self.at:
            self.left -= 1
            if self.left == 0:
                raise Crash(where)

    async def begin_batch(self, scope: str, batch_id: str, ids) -> None:  # type: ignore[override]
        await super().begin_batch(scope, batch_id, ids)
        self._tick("after begin")  # the batch is durable, the message was never sent

    async def begin_unposted(self, scope: str, batch_id: str, ids, limit: int) -> set[str]:  # type: ignore[override]
        already = await super().begin_unposted(scope, batch_id, ids, limit)
        fresh = [i for i in dict.fromkeys(ids) if i not in already]
        if fresh and len(fresh) <= limit:
            self._tick("after begin")  # the batch is durable, the message was never sent
        return already

    async def commit_batch(self, scope, batch_id, message_id, ids) -> None:  # type: ignore[override]
        self._tick("before commit")  # the message exists, the ledger does not know
        await super().commit_batch(scope, batch_id, message_id, ids)


@dataclass
class World:
    env: simcord.Env
    bot: commands.Bot
    guild: simcord.builders.GuildHandle
    handle: simcord.builders.ChannelHandle
    channel: discord.TextChannel
    pool: WorkerPool
    db_path: Path
    kill_dir: Path
    source: LocalSource
    ledgers: list[Ledger]

    def ledger(self, **crash: object) -> AsyncLedger:
        """A fresh Ledger on the same file, as after a restart."""
        ledger = Ledger(self.db_path)
        self.ledgers.append(ledger)
        if crash:
            return CrashingLedger(ledger, self.pool, **crash)  # type: ignore[arg-type]
        return AsyncLedger(ledger, self.pool)

    def sink(self, ledger: AsyncLedger, channel: discord.abc.Messageable | None = None):
        return KillfeedSink(channel or self.channel, ledger, SCOPE)

    async def run(self, ledger: AsyncLedger, **options: object) -> KillfeedReport:
        return await ingest_once(
            self.source, self.sink(ledger), ledger, self.pool, SCOPE, **options  # type: ignore
        )

    def append(self, name: str, data: bytes) -> None:
        with (self.kill_dir / name).open("ab") as handle:
            handle.write(data)

    def posted_ids(self, handle: simcord.builders.ChannelHandle | None = None) -> Counter[str]:
        """How many times each event id appears in the channel (exactly once is the goal)."""
        counts: Counter[str] = Counter()
        for message in (handle or self.handle).history():
            counts.update(ids_in_message(message))
        return counts


def ids_of(data: bytes) -> set[str]:
    return {event.id for event in parse_kills(data, final=True).events}


@contextlib.asynccontextmanager
async def world(tmp_path: Path, *, initial: bytes = b"") -> AsyncIterator[World]:
    kill_dir = tmp_path / "logs" / KILL_DIR
    kill_dir.mkdir(parents=True)
    (kill_dir / FIRST).write_bytes(initial)
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all())
    pool = WorkerPool()
    ledgers: list[Ledger] = []
    try:
        async with simcord.run(bot) as env:
            guild = env.create_guild()
            handle = guild.create_text_channel("killfeed")
            channel = bot.get_channel(handle.id)
            assert isinstance(channel, discord.TextChannel)
            yield World(
                env,
                bot,
                guild,
                handle,
                channel,
                pool,
                tmp_path / "killfeed.sqlite3",
                kill_dir,
                LocalSource(str(tmp_path / "logs")),
                ledgers,
            )
    finally:
        await pool.shutdown()
        for ledger in ledgers:
            ledger.close()


# -- embeds ----------------------------------------------------------------------------------


def _fixture_events(name: str) -> list[KillEvent]:
    return parse_kills((FIXTURES / name).read_bytes(), final=True).events


def test_every_kind_of_death_renders_readably() -> None:
    events = {(e.kind, e.cause): e for e in _fixture_events("platforms_9col.csv")}
    kill = kill_embed(events[KILL, "M99"])
    assert kill.title == "🔫 Zed → Mia"
    assert "**Weapon:** M99" in kill.description and "**Distance:** 152 m" in kill.description
    assert "**Platforms:** PS5 → XSX" in kill.description
    at = events[KILL, "M99"].at
    assert kill.timestamp == at and f"<t:{int(at.timestamp())}:f>" in kill.description
    assert kill.footer.text == f"kill {events[KILL, 'M99'].id}"

    boat = kill_embed(events[VEHICLE, "boat"])
    assert boat.title == "🚤 Old Tom → Mia" and "**Vehicle:** boat" in boat.description

    suicide = kill_embed(events[SUICIDE, "suicide_by_relocation"])
    assert suicide.title == "💀 Zed died (suicide\\_by\\_relocation)"
    assert suicide.colour != kill.colour and "Distance" not in suicide.description
    assert "**Platform:** PS5" in suicide.description

    unknown = kill_embed(events[UNKNOWN, ""])
    assert unknown.title == "❔ Old Tom died" and "**Cause:** unknown" in unknown.description
    assert "**Platform:** XSX" in unknown.description
    assert len({kill.colour, boat.colour, suicide.colour, unknown.colour}) == 4

    legacy = {(e.kind, e.cause): e for e in _fixture_events("legacy_7col.csv")}
    car = kill_embed(legacy[VEHICLE, "land_vehicle"])
    assert car.title == "🚗 Zed → Old Tom" and "**Vehicle:** land vehicle" in car.description
    axe = kill_embed(legacy[KILL, "Woodcutter's Axe"])
    assert "Platform" not in axe.description  # 7-column logs have no platforms
    assert axe.title == "🔫 Big Bad Wolf → Zed"


def test_names_are_escaped_and_cannot_ping() -> None:
    data = line(1, killer="**Bold**_x_`code`", victim="@everyone <@&123456789012345678>")
    (event,) = parse_kills(data).events
    embed = kill_embed(event)
    assert "\\*\\*Bold\\*\\*\\_x\\_\\`code\\`" in embed.title
    assert "@everyone" not in embed.title and "@\u200beveryone" in embed.title
    assert "<@&123456789012345678>" not in embed.title


def test_ten_embeds_with_the_longest_names_fit_one_message() -> None:
    long_name = "W" * 200
    events = parse_kills(b"".join(line(i, killer=long_name, victim=long_name) for i in range(10)))
    embeds = [kill_embed(event) for event in events.events]
    assert sum(len(embed) for embed in embeds) <= 6000
    assert all(len(embed.title) <= 256 for embed in embeds)


# -- the sink on simcord ---------------------------------------------------------------------


async def test_a_thousand_kills_take_a_hundred_messages_of_ten_embeds(tmp_path: Path) -> None:
    events = parse_kills(lines(0, 1000)).events
    async with world(tmp_path) as w:
        sink = w.sink(w.ledger())
        assert await sink.post(events) == 1000
        messages = w.handle.history()
        sends = [r for r in w.env.http_requests if r.method == "POST"]
        assert sink.api_calls == len(sends) == len(messages) == 100
        assert all(len(message.embeds) == 10 for message in messages)
        assert w.posted_ids() == Counter({event.id: 1 for event in events})
        # in order: the first message carries the first ten kills
        assert [e.footer.text for e in messages[0].embeds] == [
            f"kill {event.id}" for event in events[:10]
        ]
        assert await sink.post(events + events[:3]) == 0  # nothing twice
        assert sink.api_calls == 100


async def test_rate_limit_propagates_and_loses_nothing(tmp_path: Path) -> None:
    async with world(tmp_path, initial=lines(0, 3)) as w:
        ledger = w.ledger()
        assert (await w.run(ledger)).first_run
        w.append(FIRST, lines(3, 40))
        before = await ledger.get_cursor(SCOPE, KILLS)
        w.env.inject_error("POST", "/channels/*/messages", status=429, message="slow down")
        with pytest.raises(discord.HTTPException) as caught:
            await w.run(ledger)
        assert classify(caught.value)[0] is ErrorKind.RATE_LIMITED
        assert await ledger.get_cursor(SCOPE, KILLS) == before
        assert (await ledger.stats(SCOPE))["pending"] == 0
        report = await w.run(ledger)  # the supervisor retries after retry_after
        assert report.posted == 37
        assert w.posted_ids() == Counter(dict.fromkeys(ids_of(lines(3, 40)), 1))


# -- exactly once across crashes -------------------------------------------------------------


async def test_crash_between_send_and_commit_is_recovered_from_history(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert (await w.run(w.ledger())).first_run
        w.append(FIRST, lines(0, 35))
        crashing = w.ledger(at="before commit", nth=2)  # message 2 is sent, never recorded
        with pytest.raises(Crash):
            await w.run(crashing)
        assert len(w.handle.history()) == 2
        restarted = w.ledger()
        stats = await restarted.stats(SCOPE)
        assert stats["pending"] == 1 and stats["posted"] == 10
        assert stats["cursors"][KILLS]["offset"] == 0  # the cursor never moved

        sink = w.sink(restarted)
        assert await sink.recover() == 10  # found message 2 in the channel's history
        report = await ingest_once(w.source, sink, restarted, w.pool, SCOPE)
        assert (report.events, report.posted, report.duplicates) == (35, 15, 20)
        assert w.posted_ids() == Counter(dict.fromkeys(ids_of(lines(0, 35)), 1))
        assert (await restarted.stats(SCOPE))["pending"] == 0


async def test_recovery_reads_history_from_this_servers_last_post(tmp_path: Path) -> None:
    """Two servers share the channel and the other keeps posting after this one crashed.

    Recovery asks for the messages *after* this scope's last recorded post, oldest first, so
    on Discord the other server's later posts cannot push the message out of reach. (simcord
    answers ``after=`` with the newest messages, so this test keeps the other server's posts
    within ``history_limit``, and checks the request itself.)
    """
    async with world(tmp_path) as w:
        assert (await w.run(w.ledger())).first_run
        w.append(FIRST, lines(0, 30))
        with pytest.raises(Crash):
            await w.run(w.ledger(at="before commit", nth=2))
        first_message = w.handle.history()[0]
        other = KillfeedSink(w.channel, w.ledger(), "1234:Other server")
        assert await other.post(parse_kills(lines(5000, 5300)).events) == 300

        restarted = w.ledger()
        sink = KillfeedSink(w.channel, restarted, SCOPE, history_limit=50)
        assert await sink.recover() == 10
        reads = [r for r in w.env.http_requests if r.method == "GET" and "messages" in r.path]
        assert reads and reads[-1].params.get("after") == first_message.id
        report = await ingest_once(w.source, sink, restarted, w.pool, SCOPE)
        assert report.posted == 10
        counts = w.posted_ids()
        assert all(counts[event_id] == 1 for event_id in ids_of(lines(0, 30)))


async def test_crash_before_send_posts_those_kills_once_after_restart(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        assert (await w.run(w.ledger())).first_run
        w.append(FIRST, lines(0, 25))
        with pytest.raises(Crash):
            await w.run(w.ledger(at="after begin", nth=2))  # batch 2 begun, not sent
        assert len(w.handle.history()) == 1
        report = await w.run(w.ledger())
        assert report.posted == 15 and report.duplicates == 10
        assert w.posted_ids() == Counter(dict.fromkeys(ids_of(lines(0, 25)), 1))


async def test_crash_after_a_one_trip_begin_posts_those_kills_once(tmp_path: Path) -> None:
    """A post of one message's worth checks and begins its batch in one ledger trip; dying
    right after it (the batch durable, nothing sent) loses and repeats nothing."""
    async with world(tmp_path) as w:
        assert (await w.run(w.ledger())).first_run
        w.append(FIRST, lines(0, 5))
        with pytest.raises(Crash):
            await w.run(w.ledger(at="after begin", nth=1))
        assert len(w.handle.history()) == 0
        assert len(w.ledgers[-1].pending(SCOPE)) == 1  # begun, never sent
        report = await w.run(w.ledger())
        assert report.posted == 5 and report.duplicates == 0
        assert w.posted_ids() == Counter(dict.fromkeys(ids_of(lines(0, 5)), 1))
        assert w.ledgers[-1].pending(SCOPE) == []


async def test_rereading_from_offset_zero_posts_nothing_twice(tmp_path: Path) -> None:
    async with world(tmp_path, initial=lines(0, 5)) as w:
        ledger = w.ledger()
        assert (await w.run(ledger)).first_run
        w.append(FIRST, lines(5, 30))
        assert (await w.run(ledger)).posted == 25
        cursor = await ledger.get_cursor(SCOPE, KILLS)
        await ledger.set_cursor(SCOPE, KILLS, {**cursor, "offset": 0, "size": 0})
        w.append(FIRST, lines(30, 32))
        report = await w.run(ledger)
        # the 5 lines from before the source was added are new to the ledger: a cursor reset
        # is an explicit replay, and everything posted before is skipped
        assert report.events == 32 and report.duplicates == 25 and report.posted == 7
        assert set(w.posted_ids().values()) == {1}


# -- tailing through the pipeline ------------------------------------------------------------


async def test_first_run_posts_nothing_old_then_appends_partials_and_rotation(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, initial=lines(0, 50)) as w:
        ledger = w.ledger()
        first = await w.run(ledger)
        assert first.first_run and first.posted == 0 and w.handle.history() == []

        w.append(FIRST, lines(50, 53) + line(53)[:20])  # three lines and a partial one
        report = await w.run(ledger)
        assert (report.lines, report.posted) == (3, 3)
        assert set(w.posted_ids()) == ids_of(lines(50, 53))

        w.append(FIRST, line(53)[20:] + line(54)[:10])  # the partial line completes
        assert (await w.run(ledger)).posted == 1

        # rotation: the old file's trailing partial line is finished, the new file read
        w.append(FIRST, line(54)[10:-1])  # no newline: nothing will complete it
        w.append(SECOND, lines(100, 104))
        report = await w.run(ledger)
        assert report.posted == 5
        assert w.posted_ids() == Counter(
            dict.fromkeys(ids_of(lines(50, 55)) | ids_of(lines(100, 104)), 1)
        )
        cursor = await ledger.get_cursor(SCOPE, KILLS)
        assert cursor["path"].endswith(SECOND)
        assert (await w.run(ledger)).events == 0  # nothing new: nothing read, nothing sent


async def test_big_chunks_take_the_columnar_path_in_slices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(killfeed, "FAST_PATH_MIN_BYTES", 1024)
    monkeypatch.setattr(killfeed, "EVENT_SLICE", 7)
    async with world(tmp_path) as w:
        ledger = w.ledger()
        await w.run(ledger)
        w.append(FIRST, lines(0, 60) + (FIXTURES / "malformed.csv").read_bytes())
        report = await w.run(ledger, max_bytes=4096, drain=True)
        expected = ids_of(lines(0, 60)) | ids_of((FIXTURES / "malformed.csv").read_bytes())
        assert report.posted == len(expected) and report.malformed == 6
        assert w.posted_ids() == Counter(dict.fromkeys(expected, 1))
        assert report.more is False and w.pool.metrics()["parse"].done > 9


async def test_without_drain_one_poll_is_read_and_more_is_reported(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        ledger = w.ledger()
        await w.run(ledger)
        w.append(FIRST, lines(0, 40))
        report = await w.run(ledger, max_bytes=len(lines(0, 10)), drain=False)
        assert report.more and report.posted == 10
        report = await w.run(ledger)
        assert not report.more and report.posted == 30


async def test_malformed_lines_are_counted_sampled_and_skipped(tmp_path: Path) -> None:
    bad = (FIXTURES / "malformed.csv").read_bytes()
    async with world(tmp_path) as w:
        ledger = w.ledger()
        await w.run(ledger)
        w.append(FIRST, bad + b"\xff\xfe garbage;;\n" + line(7))
        report = await w.run(ledger)
        assert report.malformed == 7 and report.lines == report.events + report.malformed
        assert report.posted == report.events == len(ids_of(bad)) + 1
        assert 0 < len(report.samples) <= 5
        assert all("Zed" not in s and "0002aaaa" not in s for s in report.samples)
        assert any("columns" in s for s in report.samples)


# -- channel failures ------------------------------------------------------------------------


async def test_deleted_channel_raises_clearly_and_keeps_the_cursor(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        ledger = w.ledger()
        await w.run(ledger)
        w.append(FIRST, lines(0, 12))
        before = await ledger.get_cursor(SCOPE, KILLS)
        w.env.backend.delete_channel(w.handle.id)
        await w.env.settle()
        with pytest.raises(ChannelUnavailable, match="#killfeed no longer exists"):
            await w.run(ledger)
        assert await ledger.get_cursor(SCOPE, KILLS) == before
        assert (await ledger.stats(SCOPE))["posted"] == 0

        new_handle = w.guild.create_text_channel("killfeed-2")
        new_channel = w.bot.get_channel(new_handle.id)
        report = await ingest_once(w.source, w.sink(ledger, new_channel), ledger, w.pool, SCOPE)
        assert report.posted == 12
        assert w.posted_ids(new_handle) == Counter(dict.fromkeys(ids_of(lines(0, 12)), 1))


async def test_forbidden_channel_raises_clearly_then_posts_everything(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        me = w.guild.me
        locked = w.guild.create_text_channel(
            "locked", overwrites={me: discord.PermissionOverwrite(send_messages=False)}
        )
        channel = w.bot.get_channel(locked.id)
        ledger = w.ledger()
        sink = w.sink(ledger, channel)
        await ingest_once(w.source, sink, ledger, w.pool, SCOPE)
        w.append(FIRST, lines(0, 15))
        before = await ledger.get_cursor(SCOPE, KILLS)
        with pytest.raises(ChannelUnavailable, match="#locked: it needs Send Messages"):
            await ingest_once(w.source, sink, ledger, w.pool, SCOPE)
        assert await ledger.get_cursor(SCOPE, KILLS) == before

        # Discord refusing what the cache allowed (permissions changed a moment ago)
        w.env.backend.delete_overwrite(locked.id, me.id)
        await w.env.settle()
        w.env.inject_error("POST", "/channels/*/messages", status=403, code=50013)
        with pytest.raises(ChannelUnavailable, match="may not use the killfeed channel #locked"):
            await ingest_once(w.source, sink, ledger, w.pool, SCOPE)
        assert await ledger.get_cursor(SCOPE, KILLS) == before
        assert (await ledger.stats(SCOPE))["pending"] == 0

        report = await ingest_once(w.source, sink, ledger, w.pool, SCOPE)
        assert report.posted == 15
        assert w.posted_ids(locked) == Counter(dict.fromkeys(ids_of(lines(0, 15)), 1))


async def test_server_error_leaves_the_batch_for_recovery(tmp_path: Path) -> None:
    """A 5xx may or may not have created the message: the next run asks the history."""
    async with world(tmp_path) as w:
        ledger = w.ledger()
        await w.run(ledger)
        w.append(FIRST, lines(0, 5))
        w.env.inject_error("POST", "/channels/*/messages", status=502)
        with pytest.raises(discord.HTTPException) as caught:
            await w.run(ledger)
        assert classify(caught.value)[0] is ErrorKind.TRANSIENT
        assert (await ledger.stats(SCOPE))["pending"] == 1
        report = await w.run(ledger)
        assert report.posted == 5 and (await ledger.stats(SCOPE))["pending"] == 0


# -- over SFTP -------------------------------------------------------------------------------


async def test_killfeed_over_a_real_sftp_server(tmp_path: Path) -> None:
    async with world(tmp_path, initial=lines(0, 20)) as w:
        server = await SftpServer(tmp_path / "logs", max_read=4096).start()
        source = SftpSource(
            "127.0.0.1",
            server.port,
            USERNAME,
            password=PASSWORD,
            base_path="/",
            trusted_fingerprint=server.fingerprint,
            connect_timeout=5,
        )
        try:
            ledger = w.ledger()
            sink = w.sink(ledger)
            assert (await ingest_once(source, sink, ledger, w.pool, SCOPE)).first_run
            w.append(FIRST, lines(20, 80))
            report = await ingest_once(source, sink, ledger, w.pool, SCOPE)
            assert report.posted == 60 and report.bytes_read == len(lines(20, 80))
            assert w.posted_ids() == Counter(dict.fromkeys(ids_of(lines(20, 80)), 1))
            assert sink.api_calls == 6
        finally:
            await source.close()
            await server.stop()


def test_report_keeps_at_most_five_samples() -> None:
    report = KillfeedReport("s")
    report.add_samples(["a", "b"])
    report.add_samples([f"s{i}" for i in range(9)])
    assert report.samples == ["a", "b", "s0", "s1", "s2"]
