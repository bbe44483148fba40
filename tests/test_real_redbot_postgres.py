"""The README says taskcog works on both of Red's Config backends: here the real ``redbot``
runs on Red's PostgreSQL backend (instance made by ``redbot-setup --backend postgres`` against
the local server, a fresh database per run), loads taskcog, changes settings, restarts, and
finds them again."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakediscord.redbot_process import RedbotProcess  # noqa: E402
from fakediscord.server import FakeDiscord  # noqa: E402
from test_real_redbot_killfeed import TIMEOUT, Session  # noqa: E402

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
pytestmark = pytest.mark.slow


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name = f"taskcog_red_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database="postgres", **PG)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield name
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_taskcog_settings_persist_on_reds_postgres_backend(
    tmp_path: Path, database: str
) -> None:
    fake = FakeDiscord()
    await fake.start()
    # redbot-setup's questions: host, port, user, password (NONE: trust auth), database.
    answers = f"{PG['host']}\n{PG['port']}\n{PG['user']}\nNONE\n{database}\n"
    bot = RedbotProcess(fake, tmp_path / "red", backend="postgres", setup_answers=answers)
    session = Session(fake, bot)
    try:
        await bot.start()
        await bot.wait_until_connected(TIMEOUT)
        config = json.loads((tmp_path / "red/config/Red-DiscordBot/config.json").read_text())
        assert config["fakered"]["STORAGE_TYPE"] == "Postgres"
        assert config["fakered"]["STORAGE_DETAILS"]["database"] == database
        await session.add_checkout_as_cog_path()
        assert await session.say("!load taskcog") == "Loaded `taskcog`.", bot.log_tail()
        killfeed = fake.guild.channel_ids[1]
        reply = await session.say(f"!taskset channel killfeed <#{killfeed}>")
        assert "now posts in" in reply, bot.log_tail(80)
        zone = await session.say("!taskset timezone Europe/Berlin")
        assert "Europe/Berlin" in zone, zone
        assert "every 2h" in await session.say("!taskset schedule housekeeping every 2h")
        await bot.stop()
        await bot.restart(TIMEOUT)
        assert "Loaded packages: taskcog" in bot.log_tail(200)  # the package list persisted
        shown = await session.say("!taskset show")
        assert "Europe/Berlin" in shown, shown
        status = await session.say("!tasks status housekeeping")
        assert "every 2h" in status, status
        killfeed_status = await session.say("!tasks status killfeed")
        assert killfeed in killfeed_status, killfeed_status
        # The settings are rows in PostgreSQL, not files: Red's own schema holds taskcog's.
        conn = await asyncpg.connect(database=database, **PG)
        try:
            tables = {
                r["table_schema"]
                for r in await conn.fetch("SELECT table_schema FROM information_schema.tables")
            }
        finally:
            await conn.close()
        assert any(schema.startswith("TaskCog.") for schema in tables), tables
    finally:
        await bot.stop()
        await fake.stop()
