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

from __future__ import annotations

import asyncio
import concurrent.futures
import enum
import heapq
import inspect
import itertools
import logging
import multiprocessing
import queue
import site
import threading
import time
from collections import deque
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generator, Generic, Hashable, Sequence, TypeVar

from ..supervision import percentile

log = logging.getLogger("red.taskcog.engine.pool")  # under Red's "red" logger tree

T = TypeVar("T")
ProgressCallback = Callable[[float, "float | None", str], None]

_DURATION_WINDOW = 512
_PACKAGE_PARENT = Path(__file__).resolve().parents[3]  # the folder holding taskcog/


class PoolFull(RuntimeError):
    """A lane's queue is full; the caller should try again later."""

    def __init__(self, lane: str, queued: int) -> None:
        super().__init__(f"lane {lane!r} is full ({queued} queued); try again later")
        self.lane = lane
        self.queued = queued


class PoolClosed(RuntimeError):
    """The pool is shut down: new work is refused and queued work was dropped."""


@dataclass(frozen=True)
class LaneConfig:
    """One lane: its worker budget, queue bound and priority (lower = more urgent)."""

    name: str
    workers: int
    max_queue: int = 1000
    priority: int = 0


DEFAULT_LANES: tuple[LaneConfig, ...] = (
    LaneConfig("parse", 2, priority=0),
    LaneConfig("io", 4, priority=1),
    LaneConfig("db", 1, priority=2),
)


@dataclass(frozen=True)
class LaneMetrics:
    """A lane's counters and its recent job durations (seconds; None before any job ran)."""

    name: str
    workers: int
    queued: int
    running: int
    done: int
    failed: int
    cancelled: int
    rejected: int
    p50: float | None
    p95: float | None


