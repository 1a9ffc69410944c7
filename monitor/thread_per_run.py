"""A scheduler executor that runs each job run on a thread of its own, started for it and gone after it.

Every source polls on its own thread, so that a server answering a byte at a time holds up only its own
source. A thread kept per source for that cost each watched mailbox about 25 KB of memory and a thread
all the time, for polls that take milliseconds once a minute: with this executor a daemon watching 1,000
mailboxes runs a handful of threads, and still never makes one source's poll wait for another's.
"""

from __future__ import annotations

import sys
import threading
from datetime import datetime

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.job import Job


class ThreadPerRun(BaseExecutor):  # type: ignore[misc]  # APScheduler 3 has no type hints
    """APScheduler executor: a new daemon thread for every run (``max_instances`` still holds)."""

    def __init__(self, name: str = "run") -> None:
        super().__init__()
        self.name = name
        self._threads: set[threading.Thread] = set()
        self._guard = threading.Lock()

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        thread = threading.Thread(target=self._run, args=(job, run_times), name=self.name, daemon=True)
        with self._guard:
            self._threads.add(thread)
        thread.start()

    def _run(self, job: Job, run_times: list[datetime]) -> None:
        try:
            events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
        except BaseException:
            _, error, traceback = sys.exc_info()
            self._run_job_error(job.id, error, traceback)
        else:
            self._run_job_success(job.id, events)
        finally:
            with self._guard:
                self._threads.discard(threading.current_thread())

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking runs; with ``wait``, wait for those under way."""
        if not wait:
            return
        with self._guard:
            threads = list(self._threads)
        for thread in threads:
            thread.join()
