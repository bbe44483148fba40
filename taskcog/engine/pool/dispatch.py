"""Starting and finishing jobs: who runs next, and what happens when a job leaves."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import time
from typing import TYPE_CHECKING, Any, Callable

from .lanes import JobState

if TYPE_CHECKING:
    from .lanes import Job, _Lane


class _Dispatcher:
    """Mixed into :class:`~.core.WorkerPool`: moves jobs from lane queues to workers and back.

    Starting a job calls into the thread and process mixins (``_spawn_thread``,
    ``_process_executor``, ``_finish_process``, ``_retire_idle_threads``).
    """

    name: str
    max_threads: int
    _lanes: dict[str, _Lane]
    _loop: asyncio.AbstractEventLoop | None
    _changed: asyncio.Event | None
    _started: set[Job[Any]]
    _dispatch_stopped: bool
    _inbox: queue.SimpleQueue[Job[Any] | None]
    _live: int
    _busy_threads: int
    _busy_procs: int
    _process_workers: int

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
