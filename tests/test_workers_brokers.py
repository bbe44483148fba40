"""The taskiq backend with real worker subprocesses (``python -m taskcog.worker``) on each real
broker, Redis Streams and NATS JetStream: the shared service with a prefix per test, or a
private ``redis-server`` / ``nats-server`` for the test that stops it. The bot's side is the
real pipeline: ledger, sink, simcord's Discord."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from sftp_server import PASSWORD, USERNAME, SftpServer, _FaultySFTP, sftp_spec
from test_history_slices import history_into
from test_killfeed_pipeline import FIRST, KILL_DIR, World, ids_of, lines, world
from workers_harness import (
    BROKERS,
    PrivateNats,
    bot_backend,
    drop_prefix,
    new_prefix,
    private_broker,
    spawn_worker,
    stop_worker,
    wait_live,
)

from taskcog.engine.backends import BackendUnavailable, SecretBox, TaskiqBackend
from taskcog.engine.backends.common import pick
from taskcog.engine.pool import LaneConfig, WorkerPool
from taskcog.pipeline.killfeed import KillfeedReport
from taskcog.pipeline.remote.driver import ingest_remote
from taskcog.pipeline.remote.imports import Part, SliceResult, remote_slice
from taskcog.pipeline.remote.ingest import make_job
from taskcog.pipeline.sources import SftpSource
from taskcog.pipeline.stats import StatsStore
from taskcog.pipeline.stats.synthetic import write_logs

pytestmark = pytest.mark.slow


@pytest.fixture(params=sorted(BROKERS))
def broker(request: pytest.FixtureRequest) -> str:
    """The shared service's URL, once per broker."""
    return BROKERS[request.param]


@pytest.fixture(params=sorted(BROKERS))
def broker_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


KEY = SecretBox.new_key()
BOX = SecretBox(KEY)


async def run(
    w: World, backend: TaskiqBackend, scope: str, spec: dict[str, Any], secret: Any = None
) -> KillfeedReport:
    ledger = w.ledger()
    return await ingest_remote(backend, spec, secret, w.sink(ledger), ledger, scope, BOX)


def server_dir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name / KILL_DIR
    path.mkdir(parents=True)
    (path / FIRST).write_bytes(b"")
    return path


async def test_the_killfeed_posts_every_kill_once_through_two_workers(
    tmp_path: Path, broker: str
) -> None:
    prefix = new_prefix()
    procs = [spawn_worker(broker, prefix, KEY, w) for w in ("w1", "w2")]
    try:
        async with world(tmp_path) as w, bot_backend(broker, prefix) as backend:
            await wait_live(backend.directory, {"w1", "w2"})  # type: ignore[arg-type]
            scopes = [f"1:s{n}" for n in range(6)]
            assert {pick(s, ["w1", "w2"]) for s in scopes} == {"w1", "w2"}
            dirs = {s: server_dir(tmp_path, s.replace(":", "_")) for s in scopes}
            specs = {s: {"kind": "local", "base_path": str(d.parents[3])} for s, d in dirs.items()}
            firsts = await asyncio.gather(*(run(w, backend, s, specs[s]) for s in scopes))
            assert all(r.first_run for r in firsts)
            expected: set[str] = set()
            for round_ in range(3):
                for n, scope in enumerate(scopes):
                    start = 1000 * n + 100 * round_
                    data = lines(start, start + 25)
                    with (dirs[scope] / FIRST).open("ab") as handle:
                        handle.write(data)
                    expected |= ids_of(data)
                reports = await asyncio.gather(*(run(w, backend, s, specs[s]) for s in scopes))
                assert [r.posted for r in reports] == [25] * len(scopes)
            assert w.posted_ids() == Counter({i: 1 for i in expected})
            status = await backend.status()
            assert {x.id for x in status.workers} == {"w1", "w2"}
            assert status.error is None
    finally:
        for proc in procs:
            stop_worker(proc)
        await drop_prefix(broker, prefix)


