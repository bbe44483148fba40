"""What the bot asks of a backend for the pool's heavy work, whatever runs it.

Two kinds of work leave the bot: the *ingest step* of one game server (poll from a cursor,
parse, return events and the next cursor) and a *history-import slice* (a list of files parsed
into columns for the stats store). Both are plain JSON-able dicts in and out, so the same job
runs in this process (:mod:`.local`) or on a worker process anywhere (:mod:`.taskiq`).

The backend never owns progress: cursors, the ledger and all posting stay in the bot, so a
job may run twice (a re-delivery after a worker died) without anything being posted twice.
The engine knows nothing of game servers: the work functions are handed in by the layer above.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

INGEST = "taskcog.ingest"
IMPORT_SLICE = "taskcog.import_slice"


class BackendError(RuntimeError):
    """The backend could not run a job. ``str()`` is one line for the owner, secret-free."""


class BackendUnavailable(BackendError, ConnectionError):
    """The broker cannot be reached: transient, the task retries with backoff."""


class NoWorkers(BackendUnavailable):
    """No live worker took the job, or none answered within the timeout."""


@dataclass
class IngestResult:
    """What one ingest step returned: events as dicts, the cursor after them, and counts.

    ``error`` is ``{"type": ..., "message": ...}`` when the step failed on the worker (an
    unreachable game server, a refused login): the layer above maps it back to its exception.
    """

    events: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: dict[str, Any] | None = None
    first_run: bool = False
    more: bool = False
    bytes_read: int = 0
    lines: int = 0
    malformed: int = 0
    samples: list[str] = field(default_factory=list)
    requests: int = 0
    worker: str | None = None
    error: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IngestResult:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


@dataclass
class WorkerInfo:
    """One live worker as its last heartbeat described it."""

    id: str
    host: str
    pid: int
    age: float  # seconds since the last heartbeat
    in_flight: int = 0
    done: int = 0
    failed: int = 0
    queued: int = 0  # jobs waiting in its queue (the queue lag, in jobs)
    servers: int = 0  # game-server connections it holds


@dataclass
class BackendStatus:
    """What ``[p]tasks pool`` shows about the backend."""

    kind: str
    detail: str = ""
    workers: list[WorkerInfo] = field(default_factory=list)
    shared_queue: int = 0
    error: str | None = None


@runtime_checkable
class Backend(Protocol):
    """Runs ingest steps and import slices; ``local`` in this process, ``taskiq`` on workers."""

    kind: str

    async def start(self) -> None:
        """Connect (the broker, the pool); raises :class:`BackendUnavailable` if it cannot."""

    async def close(self) -> None:
        """Release everything; no task or connection is left behind."""

    async def ingest(self, job: Mapping[str, Any]) -> IngestResult:
        """Run one ingest step. ``job["key"]`` names the game server (one at a time)."""

    async def import_slice(self, job: Mapping[str, Any]) -> dict[str, Any]:
        """Parse one slice of history files; returns the columns in a JSON-able form."""

    async def status(self) -> BackendStatus:
        """The backend and its workers, for the owner."""
