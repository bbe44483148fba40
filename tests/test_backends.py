"""The backends for the pool's heavy work, in process: the taskiq backend on taskiq's
``InMemoryBroker`` (the real taskiq receiver path, no network), the local backend, the secret
encryption, and the worker's SFTP cost of an unchanged poll on a real asyncssh server."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sftp_server import PASSWORD, USERNAME, SftpServer
from taskiq import InMemoryBroker
from test_killfeed_pipeline import FIRST, SCOPE, World, ids_of, lines, world

from taskcog.engine.backends import (
    IMPORT_SLICE,
    INGEST,
    LocalBackend,
    SecretBox,
    SecretKeyError,
    TaskiqBackend,
)
from taskcog.engine.backends.brokers import check_prefix, check_url
from taskcog.engine.backends.common import (
    dump_result,
    load_result,
    pick,
    result_serializer,
    safe_url,
)
from taskcog.pipeline.parsers.deadside import parse_kills
from taskcog.pipeline.remote.codec import event_from_dict, event_to_dict
from taskcog.pipeline.remote.driver import ingest_remote
from taskcog.pipeline.remote.imports import import_step
from taskcog.pipeline.remote.ingest import SourceCache, ingest_step, make_job
from taskcog.pipeline.sources import Unreachable

ROOT = Path(__file__).resolve().parent.parent


class ManualClock:
    t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> Any:
        raise NotImplementedError


def memory_backend(cache: SourceCache) -> tuple[TaskiqBackend, list[dict[str, Any]]]:
    """A TaskiqBackend whose broker runs the worker's functions in this process."""
    broker = InMemoryBroker()
    seen: list[dict[str, Any]] = []

    async def ingest(job: dict[str, Any]) -> dict[str, Any]:
        seen.append(job)
        return await ingest_step(job, cache)

    async def slice_(job: dict[str, Any]) -> dict[str, Any]:
        return await import_step(job, cache)

    broker.register_task(ingest, task_name=INGEST)
    broker.register_task(slice_, task_name=IMPORT_SLICE)
    return TaskiqBackend(broker, answer_timeout=5), seen


def local_spec(w: World) -> dict[str, Any]:
    return {"kind": "local", "base_path": w.source.base_path}


async def test_taskiq_backend_posts_every_kill_exactly_once(tmp_path: Path) -> None:
    async with world(tmp_path, initial=lines(0, 3)) as w:
        backend, seen = memory_backend(SourceCache(SecretBox(SecretBox.new_key())))
        await backend.start()
        ledger = w.ledger()
        run = lambda: ingest_remote(  # noqa: E731
            backend, local_spec(w), None, w.sink(ledger), ledger, SCOPE, None
        )
        first = await run()
        assert first.first_run and first.posted == 0  # a new server does not replay the past
        w.append(FIRST, lines(3, 40))
        report = await run()
        assert (report.posted, report.duplicates) == (37, 0)
        again = await run()
        assert again.posted == 0 and again.bytes_read == 0
        assert w.posted_ids() == Counter({i: 1 for i in ids_of(lines(3, 40))})
        # A step whose result was lost (its worker died after reading): the cursor never
        # moved, so the next step reads the same lines again and the ledger keeps it once.
        w.append(FIRST, lines(40, 45))
        lost = await backend.ingest(dict(seen[-1]))
        assert len(lost.events) == 5 and lost.error is None
        assert (await run()).posted == 5
        late = [event_from_dict(e) for e in lost.events]
        assert await w.sink(ledger).post(late) == 0  # a late duplicate delivery posts nothing
        assert w.posted_ids() == Counter({i: 1 for i in ids_of(lines(3, 45))})
        status = await backend.status()
        assert status.kind == "taskiq" and status.workers == []
        await backend.close()


async def test_a_worker_side_source_error_becomes_the_sources_own_exception(
    tmp_path: Path,
) -> None:
    async with world(tmp_path) as w:
        backend, _ = memory_backend(SourceCache(None))
        ledger = w.ledger()
        await ledger.set_cursor(SCOPE, "kills", {"stream": "kills"})
        spec = {"kind": "sftp", "host": "127.0.0.1", "port": 1, "username": "u", "base_path": "."}
        with pytest.raises(Unreachable):
            await ingest_remote(backend, spec, None, w.sink(ledger), ledger, SCOPE, None)
        assert await ledger.get_cursor(SCOPE, "kills") == {"stream": "kills"}


