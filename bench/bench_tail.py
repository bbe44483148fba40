"""Tailing benchmark: what one killfeed poll costs over SFTP, and how soon a new kill is seen.

Today's bots download the whole kill file every poll. taskcog keeps a byte cursor, so polling an
unchanged file should cost one ``stat`` and no bytes. This script measures that against two
anchors in the same run ("re-download the whole file" and a naive "stat + read the last 64 KiB"),
over SFTP to (a) the in-process asyncssh server from ``tests/sftp_server.py`` (same process and
event loop as the client) and (b) a real OpenSSH sshd on 127.0.0.1 (skipped with a note if it
cannot start). Then the cost of a poll after N appended lines, and the latency from an append on
the server to the kill's message in a Discord channel (simcord), or to the parsed event when the
killfeed modules are not there.

Run from the repository root::

    /work/venv/bin/python bench/bench_tail.py             # 100 MiB file, ~15 s
    /work/venv/bin/python bench/bench_tail.py --quick     # 10 MiB file, a few polls, ~3 s

Prints Markdown tables (paste them into docs/benchmarks.md, ``## Tailing``). Not a test.
Generated files live in a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import getpass
import os
import platform
import shutil
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import asyncssh

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the in-process SFTP server helper

from sftp_server import PASSWORD, USERNAME, SftpServer  # noqa: E402

from taskcog.pipeline.events import KillEvent  # noqa: E402
from taskcog.pipeline.parsers.deadside import format_kill_line, parse_kills  # noqa: E402
from taskcog.pipeline.sources import (  # noqa: E402
    Cursor,
    Layout,
    SftpSource,
    Source,
    initial_cursor,
    poll,
)

MiB = 1024 * 1024
NAIVE_TAIL = 64 * 1024
KILL_DIR = Path("Deadside/Saved/actual1/deathlogs/world_0")
KILL_NAME = "2025.05.15-00.00.00.csv"
APPENDS = (1, 100, 10_000)
UTC = _dt.UTC
_CAUSES = ("MR5", "IZH-43", "AK-SU", "suicide_by_relocation", "M99", "Mosin-K", "falling")


# ---------------------------------------------------------------------------- data


class KillLines:
    """Distinct, valid kill-log lines: line ``i`` has its own time and victim id."""

    def __init__(self) -> None:
        self.count = 0
        self._start = _dt.datetime(2025, 5, 15, tzinfo=UTC)

    def next(self, n: int, *, victim: str | None = None) -> bytes:
        """``n`` new lines; ``victim`` names the last one's victim so it can be found again."""
        out = []
        for k in range(n):
            i = self.count
            self.count += 1
            name = victim if victim is not None and k == n - 1 else f"Survivor {i % 997}"
            event = KillEvent(
                id="",
                at=self._start + _dt.timedelta(seconds=i),
                killer=f"Hunter_{i % 613}",
                killer_id=f"0002{(i * 7919) % 16**28:028x}",
                victim=name,
                victim_id=f"0003{i:028x}",
                cause=_CAUSES[i % len(_CAUSES)],
                distance=float(i % 400),
                killer_platform="PS5",
                victim_platform="XSX",
                kind="kill",
            )
            out.append(format_kill_line(event))
        return "".join(out).encode()


def write_kill_file(path: Path, size: int, lines: KillLines) -> int:
    """Fill ``path`` with whole lines up to at most ``size`` bytes; returns the size written."""
    block = lines.next(10_000)
    written = 0
    with path.open("wb") as handle:
        while written + len(block) <= size:
            handle.write(block)
            written += len(block)
        rest = block[: block.rfind(b"\n", 0, size - written) + 1]
        handle.write(rest)
        written += len(rest)
    return written


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


# ---------------------------------------------------------------------------- servers


@dataclass
class Server:
    """One SFTP server serving ``tree`` and how to log in to it."""

    name: str
    options: dict[str, Any]
    base_path: str
    note: str = ""


