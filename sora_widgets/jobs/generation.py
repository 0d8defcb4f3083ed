"""The generation helper's public calls: submit, generate, generate_async and resume.

Each call validates first (nothing is sent or recorded for bad arguments), writes the history row
before anything is sent, and hands the job to a JobRunner's loop (`runner.py`, `job.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, Any

from .._errors import CredentialsError, SchemaError, ValidationError
from .._owner import owner_gone, this_process
from ..backends import Backend, resolve_backend
from ..records import Generation, JobStatus
from ..schema.documents import DEFAULT_ENDPOINT, EndpointSchema, EndpointSpec, load_schema, schema_for
from .job import EventCallback, Job
from .runner import JobRunner, Limit, default_runner, max_jobs

if TYPE_CHECKING:
    from ..history.store import History
    from ..media import NormalizedImage

__all__ = ["PreparedRequest", "generate", "generate_async", "prepare_arguments", "resume", "submit"]


def _history(history: History | None) -> History:
    from ..history.store import History

    return history if history is not None else History()


@dataclass(frozen=True)
class PreparedRequest:
    """A request checked and ready to record: the validated arguments (plain JSON values), the
    history columns describing its input image, and each image field's `NormalizedImage` (what
    the backend is handed, so no image is classified or decoded twice)."""

    arguments: dict[str, Any]
    image_columns: dict[str, Any]
    images: dict[str, NormalizedImage]


def open_runner(runner: JobRunner | None) -> JobRunner:
    """The runner jobs are given to: `runner`, else the default one, whose size comes from
    SORA_WIDGETS_MAX_JOBS (a bad value is refused here); a closed runner is refused too. Both
    before anything is recorded."""
    if runner is None:
        max_jobs()  # the default runner may exist already: the variable is checked all the same
        runner = default_runner()
    if runner.closed:
        raise ValidationError([("runner", f"{runner!r} was closed: make a new JobRunner")])
    return runner


def require_key(backend: Backend, endpoint_id: str) -> None:
    """CredentialsError, before anything is recorded or sent, when `backend` needs a key it lacks."""
    if getattr(backend, "key_source", "") is None:
        raise CredentialsError(
            f"The {backend.name} backend needs a key: set FAL_KEY (or FAL_KEY_ID and "
            "FAL_KEY_SECRET), or use backend=\"preview\" to render offline. Nothing was sent.",
            kind="credentials", endpoint_id=endpoint_id)


def _check_limit(runner: JobRunner, limit: Limit | None) -> None:
    """A limit belongs to the runner whose loop its places live on; another's is refused."""
    if limit is not None and limit.runner is not runner:
        raise ValidationError([("limit", "was made by another JobRunner: use runner.limiter(n) of "
                                         "the runner the job runs on")])


def prepare_arguments(schema: EndpointSchema, fields: Mapping[str, Any], history: History
                      ) -> PreparedRequest:
    """Turn image inputs (paths, bytes, PIL images, data URIs) into request values, check local
    media against the endpoint's `x-fal` limits, then validate; nothing is sent before this.
    Each image input is classified, decoded and stored once, here."""
    from pathlib import Path

    from ..media import classify_image, limit_problems, normalize_image

    arguments = dict(fields)
    image_columns: dict[str, Any] = {}
    images: dict[str, NormalizedImage] = {}
    problems: list[tuple[str, str]] = []
    for field in schema.fields:
        value = arguments.get(field.name)
        if value is None:
            continue
        local: Path | None = None
        size: tuple[int, int] | None = None
        try:
            if field.kind == "image":
                image = normalize_image(value, media_dir=history.media_dir, field=field.name)
                arguments[field.name], images[field.name] = image.value, image
                local, size = image.local_path, image.size
                image_columns.setdefault("image_sha256", image.sha256)
                image_columns.setdefault("image_path", str(image.local_path) if image.local_path else None)
            elif field.ui_field in ("video", "audio", "file") and isinstance(value, (str, PathLike)):
                path = classify_image(value, field=field.name).path
                local = path if path is not None and path.is_file() else None
        except ValidationError as exc:  # every field's problem is reported at once
            problems += exc.errors
            continue
        if local is not None and field.limits:
            kind = "video" if field.ui_field == "video" else "image"
            problems += [(field.name, f"the file {local.name} {problem}")
                         for problem in limit_problems(field.limits, local, kind=kind, size=size)]
    if problems:
        raise ValidationError(problems, endpoint_id=schema.endpoint_id)
    return PreparedRequest(schema.validate(arguments), image_columns, images)