async def test_local_backend_runs_the_same_step_in_process(tmp_path: Path) -> None:
    async with world(tmp_path, initial=b"") as w:
        cache = SourceCache(None)
        backend = LocalBackend(
            lambda job: ingest_step(job, cache), lambda job: import_step(job, cache)
        )
        ledger = w.ledger()
        await ingest_remote(backend, local_spec(w), None, w.sink(ledger), ledger, SCOPE, None)
        w.append(FIRST, lines(0, 12))
        report = await ingest_remote(
            backend, local_spec(w), None, w.sink(ledger), ledger, SCOPE, None
        )
        assert report.posted == 12 and backend.done == 2
        assert "2 done" in (await backend.status()).detail


def test_secrets_round_trip_and_never_travel_in_clear() -> None:
    box = SecretBox(SecretBox.new_key())
    secret = {"password": PASSWORD}
    job = make_job("1:a", {"kind": "sftp"}, secret, None, box)
    assert PASSWORD not in str(job) and box.decrypt(job["secret"]) == secret
    with pytest.raises(SecretKeyError, match="differs from the bot's"):
        SecretBox(SecretBox.new_key()).decrypt(job["secret"])
    with pytest.raises(SecretKeyError, match="cannot be sent"):
        make_job("1:a", {"kind": "sftp"}, secret, None, None)  # no key: refused, not sent
    with pytest.raises(SecretKeyError, match="not a Fernet key"):
        SecretBox("hunter2")
    event = parse_kills(lines(0, 1), final=True).events[0]
    assert event_from_dict(event_to_dict(event)) == event


async def test_a_worker_without_the_key_refuses_the_job_and_to_start(tmp_path: Path) -> None:
    token = SecretBox(SecretBox.new_key()).encrypt({"password": PASSWORD})
    job = {"key": "1:a", "server": {"kind": "sftp", "host": "h"}, "secret": token}
    result = await ingest_step(job, SourceCache(None))
    assert result["error"]["type"] == "SecretKeyError"
    assert "no secret key" in result["error"]["message"] and token not in str(result)
    wrong = await ingest_step(job, SourceCache(SecretBox(SecretBox.new_key())))
    assert "differs from the bot's" in wrong["error"]["message"]


def test_the_worker_command_refuses_to_start_without_the_key() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "taskcog.worker", "--broker", "redis://127.0.0.1:6379/0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "taskcog.worker: No secret key: set TASKCOG_SECRET_KEY or pass --key-file with the key "
        "the bot uses, so job secrets can be decrypted."
    )


async def test_an_unchanged_poll_on_a_warm_worker_costs_two_sftp_requests(
    tmp_path: Path,
) -> None:
    kills = tmp_path / "Deadside" / "deathlogs" / "world_0"
    kills.mkdir(parents=True)
    (kills / FIRST).write_bytes(lines(0, 5))
    server = await SftpServer(tmp_path).start()
    box = SecretBox(SecretBox.new_key())
    clock = ManualClock()
    cache = SourceCache(box, clock=clock)
    spec = {
        "kind": "sftp",
        "host": "127.0.0.1",
        "port": server.port,
        "username": USERNAME,
        "base_path": "/",
        "fingerprint": server.fingerprint,
    }

    async def step(cursor: dict[str, Any] | None, key: str = "1:a", **changes: Any) -> Any:
        job = make_job(key, dict(spec, **changes), {"password": PASSWORD}, cursor, box)
        return await ingest_step(job, cache)

    try:
        first = await step(None)
        assert first["first_run"] and first.get("error") is None
        # A new kill file in the same second as that listing: SFTP mtimes are whole seconds,
        # so the folder's mtime may not move. Within the settle time the folder is re-listed.
        mtime = kills.stat().st_mtime
        (kills / "2025.05.02-00.00.00.csv").write_bytes(lines(5, 9))
        os.utime(kills, (mtime, mtime))
        clock.t = 1.0
        moved = await step(first["next_cursor"])
        assert len(moved["events"]) == 4 and moved["requests"] > 2
        clock.t = 3.0
        costs = []
        for _ in range(4):
            result = await step(moved["next_cursor"])
            costs.append(result["requests"])
            assert result["events"] == []
        # One settling listing, then an unchanged poll is a stat of the folder and the file.
        assert costs[0] > 2 and costs[1:] == [2, 2, 2] and server.logins == 1
        untrusted = await step(None, "1:b", fingerprint=None)
        assert untrusted["error"]["type"] == "HostKeyUntrusted"
        assert untrusted["error"]["fingerprint"] == server.fingerprint
        assert PASSWORD not in str(untrusted)
    finally:
        await cache.close()
        await server.stop()


