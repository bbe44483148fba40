"""Create a throwaway Red instance and run the real ``redbot`` against a :class:`FakeDiscord`.

The instance lives entirely under one directory (config via ``XDG_CONFIG_HOME``, JSON data, a
private ``HOME``), so tests never see or touch a developer's real instances. The token reaches
Red through ``RED_TOKEN``, Red's own environment variable, never the command line.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from .server import FakeDiscord

LAUNCHER = Path(__file__).with_name("launch_redbot.py")


class RedbotError(RuntimeError):
    """redbot-setup failed, or redbot exited before it was stopped."""


class RedbotProcess:
    """One real ``redbot`` process wired to ``fake``; always stop it (it is an async context)."""

    def __init__(
        self,
        fake: FakeDiscord,
        root: Path,
        *,
        instance: str = "fakered",
        prefix: str = "!",
        extra_args: tuple[str, ...] = (),
        backend: str = "json",
        setup_answers: str = "",
    ) -> None:
        self.fake = fake
        self.backend = backend  # "postgres": redbot-setup reads its answers from stdin
        self.setup_answers = setup_answers
        self.root = Path(root)
        self.instance = instance
        self.prefix = prefix
        self.extra_args = extra_args
        self.data_path = self.root / "data"
        self.log_path = self.root / "redbot.log"
        self.process: asyncio.subprocess.Process | None = None
        self._created = False

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            HOME=str(self.root / "home"),
            XDG_CONFIG_HOME=str(self.root / "config"),
            XDG_DATA_HOME=str(self.root / "share"),
            RED_TOKEN=self.fake.token,
            FAKEDISCORD_API_BASE=self.fake.api_base,
            FAKEDISCORD_WATCH_STDIN="1",
            PYTHONUNBUFFERED="1",
            NO_COLOR="1",
        )
        # The bot must import taskcog through its cog path, like a user's bot would.
        env.pop("PYTHONPATH", None)
        return env

    async def create_instance(self) -> None:
        """Run ``redbot-setup --no-prompt`` for a fresh JSON instance."""
        (self.root / "home").mkdir(parents=True, exist_ok=True)
        setup = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "redbot.setup",
            "--no-prompt",
            "--instance-name",
            self.instance,
            "--data-path",
            str(self.data_path),
            "--backend",
            self.backend,
            env=self.env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,  # no terminal: getpass reads the password from stdin too
        )
        output, _ = await setup.communicate(self.setup_answers.encode())
        if setup.returncode != 0:
            raise RedbotError(f"redbot-setup failed ({setup.returncode}): {output.decode()}")
        self._created = True

    async def start(self) -> None:
        """Start redbot; returns at once (use ``fake.wait_until_connected`` to wait)."""
        if not self._created:
            await self.create_instance()
        log_file = self.log_path.open("ab")
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(LAUNCHER),
                self.instance,
                "--no-prompt",
                "--prefix",
                self.prefix,
                "--force-disable-rich-logging",
                *self.extra_args,
                env=self.env,
                cwd=str(self.root),
                # The launcher exits when this pipe closes, so a crashed test leaves no bot.
                stdin=asyncio.subprocess.PIPE,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
            )
        finally:
            log_file.close()

    async def wait_until_connected(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Wait for the bot to log in to the fake; fail at once, with its log, if it exits."""
        assert self.process is not None, "start() first"
        connected = asyncio.ensure_future(self.fake.wait_until_connected(timeout))
        exited = asyncio.ensure_future(self.process.wait())
        try:
            await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if not connected.done():
            connected.cancel()
            raise RedbotError(
                f"redbot exited ({self.process.returncode}) before connecting:\n{self.log_tail()}"
            )
        connected.result()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def kill(self) -> None:
        """SIGKILL the bot right now: no shutdown handlers run (crash tests)."""
        if self.running:
            assert self.process is not None
            self.process.kill()

    async def crash(self) -> int | None:
        """SIGKILL the bot and wait until it is gone; returns its exit code (-9)."""
        if self.process is None:
            return None
        self.kill()
        code = await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        return code

    async def restart(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        """Start the same instance again after a crash or stop, and wait until it logs in.

        Waits for the fake to see the old gateway socket close first, so a stale connection is
        never mistaken for the new one.
        """
        if self.running:
            raise RedbotError("redbot is still running; crash() or stop() it first")
        await self.fake.wait_until_disconnected(timeout)
        await self.start()
        await self.wait_until_connected(timeout)

    async def stop(self, timeout: float = 20.0) -> int | None:  # noqa: ASYNC109 - a grace period
        """Ask redbot to shut down (SIGTERM); SIGKILL it if it is not gone in ``timeout``."""
        if self.process is None:
            return None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), timeout)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
        return self.process.returncode

    def log_tail(self, lines: int = 60) -> str:
        """The end of redbot's console output, for failure messages."""
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    async def __aenter__(self) -> RedbotProcess:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
