"""The server-log feed and the shared pass, over the in-process SFTP server, into simcord.

Joins and leaves posted once with names, the online list across restarts (a new header, a
shorter file) and rotation, and what an unchanged tick costs on the server's side.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
from pathlib import Path

import discord
import pytest
import simcord
from discord.ext import commands
from sftp_server import PASSWORD, USERNAME, SftpServer

from taskcog.engine.pool import WorkerPool
from taskcog.pipeline.killfeed import ingest_once
from taskcog.pipeline.ledger import AsyncLedger, Ledger
from taskcog.pipeline.livestore import AsyncLiveStore, LiveStore
from taskcog.pipeline.online import Selection, online_reducer, parse_selection
from taskcog.pipeline.parsers.serverlog import parse_serverlog
from taskcog.pipeline.serverlog import STATE_KEY, ingest_serverlog_once
from taskcog.pipeline.sinks.discord import KillfeedSink
from taskcog.pipeline.sources import SftpSource
from taskcog.pipeline.sources.shared import ServerPoller

A = "0002a1b2c3d4e5f60718293a4b5c6d7e"
B = "0002ffeeddccbbaa9988776655443322"
C = "00021234567890abcdef1234567890ab"
LOG = "game/Logs/Deadside.log"
KILLS = "game/deathlogs/world_0/2025.05.15-00.00.00.csv"
FIXTURE = Path(__file__).parent / "fixtures" / "serverlog" / "Deadside.log"


def stamp(second: int) -> str:
    return f"[2025.05.17-03.{second // 60:02d}.{second % 60:02d}:{second % 1000:03d}][{second:3d}]"


def login(second: int, name: str, pid: str) -> str:
    return (
        f"{stamp(second)}LogSFPS: [ASFPSGameSession::OnLogin] Login = {name}, ID = |{pid}\n"
        f"{stamp(second)}LogOnline: Warning: Player |{pid} successfully registered!\n"
    )


def leave(second: int, pid: str) -> str:
    return f"{stamp(second)}LogOnline: Player |{pid} successfully unregistered from the session.\n"


class Clock:
    """A hand-moved clock for the poller's monotonic time and the wall time of posts."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


class Rig:
    def __init__(self, root: Path, server: SftpServer, channel, pool, db: Path) -> None:
        self.root, self.server, self.channel, self.pool, self.db = root, server, channel, pool, db
        self.clock = Clock()
        self.open()

    def open(self) -> None:
        self.raw = Ledger(self.db)
        self.ledger = AsyncLedger(self.raw, self.pool)
        self.live = AsyncLiveStore(LiveStore(self.raw), self.pool)
        self.source = SftpSource(
            "127.0.0.1", self.server.port, USERNAME, password=PASSWORD, base_path="/game",
            trusted_fingerprint=self.server.fingerprint,
        )  # fmt: skip
        self.poller = ServerPoller(self.source, monotonic=self.clock)

    async def close(self) -> None:
        await self.source.close()
        self.raw.close()

    def append(self, rel: str, text: str) -> None:
        with open(self.root / rel, "a", encoding="utf-8") as fh:
            fh.write(text)

    async def serverlog(self, selection: Selection = Selection()):
        sink = KillfeedSink(self.channel, self.ledger, "1:eu1#log", render=_render)
        return await ingest_serverlog_once(
            self.poller, sink, self.ledger, self.live, self.pool, "1:eu1#log",
            selection=selection, now=self.clock,
        )  # fmt: skip

    async def killfeed(self):
        sink = KillfeedSink(self.channel, self.ledger, "1:eu1")
        return await ingest_once(
            self.source, sink, self.ledger, self.pool, "1:eu1", poller=self.poller
        )

    async def online(self) -> dict:
        return await self.live.state("1:eu1#log", STATE_KEY)


def _render(notice) -> discord.Embed:
    name = notice.data.get("name") or ""
    embed = discord.Embed(title=f"{notice.kind} {name}".strip())
    embed.set_footer(text=f"log {notice.id}")
    return embed


def titles(handle) -> list[str]:
    return [e.title for m in handle.history() for e in m.embeds]


