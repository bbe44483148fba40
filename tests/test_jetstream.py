"""The NATS JetStream pieces on the real local NATS server (127.0.0.1:4222), one prefix per
test: results small and large, per-server locks, heartbeats and names."""

from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator

import pytest
from taskiq.exceptions import ResultGetError
from taskiq.result import TaskiqResult
from workers_harness import SHARED_NATS, PrivateNats, drop_prefix, new_prefix, wait_live

from taskcog.engine.backends.brokers import BrokerUnfit, ping
from taskcog.engine.backends.jetstream_conn import Names, token
from taskcog.engine.backends.jetstream_directory import Directory
from taskcog.engine.backends.jetstream_results import JetStreamResults


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    name = new_prefix()
    yield name
    await drop_prefix(SHARED_NATS, name)


async def test_results_small_as_one_message_large_in_pieces(prefix: str) -> None:
    results = JetStreamResults(SHARED_NATS, Names(prefix))
    await results.startup()
    try:
        assert results.client is not None
        limit = results.client.max_payload
        small = TaskiqResult(is_err=False, return_value={"x": "a" * 100}, execution_time=0.1)
        large = TaskiqResult(
            is_err=False, return_value={"x": "b" * (2 * limit + 7)}, execution_time=1
        )
        columns = bytes(range(256)) * (limit // 256 + 3)  # raw bytes over one message
        raw = TaskiqResult(
            is_err=False, return_value={"frame": columns, "lines": 9}, execution_time=1
        )
        cases = (("t-small", small), ("t-large", large), ("t-raw", raw))
        for task_id, result in cases:
            assert not await results.is_result_ready(task_id)
            await results.set_result(task_id, result)
            assert await results.is_result_ready(task_id)
        js = results.client.jetstream()
        stored = (await js.stream_info(f"{prefix}_res")).state.messages
        assert stored == 1 + 3 + 2  # the small one, the large one in three pieces, raw in two
        for task_id, result in cases:
            got = await results.get_result(task_id)
            assert got.return_value == result.return_value
            assert not await results.is_result_ready(task_id)  # deleted once read
            with pytest.raises(ResultGetError):
                await results.get_result(task_id)
        assert (await js.stream_info(f"{prefix}_res")).state.messages == 0  # all deleted
    finally:
        await results.shutdown()


async def test_a_server_lock_is_held_by_one_token_renewed_released_and_expires(
    prefix: str,
) -> None:
    a, b = Directory(SHARED_NATS, prefix), Directory(SHARED_NATS, prefix)
    a.answer_asks(lambda: asyncio.sleep(0))  # workers' side
    b.answer_asks(lambda: asyncio.sleep(0))
    try:
        assert await a.acquire("1:eu main", "ta", ttl=1.0, wait=0)
        assert a.lock_ttl(15.0) == 1.0  # the bucket's TTL, chosen by its first creator
        assert not await b.acquire("1:eu main", "tb", ttl=1.0, wait=0.2)
        assert await b.acquire("1:other", "tb", ttl=1.0, wait=0)  # another server: free
        assert await a.renew("1:eu main", "ta", ttl=1.0)
        assert not await b.renew("1:eu main", "tb", ttl=1.0)  # not its lock
        await a.release("1:eu main", "ta")
        assert await b.acquire("1:eu main", "tb", ttl=1.0, wait=0)
        # b holds it and stops renewing (as if SIGKILLed): the server expires it for a
        started = time.monotonic()
        assert await a.acquire("1:eu main", "ta", ttl=1.0, wait=10)
        assert time.monotonic() - started > 0.5
    finally:
        await a.close()
        await b.close()


async def test_heartbeats_are_judged_by_the_bot_clock_and_a_new_bot_asks(prefix: str) -> None:
    worker = Directory(SHARED_NATS, prefix)
    beats = 0

    async def beat_now() -> None:
        nonlocal beats
        beats += 1
        await worker.beat("host.1-2", {"in_flight": 3, "done": 7}, interval=0.2)

    worker.answer_asks(beat_now)
    bot = Directory(SHARED_NATS, prefix)
    try:
        await worker.beat("host.1-2", {}, interval=0.2)  # before the bot listens: unheard
        # it asked once, the worker beat at once, and every first caller waited for that
        assert await asyncio.gather(*(bot.live() for _ in range(5))) == [["host.1-2"]] * 5
        assert beats == 1
        infos, shared = await bot.workers()
        assert [(w.id, w.in_flight, w.done) for w in infos] == [("host.1-2", 3, 7)]
        assert shared == 0
        assert await bot.alive("host.1-2")
        deadline = time.monotonic() + 5
        while await bot.alive("host.1-2"):  # no more beats: gone after 3 x 0.2 s
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        assert await bot.live(fresh=True) == []
        await worker.beat("host.1-2", {}, interval=10)  # back, with a 30 s ttl
        await wait_live(bot, {"host.1-2"}, timeout=5)
        await worker.leave("host.1-2")
        await wait_live(bot, set(), timeout=5)  # gone when it says so, not after its ttl
    finally:
        await worker.close()
        await bot.close()


def test_names_fit_nats_rules() -> None:
    assert token("w1") == "w1"
    odd = token("host.example.com-12-ab")
    assert "." not in odd and odd != token("host_example_com-12-ab")  # no two share a queue
    names = Names("bot-1")
    assert names.queue("a.b") == f"bot-1.q.w.{token('a.b')}"
    with pytest.raises(ValueError):
        Names("bad prefix")


class NatsWithoutJetStream(PrivateNats):
    def command(self) -> list[str]:
        return [c for c in super().command() if c != "-js"]


async def test_a_nats_server_without_jetstream_is_refused_with_a_clear_line(tmp_path) -> None:
    assert (await ping(SHARED_NATS)) is None  # the machine's server has JetStream on
    server = NatsWithoutJetStream(tmp_path / "store")
    server.start()
    try:
        with pytest.raises(BrokerUnfit, match="JetStream off: start it with `-js`"):
            await ping(server.url)
    finally:
        server.stop()
