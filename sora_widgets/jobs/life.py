"""A job's life on the loop: hold a place, submit once, follow the backend, keep the output and
give the row its final status. Every status move (`_move` on the way, `_end` at the end) is
checked against the lifecycle, committed to the history, and only then visible on the Job.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .._errors import GenerationError, HistoryError, SoraWidgetsError, ValidationError
from .._owner import this_process
from .._secrets import scrub, secret_values
from ..backends import Backend
from ..media import NormalizedImage
from ..records import Generation, JobEvent, JobStatus
from ..schema.documents import EndpointSchema
from .output import describe_output, keep_media
from .runner import JobRunner, Limit

if TYPE_CHECKING:
    from ..history.store import History

__all__ = ["JobLife"]

logger = logging.getLogger("sora_widgets")


def _lost_contact(exc: GenerationError) -> bool:
    """True for a failure to reach the backend, or to be let in (not an answer about the job): the
    job may still be fine, so its row stays resumable."""
    if exc.kind in ("network", "rate_limited", "credentials"):  # a key can be fixed, then resumed
        return True
    if exc.kind == "timeout":
        return exc.status_code is None
    return exc.kind == "server" and exc.status_code in (502, 503, 504)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class JobLife(abc.ABC):
    """What a Job does on the job loop, from its place in the queue to its final row (the Job
    itself, in `job.py`, is what callers hold: it sets these attributes and tells the events)."""

    schema: EndpointSchema
    runner: JobRunner
    limit: Limit | None
    backend: Backend
    history: History
    history_id: int
    generation: Generation
    images: dict[str, NormalizedImage]  # image fields as prepare_arguments stored them
    _cancel_requested: bool
    _phase: str  # "waiting", then "preparing", "submitting", "following", "ending"
    _created: float
    _submitted: float | None
    _started: float | None
    _failure: GenerationError | None  # what ended the job, when it failed

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

    @abc.abstractmethod
    def _emit(self, event: JobEvent) -> None:
        """Record `event` on the job and tell its subscribers."""

    async def _run(self, follow_only: bool) -> Generation:
        """The whole life of the job; every way out leaves the history row true: a final status,
        or (contact lost after the request id was recorded) still resumable."""
        try:
            async with self.runner.place(self.limit):
                await self._steps(follow_only)
        except asyncio.CancelledError:
            if self._cancel_requested or self.request_id is None:
                said = "Cancelled." if self.request_id else "Cancelled before anything was sent."
                await self._end(JobStatus.CANCELLED, error_type="cancelled", error=said)
            else:  # stopped from outside (e.g. the loop closing), not cancel(): keep it resumable
                await self._detach("interrupted", "This process stopped following the job.")
        except GenerationError as exc:
            await self._fail(exc)
        except ValidationError as exc:  # e.g. an input gone before it could be uploaded
            field = exc.fields[0] if exc.fields else None
            await self._fail(GenerationError(str(exc), kind="validation", field=field,
                                             endpoint_id=self.endpoint_id, history_id=self.history_id))
        except Exception as exc:  # record any other failure, then let it be seen
            said = f"{type(exc).__name__}: {exc}"
            if self.request_id is None:
                await self._end(JobStatus.FAILED, error_type="internal", error=said)
            else:  # fal may still be running it: the row stays resumable, its result not lost
                await self._detach("internal", f"This process stopped following the job ({said}).")
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
        if self._cancel_requested:  # cancelled while it waited for a place: nothing is sent
            raise asyncio.CancelledError
        self._phase = "preparing"
        sent = _plain(await self.backend.prepare(self.endpoint_id, {**self.arguments, **self.images}))
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

    def _check_move(self, status: JobStatus) -> None:
        """Refuse a move the lifecycle does not allow (JobStatus.can_become); every move asks."""
        current = self.generation.status
        if status is not current and not current.can_become(status):
            raise GenerationError(f"Run {self.history_id} is {current.value}; it cannot become "
                                  f"{status.value}.", kind="internal", history_id=self.history_id)

    async def _move(self, status: JobStatus, **columns: Any) -> None:
        """A job's status changes on the way: checked against the lifecycle, committed to the
        history, and only then visible on the Job (the final move is `_end`, checked alike)."""
        current = self.generation.status
        self._check_move(status)
        if status is not current or columns:
            await self._write(status=status, **columns)
        self.generation.status = status

    async def _complete(self, output: Mapping[str, Any]) -> None:
        """Describe the output, keep its media (on the download threads), then end `completed`."""
        describe_output(self.generation, output, self.schema)
        await self.runner.fetching(lambda: keep_media(self.generation, history=self.history,
                                                       history_id=self.history_id, backend=self.backend))
        await self._end(JobStatus.COMPLETED)

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
        # this process's Job ends (result() raises); the row, not the Job, keeps its status
        gen.status, gen.error_type, gen.error = JobStatus.FAILED, kind, said
        gen.total_s = round(time.monotonic() - self._created, 3)
        self._emit(JobEvent(kind="failed", elapsed_s=gen.total_s, message=said))

    async def _end(self, status: JobStatus, *, error_type: str | None = None,
                   error: str | None = None) -> None:
        """Give the job its final status: on the row first (a worker thread), then on the Job."""
        self._check_move(status)
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
            recorded = JobStatus((await self.runner.on_disk(self.history.get, self.history_id))["status"])
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

    async def _cancel_on_backend(self) -> bool:
        """Ask the backend to stop this request; False when it had already finished."""
        try:
            await self.backend.cancel(self.endpoint_id, self.request_id or "")
        except GenerationError as exc:
            if exc.kind == "already_completed":
                return False
            raise
        return True


def _plain(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """What a backend prepared, as plain values: an image it left as handed is sent as its text."""
    return {name: value.value if isinstance(value, NormalizedImage) else value
            for name, value in arguments.items()}
