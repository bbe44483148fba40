"""Killfeed announcements (long shots, streaks, streak ends), deaths routing and the delayed
feed: in order, exactly once, across a restart of the process."""

from __future__ import annotations

import datetime as _dt

import discord
import pytest
from test_serverlog_pipeline import KILLS, _render, _Response, make_rig, titles

from taskcog.pipeline.announce import KillOptions, kill_reducer
from taskcog.pipeline.events import KillEvent
from taskcog.pipeline.killfeed import ingest_once
from taskcog.pipeline.killfeed_live import LiveKillSink
from taskcog.pipeline.notices import Notice
from taskcog.pipeline.sinks.discord import KillfeedSink, kill_embed

pytestmark = pytest.mark.asyncio
T0 = _dt.datetime(2025, 5, 15, 10, tzinfo=_dt.UTC)


def kill(n: int, killer: str = "k1", victim: str | None = None, distance: float = 10.0,
         kind: str = "kill") -> KillEvent:  # fmt: skip
    victim = victim or f"v{n}"
    killer_id = victim if kind == "suicide" else killer
    return KillEvent(
        f"{n:032x}", T0 + _dt.timedelta(seconds=n), killer_id.upper(), killer_id,
        victim.upper(), victim, "M4", distance, "PC", "PC", kind,
    )  # fmt: skip


def line(n: int, killer: str = "k1", victim: str | None = None, distance: int = 10) -> str:
    victim = victim or f"v{n}"
    stamp = (T0 + _dt.timedelta(seconds=n)).strftime("%Y.%m.%d-%H.%M.%S")
    return f"{stamp};{killer.upper()};{killer};{victim.upper()};{victim};M4;{distance};PC;PC;\n"


def reduce_all(options: KillOptions, events: list[KillEvent]) -> list[tuple[str, dict]]:
    state, posts = kill_reducer(options, 0.0)({}, events)
    return [(p.payload["type"], p.payload.get("data", {})) for p in posts]


def test_streaks_announced_at_thresholds_and_their_end():
    events = [kill(n) for n in range(1, 11)] + [kill(11, killer="k2", victim="k1")]
    posts = reduce_all(KillOptions(long_shot=None), events)
    assert posts == [
        ("streak", {"name": "K1", "kills": 5}),
        ("streak", {"name": "K1", "kills": 10}),
        ("streak_end", {"name": "K1", "kills": 10, "by": "K2"}),
    ]
    # A suicide ends a streak without a killer; below streak_end nothing is said.
    short = [kill(n) for n in range(1, 5)] + [kill(5, victim="k1", kind="suicide")]
    assert reduce_all(KillOptions(long_shot=None), short) == []
    ended = [kill(n) for n in range(1, 6)] + [kill(6, victim="k1", kind="suicide")]
    assert reduce_all(KillOptions(long_shot=None, streaks=()), ended) == [
        ("streak_end", {"name": "K1", "kills": 5, "by": None})
    ]


def test_long_shots_from_the_set_distance_and_each_kind_turns_off():
    events = [kill(1, distance=299.9), kill(2, killer="k2", distance=300.0)]
    posts = reduce_all(KillOptions(), events)
    assert [p[0] for p in posts] == ["long_shot"] and posts[0][1]["name"] == "K2"
    assert reduce_all(KillOptions(long_shot=None), events) == []
    many = [kill(n) for n in range(1, 21)]
    off = KillOptions(long_shot=None, streaks=(), streak_end=None)
    assert not off.announces and reduce_all(off, many) == []


def _render_any(item):
    return _render(item) if isinstance(item, Notice) else kill_embed(item)


async def _run(rig, options: KillOptions, deaths=None):
    feed = KillfeedSink(rig.channel, rig.ledger, "1:eu1", render=_render_any)
    sink = LiveKillSink(feed, rig.live, "1:eu1", options, now=rig.clock, deaths=deaths)
    return await ingest_once(rig.source, sink, rig.ledger, rig.pool, "1:eu1", poller=rig.poller)


async def test_announcements_follow_their_kills_in_the_feed(tmp_path):
    async with make_rig(tmp_path) as rig:
        options = KillOptions(long_shot=300)
        await _run(rig, options)
        rig.append(KILLS, "".join(line(n, distance=400 if n == 2 else 5) for n in range(1, 6)))
        rig.clock.t += 2
        await _run(rig, options)
        got = titles(rig.handle)
        assert len(got) == 7 and got[5:] == ["long_shot K1", "streak K1"]
        rig.clock.t += 2
        await _run(rig, options)  # nothing new, nothing repeated
        assert len(titles(rig.handle)) == 7


