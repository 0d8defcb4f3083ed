"""Offline preview backend: renders a real, clearly labelled H.264 MP4 on this machine.

No model is involved. The input image (or, for text-to-video, a card of the prompt) is moved
with a slow Ken Burns zoom or pan steered by words in the prompt ("zoom out", "pan left", ...),
stamped "PREVIEW — not made by any model", and encoded with libx264 (yuv420p, +faststart) so
browsers can stream it. Jobs behave like fal's queue: a short queue, progress logs, a result
shaped like fal's output, cancel, and recovery by request id after a kernel restart.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._errors import GenerationError, error_kind
from .._home import media_dir as default_media_dir
from .._secrets import key_source
from ..media import NormalizedImage, atomic_write, classify_image, normalize_image
from ..records import JobEvent
from ..schema.fields import looks_like_image
from ._render import LABEL, RenderCancelled, camera_for, output_size, render_preview

__all__ = ["LABEL", "PreviewBackend", "camera_for", "output_size", "render_preview"]

_REQUEST_ID = re.compile(r"^preview-[0-9a-f]{32}$")
_FINAL = ("completed", "failed", "cancelled")
_CANCELLED = ("cancelled", "the preview job was cancelled")


@dataclass
class _Job:
    """One preview job's live state, shared by the render thread and the event streams."""

    request_id: str
    endpoint_id: str
    arguments: dict[str, Any]
    status: str = "queued"
    started: float | None = None
    logs: list[str] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: tuple[str, str] | None = None  # (kind, message)
    cancel: threading.Event = field(default_factory=threading.Event)
    task: asyncio.Task[None] | None = None