class JobState(enum.StrEnum):
    """Where a job is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Progress:
    """Handed to a job whose function accepts a ``progress`` keyword; thread-safe.

    The function calls ``progress(done, total, note)`` as often as it likes; the latest value is
    delivered to the submitter's callback on the event loop thread. Updates that arrive while a
    delivery is pending are coalesced into the newest one, so the loop is never flooded and the
    callback sees values in the order they were reported.
    """

    def __init__(
        self,
        callback: ProgressCallback | None = None,
        post: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self._callback = callback
        self._post = post
        self._lock = threading.Lock()
        self._latest: tuple[float, float | None, str] | None = None
        self._scheduled = False
        self.cancelled = False
        """Set when the job is cancelled or the pool shuts down; a long job may stop early."""

    @property
    def latest(self) -> tuple[float, float | None, str] | None:
        """The most recent ``(done, total, note)``, or None before the first report."""
        with self._lock:
            return self._latest

    def __call__(self, done: float, total: float | None = None, note: str = "") -> None:
        with self._lock:
            self._latest = (done, total, note)
            if self._scheduled or self._callback is None or self._post is None:
                return
            self._scheduled = True
        self._post(self._deliver)

    def _deliver(self) -> None:
        with self._lock:
            self._scheduled = False
            latest = self._latest
        if latest is None or self._callback is None:
            return
        try:
            self._callback(*latest)
        except Exception:  # noqa: BLE001 - a broken display must not break the job
            log.exception("progress callback failed")


class Job(Generic[T]):
    """A handle on submitted work: ``await job`` for the result, ``job.cancel()`` to drop it."""

    def __init__(
        self,
        pool: WorkerPool,
        lane: _Lane,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        key: Hashable | None,
        priority: int,
        seq: int,
        process: bool,
        progress: Progress | None,
        future: asyncio.Future[T],
    ) -> None:
        self._pool = pool
        self._lane = lane
        self._fn: Callable[..., T] | None = fn
        self._args = args
        self._kwargs = kwargs
        self.key = key
        self.priority = priority
        self.seq = seq
        self.process = process
        self.progress = progress
        self.state = JobState.QUEUED
        self._future = future
        self._in_heap = False
        self._tracker: asyncio.Future[None] | None = None

    @property
    def lane(self) -> str:
        return self._lane.config.name

    def done(self) -> bool:
        """True once the job finished, failed or was cancelled."""
        return self._future.done()

    def cancel(self) -> bool:
        """Drop the job if it is still queued (awaiters get ``CancelledError``).

        Returns False if it is already running (it cannot be interrupted: its
        :attr:`Progress.cancelled` flag is set instead) or already finished.
        """
        if self.state is JobState.QUEUED:
            self._pool._drop(self)
            return True
        if self.state is JobState.RUNNING and self.progress is not None:
            self.progress.cancelled = True
        return False

    def __await__(self) -> Generator[Any, None, T]:
        return self._future.__await__()

    def __repr__(self) -> str:
        return f"<Job lane={self.lane!r} key={self.key!r} state={self.state}>"


class _Lane:
    """A lane's queue (a heap of ready jobs plus a FIFO per busy key) and counters."""

    def __init__(self, config: LaneConfig) -> None:
        self.config = config
        self.workers = config.workers
        self.heap: list[tuple[int, int, Job[Any]]] = []
        self.keys: dict[Hashable, deque[Job[Any]]] = {}
        self.queued = 0
        self.running = 0
        self.done = 0
        self.failed = 0
        self.cancelled = 0
        self.rejected = 0
        self.durations: deque[float] = deque(maxlen=_DURATION_WINDOW)

    def enqueue(self, job: Job[Any]) -> None:
        self.queued += 1
        if job.key is not None:
            waiting = self.keys.get(job.key)
            if waiting is not None:  # this key already has a job ahead: wait behind it
                waiting.append(job)
                return
            self.keys[job.key] = deque()
        self._push(job)

    def _push(self, job: Job[Any]) -> None:
        job._in_heap = True
        heapq.heappush(self.heap, (job.priority, job.seq, job))

    def peek(self) -> Job[Any] | None:
        while self.heap and self.heap[0][2].state is not JobState.QUEUED:
            heapq.heappop(self.heap)
        return self.heap[0][2] if self.heap else None

    def pop(self) -> Job[Any]:
        job = heapq.heappop(self.heap)[2]
        job._in_heap = False
        return job

    def release_key(self, key: Hashable) -> None:
        """The key's current job left (finished or was cancelled): let the next one in."""
        waiting = self.keys.get(key)
        while waiting:
            job = waiting.popleft()
            if job.state is JobState.QUEUED:
                self._push(job)
                return
        self.keys.pop(key, None)

    def queued_jobs(self) -> list[Job[Any]]:
        jobs = [entry[2] for entry in self.heap if entry[2].state is JobState.QUEUED]
        for waiting in self.keys.values():
            jobs.extend(job for job in waiting if job.state is JobState.QUEUED)
        return sorted(jobs, key=lambda job: job.seq)

    def metrics(self) -> LaneMetrics:
        durations = list(self.durations)
        return LaneMetrics(
            name=self.config.name,
            workers=self.workers,
            queued=self.queued,
            running=self.running,
            done=self.done,
            failed=self.failed,
            cancelled=self.cancelled,
            rejected=self.rejected,
            p50=percentile(durations, 0.50),
            p95=percentile(durations, 0.95),
        )


def _accepts_progress(fn: Callable[..., Any]) -> bool:
    try:
        parameter = inspect.signature(fn).parameters.get("progress")
    except (TypeError, ValueError):  # some builtins have no signature
        return False
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