class GatedServer(SftpServer):
    """An SFTP server whose reads wait for ``gate``; ``reading`` is set when one waits."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = asyncio.Event()
        self.gate.set()
        self.reading = asyncio.Event()

    async def start(self) -> SftpServer:
        server = self

        class Gated(_FaultySFTP):
            async def read(self, file_obj: object, offset: int, size: int) -> Any:
                server.reading.set()
                await server.gate.wait()
                return super().read(file_obj, offset, size)

        self._acceptor = await asyncssh.listen(
            "127.0.0.1",
            self.port,
            server_host_keys=[self.host_key],
            server_factory=lambda: __import__("sftp_server")._Login(self),
            sftp_factory=lambda chan: Gated(chan, self),
            allow_scp=False,
        )
        self.port = self._acceptor.get_port()
        return self


async def test_a_worker_sigkilled_mid_step_loses_nothing_and_posts_nothing_twice(
    tmp_path: Path, broker: str
) -> None:
    prefix = new_prefix()
    kills = server_dir(tmp_path, "game")
    sftp = await GatedServer(tmp_path / "game").start()
    ids = {"w1": None, "w2": None}
    procs = {w: spawn_worker(broker, prefix, KEY, w, "--lock-ttl", "1.5") for w in ids}
    spec = {
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": sftp.port,
        "username": USERNAME,
        "base_path": "/",
        "fingerprint": sftp.fingerprint,
    }
    secret = {"password": PASSWORD}
    try:
        async with (
            world(tmp_path) as w,
            bot_backend(broker, prefix, answer_timeout=3) as backend,
        ):
            await wait_live(backend.directory, set(ids))  # type: ignore[arg-type]
            scope = "1:game"
            assert (await run(w, backend, scope, spec, secret)).first_run
            data = lines(0, 30)
            (kills / FIRST).write_bytes(data)
            sftp.gate.clear()
            sftp.reading.clear()
            step = asyncio.create_task(run(w, backend, scope, spec, secret))
            await asyncio.wait_for(sftp.reading.wait(), 20)  # the worker is mid-read
            victim = pick(scope, list(ids))
            assert victim is not None
            procs[victim].send_signal(signal.SIGKILL)
            procs[victim].wait(10)
            sftp.gate.set()
            report = await asyncio.wait_for(step, 30)
            assert report.posted == 30 and backend.resent == 1
            assert w.posted_ids() == Counter({i: 1 for i in ids_of(data)})
            assert await run(w, backend, scope, spec, secret) == KillfeedReport(scope)
            assert [x.id for x in (await backend.status()).workers] == [
                x for x in ids if x != victim
            ]
    finally:
        for proc in procs.values():
            stop_worker(proc)
        await sftp.stop()
        await drop_prefix(broker, prefix)


async def test_broker_stopped_and_restarted_the_bot_errors_then_catches_up(
    tmp_path: Path, broker_kind: str
) -> None:
    with private_broker(broker_kind, tmp_path) as server:
        prefix = new_prefix()
        proc = spawn_worker(server.url, prefix, KEY, "w1")
        try:
            async with (
                world(tmp_path) as w,
                bot_backend(server.url, prefix, answer_timeout=5) as backend,
            ):
                await wait_live(backend.directory, {"w1"})  # type: ignore[arg-type]
                spec = {"kind": "local", "base_path": str(tmp_path / "logs")}
                scope = "1:main"
                assert (await run(w, backend, scope, spec)).first_run
                w.append(FIRST, lines(0, 10))
                assert (await run(w, backend, scope, spec)).posted == 10
                server.stop()
                w.append(FIRST, lines(10, 20))  # kills keep coming while the broker is down
                with pytest.raises(BackendUnavailable) as info:
                    await asyncio.wait_for(run(w, backend, scope, spec), 20)
                assert str(info.value) == (
                    f"The broker at {server.url} is unreachable (ConnectionError); "
                    "retrying with backoff."
                )
                assert (await backend.status()).error == str(info.value)
                assert isinstance(info.value, ConnectionError)  # transient for supervision
                server.start()  # the same port (Redis empty, NATS keeps its store)
                await wait_live(backend.directory, {"w1"})  # type: ignore[arg-type]
                assert (await run(w, backend, scope, spec)).posted == 10
                expected = ids_of(lines(0, 20))
                assert w.posted_ids() == Counter({i: 1 for i in expected})
        finally:
            stop_worker(proc)


async def test_a_nats_server_back_without_its_store_is_declared_again(tmp_path: Path) -> None:
    """A NATS server that comes back empty (a new machine, a lost volume) has lost the job
    stream, the consumers, the result store and the lock bucket: the bot and the worker
    declare them again on reconnecting, and the next run posts what came in meanwhile."""
    server = PrivateNats(tmp_path / "store-a")
    server.start()
    prefix = new_prefix()
    proc = spawn_worker(server.url, prefix, KEY, "w1")
    try:
        async with world(tmp_path) as w, bot_backend(server.url, prefix) as backend:
            await wait_live(backend.directory, {"w1"})  # type: ignore[arg-type]
            spec = {"kind": "local", "base_path": str(tmp_path / "logs")}
            scope = "1:main"
            assert (await run(w, backend, scope, spec)).first_run
            w.append(FIRST, lines(0, 10))
            assert (await run(w, backend, scope, spec)).posted == 10
            server.stop()
            server.store = tmp_path / "store-b"  # empty
            server.start()
            w.append(FIRST, lines(10, 20))
            await wait_live(backend.directory, {"w1"})  # type: ignore[arg-type]
            assert (await run(w, backend, scope, spec)).posted == 10
            assert w.posted_ids() == Counter({i: 1 for i in ids_of(lines(0, 20))})
    finally:
        stop_worker(proc)
        server.stop()


async def test_history_on_two_workers_one_sigkilled_mid_slice_stores_every_kill_once(
    tmp_path: Path, broker: str
) -> None:
    """The server's slices go to its worker, which reads them over SFTP while the host holds
    every read; that worker is SIGKILLed, the bot sees its heartbeat stop and sends the slices
    to the other worker, and the store ends with exactly what a local import stores."""
    host = tmp_path / "host"
    write_logs(host / KILL_DIR, 10, 200, players=30, repeat=10)
    server = await SftpServer(host).start()
    spec = sftp_spec(server)

    def bot_source() -> SftpSource:
        return SftpSource(
            "127.0.0.1", server.port, USERNAME, password=PASSWORD, base_path=".",
            trusted_fingerprint=server.fingerprint,
        )  # fmt: skip

    prefix = new_prefix()
    ids = {"w1", "w2"}
    procs = {w: spawn_worker(broker, prefix, KEY, w) for w in ids}
    pool = WorkerPool([LaneConfig("parse", 2), LaneConfig("stats", 1)])
    sources = [bot_source(), bot_source()]
    try:
        reference = StatsStore(tmp_path / "local.db")
        # Kills over 300 m are flagged: the store keeps their ids, which the bot computes
        # again from each flagged line (a worker sends only the keys).
        expected = await history_into(reference, sources[0], pool, flag_over=300.0)
        async with bot_backend(broker, prefix) as backend:
            await wait_live(backend.directory, ids)  # type: ignore[arg-type]
            base = make_job("1:eu", spec, {"password": PASSWORD}, None, BOX)

            async def on_workers(parts: list[Part]) -> SliceResult:
                return await remote_slice(backend, base, parts)

            store = StatsStore(tmp_path / "workers.db")
            server.hold = asyncio.Event()
            run = asyncio.create_task(
                history_into(store, sources[1], pool, on_workers, flag_over=300.0)
            )
            busy: list[str] = []
            for _ in range(400):
                workers, _ = await backend.directory.workers()  # type: ignore[union-attr]
                busy = [w.id for w in workers if w.in_flight]
                if busy and server.held:
                    break
                await asyncio.sleep(0.05)
            assert len(busy) == 1 and server.held, (busy, server.held)  # one server, one worker
            procs[busy[0]].send_signal(signal.SIGKILL)
            procs[busy[0]].wait(10)
            server.hold.set()
            got = await asyncio.wait_for(run, 60)
            assert backend.resent >= 1  # the dead worker's slices, sent to the other one
        assert (got.new, got.lines, got.malformed) == (
            expected.new, expected.lines, expected.malformed
        )  # fmt: skip
        for board in ("kills", "deaths", "kd", "distance", "streak", "weapon"):
            assert store.top(1, board, "all", limit=25) == reference.top(1, board, "all", limit=25)
        assert len(reference.flags(1)) > 10
        assert store.flags(1) == reference.flags(1)  # the same kills, with the same ids
        again = await history_into(store, sources[1], pool)
        assert (again.new, again.lines) == (0, 0)  # every cursor is at its file's end
    finally:
        for proc in procs.values():
            stop_worker(proc)
        for source in sources:
            await source.close()
        await pool.shutdown()
        await server.stop()
        await drop_prefix(broker, prefix)