async def asyncssh_server(tree: Path) -> AsyncIterator[Server]:
    # Full-size reads (no short-read fault injection): a plain asyncssh server.
    server = await SftpServer(tree, max_read=None).start()
    try:
        yield Server(
            "asyncssh (in-process)",
            dict(port=server.port, username=USERNAME, password=PASSWORD,
                 trusted_fingerprint=server.fingerprint),
            "/",
        )  # fmt: skip
    finally:
        await server.stop()


def _sshd_binary() -> str | None:
    return shutil.which("sshd") or next(
        (p for p in ("/usr/sbin/sshd", "/usr/local/sbin/sshd") if os.access(p, os.X_OK)), None
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_sshd(work: Path) -> tuple[Path, int, asyncssh.SSHKey, asyncssh.SSHKey] | str:
    """Keys and an sshd_config in ``work``, or a sentence saying why sshd cannot run."""
    privsep = Path("/run/sshd")  # Debian's sshd refuses to start without it
    if not privsep.is_dir():
        if os.geteuid() != 0:
            return f"sshd needs {privsep}, and only root can create it"
        privsep.mkdir(mode=0o755, parents=True, exist_ok=True)
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    (work / "host_key").write_bytes(host_key.export_private_key())
    (work / "host_key").chmod(0o600)  # sshd ignores readable host keys
    (work / "authorized_keys").write_bytes(client_key.export_public_key())
    port = _free_port()
    config = work / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {work / 'host_key'}\n"
        f"PidFile {work / 'sshd.pid'}\nAuthorizedKeysFile {work / 'authorized_keys'}\n"
        "PubkeyAuthentication yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\n"
        "Subsystem sftp internal-sftp\nLogLevel INFO\n"
    )
    return config, port, host_key, client_key


