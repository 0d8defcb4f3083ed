"""Jobs: a generation under way, as callers hold it: read it, wait for it, watch it, cancel it.

Jobs run as asyncio tasks on one long-lived event loop owned by a JobRunner (a daemon thread).
The sync API (`generate`, `job.result()`) waits on that loop, `generate_async` awaits it from
the caller's loop, and widgets subscribe to job events. So a notebook kernel, whose own loop is
already running, never blocks while a model works, and a plain script works the same way.

A job's life in its history row (every move committed before anyone sees it; see `life.py`):
pending (waiting for a place) -> submitting (written before the POST) -> queued (the request id,
written before any caller, event or callback sees it) -> running -> completed | failed |
cancelled, or `unknown` when the answer to the POST was lost. The row names its owner; a
heartbeat thread renews it while this process follows the row, so `resume()` elsewhere leaves it
alone (see `_owner.py`). History writes run in worker threads, never on the job loop itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._errors import GenerationError, WaitTimeout, error_kind
from .._html import html_text
from ..backends import Backend
from ..records import Generation, JobEvent, JobStatus
from ..schema.documents import EndpointSchema
from .life import JobLife
from .runner import JobRunner, Limit, default_runner

if TYPE_CHECKING:
    from ..history.store import History
    from ..media import NormalizedImage

__all__ = ["EventCallback", "Job", "cancel_jobs"]

EventCallback = Callable[["Job", JobEvent], None]
PREVIEW_NOTE = "Offline preview: no model made this video; it was rendered on this machine from your image."

logger = logging.getLogger("sora_widgets")


def cancel_jobs(jobs: Iterable[Job]) -> None:
    """Cancel several jobs as one (a sweep's): every one is marked first, so none that waits for a
    place is sent while the others are being cancelled and free theirs. A cancel the backend
    refuses does not stop the others: the first such error is raised once all were asked."""
    under_way = [job for job in jobs if not job.done()]
    for job in under_way:
        job._cancel_requested = True
    refused: list[GenerationError] = []
    for job in under_way:
        try:
            job.cancel()
        except GenerationError as exc:
            refused.append(exc)
    if refused:
        raise refused[0]


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


class Job(JobLife):
    """A generation under way on the job loop: returns at once, observable, cancellable."""

    def __init__(self, *, schema: EndpointSchema, arguments: dict[str, Any], backend: Backend,
                 history: History, history_id: int, request_id: str | None = None,
                 status: JobStatus = JobStatus.PENDING, runner: JobRunner | None = None,
                 limit: Limit | None = None, images: Mapping[str, NormalizedImage] | None = None) -> None:
        """`limit` is the cap of the group the job belongs to (a sweep's), besides the runner's;
        `images` are the image fields as `prepare_arguments` checked and stored them, handed to
        the backend instead of their text (a resumed job has only the text)."""
        self.schema = schema
        self.images = dict(images or {})
        self.runner = runner or default_runner()
        self.limit = limit
        self.backend = backend
        self.history = history
        self.history_id = history_id
        self.events: list[JobEvent] = []
        self.generation = Generation(
            endpoint_id=schema.endpoint_id, arguments=dict(arguments), backend=backend.name,
            request_id=request_id, history_id=history_id, status=JobStatus(status),
            note=PREVIEW_NOTE if backend.name == "preview" else None)
        self._callbacks: list[EventCallback] = []
        self._lock = threading.Lock()
        self._cancel_requested = False
        self._phase = "waiting"
        self._created = time.monotonic()
        self._submitted = None
        self._started = None
        self._future: concurrent.futures.Future[Generation] | None = None
        self._task: asyncio.Task[Any] | None = None
        self._failure = None

    # --- what callers read -------------------------------------------------------------------

    @property
    def position(self) -> int | None:
        """The last queue position reported, while queued."""
        queued = [e.position for e in self.events if e.kind == "queued"]
        return queued[-1] if queued and self.status is JobStatus.QUEUED else None

    @property
    def elapsed_s(self) -> float:
        return (self.generation.total_s if self.status.is_final and self.generation.total_s
                is not None else time.monotonic() - self._created)

    def done(self) -> bool:
        return self.status.is_final

    def result(self, timeout: float | None = None) -> Generation:
        """Wait for the job and return its Generation; a failed job raises GenerationError.

        If `timeout` passes first, WaitTimeout (a TimeoutError) is raised and the job keeps
        running: call again, or `sw.resume()` after a restart, with its request id.
        """
        try:
            self._started_future().result(timeout)
        except concurrent.futures.TimeoutError:
            raise WaitTimeout(
                f"{self.endpoint_id} job (history id {self.history_id}, request id "
                f"{self.request_id}) is still {self.status.value} after {timeout} s; it keeps "
                "running: call job.result() again later.") from None
        return self._outcome()

    def __await__(self) -> Generator[Any, None, Generation]:
        return self._await().__await__()

    async def _await(self) -> Generation:
        """Await the job; a caller that stops waiting (a timeout, a cancelled task) leaves it
        running, as `result(timeout)` does: only `cancel()` stops a job."""
        await asyncio.shield(asyncio.wrap_future(self._started_future()))
        return self._outcome()

    def _started_future(self) -> concurrent.futures.Future[Generation]:
        if self._future is None:
            raise GenerationError("The job was never started: call job.start().", kind="internal",
                                  endpoint_id=self.endpoint_id, history_id=self.history_id)
        return self._future

    def _outcome(self) -> Generation:
        gen = self.generation
        if gen.status is JobStatus.COMPLETED:
            return gen
        cause = self._failure
        raise GenerationError(gen.error or f"The job ended {gen.status.value}.",
                              kind=error_kind(gen.error_type or gen.status.value),
                              endpoint_id=self.endpoint_id,
                              request_id=gen.request_id, history_id=self.history_id, generation=gen,
                              field=cause.field if cause else None,
                              status_code=cause.status_code if cause else None)

    # --- events ------------------------------------------------------------------------------

    def on_event(self, callback: EventCallback) -> None:
        """Call `callback(job, event)` for every event from now on (on the job loop's thread).

        A callback that raises is logged (logger "sora_widgets") and never changes the job."""
        with self._lock:
            self._callbacks.append(callback)

    async def stream(self) -> AsyncIterator[JobEvent]:
        """Every event of the job, past and future, in the caller's own event loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[JobEvent] = asyncio.Queue()

        def forward(_job: Job, event: JobEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        with self._lock:
            for event in self.events:
                queue.put_nowait(event)
            self._callbacks.append(forward)
        while True:
            event = await queue.get()
            yield event
            if event.is_final:
                return

    def __aiter__(self) -> AsyncIterator[JobEvent]:
        return self.stream()

    def _emit(self, event: JobEvent) -> None:
        with self._lock:
            self.events.append(event)
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(self, event)
            except Exception:  # a caller's bug: logged with its traceback, the job goes on
                logger.exception("an on_event callback raised on the %s event of run %s",
                                 event.kind, self.history_id)

    # --- control -----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Ask the backend to stop the job; the row ends `cancelled` unless it had already finished.

        During the submit the request is not abandoned: its id is recorded, then cancelled on the
        backend, so the row ends cancelled with its request id."""
        self._cancel_requested = True
        if self._future is None or self._future.done():
            return
        loop = self.runner.loop
        if _on_loop_thread(loop):  # called from an event callback: schedule it, do not wait on it
            loop.create_task(self._cancel())
        else:
            asyncio.run_coroutine_threadsafe(self._cancel(), loop).result(timeout=60)

    async def _cancel(self) -> None:
        if self._phase == "submitting":
            return  # `_steps` cancels it on the backend once its request id is recorded
        if (self._phase in ("waiting", "following") and self.request_id is not None
                and not await self._cancel_on_backend()):  # a resumed job may wait for a place
            return
        if self._task is not None and self._phase != "ending":  # an ending job records its end
            self._task.cancel()

    def start(self, *, follow_only: bool = False) -> Job:
        """Schedule the job on the package loop (submitting it unless it was submitted before)."""
        async def life() -> Generation:
            self._task = asyncio.current_task()
            return await self._run(follow_only)

        self.runner.follow(self)
        self._future = asyncio.run_coroutine_threadsafe(life(), self.runner.loop)
        self._future.add_done_callback(lambda _f: self.runner.forget(self))
        return self

    def __repr__(self) -> str:
        return (f"Job({self.status.value}, {self.endpoint_id}, history_id={self.history_id}, "
                f"request_id={self.request_id!r})")

    def _repr_html_(self) -> str:
        if self.status is JobStatus.COMPLETED:
            return self.generation._repr_html_()
        return f"<code>{html_text(repr(self))}</code>"
