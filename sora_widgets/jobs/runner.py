"""JobRunner: the machinery that runs jobs in a process, in one object.

It owns the event loop (a daemon thread) jobs run on, the limit on jobs followed at once, the
registry of jobs this process follows (so `resume()` never follows one twice), the threads that
write the history and keep media (never the loop's own), the heartbeat thread that renews the
owner's lease on followed rows, and the backend instances per run folder. The package uses one
default runner; a test or an application can make its own (`JobRunner(max_jobs=1)`) and pass it
to `submit`, `resume` and `sweep` instead of changing globals. A group of jobs (a sweep) may have
a lower cap of its own, `runner.limiter(n)`, enforced by the same machinery (`place`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from .._errors import SoraWidgetsError, ValidationError
from .._owner import HEARTBEAT_S, this_process

if TYPE_CHECKING:
    from ..backends import Backend
    from ..history.store import History
    from .job import Job

__all__ = ["JobRunner", "Limit", "default_runner", "max_jobs"]

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


def _count(name: str, value: object) -> int:
    """`value` if it is a whole number of jobs, 1 or more; else a ValidationError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError([(name, f"must be a whole number, 1 or more (got {value!r})")])
    return value


class Limit:
    """A cap on how many jobs of one group (a sweep's) run at once, below the runner's own: made by
    `JobRunner.limiter(n)`, given to `submit(..., limit=)`; a job holds one of its places from
    before its POST until it ends."""

    def __init__(self, runner: JobRunner, count: int) -> None:
        self.runner = runner
        self.count = count
        self.places = asyncio.Semaphore(count)  # bound to the runner's loop on first use

    def __repr__(self) -> str:
        return f"Limit({self.count})"


class JobRunner:
    """The loop, limit, registry, worker threads, heartbeat and backends jobs share."""

    def __init__(self, *, max_jobs: int | None = None) -> None:
        """`max_jobs` defaults to `SORA_WIDGETS_MAX_JOBS` (32), read now; a bad value is a
        ValidationError naming it."""
        self.max_jobs = _count("max_jobs", max_jobs) if max_jobs is not None else _env_max_jobs()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: asyncio.Semaphore | None = None
        self._live: dict[tuple[str, int], Job] = {}
        self._writers: concurrent.futures.ThreadPoolExecutor | None = None
        self._fetchers: concurrent.futures.ThreadPoolExecutor | None = None
        self._heartbeat: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        #: backend instances per (kind, run folder), reused so uploads and renders are shared
        self.backends: dict[tuple[str, str], Backend] = {}

    def __repr__(self) -> str:
        state = "closed" if self._closed.is_set() else f"following={len(self._live)}"
        return f"JobRunner(max_jobs={self.max_jobs}, {state})"

    @property
    def closed(self) -> bool:
        """True once `close()` was called: the runner takes no more jobs."""
        return self._closed.is_set()

    def __enter__(self) -> JobRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop jobs run on, started in a daemon thread on first use."""
        with self._lock:
            if self._closed.is_set():
                raise SoraWidgetsError(f"{self!r} was closed; make a new JobRunner to run jobs.")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="sora-widgets-jobs",
                                                daemon=True)
                self._thread.start()
                self._loop = loop
            return self._loop

    def close(self, timeout: float = 10.0) -> None:
        """Stop this runner: jobs not yet sent end `cancelled`, sent ones stop being followed and
        stay resumable (`resume()` with another runner); then its loop, heartbeat and threads
        end. Idempotent."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            loop, thread = self._loop, self._thread
        if loop is not None and thread is not None:
            asyncio.run_coroutine_threadsafe(_cancel_tasks(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            loop.close()
        for pool, wait in ((self._writers, True), (self._fetchers, False)):
            if pool is not None:
                pool.shutdown(wait=wait, cancel_futures=not wait)

    def slots(self) -> asyncio.Semaphore:
        """The places for running jobs (call on the loop): `max_jobs` at once, the rest wait."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_jobs)
        return self._slots

    def limiter(self, count: int, *, name: str = "limit") -> Limit:
        """A cap of `count` jobs at once for a group of jobs run here (a sweep's `max_concurrent`),
        on top of `max_jobs`; a bad count is a ValidationError naming `name`."""
        return Limit(self, _count(name, count))

    @contextlib.asynccontextmanager
    async def place(self, limit: Limit | None = None) -> AsyncIterator[None]:
        """Hold a place to run one job until the block ends (on the loop): one of its group's
        `limit` first, then one of the runner's `max_jobs`, so a group's waiting jobs never hold
        places other jobs need."""
        async with limit.places if limit is not None else contextlib.nullcontext(), self.slots():
            yield

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
        while not self._closed.wait(HEARTBEAT_S):
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


async def _cancel_tasks() -> None:
    """Cancel every task on the running loop but this one, and wait until each has handled it."""
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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
