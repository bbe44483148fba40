"""The worker pool every task shares: named lanes of threads (and optional processes)."""

from .core import (
    DEFAULT_LANES,
    Job,
    JobState,
    LaneConfig,
    LaneMetrics,
    PoolClosed,
    PoolFull,
    Progress,
    ProgressCallback,
    WorkerPool,
)

__all__ = [
    "DEFAULT_LANES",
    "Job",
    "JobState",
    "LaneConfig",
    "LaneMetrics",
    "PoolClosed",
    "PoolFull",
    "Progress",
    "ProgressCallback",
    "WorkerPool",
]
