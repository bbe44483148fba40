"""The :class:`WorkerPool` itself: its public API and its shutdown.

The class is assembled from mixins, one per idea: dispatching jobs (:mod:`.dispatch`), worker
threads (:mod:`.threads`) and worker processes (:mod:`.processes`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import itertools
import logging
import queue
import threading
from typing import Any, Callable, Hashable, Sequence

from .dispatch import _Dispatcher
from .lanes import DEFAULT_LANES, Job, LaneConfig, PoolClosed, PoolFull, T, _Lane
from .metrics import LaneMetrics, Progress, ProgressCallback, _accepts_progress
from .processes import _ProcessWorkers
from .threads import _ThreadWorkers

log = logging.getLogger("red.taskcog.engine.pool")  # under Red's "red" logger tree


class WorkerPool(_Dispatcher, _ThreadWorkers, _ProcessWorkers):
    """Named, bounded, prioritised lanes of worker threads shared by every task.

    ``max_threads`` caps the threads of all lanes together (default: the sum of the lanes'
    workers, so every lane always gets its full budget). ``process_workers`` > 0 enables
    ``process=True`` jobs. Threads are started on demand and all joined by :meth:`shutdown`.
    ``nice`` > 0 lowers the threads' CPU priority below the event loop's (Linux: per thread;
    ignored where the OS has no per-thread priority): on a machine whose cores are all busy
    with an import, the loop and the live feeds it awaits still get a core when they need one.
    """

    def __init__(
        self,
        lanes: Sequence[LaneConfig] = DEFAULT_LANES,
        *,
        max_threads: int | None = None,
        process_workers: int = 0,
        name: str = "taskcog",
        nice: int = 0,
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
        if not 0 <= nice <= 19:
            raise ValueError("nice must be 0 to 19")
        self.nice = nice
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

    # -- shutdown -----------------------------------------------------------------------------

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
