"""``[p]taskset global backend`` and ``[p]tasks pool`` through a real Red on simcord, with a
real worker subprocess on a private, password-protected Redis: the broker URL is taken by DM
and never shown or logged, the killfeed posts through the worker, a stopped broker is one line
in the task's status, and no live worker is one alert to the owner."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from pathlib import Path

import pytest
from redharness import red_world
from test_killfeed_cog import KILL_FILE, all_text, append, kill_line
from workers_harness import free_port, new_prefix, spawn_worker, stop_worker, wait_live

from taskcog.engine.backends.redis import Directory

pytestmark = pytest.mark.slow
BROKER_PASSWORD = "broker-s3cret-pw"


@pytest.fixture
def locked_redis():
    port = free_port()
    proc = subprocess.Popen(
        [
            shutil.which("redis-server") or "redis-server",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            BROKER_PASSWORD,
        ],
        stdout=subprocess.DEVNULL,
    )
    yield port, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


async def wait_redis(url: str) -> None:
    directory = Directory(url)
    try:
        for _ in range(200):
            try:
                await directory.redis.ping()
                return
            except Exception:  # noqa: BLE001 - not up yet
                await asyncio.sleep(0.02)
        raise TimeoutError(url)
    finally:
        await directory.close()


async def test_backend_switch_by_dm_pool_and_killfeed_through_a_worker(
    tmp_path: Path, locked_redis, caplog, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)
    port, redis_proc = locked_redis
    url = f"redis://:{BROKER_PASSWORD}@127.0.0.1:{port}/0"
    await wait_redis(url)
    prefix = new_prefix()
    monkeypatch.setenv("TASKCOG_PREFIX", prefix)
    monkeypatch.delenv("TASKCOG_SECRET_KEY", raising=False)
    root = tmp_path / "host"
    (root / "game" / "deathlogs" / "world_0").mkdir(parents=True)
    (root / KILL_FILE).write_text("")
    worker = None
    async with red_world(tmp_path / "red") as w:
        try:
            assert "Loaded `taskcog`" in await w.load()
            refused = await w.reply(w.owner, w.chan_a, f"!taskset global backend taskiq {url}")
            assert "Never type a broker URL in a channel" in refused
            assert "is local" in await w.reply(w.owner, w.chan_a, "!taskset global backend")

            asked = await w.reply(w.owner, w.chan_a, "!taskset global backend taskiq")
            assert "I sent you a DM" in asked
            dm = w.owner_user.dm_channel
            assert "Reply with the broker URL" in dm.last_message.content
            await w.owner_user.send_dm(f"redis://:wrong@127.0.0.1:{port}/0")
            await w.env.settle()
            assert "Could not reach the broker" in dm.last_message.content
            assert "nothing was changed" in dm.last_message.content
            await w.reply(w.owner, w.chan_a, "!taskset global backend taskiq")
            await w.owner_user.send_dm(url)
            await w.env.settle()
            done = dm.last_message.content
            assert "now taskiq on redis://:***@127.0.0.1" in done, done
            key = done.rsplit("||", 2)[1]  # the generated key, for the workers

            pool = await w.reply(w.owner, w.chan_a, "!tasks pool")
            assert "No live worker" in pool and "taskiq on redis://:***@" in pool

            kills = w.guild_a.create_text_channel("kills")
            await w.env.settle()
            await w.reply(w.admin_a, w.chan_a, f"!taskset channel killfeed {kills.mention}")
            add = f"!taskset server add eu1 local {root}"
            assert "Added" in await w.reply(w.owner, w.chan_a, add)
            waiting = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            assert "No worker is running" in waiting, waiting
            owner_dms = [m.content for m in dm.history() if "waiting for workers" in m.content]
            assert len(owner_dms) == 1  # one alert to the owner
            await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            owner_dms = [m.content for m in dm.history() if "waiting for workers" in m.content]
            assert len(owner_dms) == 1  # ...not one per run

            worker = spawn_worker(url, prefix, key, "w1")
            directory = Directory(url, prefix)
            await wait_live(directory, {"w1"})
            await directory.close()
            assert ": ok" in await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            append(root, kill_line(1), kill_line(2), kill_line(3))
            assert "posted 3 kills" in await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            assert len([e for m in kills.history() for e in m.embeds]) == 3
            cog = w.bot.get_cog("TaskCog")
            sent = cog.backends.backend.sent
            imported = await w.reply(w.admin_a, w.chan_a, "!tasks run history")  # on the worker
            assert "0 kills imported, 3 already known" in imported, imported
            assert cog.backends.backend.sent == sent + 1  # one slice, through the broker
            pool = await w.reply(w.owner, w.chan_a, "!tasks pool")
            assert "1 live worker(s)" in pool and "w1" in pool, pool

            redis_proc.terminate()
            redis_proc.wait(10)
            append(root, kill_line(4))
            down = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            assert "unreachable" in down and down.count("unreachable") == 1, down
            status = await w.reply(w.admin_a, w.chan_a, "!tasks status killfeed")
            assert "is unreachable" in status and "retrying with backoff" in status, status
            down = await w.reply(w.admin_a, w.chan_a, "!tasks run history")
            errors = [line for line in down.splitlines() if "unreachable" in line]
            assert len(errors) == 2 and BROKER_PASSWORD not in down, down
            assert "History import failed" in errors[0] and "Ran `history`" in errors[1]
            assert "Backend: taskiq" in await w.reply(w.owner, w.chan_a, "!tasks pool")

            assert "now local" in await w.reply(w.owner, w.chan_a, "!taskset global backend local")
            assert "posted 1 kill" in await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            assert len([e for m in kills.history() for e in m.embeds]) == 4
            imported = await w.reply(w.admin_a, w.chan_a, "!tasks run history")  # local pool
            assert "0 kills imported, 1 already known" in imported, imported
            assert BROKER_PASSWORD not in all_text(w)
            assert BROKER_PASSWORD not in caplog.text
        finally:
            if worker is not None:
                stop_worker(worker)