@contextlib.asynccontextmanager
async def make_rig(tmp_path):
    root = tmp_path / "host"
    (root / "game" / "Logs").mkdir(parents=True)
    (root / "game" / "deathlogs" / "world_0").mkdir(parents=True)
    (root / LOG).write_text("Log file open, 05/17/25 03:00:00\n" + login(1, "Alice", A))
    (root / KILLS).write_text("")
    server = await SftpServer(root).start()
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all())
    pool = WorkerPool()
    try:
        async with simcord.run(bot) as env:
            handle = env.create_guild().create_text_channel("log")
            r = Rig(root, server, bot.get_channel(handle.id), pool, tmp_path / "ledger.sqlite3")
            r.handle = handle
            yield r
            await r.close()
    finally:
        await pool.shutdown()
        await server.stop()


@pytest.mark.asyncio
async def test_joins_and_leaves_posted_once_with_names_and_the_online_list(tmp_path):
    async with make_rig(tmp_path) as rig:
        await _test_joins_and_leaves_posted_once_with_names_and_the_online_list(rig)


async def _test_joins_and_leaves_posted_once_with_names_and_the_online_list(rig):
    first = await rig.serverlog()
    assert first.first_run and first.posted == 0 and titles(rig.handle) == []
    assert list((await rig.online())["online"]) == [A]  # learnt from the log, not posted

    rig.append(LOG, login(10, "Bob", B) + leave(20, A))
    report = await rig.serverlog()
    assert report.posted == 2 and titles(rig.handle) == ["join Bob", "leave Alice"]
    state = await rig.online()
    assert list(state["online"]) == [B] and state["names"][A] == "Alice"

    again = await rig.serverlog()
    assert again.posted == 0 and len(titles(rig.handle)) == 2


@pytest.mark.asyncio
async def test_a_restart_empties_the_online_list_and_is_announced_once(tmp_path):
    async with make_rig(tmp_path) as rig:
        await _test_a_restart_empties_the_online_list_and_is_announced_once(rig)


async def _test_a_restart_empties_the_online_list_and_is_announced_once(rig):
    await rig.serverlog()
    rig.append(LOG, login(10, "Bob", B))
    await rig.serverlog()
    # The server restarts: a new, shorter log with a new header.
    (rig.root / LOG).write_text("Log file open, 05/17/25 04:00:00\n" + login(3, "Carol", C))
    report = await rig.serverlog()
    assert report.restarts == 1
    assert titles(rig.handle)[-2:] == ["restart", "join Carol"]
    assert list((await rig.online())["online"]) == [C]
    # Replaced again by a shorter file without a header line: still a restart, once.
    (rig.root / LOG).write_text(login(5, "Dave", A))
    await rig.serverlog()
    await rig.serverlog()
    assert titles(rig.handle)[-2:] == ["restart", "join Dave"]
    assert titles(rig.handle).count("restart") == 2
    assert list((await rig.online())["online"]) == [A]


@pytest.mark.asyncio
async def test_a_crash_after_applying_posts_from_the_outbox_once(tmp_path):
    async with make_rig(tmp_path) as rig:
        await _test_a_crash_after_applying_posts_from_the_outbox_once(rig)


async def _test_a_crash_after_applying_posts_from_the_outbox_once(rig):
    await rig.serverlog()
    rig.append(LOG, login(10, "Bob", B))
    real = rig.channel
    rig.channel = _Down(real)
    with pytest.raises(discord.HTTPException):
        await rig.serverlog()
    assert titles(rig.handle) == []
    rig.channel = real
    await rig.close()
    rig.open()  # a new process: same SQLite file, nothing in memory
    await rig.serverlog()
    await rig.serverlog()
    assert titles(rig.handle) == ["join Bob"]


class _Down:
    """The channel while Discord answers 503 to every send."""

    def __init__(self, channel) -> None:
        self._channel = channel

    def __getattr__(self, name: str):
        return getattr(self._channel, name)

    async def send(self, *args, **kwargs):
        raise discord.HTTPException(_Response(503), "Discord is down")


class _Response:
    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "test"