async def openssh_server(tree: Path, work: Path) -> AsyncIterator[Server | str]:
    """Yield a :class:`Server` for a real sshd, or a sentence saying why there is none."""
    binary = _sshd_binary()
    if binary is None:
        yield "OpenSSH sshd is not installed"
        return
    prepared = await asyncio.to_thread(_prepare_sshd, work)
    if isinstance(prepared, str):
        yield prepared
        return
    config, port, host_key, client_key = prepared
    process = await asyncio.create_subprocess_exec(
        binary, "-D", "-e", "-f", str(config),
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
    try:
        if not ready:
            yield f"sshd could not start: {' | '.join(said[-3:]) or 'no output'}"
            return
        # Drain sshd's log so a full pipe never blocks it.
        drain = asyncio.create_task(_drain(process.stderr))
        version = (await _run(binary, "-V")).strip() or "OpenSSH"
        yield Server(
            f"OpenSSH sshd ({version.split(',')[0]})",
            dict(port=port, username=getpass.getuser(),
                 private_key=client_key.export_private_key().decode(),
                 trusted_fingerprint=host_key.get_fingerprint("sha256")),
            str(tree),
        )  # fmt: skip
        drain.cancel()
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def _run(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return out.decode(errors="replace")


def make_source(server: Server) -> SftpSource:
    return SftpSource(
        "127.0.0.1", base_path=server.base_path, connect_timeout=10, **server.options
    )


# ---------------------------------------------------------------------------- measuring


@dataclass
class Cost:
    """Per-call bytes read, SFTP requests and wall time, over repeated calls."""

    label: str
    bytes_read: list[int] = field(default_factory=list)
    round_trips: list[int] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.ms)

    @property
    def bytes(self) -> int:
        return int(statistics.median(self.bytes_read))

    @property
    def trips(self) -> int:
        return int(statistics.median(self.round_trips))


async def measure(
    label: str,
    source: Source,
    call: Callable[[], Awaitable[Any]],
    repeat: int,
    before: Callable[[], None] | None = None,
) -> Cost:
    """Time ``call`` ``repeat`` times after one warm-up; ``before`` runs untimed each time."""
    cost = Cost(label)
    for i in range(repeat + 1):
        if before is not None:
            before()
        source.reset_counters()
        start = time.perf_counter()
        await call()
        elapsed = (time.perf_counter() - start) * 1000
        if i:  # the first call warms caches and the connection
            cost.ms.append(elapsed)
            cost.bytes_read.append(source.bytes_read)
            cost.round_trips.append(source.round_trips)
    return cost


async def unchanged_costs(
    source: Source, layout: Layout, path: str, polls: int, downloads: int
) -> list[Cost]:
    """taskcog's poll with the cursor at the end, and the two anchors, on an unchanged file."""
    cursor = await initial_cursor(source, layout)

    async def tail() -> None:
        batch = await poll(source, cursor, layout)
        assert not batch.chunks and batch.next_cursor.offset == cursor.offset

    async def naive() -> None:
        size = (await source.stat(path)).size
        await source.read(path, max(0, size - NAIVE_TAIL), NAIVE_TAIL)

    async def download() -> None:
        size = (await source.stat(path)).size
        data = await source.read(path, 0, size)
        assert len(data) == size

    return [
        await measure("taskcog `poll`, cursor at the end", source, tail, polls),
        await measure("naive tail: stat + read the last 64 KiB", source, naive, polls),
        await measure("re-download the whole file", source, download, downloads),
    ]


class _Appender:
    """Appends N lines before each timed poll, and checks the poll got exactly them."""

    def __init__(self, source: Source, layout: Layout, kill_file: Path, lines: KillLines) -> None:
        self.source, self.layout, self.kill_file, self.lines = source, layout, kill_file, lines
        self.cursor: Cursor | None = None
        self.sizes: list[int] = []

    def grow(self, n: int) -> None:
        data = self.lines.next(n)
        self.sizes.append(len(data))
        append(self.kill_file, data)

    async def tail(self) -> None:
        assert self.cursor is not None
        batch = await poll(self.source, self.cursor, self.layout)
        assert batch.size == self.sizes[-1] and not batch.more, (batch.size, self.sizes[-1])
        self.cursor = batch.next_cursor


async def append_costs(
    source: Source, layout: Layout, kill_file: Path, lines: KillLines, polls: int
) -> list[tuple[int, int, Cost]]:
    """A poll after N lines were appended: (N, median bytes appended, cost) for each N."""
    rows = []
    for n in APPENDS:
        appender = _Appender(source, layout, kill_file, lines)
        appender.cursor = await initial_cursor(source, layout)
        cost = await measure(
            f"{n:,} line(s)", source, appender.tail, polls, before=partial(appender.grow, n)
        )
        rows.append((n, int(statistics.median(appender.sizes[1:])), cost))
    return rows


async def parse_latency(
    source: Source, layout: Layout, kill_file: Path, lines: KillLines, trials: int
) -> list[float]:
    """ms from appending a line on the server to its parsed event (poll + parse)."""
    cursor = await initial_cursor(source, layout)
    samples = []
    for trial in range(trials + 1):
        victim = f"Bench victim {trial}"
        data = lines.next(1, victim=victim)
        start = time.perf_counter()
        append(kill_file, data)
        found = False
        while not found:
            batch = await poll(source, cursor, layout)
            cursor = batch.next_cursor
            for chunk in batch.chunks:
                result = parse_kills(chunk.data)
                found = found or any(e.victim == victim for e in result.events)
        if trial:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


class _TimedChannel:
    """A channel that notes when each send returned, i.e. when the message was posted."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self.sent_at: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._channel, name)

    async def send(self, *args: Any, **kwargs: Any) -> Any:
        message = await self._channel.send(*args, **kwargs)
        self.sent_at = time.perf_counter()
        return message


def killfeed_usable() -> str | None:
    """None if ``ingest_once`` and ``KillfeedSink`` import, else why not."""
    try:
        import simcord  # noqa: F401

        from taskcog.pipeline.killfeed import ingest_once  # noqa: F401
        from taskcog.pipeline.sinks.discord import KillfeedSink  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


async def killfeed_latency(
    source: Source, kill_file: Path, lines: KillLines, trials: int, db: Path
) -> tuple[list[float], list[float], int]:
    """ms from an append to (its message posted, ``ingest_once`` returned with the cursor
    committed), through the real pool, SQLite ledger and sink, into a simcord channel; and the
    SFTP requests one such run makes (median)."""
    import discord
    import simcord
    from discord.ext import commands

    from taskcog.engine.pool import WorkerPool
    from taskcog.pipeline.killfeed import ingest_once
    from taskcog.pipeline.ledger import AsyncLedger, Ledger
    from taskcog.pipeline.sinks.discord import KillfeedSink

    scope = "1:bench"
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.all())
    pool = WorkerPool()
    ledger = Ledger(db)
    posted: list[float] = []
    committed: list[float] = []
    requests: list[int] = []
    try:
        async with simcord.run(bot) as env:
            handle = env.create_guild().create_text_channel("killfeed")
            channel = _TimedChannel(bot.get_channel(handle.id))
            store = AsyncLedger(ledger, pool)
            sink = KillfeedSink(channel, store, scope)  # type: ignore[arg-type]
            first = await ingest_once(source, sink, store, pool, scope)
            assert first.first_run, "the ledger should start empty"
            for trial in range(trials + 1):
                victim = f"Bench victim {trial}"
                data = lines.next(1, victim=victim)
                start = time.perf_counter()
                append(kill_file, data)
                source.reset_counters()
                report = await ingest_once(source, sink, store, pool, scope)
                done = time.perf_counter()
                assert report.posted == 1, report
                assert (
                    channel.sent_at is not None and victim in handle.last_message.embeds[0].title
                )
                if trial:  # the first run warms the pool's threads and the ledger
                    posted.append((channel.sent_at - start) * 1000)
                    committed.append((done - start) * 1000)
                    requests.append(source.round_trips)
    finally:
        await pool.shutdown()
        ledger.close()
    return posted, committed, int(statistics.median(requests))


# ---------------------------------------------------------------------------- report


def _ratio(value: float, anchor: float) -> str:
    if anchor == 0:
        return "-"
    if value == 0:
        return "0"
    ratio = value / anchor
    return f"1/{anchor / value:,.0f}" if ratio < 0.1 else f"{ratio:.2f}x"


def unchanged_table(size: int, results: list[tuple[str, list[Cost]]]) -> str:
    out = [
        f"Polling an unchanged {size / MiB:,.0f} MiB kill file ({size:,} bytes):",
        "",
        "| server | method | bytes read | SFTP requests | ms per poll (median) "
        "| bytes vs re-download | ms vs re-download | ms vs naive tail |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for server, costs in results:
        tail, naive, full = costs
        for cost in costs:
            out.append(
                f"| {server} | {cost.label} | {cost.bytes:,} | {cost.trips} "
                f"| {cost.median_ms:,.2f} | {_ratio(cost.bytes, full.bytes)} "
                f"| {_ratio(cost.median_ms, full.median_ms)} "
                f"| {_ratio(cost.median_ms, naive.median_ms)} |"
            )
    met = all(costs[0].bytes == 0 and costs[0].trips == 1 for _, costs in results)
    out += ["", f"Target: 0 bytes read for an unchanged file: {'met' if met else 'MISSED'}."]
    return "\n".join(out)


def append_table(results: list[tuple[str, list[tuple[int, int, Cost]]]]) -> str:
    out = [
        "A poll after N new lines were appended (cursor at the previous end):",
        "",
        "| server | new lines | bytes appended | bytes read | SFTP requests "
        "| ms per poll (median) | ms (max) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for server, rows in results:
        for n, appended, cost in rows:
            out.append(
                f"| {server} | {n:,} | {appended:,} | {cost.bytes:,} | {cost.trips} "
                f"| {cost.median_ms:,.2f} | {max(cost.ms):,.2f} |"
            )
    return "\n".join(out)


def _spread(samples: list[float]) -> str:
    """``median | p90 | max`` cells."""
    p90 = statistics.quantiles(samples, n=10, method="inclusive")[-1] if len(samples) > 1 else 0
    return f"{statistics.median(samples):,.1f} | {p90:,.1f} | {max(samples):,.1f}"


def latency_table(what: str, columns: list[tuple[str, list[tuple[str, list[float]]]]]) -> str:
    """One row per server; each column group is (label, [(server, samples)])."""
    heads = "".join(f" {label}: median | p90 | max |" for label, _ in columns)
    out = [
        f"Latency from a line appended on the server to {what} (real time, ms):",
        "",
        f"| server | trials |{heads}",
        "|---|---:|" + "---:|---:|---:|" * len(columns),
    ]
    for i, (server, samples) in enumerate(columns[0][1]):
        cells = " | ".join(_spread(group[i][1]) for _, group in columns)
        out.append(f"| {server} | {len(samples)} | {cells} |")
    return "\n".join(out)


def machine_line() -> str:
    return (
        f"Machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"Python {platform.python_version()}, asyncssh {asyncssh.__version__}, "
        f"{platform.system()} {platform.release()}"
    )


# ---------------------------------------------------------------------------- main


async def bench(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_tail_") as tmp:
        work = Path(tmp)
        tree = work / "server"
        (tree / KILL_DIR).mkdir(parents=True)
        kill_file = tree / KILL_DIR / KILL_NAME
        lines = KillLines()
        started = time.perf_counter()
        size = write_kill_file(kill_file, int(args.size_mb * MiB), lines)
        print(f"Wrote {size:,} bytes in {time.perf_counter() - started:.1f} s", file=sys.stderr)

        unchanged: list[tuple[str, list[Cost]]] = []
        appended: list[tuple[str, list[tuple[int, int, Cost]]]] = []
        latency: list[tuple[str, list[float]]] = []
        notes: list[str] = []
        posted: list[tuple[str, list[float]]] = []
        committed: list[tuple[str, list[float]]] = []
        killfeed = killfeed_usable()
        if killfeed is not None:
            notes.append(f"Killfeed latency: not measured ({killfeed}).")
        servers = [asyncssh_server(tree)]
        if not args.no_sshd:
            servers.append(openssh_server(tree, work))
        else:
            notes.append("OpenSSH sshd: skipped (--no-sshd).")
        for context in servers:
            async for server in context:
                if isinstance(server, str):
                    notes.append(f"OpenSSH sshd: skipped ({server}).")
                    continue
                print(f"Measuring {server.name}", file=sys.stderr)
                source = make_source(server)
                try:
                    layout = await source.discover()
                    path = layout.kill_files[-1]
                    # Same size on every server: the file only grows after this.
                    os.truncate(kill_file, size)
                    unchanged.append(
                        (server.name, await unchanged_costs(
                            source, layout, path, args.polls, args.downloads))
                    )  # fmt: skip
                    appended.append(
                        (server.name, await append_costs(
                            source, layout, kill_file, lines, args.polls))
                    )  # fmt: skip
                    latency.append(
                        (server.name, await parse_latency(
                            source, layout, kill_file, lines, args.trials))
                    )  # fmt: skip
                    if killfeed is None:
                        db = work / f"killfeed-{len(posted)}.sqlite3"
                        to_post, to_commit, trips = await killfeed_latency(
                            source, kill_file, lines, args.trials, db
                        )
                        notes.append(
                            f"{server.name}: one `ingest_once` made {trips} SFTP requests "
                            "(re-list the kill folder, stat, open/read/close) and 1 Discord send."
                        )
                        posted.append((server.name, to_post))
                        committed.append((server.name, to_commit))
                finally:
                    await source.close()

        print(machine_line())
        print()
        print(unchanged_table(size, unchanged))
        print()
        print(append_table(appended))
        print()
        if posted:
            columns = [("append -> posted", posted), ("append -> committed", committed)]
            print(latency_table("its kill message (`ingest_once`, simcord)", columns))
            print()
        parsed = [("append -> parsed", latency)]
        print(latency_table("its parsed event (source poll + parse only)", parsed))
        for note in notes:
            print(f"\n{note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 MB file and a few polls")
    parser.add_argument("--size-mb", type=float, default=100, help="kill file size in MiB")
    parser.add_argument("--polls", type=int, default=31, help="polls per median")
    parser.add_argument("--downloads", type=int, default=5, help="whole-file downloads")
    parser.add_argument("--trials", type=int, default=31, help="latency trials")
    parser.add_argument("--no-sshd", action="store_true", help="skip the real OpenSSH sshd")
    args = parser.parse_args()
    if args.quick:
        args.size_mb, args.polls, args.downloads, args.trials = 10, 5, 2, 5
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
