"""Jobs: follow a generation from submit to a final history row, on the package's own loop.

Jobs run as asyncio tasks on one long-lived event loop owned by the package (a daemon thread).
The sync API (`generate`, `job.result()`) waits on that loop, `generate_async` awaits it from
the caller's loop, and widgets subscribe to job events. So a notebook kernel, whose own loop is
already running, never blocks while Sora works, and a plain script works the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ._errors import GenerationError, HistoryError
from .backends import Backend
from .records import Generation, JobEvent, JobStatus
from .schema import EndpointSchema

if TYPE_CHECKING:
    from .history import History

__all__ = ["Job", "job_loop", "live_job"]

EventCallback = Callable[["Job", JobEvent], None]
PREVIEW_NOTE = "Offline preview: no model made this video; it was rendered on this machine from your image."

#: jobs followed at once in this process; more wait, pending, for a place. fal queues what is over
#: a key's own limit on its side, so this only bounds connections and render threads here.
MAX_CONCURRENT_JOBS = int(os.environ.get("SORA_WIDGETS_MAX_JOBS", "32"))

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()
_slots: asyncio.Semaphore | None = None
#: jobs this process is following, by (history file, row id), so resume() never follows one twice
_live: dict[tuple[str, int], Job] = {}
_live_lock = threading.Lock()


def job_loop() -> asyncio.AbstractEventLoop:
    """The package's event loop, started on first use in a daemon thread."""
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="sora-widgets-jobs", daemon=True).start()
            _loop = loop
        return _loop


def live_job(history: History, history_id: int) -> Job | None:
    """The Job this process is following for that history row, if any."""
    return _live.get((str(history.path), history_id))


def _job_slots() -> asyncio.Semaphore:
    """The places for running jobs, made on the job loop the first time one is needed."""
    global _slots
    if _slots is None:
        _slots = asyncio.Semaphore(MAX_CONCURRENT_JOBS)
    return _slots


