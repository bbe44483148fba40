"""Make Red's PostgreSQL backend safe for concurrent first writes.

Red's PostgreSQL driver creates a Config category's table (``"TaskCog.<id>"."GUILD"``) on the
first write to it, with ``CREATE TABLE IF NOT EXISTS``, which PostgreSQL does not make safe
under concurrency: two first writes at once (a command and a status checkpoint) both try to
create it, and one fails with ``UniqueViolationError`` on ``pg_type_typname_nsp_index``. Found by
``tests/test_real_redbot_postgres.py``. One write per category at load, before anything runs
concurrently, creates the tables first. The JSON backend has no such step, so nothing happens.
"""

from __future__ import annotations

import logging

from redbot.core import Config, data_manager

log = logging.getLogger("red.taskcog.storage")

_PLACEHOLDER_GUILD = 0  # no Discord guild has id 0; its row is removed again at once


async def create_tables(config: Config) -> None:
    """On PostgreSQL, make sure the GLOBAL and GUILD tables of ``config`` exist."""
    try:
        if data_manager.storage_type() != "Postgres":
            return
    except Exception:  # noqa: BLE001 - no instance loaded (in-process tests): nothing to do
        return
    await config.schema_version.set(await config.schema_version())
    placeholder = config.guild_from_id(_PLACEHOLDER_GUILD)
    await placeholder.timezone.set(None)
    await placeholder.clear()
    log.debug("PostgreSQL tables for taskcog's Config are ready")
