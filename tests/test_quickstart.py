"""The README's first set-up command really starts a bot with taskcog loaded.

``docs/quickstart.py`` runs ``redbot-setup`` for a brand-new instance, primes it and execs the
real ``redbot`` console script. Here it runs as a user would run it, in a fresh home, with the
token in ``RED_TOKEN``; only the ``redbot`` it execs is pointed at the fake Discord (by a
``sitecustomize`` on ``PYTHONPATH``). Without any ``[p]load``, ``[p]tasks status`` must answer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakediscord.launch_redbot import write_sitecustomize  # noqa: E402
from fakediscord.server import FakeDiscord, message_text  # noqa: E402

CHECKOUT = TESTS.parent
QUICKSTART = CHECKOUT / "docs" / "quickstart.py"
TIMEOUT = 60.0


def quickstart_env(tmp_path: Path, fake: FakeDiscord) -> dict[str, str]:
    """A brand-new user: nothing in HOME or the XDG folders, the token in RED_TOKEN."""
    site = tmp_path / "site"
    site.mkdir()
    write_sitecustomize(site)
    env = dict(os.environ)
    for name in ("home", "config", "share"):
        (tmp_path / name).mkdir()
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "share"),
        RED_TOKEN=fake.token,
        FAKEDISCORD_API_BASE=fake.api_base,
        FAKEDISCORD_WATCH_STDIN="1",  # the bot exits if this test dies
        PYTHONPATH=str(site),  # only the sitecustomize: taskcog must come from --cog-path
        PYTHONUNBUFFERED="1",
        NO_COLOR="1",
    )
    return env


def log_tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.mark.slow
async def test_quickstart_starts_a_bot_with_taskcog_loaded(tmp_path: Path) -> None:
    log_path = tmp_path / "quickstart.log"
    async with FakeDiscord() as fake:
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(QUICKSTART),
                "--instance",
                "qs",
                "--data-path",
                str(tmp_path / "data"),
                env=quickstart_env(tmp_path, fake),
                cwd=str(tmp_path),
                stdin=asyncio.subprocess.PIPE,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        try:
            connected = asyncio.ensure_future(fake.wait_until_connected(TIMEOUT))
            exited = asyncio.ensure_future(process.wait())
            await asyncio.wait({connected, exited}, return_when=asyncio.FIRST_COMPLETED)
            exited.cancel()
            if not connected.done():
                connected.cancel()
                raise AssertionError(
                    f"quickstart exited ({process.returncode}) before the bot connected:\n"
                    + log_tail(log_path)
                )
            connected.result()
            try:
                # Red answers commands once it is ready, which is after it loaded its cogs.
                assert message_text(await fake.command("!ping", timeout=TIMEOUT)) == "Pong."
                assert "Loaded packages: taskcog" in log_path.read_text(
                    errors="replace"
                ), "redbot started without taskcog:\n" + log_tail(log_path)
                reply = await fake.command("!tasks status", timeout=TIMEOUT)
            except TimeoutError as exc:
                raise AssertionError(f"{exc}\n--- log ---\n{log_tail(log_path)}") from None
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGKILL)
            await process.wait()
            assert process.stdin is not None
            process.stdin.close()
    status = message_text(reply)
    assert "housekeeping" in status, f"{status}\n--- log ---\n{log_tail(log_path)}"
    # The instance is where the user's fresh config folder says, not in some developer's home.
    assert (tmp_path / "config" / "Red-DiscordBot" / "config.json").exists()
    assert fake.unknown_routes == []
