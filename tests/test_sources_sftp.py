"""SftpSource against an in-process asyncssh SFTP server: trust, login, faults, tailing."""

from __future__ import annotations

import asyncio
import logging
import traceback
from pathlib import Path

import asyncssh
import pytest
from sftp_server import PASSWORD, USERNAME, SftpServer, closed_port, new_key

from taskcog.engine.supervision import ErrorKind, ErrorRecord, RetryPolicy, classify
from taskcog.pipeline.redact import MASK, redact
from taskcog.pipeline.sources import (
    KILLS,
    SERVER_LOG,
    AuthFailed,
    Cursor,
    HostKeyChanged,
    HostKeyUntrusted,
    SftpSource,
    Unreachable,
    initial_cursor,
    poll,
)

KILL_DIR = "srv/Deadside/Saved/actual1/deathlogs/world_0"
LOG_DIR = "srv/Deadside/Saved/Logs"
LINE = b"2025.05.15-00.11.07;Killer;0002f2;Victim;0002c9;MR5;20;XSX;XSX;\n"


class ManualClock:
    """A clock that only moves when the test says so (for reconnect backoff)."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self):  # pragma: no cover - not used by the source
        raise NotImplementedError

    def monotonic(self) -> float:
        return self.t


class MaxJitter:
    """Full jitter that always picks the ceiling, so the backoff is predictable."""

    def uniform(self, low: float, high: float) -> float:
        return high


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / KILL_DIR).mkdir(parents=True)
    (root / LOG_DIR).mkdir(parents=True)
    (root / KILL_DIR / "2025.05.14-00.00.00.csv").write_bytes(LINE * 3)
    (root / KILL_DIR / "2025.05.15-00.00.00.csv").write_bytes(LINE * 2)
    (root / LOG_DIR / "Deadside.log").write_bytes(b"LogInit: started\n")
    return root


@pytest.fixture
async def server(root: Path):
    client_key = new_key()
    server = await SftpServer(root, client_key=client_key).start()
    server.client_private_pem = client_key.export_private_key().decode()
    yield server
    await server.stop()


@pytest.fixture
async def sources():
    made: list[SftpSource] = []
    yield made
    for source in made:
        await source.close()


@pytest.fixture
def make(server: SftpServer, sources: list[SftpSource]):
    def make(**overrides) -> SftpSource:
        options = dict(
            password=PASSWORD,
            base_path="/srv",
            trusted_fingerprint=server.fingerprint,
            connect_timeout=5,
        )
        options.update(overrides)
        source = SftpSource("127.0.0.1", server.port, USERNAME, **options)
        sources.append(source)
        return source

    return make


def _text_of(exc: BaseException) -> str:
    return str(exc) + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def test_redact_masks_passwords_escaped_forms_and_key_lines():
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\nQyNTUxOQAAACBx\n-----END"
    password = "pa'ss\\word"
    text = f"login {password!r} failed; key {pem}; line QyNTUxOQAAACBx alone"
    masked = redact(text, [password, pem, None, ""])
    assert "pa'ss" not in masked and "word" not in masked  # repr-escaped form masked too
    assert "b3BlbnNzaC1rZXktdjEAAAAA" not in masked and "QyNTUxOQAAACBx" not in masked
    assert masked.count(MASK) >= 3 and masked.startswith("login ")
    assert redact("nothing secret", [None]) == "nothing secret"


def test_supervision_records_are_redacted_with_the_source_secrets():
    source = SftpSource("h", 22, "u", password="topsecret-pw", trusted_fingerprint="SHA256:x")
    try:
        raise RuntimeError("server said: bad password topsecret-pw")
    except RuntimeError as exc:
        record = ErrorRecord.from_exception(exc, None, redact=source.redact)
    assert "topsecret-pw" not in record.message + record.traceback
    assert MASK in record.message


async def test_discovers_kill_files_oldest_first_and_the_server_log(make):
    layout = await make().discover()
    assert layout.kill_files == [
        f"/{KILL_DIR}/2025.05.14-00.00.00.csv",
        f"/{KILL_DIR}/2025.05.15-00.00.00.csv",
    ]
    assert layout.server_log == f"/{LOG_DIR}/Deadside.log"


async def test_new_source_posts_only_lines_written_after_it_was_added(make, root):
    source = make()
    layout = await source.discover()
    cursor = await initial_cursor(source, layout)
    newest = root / KILL_DIR / "2025.05.15-00.00.00.csv"
    assert cursor.path == layout.kill_files[-1] and cursor.offset == len(LINE) * 2

    with newest.open("ab") as handle:
        handle.write(LINE + LINE[:10])  # one whole line and the start of the next
    batch = await poll(source, cursor, layout)
    assert [c.data for c in batch.chunks] == [LINE]
    assert batch.chunks[0].start == len(LINE) * 2

    with newest.open("ab") as handle:
        handle.write(LINE[10:])
    batch = await poll(source, batch.next_cursor, layout)
    assert [c.data for c in batch.chunks] == [LINE]
    assert batch.next_cursor.offset == newest.stat().st_size


async def test_unchanged_file_costs_one_stat_and_no_bytes(make):
    source = make()
    layout = await source.discover()
    cursor = await initial_cursor(source, layout)
    source.reset_counters()
    batch = await poll(source, cursor, layout)
    assert batch.chunks == [] and batch.next_cursor == cursor
    assert source.round_trips == 1
    assert source.bytes_read == 0


async def test_polls_reuse_one_connection(make, server, root):
    source = make()
    layout = await source.discover()
    cursor = await initial_cursor(source, layout)
    for _ in range(5):
        with (root / KILL_DIR / "2025.05.15-00.00.00.csv").open("ab") as handle:
            handle.write(LINE)
        batch = await poll(source, cursor, layout)
        assert [c.data for c in batch.chunks] == [LINE]
        cursor = batch.next_cursor
    assert server.logins == 1 and source.connects == 1


async def test_disconnect_mid_read_resumes_at_committed_cursor(make, server, root):
    big = b"".join(b"%08d;" % i + LINE for i in range(4000))  # ~300 KB: many read requests
    newest = root / KILL_DIR / "2025.05.16-00.00.00.csv"
    newest.write_bytes(b"")
    source = make()
    layout = await source.discover()
    committed = await initial_cursor(source, layout)
    newest.write_bytes(big)

    server.fail_read(2)  # the second read request of the next poll kills the connection
    with pytest.raises(Unreachable) as caught:
        await poll(source, committed, layout)
    assert server.aborted.is_set()
    assert "dropped" in str(caught.value)
    assert classify(caught.value)[0] is ErrorKind.TRANSIENT

    batch = await poll(source, committed, layout)  # the caller retries from what it committed
    assert source.connects == 2
    assert b"".join(c.data for c in batch.chunks) == big
    assert batch.chunks[0].start == 0 and batch.next_cursor.offset == len(big)


async def test_wrong_password_is_auth_failed_and_never_shows_the_secret(make, caplog):
    caplog.set_level(logging.DEBUG)
    secret = "s3cret-Pa55word-do-not-leak"
    source = make(password=secret)
    with pytest.raises(AuthFailed) as caught:
        await source.connect()
    message = str(caught.value)
    assert "refused the login" in message and USERNAME in message
    assert secret not in _text_of(caught.value)
    assert classify(caught.value)[0] is ErrorKind.FAILURE
    report = await source.probe()
    assert not report.ok
    assert any("refused the login" in s for s in report.sentences())
    assert secret not in caplog.text and secret not in " ".join(report.sentences())
    assert caplog.records, "asyncssh should have logged the attempt"


async def test_private_key_login(make, server):
    source = make(password=None, private_key=server.client_private_pem)
    layout = await source.discover()
    assert layout.server_log is not None


async def test_unreadable_private_key_is_a_clear_error_without_the_key(make):
    garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key-material-1234\n-----END"
    source = make(password=None, private_key=garbage)
    report = await source.probe()
    text = " ".join(report.sentences())
    assert "private key could not be read" in text
    assert "not-a-real-key-material-1234" not in text


async def test_untrusted_host_key_refuses_before_login_and_reports_fingerprint(make, server):
    source = make(trusted_fingerprint=None)
    with pytest.raises(HostKeyUntrusted) as caught:
        await source.connect()
    assert caught.value.fingerprint == server.fingerprint
    assert server.fingerprint in str(caught.value)
    assert server.auth_attempts == 0  # no password was sent to an unverified host

    with pytest.raises(HostKeyUntrusted):  # blocked: no new connection attempt
        await source.stat(f"/{LOG_DIR}/Deadside.log")
    assert source.connects == 1

    report = await source.probe()
    assert report.fingerprint == server.fingerprint
    assert any(server.fingerprint in s for s in report.sentences())

    source.trust(report.fingerprint)
    assert (await source.stat(f"/{LOG_DIR}/Deadside.log")).size > 0


async def test_changed_host_key_blocks_until_retrusted(make, server):
    source = make()
    await source.connect()
    old = server.fingerprint
    await server.restart(new_host_key=True)

    with pytest.raises((Unreachable, HostKeyChanged)):  # the old connection was cut
        await source.stat(f"/{LOG_DIR}/Deadside.log")
    with pytest.raises(HostKeyChanged) as caught:
        await source.stat(f"/{LOG_DIR}/Deadside.log")
    assert (caught.value.expected, caught.value.got) == (old, server.fingerprint)
    assert "changed" in str(caught.value) and "blocked" in str(caught.value)
    attempts = source.connects
    with pytest.raises(HostKeyChanged):
        await source.connect()
    assert source.connects == attempts

    source.trust(server.fingerprint)
    assert (await source.stat(f"/{LOG_DIR}/Deadside.log")).size > 0


async def test_dead_server_is_unreachable_quickly_and_backs_off():
    clock = ManualClock()
    port = await closed_port()
    source = SftpSource(
        "127.0.0.1",
        port,
        USERNAME,
        password=PASSWORD,
        trusted_fingerprint="SHA256:x",
        clock=clock,
        reconnect_policy=RetryPolicy(base=4.0, cap=60.0),
        rng=MaxJitter(),
    )
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(Unreachable) as caught:
        await source.connect()
    assert loop.time() - started < 2.0
    assert "Could not reach 127.0.0.1" in str(caught.value)
    assert classify(caught.value)[0] is ErrorKind.TRANSIENT

    clock.t = 3.0  # still inside the 4 s backoff: refused without touching the network
    with pytest.raises(Unreachable, match="next attempt is in 1 s"):
        await source.connect()
    assert source.connects == 1
    clock.t = 4.0  # backoff over: tries again, fails, and now waits twice as long
    with pytest.raises(Unreachable):
        await source.connect()
    assert source.connects == 2
    clock.t = 11.9
    with pytest.raises(Unreachable, match="next attempt"):
        await source.connect()
    assert source.connects == 2

    report = await source.probe()  # an admin's probe ignores the backoff
    assert source.connects == 3
    assert [c.name for c in report.checks] == ["reachable"] and not report.ok


async def test_silent_server_times_out_as_unreachable():
    hold: list[asyncio.StreamWriter] = []
    silent = await asyncio.start_server(lambda r, w: hold.append(w), "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    source = SftpSource("127.0.0.1", port, USERNAME, password=PASSWORD, connect_timeout=0.3)
    try:
        with pytest.raises(Unreachable, match="no answer within 0.3 s"):
            await source.connect()
    finally:
        for writer in hold:
            writer.close()
        silent.close()
        await silent.wait_closed()


async def test_probe_reports_each_check_as_a_sentence(make, server):
    report = await make().probe()
    assert report.ok, report.sentences()
    assert [c.name for c in report.checks] == [
        "reachable",
        "host key",
        "login",
        "kill files",
        "server log",
    ]
    text = "\n".join(report.sentences())
    assert server.fingerprint in text
    assert "Found 2 kill log files; the newest is" in text
    assert "2025.05.15-00.00.00.csv" in text and "Deadside.log" in text


async def test_probe_of_a_wrong_base_path_says_what_is_missing(make):
    report = await make(base_path="/nope").probe()
    assert not report.ok
    assert any("/nope does not exist" in s for s in report.sentences())


async def test_rotation_and_truncation_over_sftp(make, root):
    source = make()
    layout = await source.discover()
    cursor = await initial_cursor(source, layout)
    current = root / KILL_DIR / "2025.05.15-00.00.00.csv"
    with current.open("ab") as handle:
        handle.write(LINE + b"tail-without-newline;")
    (root / KILL_DIR / "2025.05.16-00.00.00.csv").write_bytes(LINE)
    layout = await source.refresh(layout)

    batch = await poll(source, cursor, layout)
    assert [(Path(c.path).name, c.data) for c in batch.chunks] == [
        ("2025.05.15-00.00.00.csv", LINE + b"tail-without-newline;"),
        ("2025.05.16-00.00.00.csv", LINE),
    ]
    cursor = batch.next_cursor
    assert Path(cursor.path).name == "2025.05.16-00.00.00.csv"

    (root / KILL_DIR / "2025.05.16-00.00.00.csv").write_bytes(b"X;\n")  # truncated, rewritten
    batch = await poll(source, cursor, layout)
    assert [(c.start, c.data) for c in batch.chunks] == [(0, b"X;\n")]


async def test_bom_and_crlf_pass_through_untouched(make, root):
    source = make()
    log = root / LOG_DIR / "Deadside.log"
    log.write_bytes(b"")
    layout = await source.discover()
    cursor = await initial_cursor(source, layout, SERVER_LOG)
    assert cursor == Cursor(SERVER_LOG, layout.server_log, 0, 0, cursor.mtime, None)
    log.write_bytes(b"\xef\xbb\xbfLogInit: a\r\nLogInit: b\r\n")
    batch = await poll(source, cursor, layout)
    assert [(c.start, c.data) for c in batch.chunks] == [
        (0, b"\xef\xbb\xbfLogInit: a\r\nLogInit: b\r\n")
    ]
    assert batch.next_cursor.stream == SERVER_LOG != KILLS


async def test_no_secret_in_logs_across_a_session(make, root, caplog):
    caplog.set_level(logging.DEBUG)
    asyncssh.set_debug_level(2)
    try:
        source = make()
        layout = await source.discover()
        await poll(source, await initial_cursor(source, layout), layout)
        await source.probe()
    finally:
        asyncssh.set_debug_level(1)
    assert caplog.records
    assert PASSWORD not in caplog.text
