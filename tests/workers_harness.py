"""Real worker subprocesses, and private Redis and NATS servers, for the scale-out tests and
benches. ``BROKERS`` names the shared services of this machine kind, one URL per broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

from taskcog.engine.backends import TaskiqBackend
from taskcog.engine.backends.brokers import kind_of, make_broker, make_directory, safe_url
from taskcog.engine.backends.jetstream_directory import Directory as NatsDirectory

ROOT = Path(__file__).resolve().parent.parent
SHARED_REDIS = "redis://127.0.0.1:6379/0"
SHARED_NATS = "nats://127.0.0.1:4222"
BROKERS = {"redis": SHARED_REDIS, "nats": SHARED_NATS}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def new_prefix() -> str:
    return f"taskcog-test-{uuid.uuid4().hex[:10]}"


def spawn_worker(
    url: str,
    prefix: str,
    key: str | None,
    worker_id: str,
    *extra: str,
    polars_threads: int | None = None,
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "TASKCOG_SECRET_KEY"}
    if key is not None:
        env["TASKCOG_SECRET_KEY"] = key
    args = [sys.executable, "-m", "taskcog.worker", "--broker", url, "--prefix", prefix]
    args += ["--id", worker_id, "--heartbeat", "0.5", *extra]
    if polars_threads:
        args += ["--polars-threads", str(polars_threads)]
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


async def wait_live(directory: Any, ids: set[str], timeout: float = 20.0) -> None:
    """Until exactly ``ids`` are live; a broker still reconnecting (it was just restarted)
    counts as "not yet". On NATS the bot's directory must be connected too: beats it heard
    before a restart still count as live for their ttl."""
    deadline = time.monotonic() + timeout
    live: list[str] | None = None
    while True:
        with contextlib.suppress(ConnectionError):
            live = await directory.live(fresh=True)
            connected = not isinstance(directory, NatsDirectory) or directory.listening
            if set(live) == ids and connected:
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"workers {ids} did not come up: {live}")
        await asyncio.sleep(0.05)


def stop_worker(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.asynccontextmanager
async def bot_backend(
    url: str, prefix: str, *, answer_timeout: float = 10.0
) -> AsyncIterator[TaskiqBackend]:
    directory = make_directory(url, prefix, cache=0.0)
    backend = TaskiqBackend(
        make_broker(url, prefix),
        directory=directory,
        where=safe_url(url),
        answer_timeout=answer_timeout,
    )
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


async def drop_prefix(url: str, prefix: str) -> None:
    """Delete everything under ``prefix`` (the test's own keys, streams and buckets only)."""
    if kind_of(url) == "nats":
        import nats

        client = await nats.connect(url)
        try:
            js = client.jetstream()
            for name in (f"{prefix}_jobs", f"{prefix}_res", f"KV_{prefix}_locks"):
                with contextlib.suppress(Exception):
                    await js.delete_stream(name)
        finally:
            await client.close()
        return
    directory = make_directory(url, prefix)
    try:
        keys = [k async for k in directory.redis.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await directory.redis.delete(*keys)
    finally:
        await directory.close()


class PrivateServer:
    """A throw-away server process on a free port, to stop and start again."""

    name = "server"

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.02)
        raise TimeoutError(f"{self.name} did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class PrivateRedis(PrivateServer):
    """A ``redis-server`` without persistence: it comes back empty."""

    name = "redis-server"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = shutil.which("redis-server") or "redis-server"
        return [binary, "--port", str(self.port), "--save", "", "--appendonly", "no"]


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PrivateNats(PrivateServer):
    """A ``nats-server -js``; its store survives a restart, as a real deployment's would."""

    name = "nats-server"

    def __init__(self, store: Path) -> None:
        super().__init__()
        self.store = store

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        return [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js", "-sd", str(self.store)]


@contextlib.contextmanager
def private_broker(kind: str, tmp_path: Path) -> Iterator[PrivateRedis | PrivateNats]:
    """A private Redis or NATS server to stop and start again."""
    server: PrivateRedis | PrivateNats = (
        PrivateNats(tmp_path / "nats-store") if kind == "nats" else PrivateRedis()
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