class WorkerPool:
    """Named, bounded, prioritised lanes of worker threads shared by every task.

    ``max_threads`` caps the threads of all lanes together (default: the sum of the lanes'
    workers, so every lane always gets its full budget). ``process_workers`` > 0 enables
    ``process=True`` jobs. Threads are started on demand and all joined by :meth:`shutdown`.
    """

    def __init__(
        self,
        lanes: Sequence[LaneConfig] = DEFAULT_LANES,
        *,
        max_threads: int | None = None,
        process_workers: int = 0,
        name: str = "taskcog",
    ) -> None:
        if not lanes:
            raise ValueError("a worker pool needs at least one lane")
        self.name = name
        self._lanes: dict[str, _Lane] = {}
        for config in lanes:
            if config.name in self._lanes:
                raise ValueError(f"lane {config.name!r} is defined twice")
            if config.workers < 0 or config.max_queue < 1:
                raise ValueError(f"lane {config.name!r} needs workers >= 0 and max_queue >= 1")
            self._lanes[config.name] = _Lane(config)
        if max_threads is not None and max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self._fixed_max_threads = max_threads
        self._process_workers = process_workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._seq = itertools.count()
        self._closed = False
        self._shutdown_task: asyncio.Future[None] | None = None
        self._inbox: queue.SimpleQueue[Job[Any] | None] = queue.SimpleQueue()
        self._threads: set[threading.Thread] = set()
        self._thread_ids = itertools.count(1)
        self._live = 0  # threads started and not yet told to stop
        self._busy_threads = 0
        self._busy_procs = 0
        self._processes: concurrent.futures.ProcessPoolExecutor | None = None
        self._broken_processes: list[concurrent.futures.ProcessPoolExecutor] = []
        self._changed: asyncio.Event | None = None
        self._started: set[Job[Any]] = set()  # running now
        self._dispatch_stopped = False

    # -- public API ---------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` has begun; submits then raise :class:`PoolClosed`."""
        return self._closed

    @property
    def lanes(self) -> tuple[str, ...]:
        return tuple(self._lanes)

    @property
    def max_threads(self) -> int:
        if self._fixed_max_threads is not None:
            return self._fixed_max_threads
        return max(1, sum(lane.workers for lane in self._lanes.values()))

    async def submit(
        self,
        lane: str,
        fn: Callable[..., T],
        *args: Any,
        key: Hashable | None = None,
        priority: int | None = None,
        progress: ProgressCallback | None = None,
        process: bool = False,
        **kwargs: Any,
    ) -> T:
        """Run ``fn(*args, **kwargs)`` on ``lane`` and return its result (or raise its error).

        Raises :class:`PoolFull` at once if the lane's queue is full and :class:`PoolClosed`
        after shutdown. Cancelling the awaiting task drops the job if it has not started.
        """
        job = self.submit_nowait(
            lane,
            fn,
            *args,
            key=key,
            priority=priority,
            progress=progress,
            process=process,
            **kwargs,
        )
        return await job

    def submit_nowait(
        self,
        lane: str,
        fn: Callable[..., T],
        *args: Any,
        key: Hashable | None = None,
        priority: int | None = None,
        progress: ProgressCallback | None = None,
        process: bool = False,
        **kwargs: Any,
    ) -> Job[T]:
        """Queue ``fn`` and return its :class:`Job` handle; same rules as :meth:`submit`.

        ``priority`` (default: the lane's) orders jobs within the lane and, when threads are
        scarce, against other lanes. If ``fn`` takes a ``progress`` keyword it is given a
        :class:`Progress`, whose reports reach the ``progress=`` callback on the loop thread.
        """
        if self._closed:
            raise PoolClosed(f"worker pool {self.name!r} is shut down")
        target = self._lanes.get(lane)
        if target is None:
            raise ValueError(f"unknown lane {lane!r} (lanes: {', '.join(self._lanes)})")
        if inspect.iscoroutinefunction(fn):
            raise TypeError("the worker pool runs blocking functions; await coroutines instead")
        if process and self._process_workers < 1:
            raise ValueError("process=True needs a pool created with process_workers > 0")
        loop = self._bind_loop()
        if target.queued >= target.config.max_queue:
            target.rejected += 1
            raise PoolFull(lane, target.queued)
        reporter: Progress | None = None
        if not process and "progress" not in kwargs and _accepts_progress(fn):
            reporter = Progress(progress, self._post)
            kwargs["progress"] = reporter
        future: asyncio.Future[T] = loop.create_future()
        job: Job[T] = Job(
            self,
            target,
            fn,
            args,
            kwargs,
            key=key,
            priority=target.config.priority if priority is None else priority,
            seq=next(self._seq),
            process=process,
            progress=reporter,
            future=future,
        )
        future.add_done_callback(lambda fut: self._on_future_done(job, fut))
        target.enqueue(job)
        self._dispatch()
        return job

    def cancel(self, lane: str | None = None, key: Hashable | None = None) -> int:
        """Cancel queued jobs, all or those of ``lane`` and/or ``key``; returns how many.

        Running jobs are not interrupted (see :attr:`Progress.cancelled`).
        """
        if lane is not None and lane not in self._lanes:
            raise ValueError(f"unknown lane {lane!r} (lanes: {', '.join(self._lanes)})")
        lanes = [self._lanes[lane]] if lane is not None else list(self._lanes.values())
        count = 0
        for target in lanes:
            for job in target.queued_jobs():
                if key is None or job.key == key:
                    self._drop(job, dispatch=False)
                    count += 1
        self._dispatch()
        return count

    def metrics(self) -> dict[str, LaneMetrics]:
        """Per lane: queued, running, done, failed, cancelled, rejected, p50/p95 durations."""
        return {name: lane.metrics() for name, lane in self._lanes.items()}

    def resize(self, lane: str, workers: int) -> None:
        """Change a lane's worker budget (0 pauses it). Running jobs finish undisturbed."""
        target = self._lanes.get(lane)
        if target is None:
            raise ValueError(f"unknown lane {lane!r} (lanes: {', '.join(self._lanes)})")
        if workers < 0:
            raise ValueError("workers must be 0 or more")
        target.workers = workers
        self._retire_idle_threads()
        self._dispatch()

    async def shutdown(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109 - a grace period for threads, not a wrapper
        *,
        cancel_queued: bool = True,
    ) -> None:
        """Stop taking work, finish or drop what is queued, and join every thread.

        With ``cancel_queued`` (the default) queued jobs fail with :class:`PoolClosed`;
        otherwise they still run. Running jobs get up to ``timeout`` seconds; a job still running
        after that cannot be interrupted: its awaiter gets :class:`PoolClosed`, and its thread
        (a daemon) exits as soon as the function returns. Calling it twice is safe.
        """
        if self._shutdown_task is None:
            self._closed = True
            self._shutdown_task = asyncio.ensure_future(self._shutdown(timeout, cancel_queued))
        await asyncio.shield(self._shutdown_task)

    # -- dispatch -----------------------------------------------------------------------------

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._changed = asyncio.Event()
        elif self._loop is not loop:
            raise RuntimeError(f"worker pool {self.name!r} is bound to another event loop")
        return loop

    def _post(self, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback`` on the loop thread; from a worker after the loop closed, drop it."""
        assert self._loop is not None
        try:
            self._loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            pass

    def _dispatch(self) -> None:
        """Start queued jobs while budgets allow, most urgent first."""
        while not self._dispatch_stopped:
            best: tuple[int, int, int] | None = None
            chosen: _Lane | None = None
            threads_free = self._busy_threads < self.max_threads
            procs_free = self._busy_procs < self._process_workers
            for lane in self._lanes.values():
                if lane.running >= lane.workers:
                    continue
                job = lane.peek()
                if job is None or not (procs_free if job.process else threads_free):
                    continue
                rank = (job.priority, lane.config.priority, job.seq)
                if best is None or rank < best:
                    best, chosen = rank, lane
            if chosen is None:
                return
            self._start(chosen, chosen.pop())

    def _start(self, lane: _Lane, job: Job[Any]) -> None:
        job.state = JobState.RUNNING
        lane.queued -= 1
        lane.running += 1
        self._started.add(job)
        self._track_real(job)
        if job.process:
            self._busy_procs += 1
            started = time.perf_counter()
            executor = self._process_executor()
            try:
                work = executor.submit(job._fn, *job._args, **job._kwargs)
            except Exception as exc:  # noqa: BLE001 - e.g. already broken: fail this job only
                work = concurrent.futures.Future()
                work.set_exception(exc)
            work.add_done_callback(
                lambda done: self._post(self._finish_process, job, done, executor, started)
            )
            return
        if self._live - self._busy_threads <= 0:
            self._spawn_thread()
        self._busy_threads += 1
        self._inbox.put(job)

    def _track_real(self, job: Job[Any]) -> None:
        """On a VirtualTimeLoop, hold virtual time still while the job runs for real."""
        track = getattr(self._loop, "track_real", None)
        if track is not None and self._loop is not None:
            job._tracker = self._loop.create_future()
            track(job._tracker)

    def _spawn_thread(self) -> None:
        thread = threading.Thread(
            target=self._worker,
            name=f"{self.name}-worker-{next(self._thread_ids)}",
            daemon=True,  # a job stuck past shutdown must not hang interpreter exit
        )
        self._threads.add(thread)
        self._live += 1
        thread.start()

    def _retire_idle_threads(self) -> None:
        while self._live > self.max_threads and self._live > self._busy_threads:
            self._live -= 1
            self._inbox.put(None)

    def _worker(self) -> None:
        """A worker thread: run jobs from the inbox until told to stop."""
        try:
            while True:
                job = self._inbox.get()
                if job is None:
                    return
                started = time.perf_counter()
                result: Any = None
                error: BaseException | None = None
                try:
                    assert job._fn is not None
                    result = job._fn(*job._args, **job._kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the awaiter
                    error = exc
                self._post(self._finish, job, result, error, time.perf_counter() - started)
                del job, result, error
        finally:
            self._post(self._thread_exited, threading.current_thread())

    def _finish_process(
        self,
        job: Job[Any],
        done: concurrent.futures.Future[Any],
        executor: concurrent.futures.ProcessPoolExecutor,
        started: float,
    ) -> None:
        error = done.exception() if not done.cancelled() else PoolClosed("process job dropped")
        if isinstance(error, BrokenProcessPool) and executor is self._processes:
            # A worker process died (killed, out of memory): the next job gets a fresh pool.
            self._broken_processes.append(executor)
            self._processes = None
        result = None if error is not None else done.result()
        self._finish(job, result, error, time.perf_counter() - started)

    def _finish(
        self, job: Job[Any], result: Any, error: BaseException | None, elapsed: float
    ) -> None:
        lane = job._lane
        lane.running -= 1
        lane.durations.append(elapsed)
        self._started.discard(job)
        if job.process:
            self._busy_procs -= 1
        else:
            self._busy_threads -= 1
        if error is None:
            lane.done += 1
            job.state = JobState.DONE
            if not job._future.done():
                job._future.set_result(result)
        else:
            lane.failed += 1
            job.state = JobState.FAILED
            if not job._future.done():
                job._future.set_exception(error)
        job._fn, job._args, job._kwargs = None, (), {}
        if job._tracker is not None:
            job._tracker.set_result(None)
        if job.key is not None:
            lane.release_key(job.key)
        self._retire_idle_threads()
        self._dispatch()
        self._notify()

    def _drop(
        self, job: Job[Any], error: BaseException | None = None, *, dispatch: bool = True
    ) -> None:
        """Take a queued job out: awaiters get ``error``, or ``CancelledError`` if None.

        Bulk cancels pass ``dispatch=False`` so a key's next job is not started mid-sweep.
        """
        if job.state is not JobState.QUEUED:
            return
        lane = job._lane
        job.state = JobState.CANCELLED
        lane.queued -= 1
        lane.cancelled += 1
        job._fn, job._args, job._kwargs = None, (), {}
        if job.key is not None and job._in_heap:
            job._in_heap = False
            lane.release_key(job.key)
        if not job._future.done():
            if error is None:
                job._future.cancel()
            else:
                job._future.set_exception(error)
                job._future.exception()  # retrieved: nobody may be awaiting a dropped job
        if dispatch:
            self._dispatch()
        self._notify()

    def _on_future_done(self, job: Job[Any], future: asyncio.Future[Any]) -> None:
        """The awaiter gave up (its task was cancelled): drop the job or flag it."""
        if not future.cancelled():
            return
        if job.state is JobState.QUEUED:
            self._drop(job)
        elif job.state is JobState.RUNNING and job.progress is not None:
            job.progress.cancelled = True

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()

    # -- processes ----------------------------------------------------------------------------

    def _process_executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._processes is None:
            self._processes = concurrent.futures.ProcessPoolExecutor(
                max_workers=self._process_workers,
                mp_context=multiprocessing.get_context("spawn"),
                # Red imports cogs from its cog path without putting it on sys.path; a child
                # must still be able to import taskcog functions to unpickle them.
                initializer=site.addsitedir,
                initargs=(str(_PACKAGE_PARENT),),
            )
        return self._processes

    # -- shutdown -----------------------------------------------------------------------------

    def _thread_exited(self, thread: threading.Thread) -> None:
        if thread in self._threads:
            self._threads.discard(thread)
            thread.join()  # it has returned from _worker; this only reaps it
        self._notify()

    async def _wait_for(self, done: Callable[[], bool]) -> None:
        assert self._changed is not None
        while not done():
            self._changed.clear()
            await self._changed.wait()

    async def _shutdown(self, grace: float, cancel_queued: bool) -> None:
        if self._loop is None:  # never used: nothing was started
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        if cancel_queued:
            self._drop_all_queued()

        def idle() -> bool:
            return all(lane.running == 0 and lane.queued == 0 for lane in self._lanes.values())

        try:
            async with asyncio.timeout_at(deadline):
                await self._wait_for(idle)
        except TimeoutError:
            log.warning(
                "worker pool %r: %d job(s) still running after %.1fs; they cannot be "
                "interrupted and will finish on their own",
                self.name,
                len(self._started),
                grace,
            )
        self._drop_all_queued()
        stuck = self._abandon_running()
        while self._live:
            self._live -= 1
            self._inbox.put(None)
        executors = self._broken_processes + ([self._processes] if self._processes else [])
        self._processes, self._broken_processes = None, []
        if executors:
            await self._close_processes(executors, max(0.0, deadline - loop.time()))
        # Idle threads exit as soon as they read their stop marker; only stuck ones stay.
        await self._wait_for(lambda: len(self._threads) <= stuck)

    def _drop_all_queued(self) -> None:
        self._dispatch_stopped = True
        error = PoolClosed(f"worker pool {self.name!r} shut down before this job ran")
        for lane in self._lanes.values():
            for job in lane.queued_jobs():
                self._drop(job, error, dispatch=False)

    def _abandon_running(self) -> int:
        """Fail the awaiters of jobs still running; returns how many threads they occupy."""
        threads = 0
        for job in list(self._started):
            threads += not job.process
            if job.progress is not None:
                job.progress.cancelled = True
            if not job._future.done():
                job._future.set_exception(
                    PoolClosed(f"worker pool {self.name!r} shut down while this job ran")
                )
                job._future.exception()
        return threads

    async def _close_processes(
        self, executors: list[concurrent.futures.ProcessPoolExecutor], grace: float
    ) -> None:
        """Shut process pools down from a helper thread (it blocks), then join that thread."""
        finished = asyncio.Event()
        loop = asyncio.get_running_loop()

        def close() -> None:
            try:
                for executor in executors:
                    executor.shutdown(wait=True, cancel_futures=True)
            finally:
                loop.call_soon_threadsafe(finished.set)

        closer = threading.Thread(target=close, name=f"{self.name}-process-close", daemon=True)
        closer.start()
        try:
            await asyncio.wait_for(finished.wait(), grace)
        except TimeoutError:
            for executor in executors:
                for process in (getattr(executor, "_processes", None) or {}).values():
                    process.terminate()  # a process, unlike a thread, can be stopped
            await finished.wait()
        closer.join()
