"""The pool's worker threads: started on demand, retired when budgets shrink, reaped on exit."""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lanes import Job


class _ThreadWorkers:
    """Mixed into :class:`~.core.WorkerPool`: the threads that run its thread jobs.

    A worker hands each result back through the dispatcher's ``_post`` and ``_finish``.
    """

    name: str
    max_threads: int
    _inbox: queue.SimpleQueue[Job[Any] | None]
    _threads: set[threading.Thread]
    _thread_ids: itertools.count[int]
    _live: int
    _busy_threads: int
    nice: int

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
            if self.nice:
                lower_priority(self.nice)
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

    def _thread_exited(self, thread: threading.Thread) -> None:
        if thread in self._threads:
            self._threads.discard(thread)
            thread.join()  # it has returned from _worker; this only reaps it
        self._notify()


def lower_priority(nice: int) -> bool:
    """Raise this thread's niceness by ``nice`` (Linux applies it to the calling thread only).
    False where it is not supported or not allowed; the thread then runs as it is."""
    setpriority = getattr(os, "setpriority", None)
    if setpriority is None or not hasattr(threading, "get_native_id"):
        return False
    tid = threading.get_native_id()
    try:
        setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + nice)
    except OSError:
        return False
    return True
