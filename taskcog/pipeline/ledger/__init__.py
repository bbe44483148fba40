"""The killfeed's exactly-once ledger: :class:`Ledger` (SQLite, any thread) in :mod:`.store`,
:class:`AsyncLedger` (the event loop's face, on the pool's ``db`` lane) in :mod:`.aio`."""

from .aio import AsyncLedger
from .store import DB_LANE, DEFAULT_RETENTION, Ledger

__all__ = ["DB_LANE", "DEFAULT_RETENTION", "AsyncLedger", "Ledger"]
