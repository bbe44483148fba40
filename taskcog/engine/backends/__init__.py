"""Backends for the pool's heavy work: ``local`` (this process) or ``taskiq`` (workers).

See :mod:`.base` for the interface; :mod:`.redis` holds what the Redis broker needs (routing,
heartbeats, locks) and :mod:`.secrets` the encryption of secrets that cross the broker.
"""

from .base import (
    IMPORT_SLICE,
    INGEST,
    Backend,
    BackendError,
    BackendStatus,
    BackendUnavailable,
    IngestResult,
    NoWorkers,
    WorkerInfo,
)
from .local import LocalBackend
from .secrets import ENV_KEY, SecretBox, SecretKeyError
from .taskiq import TaskiqBackend

__all__ = [
    "ENV_KEY",
    "IMPORT_SLICE",
    "INGEST",
    "Backend",
    "BackendError",
    "BackendStatus",
    "BackendUnavailable",
    "IngestResult",
    "LocalBackend",
    "NoWorkers",
    "SecretBox",
    "SecretKeyError",
    "TaskiqBackend",
    "WorkerInfo",
]
