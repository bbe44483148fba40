"""Process jobs (``process=True``): a lazily created spawn-based ``ProcessPoolExecutor``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import site
import threading
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .lanes import PoolClosed

if TYPE_CHECKING:
    from .lanes import Job

_PACKAGE_PARENT = Path(__file__).resolve().parents[3]  # the folder holding taskcog/


class _ProcessWorkers:
    """Mixed into :class:`~.core.WorkerPool`: the process pool that runs its process jobs.

    A finished process job goes back through the dispatcher's ``_finish``.
    """

    name: str
    _process_workers: int
    _processes: concurrent.futures.ProcessPoolExecutor | None
    _broken_processes: list[concurrent.futures.ProcessPoolExecutor]

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