def submit(*, endpoint: EndpointSpec = DEFAULT_ENDPOINT, arguments: Mapping[str, Any] | None = None,
           backend: str | Backend | None = None, history: History | None = None,
           schema: EndpointSchema | None = None, sweep_id: str | None = None,
           cell_key: str | None = None, on_event: EventCallback | None = None,
           runner: JobRunner | None = None, limit: Limit | None = None, **fields: Any) -> Job:
    """Validate, record and start a generation; returns a Job at once.

    `endpoint` is an endpoint id, a path to its OpenAPI document or an EndpointSchema. Fields are
    the endpoint's own (`prompt=`, `image_url=`, `duration=` ...) or `arguments={...}`.
    Invalid arguments raise ValidationError and nothing is sent or recorded. `sweep_id` and
    `cell_key` tie the row to a sweep's cell; `runner` is the JobRunner to run it on (the
    package's default one unless given); `limit` (`runner.limiter(n)`) caps the group of jobs this
    one belongs to, e.g. a sweep's: until it has a place the job waits, pending, unsent.
    """
    from ..pricing import estimate_cost

    if arguments is not None and not isinstance(arguments, Mapping):
        raise ValidationError([("arguments", f"must be a mapping of field names to values, like "
                                             f"{{'prompt': ...}} (got {type(arguments).__name__})")])
    runner = open_runner(runner)
    _check_limit(runner, limit)
    schema = schema or schema_for(endpoint)
    log = _history(history)
    prepared = prepare_arguments(schema, {**(arguments or {}), **fields}, log)
    validated = prepared.arguments
    chosen = resolve_backend(backend, history=log, cache=runner.backends)
    require_key(chosen, schema.endpoint_id)
    cost = 0.0 if chosen.name == "preview" else estimate_cost(schema, validated)
    history_id = log.start(schema.endpoint_id, chosen.name, validated, sweep_id=sweep_id,
                           cost_usd=cost, owner=this_process(), cell_key=cell_key, **prepared.image_columns)
    job = Job(schema=schema, arguments=validated, backend=chosen, history=log, history_id=history_id,
              runner=runner, limit=limit, images=prepared.images)
    job.generation.cost_usd = cost
    if on_event is not None:
        job.on_event(on_event)
    return job.start()


def generate(*, timeout: float | None = None, **kwargs: Any) -> Generation:
    """Run one generation to the end and return it (works in scripts and in running kernels)."""
    return submit(**kwargs).result(timeout)


async def generate_async(**kwargs: Any) -> Generation:
    """Like `generate`, awaited from the caller's own event loop without blocking it."""
    return await submit(**kwargs)


UNKNOWN_MESSAGE = ("The process stopped while sending this request, before its answer came back: "
                   "it may have reached fal (and may run and be billed), or not. It is not sent again "
                   "automatically. Check your fal dashboard before generating it again.")
LEGACY_MESSAGE = ("This run was started by an older sora_widgets, which did not record whether the "
                  "request was being sent when its process stopped: it may have reached fal. It is "
                  "not sent again automatically; check your fal dashboard before generating it again.")


def resume(history: History | None = None, *, backend: str | Backend | None = None,
           sweep_id: str | None = None, runner: JobRunner | None = None,
           limit: Limit | None = None) -> list[Job]:
    """Take over every unfinished job whose process is gone (e.g. after a kernel restart).

    A row with a request id is followed by it and finished, never sent again. A row that was never
    sent (pending) is sent now, once. A row whose process died while sending, before the request id
    came back, ends `unknown` (it may have reached fal) and is not sent again. Rows another live
    process follows are left to it; two processes resuming at once never take the same row. Jobs
    this process already follows are returned as they are. `sweep_id` limits this to one sweep,
    `limit` caps how many of the jobs taken over run at once (a reopened sweep's own cap).
    """
    log = _history(history)
    runner = open_runner(runner)
    _check_limit(runner, limit)
    me = this_process()
    jobs = []
    for row in log.unfinished():
        if sweep_id is not None and row.get("sweep_id") != sweep_id:
            continue
        live = runner.live(log, row["id"])
        if live is not None:
            jobs.append(live)
            continue
        if (not owner_gone(row["owner"], row["heartbeat_at"])
                or not log.claim(row["id"], me, previous=row["owner"])):
            continue  # a live process follows it, or another resume() took it first
        job = _take_over(log, row, backend, runner, limit)
        if job is not None:
            jobs.append(job)
    from ..media import remove_partials

    remove_partials(log.media_dir / "videos")
    return jobs


def _take_over(log: History, row: Mapping[str, Any], backend: str | Backend | None,
               runner: JobRunner, limit: Limit | None) -> Job | None:
    """Follow, send or close a row this process has just claimed."""
    status = JobStatus(row["status"])
    if row.get("request_id"):
        return _job_for(log, row, backend, runner, limit).start(follow_only=True)
    legacy = row["owner"] is None
    if (status is JobStatus.SUBMITTING or legacy) and row["backend"] != "preview":
        log.finish(row["id"], status=JobStatus.UNKNOWN, error_type="lost_answer",
                   error_message=LEGACY_MESSAGE if legacy else UNKNOWN_MESSAGE)
        return None
    if status is JobStatus.SUBMITTING:  # the offline preview bills nothing: render it again
        log.update(row["id"], logs=[*row["logs"], "Sent again after a restart (offline preview)."])
    return _job_for(log, row, backend, runner, limit, status=JobStatus.PENDING).start()


def _job_for(log: History, row: Mapping[str, Any], backend: str | Backend | None, runner: JobRunner,
             limit: Limit | None, *, status: JobStatus | None = None) -> Job:
    """A Job for a stored row, on the backend that ran it."""
    try:
        schema = load_schema(row["endpoint_id"])
    except SchemaError:  # an endpoint read from a document this process never saw: no fields needed
        schema = EndpointSchema(endpoint_id=row["endpoint_id"], fields=())
    job = Job(schema=schema, arguments=row["arguments"],
              backend=resolve_backend(backend or row["backend"], history=log, cache=runner.backends),
              history=log, history_id=row["id"], request_id=row["request_id"],
              status=status or JobStatus(row["status"]), runner=runner, limit=limit)
    job.generation.cost_usd = row["cost_usd"]
    return job