def test_routing_and_urls() -> None:
    workers = ["a", "b", "c"]
    owners = {key: pick(key, workers) for key in (f"g:{n}" for n in range(300))}
    assert set(owners.values()) == set(workers)  # spread over every worker
    moved = {k for k, w in owners.items() if pick(k, ["a", "b"]) != w}
    assert all(owners[k] == "c" for k in moved)  # a worker leaving moves only its own keys
    assert pick("x", []) is None
    assert safe_url("redis://:s3cret@host:6380/1") == "redis://:***@host:6380/1"
    assert "s3cret" not in safe_url("redis://user:s3cret@host/0")
    with pytest.raises(ValueError) as info:
        check_url("http://:s3cret@host")
    assert "s3cret" not in str(info.value)
    assert "nats://" in str(info.value)  # the error names both brokers


def test_nats_urls_and_prefixes() -> None:
    assert check_url(" <nats://u:pw@127.0.0.1:4222> ") == "nats://u:pw@127.0.0.1:4222"
    assert check_url("tls://nats.example:4222") == "tls://nats.example:4222"
    assert safe_url("nats://u:s3cret@host:4222") == "nats://u:***@host:4222"
    assert safe_url("nats://s3cret-token@host:4222") == "nats://***@host:4222"
    assert safe_url("nats://host:4222") == "nats://host:4222"
    for bad, words in (
        ("nats://host:4222/0", "no path"),
        ("nats://s3cret@host:99999", "bad port"),
        ("nats://", "must look like"),
    ):
        with pytest.raises(ValueError) as info:
            check_url(bad)
        assert words in str(info.value) and "s3cret" not in str(info.value)
    assert check_prefix("nats://host:4222", "bot-1_a") == "bot-1_a"
    assert check_prefix("redis://host:6379/0", "any:thing.goes") == "any:thing.goes"
    with pytest.raises(ValueError, match="letters, digits"):
        check_prefix("nats://host:4222", "bad.prefix")


def test_bytes_in_a_result_travel_raw_after_its_json() -> None:
    """An import slice's columns are bytes: stored after the JSON, not as base64 in it; a result
    without bytes stays the plain JSON it always was; a cut-off result is an error."""
    from taskiq.result import TaskiqResult
    from taskiq.serializers import JSONSerializer

    columns = bytes(range(256)) * 40  # not UTF-8: JSON could not hold it
    value = {"cursors": [["/a/é.csv", 12]], "frame": columns, "extra": b"", "lines": 3}
    result = TaskiqResult(is_err=False, return_value=value, execution_time=0.5)
    for write, read in [(result_serializer(), JSONSerializer()), (JSONSerializer(),) * 2]:
        data = dump_result(write, result)
        assert len(data) < len(columns) + 400  # raw, not base64 (a third more)
        got = load_result(read, data)
        assert got.return_value == value and got.execution_time == 0.5
        with pytest.raises(ValueError, match="ends at"):
            load_result(read, data[:-1])
    plain = TaskiqResult(is_err=False, return_value={"lines": 3}, execution_time=0.1)
    data = dump_result(result_serializer(), plain)
    assert data == result_serializer().dumpb(plain.model_dump(mode="json"))
    assert load_result(JSONSerializer(), data) == plain


def test_results_travel_as_plain_json_whichever_serializer_each_side_has() -> None:
    """The bot and a worker may differ (orjson on one, ``json`` on the other): both write and
    read plain JSON, never pickle."""
    import json

    from taskiq.serializers import JSONSerializer

    result = {"cursors": [["/a/é.csv", 12]], "frame": "QUJD" * 1000, "lines": 3, "x": None}
    fast, plain = result_serializer(), JSONSerializer()
    assert json.loads(fast.dumpb(result)) == result  # plain JSON out
    assert fast.loadb(plain.dumpb(result)) == result
    assert plain.loadb(fast.dumpb(result)) == result
    assert not fast.dumpb(result).startswith(b"\x80")  # not a pickle
