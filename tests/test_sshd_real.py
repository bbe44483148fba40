"""SftpSource end to end against a real OpenSSH sshd on a loopback port.

The daemon gets a temporary host key, config and authorized key; the test trusts the
fingerprint computed from that host key, logs in with the generated client key and tails a
kill file. It skips only where sshd cannot be had (not installed, or it will not start).
"""

from __future__ import annotations

import asyncio
import getpass
import os
import shutil
import socket
from pathlib import Path

import asyncssh
import pytest

from taskcog.pipeline.sources import SftpSource, initial_cursor, poll

pytestmark = pytest.mark.slow

LINE = b"2025.05.15-00.11.07;Killer;0002f2;Victim;0002c9;MR5;20;XSX;XSX;\n"
PRIVSEP_DIR = Path("/run/sshd")  # Debian's sshd refuses to start without it


def _sshd() -> str | None:
    return shutil.which("sshd") or next(
        (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(p, os.X_OK)), None
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _write_key(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)  # sshd ignores group- or world-readable host keys


async def _start_sshd(sshd: str, config: Path, port: int) -> asyncio.subprocess.Process:
    """Start sshd and wait until it says it listens; skip if it exits or never does."""
    process = await asyncio.create_subprocess_exec(
        sshd, "-D", "-e", "-f", str(config),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    said: list[str] = []

    async def listening() -> bool:
        while line := await process.stderr.readline():
            said.append(line.decode(errors="replace").strip())
            if f"Server listening on 127.0.0.1 port {port}" in said[-1]:
                return True
        return False

    try:
        ready = await asyncio.wait_for(listening(), 10)
    except TimeoutError:
        ready = False
    if not ready:
        if process.returncode is None:
            process.terminate()
        await process.wait()
        pytest.skip(f"sshd could not start: {' | '.join(said[-3:]) or 'no output'}")
    return process


def _prepare(tmp_path: Path) -> tuple[str, Path, int, str, str]:
    """Host key, client key, authorized_keys and sshd_config in ``tmp_path``; skip if no sshd."""
    binary = _sshd()
    if binary is None:
        pytest.skip("OpenSSH sshd is not installed (apt-get install openssh-server)")
    if not PRIVSEP_DIR.is_dir():
        if os.geteuid() != 0:
            pytest.skip(f"sshd needs {PRIVSEP_DIR}, and only root can create it")
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    _write_key(tmp_path / "host_key", host_key.export_private_key())
    (tmp_path / "authorized_keys").write_bytes(client_key.export_public_key())
    port = _free_port()
    config = tmp_path / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        "ListenAddress 127.0.0.1\n"
        f"HostKey {tmp_path / 'host_key'}\n"
        f"PidFile {tmp_path / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {tmp_path / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "UsePAM no\n"
        "StrictModes no\n"
        "PermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\n"
        "LogLevel INFO\n"
    )
    fingerprint = host_key.get_fingerprint("sha256")
    return binary, config, port, fingerprint, client_key.export_private_key().decode()


@pytest.fixture
async def sshd(tmp_path: Path):
    binary, config, port, fingerprint, private_key = _prepare(tmp_path)
    process = await _start_sshd(binary, config, port)
    try:
        yield port, fingerprint, private_key
    finally:
        process.terminate()
        await process.wait()


def _server_tree(tmp_path: Path) -> Path:
    world = tmp_path / "server" / "Deadside" / "Saved" / "actual1" / "deathlogs" / "world_0"
    world.mkdir(parents=True)
    kill_file = world / "2025.05.15-00.00.00.csv"
    kill_file.write_bytes(LINE * 2)
    return kill_file


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


async def test_tails_a_kill_file_through_real_sshd(sshd, tmp_path):
    port, fingerprint, private_key = sshd
    kill_file = _server_tree(tmp_path)
    source = SftpSource(
        "127.0.0.1",
        port,
        getpass.getuser(),
        private_key=private_key,
        base_path=str(tmp_path / "server"),
        trusted_fingerprint=fingerprint,
        connect_timeout=5,
    )
    try:
        report = await source.probe()
        assert [c.name for c in report.checks][:3] == ["reachable", "host key", "login"]
        assert all(c.ok for c in report.checks[:4]), report.sentences()
        layout = report.layout
        assert layout is not None and layout.kill_files == [str(kill_file)]

        cursor = await initial_cursor(source, layout)
        assert cursor.offset == len(LINE) * 2
        _append(kill_file, LINE + LINE[:25])
        batch = await poll(source, cursor, layout)
        assert [(c.start, c.data) for c in batch.chunks] == [(len(LINE) * 2, LINE)]

        source.reset_counters()
        again = await poll(source, batch.next_cursor, layout)
        assert again.chunks == [] and (source.round_trips, source.bytes_read) == (1, 0)
        assert source.connects == 1
    finally:
        await source.close()