class PreviewBackend:
    """The offline backend: no key, no network needed, a real labelled MP4 from your image."""

    name = "preview"

    def __init__(self, *, media_dir: Path | None = None, queue_s: float = 0.3,
                 speed: float | None = None, fps: int = 24, scale: float = 1.0) -> None:
        """`speed` caps rendering at that many seconds of video per wall second (None: flat out);
        `scale` renders at a fraction of the requested size (quick looks and tests)."""
        self.media_dir = Path(media_dir if media_dir is not None else default_media_dir()).resolve()
        self.folder = self.media_dir / "preview"
        self.queue_s, self.speed, self.fps, self.scale = queue_s, speed, fps, scale
        self._jobs: dict[str, _Job] = {}

    @property
    def local_media_root(self) -> Path:
        """The folder this backend renders into: the one place a job may link `file:` results from."""
        return self.folder

    def describe(self) -> str:
        why = "your fal key is not used" if key_source() else "no FAL_KEY set"
        return ("Offline preview: no model made these videos; they are rendered on this machine "
                f"from your image ({why}).")

    async def prepare(self, endpoint_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Keep URLs as they are; store local images (paths, bytes, PIL) under media/inputs."""
        prepared = dict(arguments)
        for name, image in arguments.items():
            if not looks_like_image(name) or image is None:
                continue
            if isinstance(image, NormalizedImage):  # checked and stored once by prepare_arguments
                prepared[name] = image.value
                continue
            source = classify_image(image, field=name)
            if source.url is None:  # a path, bytes or a PIL image: stored by content hash
                prepared[name] = normalize_image(source, media_dir=self.media_dir, field=name).value
        return prepared

    async def submit(self, endpoint_id: str, arguments: dict[str, Any]) -> str:
        arguments = await self.prepare(endpoint_id, arguments)
        job = _Job(f"preview-{uuid.uuid4().hex}", endpoint_id, arguments)
        self._save(job)
        self._jobs[job.request_id] = job
        self._start(job)
        return job.request_id

    async def events(self, endpoint_id: str, request_id: str) -> AsyncIterator[JobEvent]:
        job, sent, announced = self._job(request_id), 0, False
        if job.status == "queued":
            yield JobEvent("queued", position=0)
        while True:
            if job.task is not None and job.status not in _FINAL:
                await asyncio.wait({job.task}, timeout=0.25)
            new = tuple(job.logs[sent:])
            if new or (job.status == "running" and not announced):
                sent, announced = sent + len(new), True
                elapsed = time.monotonic() - job.started if job.started else 0.0
                yield JobEvent("running", elapsed_s=round(elapsed, 3), logs=new)
            if job.status in _FINAL:
                message = job.error[1] if job.error else None
                yield JobEvent(job.status, message=message)  # type: ignore[arg-type]
                return

    async def result(self, endpoint_id: str, request_id: str) -> dict[str, Any]:
        job = self._job(request_id)
        if job.task is not None:
            await asyncio.wait({job.task})  # not cancelled if this caller gives up waiting
        if job.error is not None or job.result is None:
            kind, message = job.error or ("render", "the preview render ended without a video")
            raise GenerationError(message, kind=error_kind(kind), endpoint_id=endpoint_id,
                                  request_id=request_id)
        return job.result

    async def cancel(self, endpoint_id: str, request_id: str) -> None:
        job = self._job(request_id, resume=False)
        if job.status in _FINAL:
            return
        job.cancel.set()  # the render thread stops before its next frame
        if job.task is not None:
            if job.status == "queued":
                job.task.cancel()
            await asyncio.wait({job.task})
        if job.status not in _FINAL:
            self._finish(job, "cancelled", error=_CANCELLED)

    def _start(self, job: _Job) -> None:
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        job.task.add_done_callback(lambda task: self._settle(job, task))

    async def _run(self, job: _Job) -> None:
        import av

        try:
            await asyncio.sleep(self.queue_s)
            if job.cancel.is_set():
                raise RenderCancelled
            job.status, job.started = "running", time.monotonic()
            result = await asyncio.to_thread(
                render_preview, job.arguments, job.endpoint_id, self.folder, job.request_id,
                fps=self.fps, scale=self.scale, speed=self.speed, cancel=job.cancel,
                log=job.logs.append)
        except asyncio.CancelledError:
            if not job.cancel.is_set():  # the loop is closing: stop the thread, stay resumable
                job.cancel.set()
                raise
            self._finish(job, "cancelled", error=_CANCELLED)
        except RenderCancelled:
            self._finish(job, "cancelled", error=_CANCELLED)
        except (av.FFmpegError, OSError, ValueError) as exc:  # encoder, disk or input trouble
            self._finish(job, "failed", error=("render", f"the preview render failed: {exc}"))
        else:
            self._finish(job, "completed", result=result)

    def _settle(self, job: _Job, task: asyncio.Task[None]) -> None:
        """End a job whose task stopped without a final status, so no event stream waits forever."""
        if job.status in _FINAL:
            return
        if task.cancelled():  # kept out of the saved state: a new session renders it again
            job.status, job.error = "cancelled", ("cancelled", "the preview job's event loop closed")
        else:
            self._finish(job, "failed", error=("render", "the preview render stopped "
                                               f"unexpectedly: {task.exception()!r}"))

    def _finish(self, job: _Job, status: str, *, result: dict[str, Any] | None = None,
                error: tuple[str, str] | None = None) -> None:
        job.status, job.result, job.error = status, result, error
        self._save(job)

    def _save(self, job: _Job) -> None:
        """Write the job's state beside its video; a folder that refuses it fails the render."""
        state = {"request_id": job.request_id, "endpoint_id": job.endpoint_id,
                 "arguments": job.arguments, "status": job.status, "result": job.result,
                 "error": list(job.error) if job.error else None}
        data = json.dumps(state, indent=1, default=str).encode()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write(self.folder / f"{job.request_id}.json", data)
        except OSError as exc:
            raise GenerationError(f"the preview could not save its job in {self.folder}: {exc}",
                                  kind="render", endpoint_id=job.endpoint_id,
                                  request_id=job.request_id) from exc

    def _job(self, request_id: str, *, resume: bool = True) -> _Job:
        """The live job, or one rebuilt from its saved state (rendered again if its video is gone)."""
        if request_id in self._jobs:
            return self._jobs[request_id]
        path = self.folder / f"{request_id}.json"
        if not _REQUEST_ID.match(request_id) or not path.is_file():
            raise GenerationError(f"no preview job {request_id!r} in {self.folder}",
                                  kind="not_found", request_id=request_id)
        try:
            state = _saved_state(path)
        except (ValueError, OSError) as exc:
            raise GenerationError(f"the saved state of {request_id} is unreadable: {exc}",
                                  kind="not_found", request_id=request_id) from exc
        job = _Job(request_id, state["endpoint_id"], state["arguments"])
        video = self.folder / f"{request_id}.mp4"
        if state["status"] == "completed" and state.get("result") and video.is_file():
            job.status, job.result = "completed", state["result"]
        elif state["status"] in ("failed", "cancelled"):
            job.status, job.error = state["status"], tuple(state.get("error") or ("error", ""))
        elif resume:
            job.logs.append("Picked up again after a restart: rendering the preview once more.")
            self._start(job)
        self._jobs[request_id] = job
        return job


def _saved_state(path: Path) -> dict[str, Any]:
    """A job's saved state; ValueError when the file is not one (not JSON, or fields missing)."""
    state = json.loads(path.read_text())
    if not (isinstance(state, dict) and isinstance(state.get("endpoint_id"), str)
            and isinstance(state.get("arguments"), dict) and isinstance(state.get("status"), str)
            and isinstance(state.get("error"), (list, type(None)))):
        raise ValueError("not a preview job's saved state")
    return state
