"""The worker pool every task shares: named lanes of threads (and optional processes).

Blocking work (parsing a log, a database write, a file read) must never run on the event loop.
Tasks hand it to :class:`WorkerPool` instead, which runs it on threads it owns and hands the
result back through an asyncio future, so the loop stays free.

How work is shared:

- Each **lane** (``parse``, ``io``, ``db`` by default) has its own worker budget and its own
  bounded queue. A lane never runs more jobs than its budget, so a flood in one lane cannot take
  another lane's workers.
- Lanes share one **dispatcher** and, optionally, a smaller thread budget (``max_threads``).
  When threads are scarce, the next free thread goes to the most urgent job (lowest priority
  number, then oldest), so 10,000 queued ``db`` jobs delay a ``parse`` job by at most one
  running job.
- Jobs with the same ``key`` in a lane run one at a time, in submit order (one parse per server
  at a time); other keys proceed in parallel.
- A full lane rejects at once with :class:`PoolFull` rather than growing without bound.

Cancelling: a queued job can be cancelled (by handle, lane or key). A job already running in a
thread cannot be interrupted; cancelling it only sets :attr:`Progress.cancelled`, which a long
function may check to stop early.

Shutdown: :meth:`WorkerPool.shutdown` fails queued jobs with :class:`PoolClosed` (not
``CancelledError``: the awaiting task was not cancelled, the pool went away), waits up to
``timeout`` for running jobs, then joins every thread it started.

Process jobs (``process=True``) run in a lazily created ``ProcessPoolExecutor`` using the
``spawn`` start method (safe in a threaded bot). The function and its arguments and result must be
picklable: a module-level function, not a lambda or a bound method of a cog; and the program's
main module must guard its start with ``if __name__ == "__main__"`` (Red's launcher does). They
get no ``progress`` object. A worker process that dies fails its job with ``BrokenProcessPool``
and the next process job gets a fresh pool.

All methods are called from the event loop thread; only :class:`Progress` is thread-safe.
"""

from .core import WorkerPool
from .lanes import DEFAULT_LANES, Job, JobState, LaneConfig, PoolClosed, PoolFull
from .metrics import LaneMetrics, Progress, ProgressCallback

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
