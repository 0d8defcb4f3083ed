"""Typed records that flow between layers: job status, job events and the finished Generation."""

from __future__ import annotations

import base64
import enum
import functools
import html
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal


class JobStatus(str, enum.Enum):
    """Where a generation attempt is in its life; the history's `status` column holds the value."""

    PENDING = "pending"  # row written, nothing sent yet
    SUBMITTING = "submitting"  # the request is being sent; its owner waits for the request id
    QUEUED = "queued"  # accepted by the backend (request id recorded), waiting for a worker
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"  # the answer to the submit was lost: it may have reached the backend

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    def can_become(self, other: JobStatus) -> bool:
        """True when moving from this status to `other` is a legal step of the lifecycle."""
        return other in _ALLOWED[self]

    def __str__(self) -> str:
        return self.value


_FINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.UNKNOWN}
_ALLOWED: dict[JobStatus, set[JobStatus]] = {
    JobStatus.PENDING: {JobStatus.SUBMITTING, JobStatus.QUEUED, JobStatus.RUNNING, *_FINAL},
    JobStatus.SUBMITTING: {JobStatus.QUEUED, JobStatus.RUNNING, *_FINAL},
    JobStatus.QUEUED: {JobStatus.QUEUED, JobStatus.RUNNING, *_FINAL},
    JobStatus.RUNNING: {JobStatus.RUNNING, *_FINAL},
    JobStatus.COMPLETED: set(),
    JobStatus.FAILED: set(),
    JobStatus.CANCELLED: set(),
    # the process that sent it may still learn its fate (e.g. after another took it for dead)
    JobStatus.UNKNOWN: {JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.FAILED,
                        JobStatus.CANCELLED},
}

EventKind = Literal["queued", "running", "completed", "failed", "cancelled", "unknown"]


@dataclass(frozen=True)
class JobEvent:
    """One step of a job as a backend reports it.

    `queued` carries the queue position, `running` the elapsed seconds and the log lines that
    are new since the previous event; the final kinds end the stream.
    """

    kind: EventKind
    position: int | None = None
    elapsed_s: float | None = None
    logs: tuple[str, ...] = ()
    message: str | None = None

    @property
    def is_final(self) -> bool:
        return self.kind in ("completed", "failed", "cancelled", "unknown")


@dataclass(eq=True)
class Generation:
    """The outcome of one generation attempt, as recorded in the history; shows itself inline."""

    endpoint_id: str
    arguments: dict[str, Any]
    backend: str
    status: JobStatus = JobStatus.PENDING
    request_id: str | None = None
    history_id: int | None = None
    video_url: str | None = None
    video_path: str | None = None
    video_id: str | None = None
    thumbnail_url: str | None = None
    thumbnail_path: str | None = None
    spritesheet_url: str | None = None
    spritesheet_path: str | None = None
    #: every media file of the output: field, index, kind, url, content_type, file_size, path
    media: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    queued_s: float | None = None
    running_s: float | None = None
    total_s: float | None = None
    cost_usd: float | None = None
    logs: list[str] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None
    note: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is JobStatus.COMPLETED

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    def __repr__(self) -> str:
        prompt = str(self.arguments.get("prompt", ""))
        short = prompt if len(prompt) <= 40 else prompt[:37] + "..."
        where = self.video_path or self.video_url or self.error or ""
        return (
            f"Generation({self.status.value}, {self.backend}, {self.endpoint_id}, "
            f"prompt={short!r}, {where})"
        )

    def _repr_html_(self) -> str:
        return self.html()

    def html(self, *, embed: bool = False) -> str:
        """This run as HTML; `embed=True` puts the video's bytes in the page (e.g. for VS Code,
        which does not serve local files), at the cost of a notebook as large as the video.

        The poster is a small data URI (see `poster_src`); every "$" is kept from turning into
        math (`html_text`)."""
        src = media_src(self.video_path, self.video_url, embed=embed)
        parts = [f"<div class='sora-generation'><b>{html_text(self.status.value)}</b> · "
                 f"{html_text(self.backend)} · <code>{html_text(self.endpoint_id)}</code>"]
        if self.note:
            parts.append(f"<div><i>{html_text(self.note)}</i></div>")
        if src and self.ok:
            poster = poster_src(self.thumbnail_path, self.thumbnail_url, self.video_path)
            poster_attr = f" poster='{html.escape(poster, quote=True)}'" if poster else ""
            parts.append(f"<video src='{html.escape(src, quote=True)}'{poster_attr} controls loop "
                         "muted playsinline preload='metadata' style='max-width:480px;display:block'>"
                         "</video>")
            if src.startswith("../"):
                parts.append("<small>The video is outside the notebook's folder, where Jupyter "
                             "cannot serve it: keep SORA_WIDGETS_HOME beside the notebook, or show "
                             "it with gen.html(embed=True).</small>")
        if self.error:
            parts.append(f"<div style='color:#b00'>{html_text(self.error)}</div>")
        facts = {k: v for k, v in (("request_id", self.request_id), ("total_s", self.total_s),
                                   ("cost_usd", self.cost_usd)) if v is not None}
        parts.append(f"<pre>{html.escape(json.dumps(self.arguments, indent=1, default=str))}</pre>")
        if facts:
            parts.append(f"<small>{html_text(', '.join(f'{k}={v}' for k, v in facts.items()))}</small>")
        parts.append("</div>")
        return "".join(parts)


