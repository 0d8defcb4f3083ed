"""A run as code sees it: the record type, how a stored row becomes one, and the lifecycle rules
that stamp times and durations as a run moves from pending to its final status."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict, cast

from .._errors import HistoryError
from ..records import JobStatus
from . import migrations


class HistoryRecord(TypedDict):
    """One generation attempt as `get`, `records`, `find` and iteration return it."""

    id: int
    created_at: datetime
    endpoint_id: str
    backend: str
    status: JobStatus
    request_id: str | None
    arguments: dict[str, Any]
    result: dict[str, Any] | None
    video_url: str | None
    video_path: str | None
    video_id: str | None
    thumbnail_url: str | None
    thumbnail_path: str | None
    spritesheet_url: str | None
    spritesheet_path: str | None
    image_sha256: str | None
    image_path: str | None
    submitted_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    queued_s: float | None
    running_s: float | None
    total_s: float | None
    cost_usd: float | None
    error_type: str | None
    error_message: str | None
    logs: list[str]
    sweep_id: str | None
    rating: int | None
    notes: str | None
    tags: list[str]
    sora_widgets_version: str | None
    fal_client_version: str | None
    media: list[dict[str, Any]]
    owner: str | None
    heartbeat_at: datetime | None
    cell_key: str | None


#: the error type an older release's resume() gave rows it closed before they were sent: such a row
#: does not hold its sweep cell, which may be sent again
CLOSED_UNSENT = "interrupted"
PATH_COLUMNS = ("video_path", "thumbnail_path", "spritesheet_path", "image_path")


def decode(row: sqlite3.Row, *, folder: Path | None = None, path: str | None = None) -> HistoryRecord:
    """A stored row as a record: JSON parsed, times as aware datetimes, status as JobStatus, and
    media paths stored relative to the run `folder` made absolute. A row that cannot be read is a
    HistoryError naming it (and the file at `path`)."""
    try:
        columns = row.keys()  # a sqlite3.Row's own iteration and `in` see values, not names
        record = {name: _value(name, row[name], folder) for name in columns if name not in _JSON_NAMES}
        record |= _renamed(row)
        if isinstance(record.get("media"), list):
            record["media"] = [{**item, "path": absolute(item.get("path"), folder)}
                               if isinstance(item, dict) and item.get("path") else item
                               for item in record["media"]]
        return cast(HistoryRecord, record)
    except (ValueError, TypeError) as exc:
        raise HistoryError(f"Run {row['id']} in {path or 'the history'} cannot be read ({exc}); "
                           "the row looks damaged. Other runs are unaffected.", path=path) from exc


_JSON_NAMES = {"arguments_json": "arguments", "result_json": "result", "media_json": "media"}


def _renamed(row: sqlite3.Row) -> dict[str, Any]:
    """The JSON columns under their record names (arguments, result, media)."""
    columns = row.keys()  # a sqlite3.Row's own `in` sees values, not names
    return {record: json.loads(row[column]) if row[column] is not None else None
            for column, record in _JSON_NAMES.items() if column in columns}


def _value(name: str, value: Any, folder: Path | None) -> Any:
    if name in ("logs", "tags"):
        return json.loads(value)
    if name == "status":
        return JobStatus(value)
    if name in migrations.TIME_COLUMNS and value is not None:
        return datetime.fromisoformat(value)
    if name in PATH_COLUMNS:
        return absolute(value, folder)
    return value


def absolute(path: Any, folder: Path | None) -> Any:
    """A stored media path as a usable one: relative paths are under the run folder (anything
    that is not text, such as a missing value, is returned as it is)."""
    if not isinstance(path, str) or not path or folder is None or os.path.isabs(path):
        return path
    return str(folder / path)


def columns_from_result(result: dict[str, Any]) -> dict[str, Any]:
    """The media columns an endpoint's output fills: video, thumbnail and spritesheet URLs, video_id."""
    found: dict[str, Any] = {}
    for key in ("video", "thumbnail", "spritesheet"):
        media = result.get(key)
        if isinstance(media, dict) and isinstance(media.get("url"), str):
            found[f"{key}_url"] = media["url"]
    if isinstance(result.get("video_id"), str):
        found["video_id"] = result["video_id"]
    return found


_DURATIONS = (("queued_s", "submitted_at", "started_at"), ("running_s", "started_at", "completed_at"),
              ("total_s", "created_at", "completed_at"))


def advance(run_id: int, current: sqlite3.Row, values: dict[str, Any], *, path: str) -> None:
    """Check the status change in `values` against the lifecycle, then add to `values` the times
    it stamps (submitted_at on leaving pending or getting a request id, started_at on running,
    completed_at on a final status) and the durations they complete; given values always win."""
    stamp = migrations.to_iso(migrations.now())
    old = JobStatus(current["status"])
    new = JobStatus(values.get("status", old))
    if new is not old or (old.is_final and "status" in values):
        if not old.can_become(new):
            raise HistoryError(f"Run {run_id} is {old}; it cannot become {new}.", path=path)
        if new is JobStatus.RUNNING and current["started_at"] is None:
            values.setdefault("started_at", stamp)
        if new.is_final:
            values.setdefault("completed_at", stamp)
    leaving_pending = new in (JobStatus.QUEUED, JobStatus.RUNNING) or values.get("request_id")
    if leaving_pending and current["submitted_at"] is None:
        values.setdefault("submitted_at", stamp)
    times = {name: values.get(name) or current[name] for name in ("created_at", "submitted_at", "started_at")}
    times["completed_at"] = values.get("completed_at")
    for duration, begin, end in _DURATIONS:
        if duration not in values and end in values and times[begin] and times[end]:
            seconds = (datetime.fromisoformat(times[end])
                       - datetime.fromisoformat(times[begin])).total_seconds()
            values[duration] = round(max(seconds, 0.0), 6)
