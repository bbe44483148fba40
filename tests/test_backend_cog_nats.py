"""``[p]taskset global backend taskiq nats://…`` through a real Red on simcord, with a real
worker subprocess on a private NATS server that requires a password: the URL is taken by DM,
checked, never shown or logged, and the killfeed and ``[p]tasks pool`` work through it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from redharness import red_world
from test_killfeed_cog import KILL_FILE, all_text, append, kill_line
from workers_harness import PrivateNats, new_prefix, spawn_worker, stop_worker, wait_live

from taskcog.engine.backends.jetstream_directory import Directory

pytestmark = pytest.mark.slow
USER, PASSWORD = "taskcog", "nats-s3cret-pw"


class LockedNats(PrivateNats):
    """A NATS server that requires a user and password."""

    def command(self) -> list[str]:
        return [*super().command(), "--user", USER, "--pass", PASSWORD]


async def test_backend_on_nats_by_dm_pool_and_killfeed_through_a_worker(
    tmp_path: Path, caplog, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)
    server = LockedNats(tmp_path / "nats")
    server.start()
    url = f"nats://{USER}:{PASSWORD}@127.0.0.1:{server.port}"
    prefix = new_prefix()
    monkeypatch.setenv("TASKCOG_PREFIX", prefix)
    monkeypatch.delenv("TASKCOG_SECRET_KEY", raising=False)
    root = tmp_path / "host"
    (root / "game" / "deathlogs" / "world_0").mkdir(parents=True)
    (root / KILL_FILE).write_text("")
    worker = None
    try:
        async with red_world(tmp_path / "red") as w:
            assert "Loaded `taskcog`" in await w.load()
            refused = await w.reply(w.owner, w.chan_a, f"!taskset global backend taskiq {url}")
            assert "Never type a broker URL in a channel" in refused
            dm = w.owner_user.dm_channel
            await w.reply(w.owner, w.chan_a, "!taskset global backend taskiq")
            await w.owner_user.send_dm(f"nats://{USER}:wrong@127.0.0.1:{server.port}")
            await w.env.settle()
            assert "Could not reach the broker" in dm.last_message.content
            assert "nothing was changed" in dm.last_message.content
            assert "is local" in await w.reply(w.owner, w.chan_a, "!taskset global backend")
            await w.reply(w.owner, w.chan_a, "!taskset global backend taskiq")
            await w.owner_user.send_dm(url)
            await w.env.settle()
            done = dm.last_message.content
            assert f"now taskiq on nats://{USER}:***@127.0.0.1" in done, done
            key = done.rsplit("||", 2)[1]

            kills = w.guild_a.create_text_channel("kills")
            await w.env.settle()
            await w.reply(w.admin_a, w.chan_a, f"!taskset channel killfeed {kills.mention}")
            add = f"!taskset server add eu1 local {root}"
            assert "Added" in await w.reply(w.owner, w.chan_a, add)
            worker = spawn_worker(url, prefix, key, "w1")
            directory = Directory(url, prefix)
            await wait_live(directory, {"w1"})
            await directory.close()
            assert ": ok" in await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            append(root, kill_line(1), kill_line(2), kill_line(3))
            assert "posted 3 kills" in await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            assert len([e for m in kills.history() for e in m.embeds]) == 3
            pool = await w.reply(w.owner, w.chan_a, "!tasks pool")
            assert "1 live worker(s)" in pool and "w1" in pool, pool
            assert f"taskiq on nats://{USER}:***@" in pool

            server.stop()
            append(root, kill_line(4))
            down = await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            assert "unreachable" in down and down.count("unreachable") == 1, down
            server.start()
            await wait_live(w.bot.get_cog("TaskCog").backends.backend.directory, {"w1"})
            assert "posted 1 kill" in await w.reply(w.admin_a, w.chan_a, "!tasks run killfeed")
            assert len([e for m in kills.history() for e in m.embeds]) == 4
            assert PASSWORD not in all_text(w)
            assert PASSWORD not in caplog.text
    finally:
        if worker is not None:
            stop_worker(worker)
        server.stop()
