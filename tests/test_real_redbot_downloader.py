"""The second install route, for real: Downloader's ``[p]repo add`` + ``[p]cog install``.

A real ``redbot`` process on the fake Discord adds this checkout (as a git repository) with
Downloader, installs the ``taskcog`` cog from it — Downloader pip-installs the requirements from
``taskcog/info.json`` into the instance's lib folder — loads it and answers ``!tasks status``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakediscord.redbot_process import RedbotProcess  # noqa: E402
from fakediscord.server import FakeDiscord, message_text  # noqa: E402

CHECKOUT = TESTS.parent
TIMEOUT = 60.0
INSTALL_TIMEOUT = 600.0  # pip may download the requirements on a cold cache


def snapshot_repo(dest: Path) -> Path:
    """This working tree's tracked files as a fresh one-commit git repository."""
    files = subprocess.run(
        [
            "git",
            "-C",
            str(CHECKOUT),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in filter(None, files):
        rel = Path(raw.decode())
        source = CHECKOUT / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    git = ["git", "-C", str(dest), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "snapshot"], check=True)
    return dest


@pytest.mark.slow
async def test_repo_add_cog_install_and_load(tmp_path, monkeypatch):
    if shutil.which("git") is None:
        pytest.skip("git is not installed, and Downloader needs it")
    # Reuse the machine's pip cache although the bot runs with its own HOME.
    monkeypatch.setenv("PIP_CACHE_DIR", str(Path.home() / ".cache" / "pip"))
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    repo = snapshot_repo(tmp_path / "repo")
    async with FakeDiscord() as fake:
        bot = RedbotProcess(fake, tmp_path / "redbot")
        try:
            await bot.start()
            await bot.wait_until_connected(TIMEOUT)

            async def say(content: str, timeout: float = TIMEOUT) -> str:
                try:
                    return message_text(await fake.command(content, timeout=timeout))
                except TimeoutError as exc:
                    raise AssertionError(f"{exc}\n--- redbot log ---\n{bot.log_tail()}") from None

            assert await say("!load downloader") == "Loaded `downloader`."
            start = len(fake.messages)
            prompt = await say(f"!repo add taskcog {repo}")
            assert "I agree" in prompt, prompt
            # The prompt is posted just before Red starts listening for the answer: let the bot
            # get back to its event loop first, as a human typing would.
            await fake.round_trip()
            await fake.send_message(fake.channel_id, fake.owner.id, "I agree")
            added = await fake.wait_for_bot_message(
                lambda m: m["channel_id"] == fake.channel_id and "taskcog" in message_text(m),
                TIMEOUT,
                start=start + 1,
            )
            assert "Repo `taskcog` successfully added" in message_text(added), message_text(added)

            start = len(fake.messages)
            await fake.send_message(fake.channel_id, fake.owner.id, "!cog install taskcog taskcog")
            installed = await fake.wait_for_bot_message(
                lambda m: m["channel_id"] == fake.channel_id
                and any(w in message_text(m).lower() for w in ("installed the cog", "failed")),
                INSTALL_TIMEOUT,
                start=start,
            )
            text = message_text(installed)
            assert "Successfully installed the cog: `taskcog`" in text, f"{text}\n{bot.log_tail()}"

            # Downloader then shows the cog's install_msg from taskcog/info.json.
            await fake.wait_for_bot_message(
                lambda m: "Thanks for installing taskcog" in message_text(m), TIMEOUT, start=start
            )
            assert await say("!load taskcog") == "Loaded `taskcog`.", bot.log_tail()
            status = await say("!tasks status")
            assert "housekeeping" in status and "killfeed" in status, status
        finally:
            await bot.stop()