@pytest.mark.asyncio
async def test_unchanged_tick_costs_one_stat_per_file_shared_by_both_tasks(tmp_path):
    async with make_rig(tmp_path) as rig:
        await _test_unchanged_tick_costs_one_stat_per_file_shared_by_both_tasks(rig)


async def _test_unchanged_tick_costs_one_stat_per_file_shared_by_both_tasks(rig):
    rig.poller.share_window = 1.0
    await rig.killfeed()
    await rig.serverlog()
    rig.append(KILLS, "2025.05.15-10.00.00;K;k1;V;v1;M4;10;PC;PC;\n")
    rig.append(LOG, login(10, "Bob", B))
    rig.clock.t += 2
    await rig.killfeed()  # the tick's pass: reads both files
    before = dict(rig.server.requests)
    report = await rig.serverlog()  # served from the pass: no request at all
    assert report.posted == 1 and dict(rig.server.requests) == before
    for _ in range(3):  # unchanged ticks: one stat per tailed file, no listing, no open
        rig.clock.t += 2
        rig.server.requests.clear()
        await rig.killfeed()
        await rig.serverlog()
        assert dict(rig.server.requests) == {"stat": 2}
    rig.clock.t += 61  # once a minute the folders are listed again
    rig.server.requests.clear()
    await rig.killfeed()
    await rig.serverlog()
    assert rig.server.requests["stat"] == 2 and rig.server.requests["scandir"] >= 1
    assert rig.poller.shared_hits >= 4


@pytest.mark.asyncio
async def test_kills_rotate_to_a_new_file_after_it_stops_growing(tmp_path):
    async with make_rig(tmp_path) as rig:
        await _test_kills_rotate_to_a_new_file_after_it_stops_growing(rig)


async def _test_kills_rotate_to_a_new_file_after_it_stops_growing(rig):
    await rig.killfeed()
    rig.append(KILLS, "2025.05.15-10.00.00;K;k1;V;v1;M4;10;PC;PC;\n")
    rig.clock.t += 2
    assert (await rig.killfeed()).posted == 1
    newer = "game/deathlogs/world_0/2025.05.16-00.00.00.csv"
    (rig.root / newer).write_text("2025.05.16-00.00.01;K;k1;V2;v2;M4;10;PC;PC;\n")
    rig.clock.t += 2
    assert (await rig.killfeed()).posted == 0  # the old file stopped growing: re-list is due
    rig.clock.t += 11
    assert (await rig.killfeed()).posted == 1


def test_online_counts_across_restarts_with_the_pure_reducer(tmp_path):
    raw = Ledger(tmp_path / "l.sqlite3")
    store = LiveStore(raw)
    events = parse_serverlog(FIXTURE.read_bytes()).events
    reduce = online_reducer(Selection(), announce=True, now=0.0)
    fresh, state = store.apply("s", "online", events, reduce, 0.0)
    assert fresh == len(events) and state["online"] == {} and state["max_players"] == 50
    assert state["names"] == {A: "Alice A", B: "Bob", C: "Carol"}
    kinds = [p["type"] for _, _, p in store.due("s", 1.0)]
    # The first header is a restart from nothing; Carol only queued and disconnected.
    assert kinds == ["restart", "join", "join", "mission", "airdrop", "helicrash", "trader",
                     "convoy", "leave", "leave"]  # fmt: skip
    assert store.apply("s", "online", events, reduce, 0.0)[0] == 0  # a re-read applies nothing
    assert len(store.due("s", 1.0)) == 10
    raw.close()


def test_selection_parses_and_refuses_in_one_line():
    assert parse_selection("joins, kicks all") == Selection(frozenset({"joins", "kicks"}), True)
    for bad in ("", "joins,bogus", "x" * 500):
        with pytest.raises(ValueError) as info:
            parse_selection(bad)
        assert "\n" not in str(info.value) and len(str(info.value)) < 200
    selection = Selection()
    assert selection.posts("mission", "ACTIVE") and not selection.posts("mission", "WAITING")
    assert not selection.posts("kick") and Selection(frozenset({"kicks"})).posts("kick")
    at = _dt.datetime(2025, 1, 1, tzinfo=_dt.UTC)
    assert at.tzinfo is _dt.UTC
