"""Jobs: follow a generation from submit to a final history row, on the package's own loop.

Jobs run as asyncio tasks on one long-lived event loop owned by the package (a daemon thread).
The sync API (`generate`, `job.result()`) waits on that loop, `generate_async` awaits it from
the caller's loop, and widgets subscribe to job events. So a notebook kernel, whose own loop is
already running, never blocks while a model works, and a plain script works the same way.

A job's life in its history row (every move committed before anyone sees it):
pending -> submitting (written before the POST) -> queued (the request id, written before any
caller, event or callback sees it) -> running -> completed | failed | cancelled, or `unknown`
when the answer to the POST was lost. The row names its owner; a heartbeat thread renews it while
this process follows the row, so `resume()` elsewhere leaves it alone (see `_owner.py`).
History writes run in worker threads, never on the job loop itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import GenerationError, HistoryError, SoraWidgetsError, error_kind
from .._owner import this_process
from .._secrets import scrub, secret_values
from ..backends import Backend
from ..records import Generation, JobEvent, JobStatus
from ..schema.documents import EndpointSchema
from .runner import JobRunner, default_runner, max_jobs

if TYPE_CHECKING:
    from ..history.store import History

__all__ = ["Job", "JobRunner", "job_loop", "live_job", "max_jobs"]

EventCallback = Callable[["Job", JobEvent], None]
PREVIEW_NOTE = "Offline preview: no model made this video; it was rendered on this machine from your image."

logger = logging.getLogger("sora_widgets")


def job_loop(runner: JobRunner | None = None) -> asyncio.AbstractEventLoop:
    """The event loop jobs run on (the default runner's unless one is given)."""
    return (runner or default_runner()).loop


def live_job(history: History, history_id: int, runner: JobRunner | None = None) -> Job | None:
    """The Job this process (the runner) is following for that history row, if any."""
    return (runner or default_runner()).live(history, history_id)


def _lost_contact(exc: GenerationError) -> bool:
    """True for a failure to reach the backend, or to be let in (not an answer about the job): the
    job may still be fine, so its row stays resumable."""
    if exc.kind in ("network", "rate_limited", "credentials"):  # a key can be fixed, then resumed
        return True
    if exc.kind == "timeout":
        return exc.status_code is None
    return exc.kind == "server" and exc.status_code in (502, 503, 504)


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
                 history: History, history_id: int, request_id: str | None = None,
                 status: JobStatus = JobStatus.PENDING, runner: JobRunner | None = None) -> None:
        self.schema = schema
        self.runner = runner or default_runner()
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
        self._phase = "waiting"  # then "preparing", "submitting", "following", "ending"
        self._created = time.monotonic()
        self._submitted: float | None = None
        self._started: float | None = None
        self._future: concurrent.futures.Future[Generation] | None = None
        self._task: asyncio.Task[Any] | None = None
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
        try:
            self._started_future().result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
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
        if (self._phase == "following" and self.request_id is not None
                and not await self._cancel_on_backend()):
            return
        if self._task is not None and self._phase != "ending":  # an ending job records its end
            self._task.cancel()

    async def _cancel_on_backend(self) -> bool:
        """Ask the backend to stop this request; False when it had already finished."""
        try:
            await self.backend.cancel(self.endpoint_id, self.request_id or "")
        except GenerationError as exc:
            if exc.kind == "already_completed":
                return False
            raise
        return True

    def start(self, *, follow_only: bool = False) -> Job:
        """Schedule the job on the package loop (submitting it unless it was submitted before)."""
        async def life() -> Generation:
            self._task = asyncio.current_task()
            return await self._run(follow_only)

        self.runner.follow(self)
        self._future = asyncio.run_coroutine_threadsafe(life(), self.runner.loop)
        self._future.add_done_callback(lambda _f: self.runner.forget(self))
        return self

    # --- the life of a job, on the job loop ----------------------------------------------------

    async def _run(self, follow_only: bool) -> Generation:
        """The whole life of the job; every way out leaves the history row true: a final status,
        or (contact lost after the request id was recorded) still resumable."""
        try:
            async with self.runner.slots():
                await self._steps(follow_only)
        except asyncio.CancelledError:
            if self._cancel_requested or self.request_id is None:
                said = "Cancelled." if self.request_id else "Cancelled before anything was sent."
                await self._end(JobStatus.CANCELLED, error_type="cancelled", error=said)
            else:  # stopped from outside (e.g. the loop closing), not cancel(): keep it resumable
                await self._detach("interrupted", "This process stopped following the job.")
        except GenerationError as exc:
            await self._fail(exc)
        except Exception as exc:  # record any other failure on the row, then let it be seen
            await self._end(JobStatus.FAILED, error_type="internal", error=f"{type(exc).__name__}: {exc}")
            raise GenerationError(str(exc), kind="internal", endpoint_id=self.endpoint_id,
                                  request_id=self.request_id, history_id=self.history_id,
                                  generation=self.generation) from exc
        return self.generation

    async def _steps(self, follow_only: bool) -> None:
        """Prepare and submit (unless resuming), follow the events, fetch and keep the result."""
        if not follow_only:
            await self._submit()
        self._phase = "following"
        # asked while the POST was in flight: its id is recorded now
        if self._cancel_requested and await self._cancel_on_backend():
            raise asyncio.CancelledError
        async for event in self.backend.events(self.endpoint_id, self.request_id or ""):
            await self._on_backend_event(event)
        output = await self.backend.result(self.endpoint_id, self.request_id or "")
        await self._complete(self._clean(output))

    async def _submit(self) -> None:
        """Upload, write `submitting`, POST once, and commit the request id before it is seen."""
        self._phase = "preparing"
        sent = await self.backend.prepare(self.endpoint_id, self.arguments)
        if sent != self.arguments:  # e.g. a local image now uploaded: record what is sent
            await self._write(arguments=sent)
            self.generation.arguments = dict(sent)
        if self._cancel_requested:
            raise asyncio.CancelledError
        await self._move(JobStatus.SUBMITTING)
        self._phase = "submitting"
        posting = asyncio.ensure_future(self.backend.submit(self.endpoint_id, sent))
        try:
            request_id = await asyncio.shield(posting)
        except asyncio.CancelledError:  # never abandon a POST in flight: its id must be kept
            request_id = await posting
            await self._record_id(request_id)
            raise
        await self._record_id(request_id)

    async def _record_id(self, request_id: str) -> None:
        """Commit the request id (and `queued`) to the row, and only then show it on the Job."""
        await self._move(JobStatus.QUEUED, request_id=request_id, submitted_at=_now())
        self.generation.request_id = request_id
        self._submitted = time.monotonic()

    async def _on_backend_event(self, event: JobEvent) -> None:
        gen = self.generation
        event = JobEvent(event.kind, position=event.position, elapsed_s=event.elapsed_s,
                         logs=tuple(self._clean(list(event.logs))),
                         message=self._clean(event.message) if event.message else None)
        if event.kind == "queued" and gen.status in (JobStatus.PENDING, JobStatus.QUEUED):
            await self._move(JobStatus.QUEUED)
        elif event.kind == "running":
            columns: dict[str, Any] = {}
            if gen.status is not JobStatus.RUNNING:
                self._started = time.monotonic()
                columns["started_at"] = _now()
                if self._submitted is not None:  # a resumed job's queue time comes from its row
                    gen.queued_s = round(self._started - self._submitted, 3)
                    columns["queued_s"] = gen.queued_s
            if event.logs:
                columns["logs"] = [*gen.logs, *event.logs]
            await self._move(JobStatus.RUNNING, **columns)
            gen.logs.extend(event.logs)
        if not event.is_final:
            self._emit(event)

    async def _write(self, **columns: Any) -> None:
        """Write columns of this job's row from a worker thread (the job loop never waits on disk)."""
        await self.runner.on_disk(self.history.update, self.history_id, **columns)

    async def _move(self, status: JobStatus, **columns: Any) -> None:
        """The one place a job changes status: checked against the lifecycle, committed to the
        history, and only then visible on the Job."""
        current = self.generation.status
        if status is not current and not current.can_become(status):
            raise GenerationError(f"Run {self.history_id} is {current.value}; it cannot become "
                                  f"{status.value}.", kind="internal", history_id=self.history_id)
        if status is not current or columns:
            await self._write(status=status, **columns)
        self.generation.status = status

    async def _complete(self, output: Mapping[str, Any]) -> None:
        from ..media.inputs import find_media

        gen = self.generation
        gen.result = dict(output)
        gen.media = [asdict(item) for item in find_media(output, self.schema.outputs)]
        videos = [m for m in gen.media if m["kind"] == "video"]
        images = [m for m in gen.media if m["kind"] == "image"]
        gen.video_url = videos[0]["url"] if videos else None
        gen.video_id = output.get("video_id") if isinstance(output.get("video_id"), str) else None
        gen.thumbnail_url = (_url(output.get("thumbnail"))
                             or (images[0]["url"] if images and not videos else None))
        gen.spritesheet_url = _url(output.get("spritesheet"))
        await self.runner.fetching(self._keep_media)
        await self._end(JobStatus.COMPLETED)

    def _keep_media(self) -> None:
        """Copy every video and image the endpoint returned into the media folder (fal's URLs
        expire); the first video (and poster image) also fill the history's video columns.

        Only http(s) URLs are fetched, bounded and checked to hold what they claim; a file the
        backend rendered itself (the offline preview) is linked. The main result (the first video,
        else the first image) must be kept, or the run fails with its URL and request id kept; an
        extra file that cannot be kept is noted in the logs."""
        from ..media.inputs import download, link_or_copy, remove_partials

        gen = self.generation
        folder = self.history.media_dir / "videos"
        remove_partials(folder)
        stem = _safe_name(f"{self.history_id:06d}-{gen.video_id or gen.request_id}")
        main = next((m for m in gen.media if m["kind"] == "video"),
                    next((m for m in gen.media if m["kind"] == "image"), None))
        for item in gen.media:
            if item["kind"] not in ("video", "image"):
                continue
            role = _safe_name(item["field"] + ("" if item["index"] is None else f"-{item['index']}"))
            default = ".mp4" if item["kind"] == "video" else ".jpg"
            name = f"{stem}.{role}" + _suffix(item["url"], default)
            own = self._own_file(item["url"])
            try:
                kept = (link_or_copy(own, folder / name) if own is not None else
                        download(item["url"], folder, name=name, size=item["file_size"], kind=item["kind"]))
            except GenerationError as exc:
                if item is main:
                    raise GenerationError(
                        f"The {item['kind']} was made (request id {gen.request_id}) but could not be "
                        f"kept: {exc} Its URL stays in the history.", kind="download",
                        endpoint_id=self.endpoint_id, request_id=gen.request_id,
                        history_id=self.history_id) from exc
                gen.logs.append(f"Could not keep a local copy of the {role} file: {exc}")
                continue
            item["path"] = str(kept)
            if item["url"] == gen.video_url and gen.video_path is None:
                gen.video_path = item["path"]
            elif item["url"] == gen.thumbnail_url and gen.thumbnail_path is None:
                gen.thumbnail_path = item["path"]
            elif item["url"] == gen.spritesheet_url and gen.spritesheet_path is None:
                gen.spritesheet_path = item["path"]

    def _own_file(self, url: str) -> Path | None:
        """The local file behind a `file:` URL inside the folder the backend renders into (the
        offline preview's own output); None for anything else, which must come over http(s)."""
        root = getattr(self.backend, "local_media_root", None)
        if root is None or not url.startswith("file:"):
            return None
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)).resolve()
        return path if path.is_relative_to(Path(root).resolve()) and path.is_file() else None

    async def _fail(self, exc: GenerationError) -> None:
        """End the job for `exc`, or leave its row resumable when only the contact was lost."""
        following, self._phase = self._phase == "following", "ending"
        message = self._clean(str(exc))
        self._failure = exc
        if following and self.request_id and _lost_contact(exc):
            await self._detach(exc.kind, message)
        elif exc.kind == "lost_answer":
            await self._end(JobStatus.UNKNOWN, error_type=exc.kind, error=message)
        elif exc.kind == "cancelled":
            await self._end(JobStatus.CANCELLED, error_type=exc.kind, error=message)
        else:
            await self._end(JobStatus.FAILED, error_type=exc.kind, error=message)

    async def _detach(self, kind: str, message: str) -> None:
        """Contact lost after the request id was recorded: the row keeps its status and request id,
        without an owner, so `sw.resume()` (here or anywhere) follows it to the end later."""
        gen = self.generation
        said = (f"{message} The job keeps its request id {gen.request_id}; it stays "
                f"{gen.status.value} in the history, and sw.resume() follows it to the end once the "
                "backend can be reached again.")
        try:
            await self._write(error_type=kind, error_message=said, logs=[*gen.logs, said])
            await self.runner.on_disk(self.history.release, self.history_id, this_process())
        except SoraWidgetsError as write_error:
            logger.warning("run %s lost contact and could not be released: %s", self.history_id, write_error)
        gen.logs.append(said)
        gen.status, gen.error_type, gen.error = JobStatus.FAILED, kind, said
        gen.total_s = round(time.monotonic() - self._created, 3)
        self._emit(JobEvent(kind="failed", elapsed_s=gen.total_s, message=said))

    async def _end(self, status: JobStatus, *, error_type: str | None = None,
                   error: str | None = None) -> None:
        """Give the job its final status: on the row first (a worker thread), then on the Job."""
        self._phase = "ending"
        gen = self.generation
        end = time.monotonic()
        gen.total_s = round(end - self._created, 3)
        if self._started is not None:
            gen.running_s = round(end - self._started, 3)
        try:
            await self._write(
                status=status, result=gen.result, error_type=error_type,
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
        gen.status, gen.error_type, gen.error = status, error_type, error
        self._emit(JobEvent(kind=status.value, elapsed_s=gen.total_s, message=error))  # type: ignore[arg-type]

    def _clean(self, value: Any) -> Any:
        """`value` (text, or JSON from a server) with the key removed, including a key= given in code."""
        own = getattr(self.backend, "secret_values", None)
        secrets = sorted({*secret_values(), *(own() if callable(own) else ())}, key=len, reverse=True)
        return scrub(value, secrets)

    def __repr__(self) -> str:
        return (f"Job({self.status.value}, {self.endpoint_id}, history_id={self.history_id}, "
                f"request_id={self.request_id!r})")

    def _repr_html_(self) -> str:
        if self.status is JobStatus.COMPLETED:
            return self.generation._repr_html_()
        return f"<code>{self!r}</code>".replace("<Job", "&lt;Job")


def _safe_name(text: str) -> str:
    """Server-chosen words (a video id, an output field) made fit for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[:80] or "media"


def _url(node: Any) -> str | None:
    return node.get("url") if isinstance(node, Mapping) else None


def _suffix(url: str, default: str) -> str:
    """The file suffix a media URL names (".mp4", ".webp"), or `default`."""
    tail = url.split("?")[0].rsplit("/", 1)[-1]
    ext = tail.rsplit(".", 1)[1].lower() if "." in tail else ""
    return "." + ext if ext.isalnum() and ext.isascii() and len(ext) <= 4 else default
