"""Typed records that flow between layers: job status, job events and the finished Generation."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
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
        which does not serve local files), at the cost of a notebook as large as the video."""
        from ._html import generation_html

        return generation_html(self, embed=embed)

