"""JobRunner: the machinery that runs jobs in a process, in one object.

It owns the event loop (a daemon thread) jobs run on, the limit on jobs followed at once, the
registry of jobs this process follows (so `resume()` never follows one twice), the threads that
write the history and keep media (never the loop's own), the heartbeat thread that renews the
owner's lease on followed rows, and the backend instances per run folder. The package uses one
default runner; a test or an application can make its own (`JobRunner(max_jobs=1)`) and pass it
to `submit`, `resume` and `sweep` instead of changing globals.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._errors import SoraWidgetsError, ValidationError
from .._owner import HEARTBEAT_S, this_process

if TYPE_CHECKING:
    from ..backends import Backend
    from ..history.store import History
    from .job import Job

__all__ = ["JobRunner", "default_runner", "max_jobs"]

logger = logging.getLogger("sora_widgets")
_HISTORY_WRITERS = 4  # SQLite takes one writer at a time; a few threads keep reads flowing too


def max_jobs() -> int:
    """How many jobs a process follows at once (`SORA_WIDGETS_MAX_JOBS`, default 32); more wait,
    pending, for a place. fal queues what is over a key's own limit on its side, so this only
    bounds connections and render threads here."""
    raw = os.environ.get("SORA_WIDGETS_MAX_JOBS", "").strip() or "32"
    try:
        count = int(raw)
    except ValueError:
        count = 0
    if count < 1:
        raise ValidationError([("SORA_WIDGETS_MAX_JOBS", f"must be a whole number of jobs, 1 or more "
                                                         f"(got {raw!r})")])
    return count


class JobRunner:
    """The loop, limit, registry, worker threads, heartbeat and backends jobs share."""

    def __init__(self, *, max_jobs: int | None = None) -> None:
        """`max_jobs` defaults to `SORA_WIDGETS_MAX_JOBS` (32), read now; a bad value is a
        ValidationError naming it."""
        if max_jobs is not None and (isinstance(max_jobs, bool) or not isinstance(max_jobs, int)
                                     or max_jobs < 1):
            raise ValidationError([("max_jobs", f"must be a whole number, 1 or more (got {max_jobs!r})")])
        self.max_jobs = max_jobs if max_jobs is not None else _env_max_jobs()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._live: dict[tuple[str, int], Job] = {}
        self._writers: concurrent.futures.ThreadPoolExecutor | None = None
        self._fetchers: concurrent.futures.ThreadPoolExecutor | None = None
        self._heartbeat: threading.Thread | None = None
        #: backend instances per (kind, run folder), reused so uploads and renders are shared
        self.backends: dict[tuple[str, str], Backend] = {}

    def __repr__(self) -> str:
        return f"JobRunner(max_jobs={self.max_jobs}, following={len(self._live)})"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop jobs run on, started in a daemon thread on first use."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="sora-widgets-jobs", daemon=True).start()
                self._loop = loop
            return self._loop

    def slots(self) -> asyncio.Semaphore:
        """The places for running jobs (call on the loop): `max_jobs` at once, the rest wait."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_jobs)
        return self._slots

    # --- the jobs this process follows --------------------------------------------------------

    def live(self, history: History, history_id: int) -> Job | None:
        """The Job this runner follows for that history row, if any."""
        with self._lock:
            return self._live.get((str(history.path), history_id))

    def follow(self, job: Job) -> None:
        """Register a job as followed here (until `forget`), and keep its row's lease alive."""
        with self._lock:
            self._live[(str(job.history.path), job.history_id)] = job
            if self._heartbeat is None or not self._heartbeat.is_alive():
                self._heartbeat = threading.Thread(target=self._beat, name="sora-widgets-heartbeat",
                                                   daemon=True)
                self._heartbeat.start()

    def forget(self, job: Job) -> None:
        with self._lock:
            self._live.pop((str(job.history.path), job.history_id), None)

    def _beat(self) -> None:
        """Renew, every HEARTBEAT_S, the heartbeat of every row this runner follows."""
        while True:
            time.sleep(HEARTBEAT_S)
            with self._lock:
                followed = list(self._live.values())
            by_file: dict[str, tuple[History, list[int]]] = {}
            for job in followed:
                by_file.setdefault(str(job.history.path), (job.history, []))[1].append(job.history_id)
            for history, ids in by_file.values():
                try:
                    history.heartbeat(ids, this_process())
                except SoraWidgetsError as exc:  # a busy or read-only file: try again next beat
                    logger.warning("could not renew the heartbeat of runs %s in %s: %s", ids, history.path,
                                   exc)

    # --- work off the loop ---------------------------------------------------------------------

    def on_disk(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Run a history write on the writer threads (call on the loop): never on the loop itself,
        never behind a slow download."""
        with self._lock:
            if self._writers is None:
                self._writers = concurrent.futures.ThreadPoolExecutor(
                    _HISTORY_WRITERS, thread_name_prefix="sora-widgets-history")
        return asyncio.get_running_loop().run_in_executor(
            self._writers, functools.partial(function, *args, **kwargs))

    def fetching(self, function: Callable[[], Any]) -> asyncio.Future[Any]:
        """Run a media download on its own threads (one per job that may run at once), so slow
        downloads never hold the threads other jobs need."""
        with self._lock:
            if self._fetchers is None:
                self._fetchers = concurrent.futures.ThreadPoolExecutor(
                    self.max_jobs, thread_name_prefix="sora-widgets-media")
        return asyncio.get_running_loop().run_in_executor(self._fetchers, function)


def _env_max_jobs() -> int:
    return max_jobs()


_default: JobRunner | None = None
_default_lock = threading.Lock()


def default_runner() -> JobRunner:
    """The runner the package uses when none is given, made on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = JobRunner()
        return _default