# --- showing values in notebooks (every view below this module's layer uses these) ------------


def html_text(value: Any) -> str:
    """`value` as HTML text that no notebook turns into math: escaped, each "$" in its own span.

    MathJax (JupyterLab, Notebook 7, Voila) pairs dollar signs within one run of the page's
    text, where `&#36;` is a "$" again; it never pairs them across elements."""
    return html.escape("" if value is None else str(value)).replace("$", "<span>$</span>")


def html_attr(value: Any) -> str:
    """`value` escaped for a quoted attribute (attributes are never typeset)."""
    return html.escape("" if value is None else str(value), quote=True).replace("$", "&#36;")


def shown_value(value: Any) -> Any:
    """`value` as shown to a person: a local file's absolute path relative to the working folder
    (`sora_runs/media/inputs/...`, not a temporary absolute path), recursively in lists."""
    if isinstance(value, list):
        return [shown_value(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value) and Path(value).is_file():
        try:
            return Path(os.path.relpath(value)).as_posix()
        except ValueError:  # another drive (Windows): no relative path exists
            return value
    return value


def media_src(path: str | None, url: str | None, *, embed: bool = False,
              content_type: str = "video/mp4") -> str | None:
    """A browser `src` for a media file: a data URI when embedding, else the local copy relative to
    the kernel's folder, else the remote URL, else a relative path that leaves the folder."""
    local = Path(path) if path else None
    if local is not None and local.is_file():
        if embed:
            return f"data:{content_type};base64,{base64.b64encode(local.read_bytes()).decode()}"
        try:
            return local.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            pass
    if url and url.startswith(("http://", "https://")):
        return url
    if local is not None and local.is_file():
        return Path(os.path.relpath(local.resolve(), Path.cwd().resolve())).as_posix()
    return None


#: the longest side of a poster frame, in pixels: a few kB as a JPEG data URI
POSTER_PX = 320


def poster_src(thumbnail_path: str | None, thumbnail_url: str | None,
               video_path: str | None = None, *, size: int = POSTER_PX) -> str | None:
    """A `poster` that shows in every front end: the local thumbnail (else the video's first
    frame) as a small JPEG data URI, else the thumbnail's web URL, else None.

    Not a relative path: JupyterLab rewrites a relative `src` to its file server but leaves
    `poster` alone, so a relative poster loads the Lab page (a black box until played)."""
    for path, is_video in ((thumbnail_path, False), (video_path, True)):
        if not path:
            continue
        try:
            stat = os.stat(path)
        except OSError:
            continue
        uri = _poster(os.path.realpath(path), stat.st_mtime_ns, stat.st_size, is_video, size)
        if uri:
            return uri
    if thumbnail_url and thumbnail_url.startswith(("http://", "https://")):
        return thumbnail_url
    return None


@functools.lru_cache(maxsize=512)
def _poster(path: str, mtime_ns: int, file_size: int, is_video: bool, size: int) -> str | None:
    """The data URI of one file's poster, made once per version of the file (mtime and size)."""
    image = _first_frame(path) if is_video else _picture(path, size)
    if image is None:
        return None
    image = image.convert("RGB")
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70, optimize=True)
    return f"data:image/jpeg;base64,{base64.b64encode(out.getvalue()).decode()}"


def _picture(path: str, size: int) -> Any:
    """An image file as a PIL image decoded near `size` (JPEG draft mode), or None."""
    from PIL import Image

    try:
        image = Image.open(path)
        image.draft("RGB", (size, size))
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return image


def _first_frame(path: str) -> Any:
    """A video's first frame as a PIL image, or None when it has none that can be read."""
    import av

    try:
        with av.open(path) as container:
            return next(container.decode(video=0)).to_image()
    except (av.FFmpegError, OSError, ValueError, StopIteration):
        return None
