"""How the bot waits for a worker's result on the real Redis: the worker's announcement wakes
it (no polling once subscribed), and a missed announcement is still covered by polling."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from test_killfeed_pipeline import FIRST, ids_of, lines, world
from test_workers_brokers import KEY, run, server_dir
from workers_harness import (
    SHARED_REDIS,
    bot_backend,
    drop_prefix,
    new_prefix,
    spawn_worker,
    stop_worker,
    wait_live,
)

from taskcog.engine.backends import TaskiqBackend
from taskcog.engine.backends.taskiq import ANNOUNCED_POLL

pytestmark = pytest.mark.slow


def count_polls(backend: TaskiqBackend) -> Counter[str]:
    """Count the result backend's "is it ready?" calls (the real calls, passed through)."""
    results = backend.broker.result_backend
    real = results.is_result_ready
    calls: Counter[str] = Counter()

    async def is_result_ready(task_id: str) -> bool:
        calls["is_ready"] += 1
        return await real(task_id)

    results.is_result_ready = is_result_ready  # type: ignore[method-assign]
    return calls


async def two_rounds(
    tmp_path: Path, backend: TaskiqBackend, calls: Counter[str]
) -> tuple[int, list[int]]:
    """A first run (starts the announcement listener), then 25 kills: the polls of the second
    run, and what each run posted."""
    async with world(tmp_path) as w:
        folder = server_dir(tmp_path, "s1")
        spec: dict[str, Any] = {"kind": "local", "base_path": str(folder.parents[3])}
        first = await run(w, backend, "1:s1", spec)
        directory = backend.directory
        assert directory is not None
        for _ in range(500):  # subscribed within a round trip of the first job
            if directory.listening:
                break
            await asyncio.sleep(0.01)
        assert directory.listening
        data = lines(0, 25)
        with (folder / FIRST).open("ab") as handle:
            handle.write(data)
        calls.clear()
        second = await run(w, backend, "1:s1", spec)
        assert w.posted_ids() == Counter({i: 1 for i in ids_of(data)})
        return calls["is_ready"], [first.posted, second.posted]


async def test_an_announced_result_is_fetched_without_a_single_poll(tmp_path: Path) -> None:
    prefix = new_prefix()
    proc = spawn_worker(SHARED_REDIS, prefix, KEY, "w1")
    try:
        async with bot_backend(SHARED_REDIS, prefix) as backend:
            await wait_live(backend.directory, {"w1"})  # type: ignore[arg-type]
            calls = count_polls(backend)
            polls, posted = await two_rounds(tmp_path, backend, calls)
            assert posted == [0, 25]
            assert polls == 0  # the worker's announcement woke the bot
    finally:
        stop_worker(proc)
        await drop_prefix(SHARED_REDIS, prefix)


async def test_a_missed_announcement_is_covered_by_polling(tmp_path: Path) -> None:
    prefix = new_prefix()
    proc = spawn_worker(SHARED_REDIS, prefix, KEY, "w1")
    try:
        async with bot_backend(SHARED_REDIS, prefix) as backend:
            assert backend.directory is not None
            # The bot listens where no worker announces: every announcement is missed.
            backend.directory.keys.done = f"{prefix}:elsewhere"
            await wait_live(backend.directory, {"w1"})
            calls = count_polls(backend)
            polls, posted = await two_rounds(tmp_path, backend, calls)
            assert posted == [0, 25]  # still every kill, once
            assert polls >= 1  # found by the fallback poll ...
            assert ANNOUNCED_POLL <= 0.5  # ... which comes soon
    finally:
        stop_worker(proc)
        await drop_prefix(SHARED_REDIS, prefix)