async def test_delayed_feed_posts_late_in_order_once_across_a_restart(tmp_path):
    async with make_rig(tmp_path) as rig:
        options = KillOptions(delay=300, long_shot=None, streaks=(5,), streak_end=None)
        await _run(rig, options)
        rig.append(KILLS, "".join(line(n) for n in range(1, 13)))
        rig.clock.t += 2
        start = rig.clock.t
        assert (await _run(rig, options)).posted == 12  # queued, not posted
        assert titles(rig.handle) == []
        rig.clock.t += 150
        rig.append(KILLS, line(13))
        await _run(rig, options)
        assert titles(rig.handle) == []
        await rig.close()
        rig.open()  # the bot restarts: the queue and its due times are in SQLite
        rig.clock.t = start + 301
        await _run(rig, options)
        got = titles(rig.handle)
        assert len(got) == 13  # 12 kills and the streak, not the kill read 150 s later
        assert [t.split(" → ")[1] for t in got if "→" in t] == [f"V{n}" for n in range(1, 13)]
        assert got.index("streak K1") == 5  # right after the fifth kill
        await _run(rig, options)
        assert len(titles(rig.handle)) == 13
        rig.clock.t = start + 451
        await _run(rig, options)
        assert titles(rig.handle)[-1].endswith("V13") and len(titles(rig.handle)) == 14
        ids = [e.footer.text for m in rig.handle.history() for e in m.embeds]
        assert len(ids) == len(set(ids))


async def test_suicides_go_to_their_own_channel_or_nowhere(tmp_path):
    async with make_rig(tmp_path) as rig:
        guild = rig.handle.guild if hasattr(rig.handle, "guild") else None
        assert guild is not None
        other = guild.create_text_channel("deaths")
        deaths_channel = rig.channel.guild.get_channel(other.id)
        deaths = KillfeedSink(deaths_channel, rig.ledger, "1:eu1#deaths")
        options = KillOptions(deaths="deaths", long_shot=None, streaks=(), streak_end=None)
        await _run(rig, options, deaths)
        rig.append(KILLS, line(1) + line(2, killer="v2") + line(3))  # v2 killed themselves
        rig.clock.t += 2
        await _run(rig, options, deaths)
        assert len(titles(rig.handle)) == 2 and len(titles(other)) == 1
        hidden = KillOptions(deaths="hidden", long_shot=None, streaks=(), streak_end=None)
        rig.append(KILLS, line(4, killer="v4") + line(5))
        rig.clock.t += 2
        await _run(rig, hidden, deaths)
        assert len(titles(rig.handle)) == 3 and len(titles(other)) == 1


def test_display_options_hide_fields_and_notices_fit_an_embed():
    from taskcog.red.live import kill_renderer, notice_embed, voice_name

    event = kill(1, distance=412.0)
    full = kill_renderer(KillOptions())(event).description
    assert "**Distance:** 412 m" in full and "**Weapon:** M4" in full and "**Platforms:**" in full
    bare = kill_renderer(KillOptions(show_distance=False, show_platform=False))(event)
    assert "Distance" not in bare.description and "Platforms" not in bare.description
    assert "**Weapon:** M4" in bare.description and bare.footer.text == f"kill {event.id}"
    long_name = Notice("ab" * 16, "streak", T0, {"name": "@everyone " + "x" * 500, "kills": 5})
    embed = notice_embed(long_name)
    assert len(embed.title) <= 256 and "@\u200beveryone" in embed.title
    assert embed.footer.text == "log " + "ab" * 16
    state = {"online": {"a": "t", "b": "t"}, "queue": {"c": ["C", "t"]}, "max_players": 40}
    assert voice_name("eu1", state, 50) == "🟢 EU1 2/50 (1 queued)"
    assert voice_name("eu1", state, None) == "🟢 EU1 2/40 (1 queued)"


class _FailsAfter:
    """The channel sends ``n`` messages, then Discord answers 503 (the message may exist)."""

    def __init__(self, channel, n: int) -> None:
        self._channel, self.left = channel, n

    def __getattr__(self, name: str):
        return getattr(self._channel, name)

    async def send(self, *args, **kwargs):
        if self.left <= 0:
            raise discord.HTTPException(_Response(503), "Discord is down")
        self.left -= 1
        return await self._channel.send(*args, **kwargs)


async def test_delayed_feed_cut_off_mid_flush_posts_the_rest_once_in_order(tmp_path):
    async with make_rig(tmp_path) as rig:
        options = KillOptions(delay=60, long_shot=None, streaks=(), streak_end=None)
        await _run(rig, options)
        rig.append(KILLS, "".join(line(n) for n in range(1, 16)))
        rig.clock.t += 2
        await _run(rig, options)
        rig.clock.t += 61
        real = rig.channel
        rig.channel = _FailsAfter(real, 1)  # the first message of ten goes out, then 503
        with pytest.raises(discord.HTTPException):
            await _run(rig, options)
        assert len(titles(rig.handle)) == 10
        rig.channel = real
        await rig.close()
        rig.open()
        await _run(rig, options)
        await _run(rig, options)
        got = [t.split(" → ")[1] for t in titles(rig.handle)]
        assert got == [f"V{n}" for n in range(1, 16)]
