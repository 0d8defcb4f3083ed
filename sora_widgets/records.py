"""Typed records that flow between layers: job status, job events and the finished Generation."""

from __future__ import annotations

import enum
import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal


class JobStatus(str, enum.Enum):
    """Where a generation attempt is in its life; the history's `status` column holds the value."""

    PENDING = "pending"  # row written, nothing sent yet
    QUEUED = "queued"  # accepted by the backend, waiting for a worker
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in _FINAL

    def can_become(self, other: JobStatus) -> bool:
        """True when moving from this status to `other` is a legal step of the lifecycle."""
        return other in _ALLOWED[self]

    def __str__(self) -> str:
        return self.value


_FINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED}
_ALLOWED: dict[JobStatus, set[JobStatus]] = {
    JobStatus.PENDING: {JobStatus.QUEUED, JobStatus.RUNNING, *_FINAL},
    JobStatus.QUEUED: {JobStatus.QUEUED, JobStatus.RUNNING, *_FINAL},
    JobStatus.RUNNING: {JobStatus.RUNNING, *_FINAL},
    JobStatus.COMPLETED: set(),
    JobStatus.FAILED: set(),
    JobStatus.CANCELLED: set(),
}

EventKind = Literal["queued", "running", "completed", "failed", "cancelled"]


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
        return self.kind in ("completed", "failed", "cancelled")


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

    def video_src(self, base: Path | None = None) -> str | None:
        """A `src` for an HTML video: the local copy relative to `base` when possible, else the URL."""
        if self.video_path:
            path = Path(self.video_path)
            if base is not None:
                try:
                    return path.resolve().relative_to(base.resolve()).as_posix()
                except ValueError:
                    pass
            if not path.is_absolute():
                return path.as_posix()
        return self.video_url or (Path(self.video_path).as_uri() if self.video_path else None)

    def _repr_html_(self) -> str:
        esc = html.escape
        src = self.video_src(Path.cwd())
        parts = [f"<div class='sora-generation'><b>{esc(self.status.value)}</b> · {esc(self.backend)}"
                 f" · <code>{esc(self.endpoint_id)}</code>"]
        if self.note:
            parts.append(f"<div><i>{esc(self.note)}</i></div>")
        if src and self.ok:
            parts.append(f"<video src='{esc(src)}' controls loop muted playsinline "
                         "style='max-width:480px;display:block'></video>")
        if self.error:
            parts.append(f"<div style='color:#b00'>{esc(self.error)}</div>")
        facts = {k: v for k, v in (("request_id", self.request_id), ("total_s", self.total_s),
                                   ("cost_usd", self.cost_usd)) if v is not None}
        parts.append(f"<pre>{esc(json.dumps(self.arguments, indent=1, default=str))}</pre>")
        if facts:
            parts.append("<small>" + esc(", ".join(f"{k}={v}" for k, v in facts.items())) + "</small>")
        parts.append("</div>")
        return "".join(parts)