def _on_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class Job:
    """A generation under way on the package loop: returns at once, observable, cancellable."""

    def __init__(self, *, schema: EndpointSchema, arguments: dict[str, Any], backend: Backend,
                 history: History, history_id: int, request_id: str | None = None) -> None:
        self.schema = schema
        self.backend = backend
        self.history = history
        self.history_id = history_id
        self.events: list[JobEvent] = []
        self.generation = Generation(
            endpoint_id=schema.endpoint_id, arguments=dict(arguments), backend=backend.name,
            request_id=request_id, history_id=history_id,
            note=PREVIEW_NOTE if backend.name == "preview" else None)
        self._callbacks: list[EventCallback] = []
        self._lock = threading.Lock()
        self._cancel_requested = False
        self._created = time.monotonic()
        self._submitted: float | None = None
        self._started: float | None = None
        self._future: concurrent.futures.Future[Generation] | None = None
        self._failure: GenerationError | None = None  # what ended the job, when it failed

    # --- what callers read -------------------------------------------------------------------

    @property
    def endpoint_id(self) -> str:
        return self.schema.endpoint_id

    @property
    def request_id(self) -> str | None:
        return self.generation.request_id

    @property
    def status(self) -> JobStatus:
        return self.generation.status

    @property
    def arguments(self) -> dict[str, Any]:
        return self.generation.arguments

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

        If `timeout` passes first, TimeoutError is raised and the job keeps running: call again,
        or `sw.resume()` after a restart, with its request id.
        """
        assert self._future is not None, "the job was never started"
        try:
            self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"{self.endpoint_id} job (history id {self.history_id}, request id "
                f"{self.request_id}) is still {self.status.value} after {timeout} s; it keeps "
                "running: call job.result() again later.") from None
        return self._outcome()

    def __await__(self) -> Any:
        return self._await().__await__()

    async def _await(self) -> Generation:
        assert self._future is not None, "the job was never started"
        await asyncio.wrap_future(self._future)
        return self._outcome()

    def _outcome(self) -> Generation:
        gen = self.generation
        if gen.status is JobStatus.COMPLETED:
            return gen
        cause = self._failure
        raise GenerationError(gen.error or f"The job ended {gen.status.value}.",
                              kind=gen.error_type or gen.status.value, endpoint_id=self.endpoint_id,
                              request_id=gen.request_id, history_id=self.history_id, generation=gen,
                              field=cause.field if cause else None,
                              status_code=cause.status_code if cause else None)

    # --- events ------------------------------------------------------------------------------

    def on_event(self, callback: EventCallback) -> None:
        """Call `callback(job, event)` for every event from now on (on the job loop's thread)."""
        with self._lock:
            self._callbacks.append(callback)

    async def stream(self) -> AsyncIterator[JobEvent]:
        """Every event of the job, past and future, in the caller's own event loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[JobEvent] = asyncio.Queue()
        with self._lock:
            for event in self.events:
                queue.put_nowait(event)
            self._callbacks.append(lambda _job, e: loop.call_soon_threadsafe(queue.put_nowait, e))
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
            callback(self, event)

    # --- control -----------------------------------------------------------------------------

    def cancel(self) -> None:
        """Ask the backend to stop the job; the row ends `cancelled` unless it had already finished."""
        self._cancel_requested = True
        if self._future is None or self._future.done():
            return
        loop = job_loop()
        if _on_loop_thread(loop):  # called from an event callback: schedule it, do not wait on it
            loop.create_task(self._cancel())
        else:
            asyncio.run_coroutine_threadsafe(self._cancel(), loop).result(timeout=60)

    async def _cancel(self) -> None:
        if self.request_id is not None:
            try:
                await self.backend.cancel(self.endpoint_id, self.request_id)
            except GenerationError as exc:
                if exc.kind == "already_completed":
                    return
                raise
        if self._task is not None:
            self._task.cancel()

    def start(self, *, follow_only: bool = False) -> Job:
        """Schedule the job on the package loop (submitting it unless it was submitted before)."""
        async def runner() -> Generation:
            self._task = asyncio.current_task()
            return await self._run(follow_only)

        self._task: asyncio.Task[Any] | None = None
        key = (str(self.history.path), self.history_id)
        with _live_lock:
            _live[key] = self
        self._future = asyncio.run_coroutine_threadsafe(runner(), job_loop())
        self._future.add_done_callback(lambda _f: _live.pop(key, None))
        return self

    # --- the life of a job, on the job loop ----------------------------------------------------

    async def _run(self, follow_only: bool) -> Generation:
        """The whole life of the job; every way out leaves the history row with a final status."""
        try:
            async with _job_slots():
                await self._steps(follow_only)
        except asyncio.CancelledError:
            self._finish(JobStatus.CANCELLED, error_type="cancelled",
                         error="Cancelled before a video was made.")
        except GenerationError as exc:
            self._failure = exc
            status = JobStatus.CANCELLED if exc.kind == "cancelled" else JobStatus.FAILED
            self._finish(status, error_type=exc.kind, error=str(exc))
        except Exception as exc:  # record any other failure on the row, then let it be seen
            self._finish(JobStatus.FAILED, error_type=type(exc).__name__, error=f"{type(exc).__name__}: {exc}")
            raise GenerationError(str(exc), kind="internal", endpoint_id=self.endpoint_id,
                                  request_id=self.request_id, history_id=self.history_id,
                                  generation=self.generation) from exc
        return self.generation

    async def _steps(self, follow_only: bool) -> None:
        """Prepare and submit (unless resuming), follow the events, fetch and keep the result."""
        if not follow_only:
            sent = await self.backend.prepare(self.endpoint_id, self.arguments)
            if sent != self.arguments:  # e.g. a local image now uploaded: record what is sent
                self.generation.arguments = dict(sent)
                self.history.update(self.history_id, arguments=sent)
            if self._cancel_requested:
                raise asyncio.CancelledError
            request_id = await self.backend.submit(self.endpoint_id, sent)
            self._submitted = time.monotonic()
            self.generation.request_id = request_id
            self._set_status(JobStatus.QUEUED, request_id=request_id, submitted_at=_now())
        async for event in self.backend.events(self.endpoint_id, self.request_id or ""):
            self._on_backend_event(event)
        output = await self.backend.result(self.endpoint_id, self.request_id or "")
        await self._complete(output)

    def _on_backend_event(self, event: JobEvent) -> None:
        gen = self.generation
        if event.kind == "queued" and gen.status in (JobStatus.PENDING, JobStatus.QUEUED):
            self._set_status(JobStatus.QUEUED)
        elif event.kind == "running":
            columns: dict[str, Any] = {}
            if gen.status is not JobStatus.RUNNING:
                self._started = time.monotonic()
                columns["started_at"] = _now()
                if self._submitted is not None:  # a resumed job's queue time comes from its row
                    gen.queued_s = round(self._started - self._submitted, 3)
                    columns["queued_s"] = gen.queued_s
            if event.logs:
                gen.logs.extend(event.logs)
                columns["logs"] = gen.logs
            self._set_status(JobStatus.RUNNING, **columns)
        if not event.is_final:
            self._emit(event)

    def _set_status(self, status: JobStatus, **columns: Any) -> None:
        changed = status is not self.generation.status
        self.generation.status = status
        if changed or columns:
            self.history.update(self.history_id, status=status, **columns)

    async def _complete(self, output: Mapping[str, Any]) -> None:
        from dataclasses import asdict

        from .media import find_media

        gen = self.generation
        gen.result = dict(output)
        gen.media = [asdict(item) for item in find_media(output, self.schema.outputs)]
        videos = [m for m in gen.media if m["kind"] == "video"]
        images = [m for m in gen.media if m["kind"] == "image"]
        gen.video_url = videos[0]["url"] if videos else None
        gen.video_id = output.get("video_id") if isinstance(output.get("video_id"), str) else None
        gen.thumbnail_url = _url(output.get("thumbnail")) or (images[0]["url"] if images and not videos else None)
        gen.spritesheet_url = _url(output.get("spritesheet"))
        await asyncio.to_thread(self._keep_media)
        self._finish(JobStatus.COMPLETED)

    def _keep_media(self) -> None:
        """Copy every video and image the endpoint returned into the media folder (fal's URLs
        expire); the first video (and poster image) also fill the history's video columns."""
        from .media import download

        gen = self.generation
        folder = self.history.media_dir / "videos"
        stem = f"{self.history_id:06d}-{gen.video_id or gen.request_id}"
        for item in gen.media:
            if item["kind"] not in ("video", "image"):
                continue
            role = item["field"] + ("" if item["index"] is None else f"-{item['index']}")
            default = ".mp4" if item["kind"] == "video" else ".jpg"
            try:
                name = f"{stem}.{role}" + _suffix(item["url"], default)
                item["path"] = str(download(item["url"], folder, name=name, size=item["file_size"]))
            except GenerationError as exc:
                gen.logs.append(f"Could not keep a local copy of {item['url']}: {exc}")
                continue
            if item["url"] == gen.video_url and gen.video_path is None:
                gen.video_path = item["path"]
            elif item["url"] == gen.thumbnail_url and gen.thumbnail_path is None:
                gen.thumbnail_path = item["path"]
            elif item["url"] == gen.spritesheet_url and gen.spritesheet_path is None:
                gen.spritesheet_path = item["path"]

    def _finish(self, status: JobStatus, *, error_type: str | None = None,
                error: str | None = None) -> None:
        gen = self.generation
        end = time.monotonic()
        gen.status, gen.error_type, gen.error = status, error_type, error
        gen.total_s = round(end - self._created, 3)
        if self._started is not None:
            gen.running_s = round(end - self._started, 3)
        try:
            self.history.finish(
                self.history_id, status=status, result=gen.result, error_type=error_type,
                error_message=error, video_url=gen.video_url, video_path=gen.video_path,
                video_id=gen.video_id, thumbnail_url=gen.thumbnail_url,
                thumbnail_path=gen.thumbnail_path, spritesheet_url=gen.spritesheet_url,
                spritesheet_path=gen.spritesheet_path, running_s=gen.running_s,
                total_s=gen.total_s, logs=gen.logs, media=gen.media or None)
        except HistoryError:
            recorded = JobStatus(self.history.get(self.history_id)["status"])
            if not recorded.is_final:
                raise
            gen.logs.append(f"Another process had already recorded this run as {recorded.value}.")
        self._emit(JobEvent(kind=status.value, elapsed_s=gen.total_s, message=error))  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return (f"Job({self.status.value}, {self.endpoint_id}, history_id={self.history_id}, "
                f"request_id={self.request_id!r})")

    def _repr_html_(self) -> str:
        if self.status is JobStatus.COMPLETED:
            return self.generation._repr_html_()
        return f"<code>{self!r}</code>".replace("<Job", "&lt;Job")


def _url(node: Any) -> str | None:
    return node.get("url") if isinstance(node, Mapping) else None


def _suffix(url: str, default: str) -> str:
    tail = url.split("?")[0].rsplit("/", 1)[-1]
    return "." + tail.rsplit(".", 1)[1].lower() if "." in tail and len(tail.rsplit(".", 1)[1]) <= 4 else default
