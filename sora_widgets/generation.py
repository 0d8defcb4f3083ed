"""The generation helper's public calls: submit, generate, generate_async and resume.

Each call validates first (nothing is sent or recorded for bad arguments), writes the history row
before anything is sent, and hands the job to the package's job loop (`jobs.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import TYPE_CHECKING, Any

from ._errors import CredentialsError, SchemaError, ValidationError
from .backends import Backend, resolve_backend
from .jobs import EventCallback, Job, live_job
from .records import Generation, JobStatus
from .schema import DEFAULT_ENDPOINT, EndpointSchema, EndpointSpec, load_schema, schema_for

if TYPE_CHECKING:
    from .history import History

__all__ = ["generate", "generate_async", "prepare_arguments", "resume", "submit"]


def _history(history: History | None) -> History:
    from .history import History

    return history if history is not None else History()


def prepare_arguments(schema: EndpointSchema, fields: Mapping[str, Any], history: History
                      ) -> tuple[dict[str, Any], dict[str, Any]]:
    """Turn image inputs (paths, bytes, PIL images, data URIs) into request values, check local
    media against the endpoint's `x-fal` limits, then validate; nothing is sent before this.

    Returns the validated arguments and the history columns describing the input image.
    """
    from pathlib import Path

    from .media import limit_problems, normalize_image

    arguments = dict(fields)
    image_columns: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for field in schema.fields:
        value = arguments.get(field.name)
        if value is None or (isinstance(value, str) and value.startswith(("http://", "https://"))):
            continue
        local: Path | None = None
        if field.kind == "image":
            image = normalize_image(value, media_dir=history.media_dir, field=field.name)
            arguments[field.name] = image.value
            local = image.local_path
            image_columns.setdefault("image_sha256", image.sha256)
            image_columns.setdefault("image_path", str(image.local_path) if image.local_path else None)
        elif field.ui_field in ("video", "audio", "file") and isinstance(value, (str, PathLike)):
            local = Path(value).expanduser() if Path(value).expanduser().is_file() else None
        if local is not None and field.limits:
            kind = "video" if field.ui_field == "video" else "image"
            problems += [(field.name, f"the file {local.name} {problem}")
                         for problem in limit_problems(field.limits, local, kind=kind)]
    if problems:
        raise ValidationError(problems, endpoint_id=schema.endpoint_id)
    return schema.validate(arguments), image_columns


def submit(*, endpoint: EndpointSpec = DEFAULT_ENDPOINT, arguments: Mapping[str, Any] | None = None,
           backend: str | Backend | None = None, history: History | None = None,
           schema: EndpointSchema | None = None, sweep_id: str | None = None,
           on_event: EventCallback | None = None, **fields: Any) -> Job:
    """Validate, record and start a generation; returns a Job at once.

    `endpoint` is an endpoint id, a path to its OpenAPI document or an EndpointSchema. Fields are
    the endpoint's own (`prompt=`, `image_url=`, `duration=` ...) or `arguments={...}`.
    Invalid arguments raise ValidationError and nothing is sent or recorded.
    """
    from .pricing import estimate_cost

    schema = schema or schema_for(endpoint)
    log = _history(history)
    validated, image_columns = prepare_arguments(schema, {**(arguments or {}), **fields}, log)
    chosen = resolve_backend(backend, history=log)
    if getattr(chosen, "key_source", "") is None:
        raise CredentialsError(
            f"The {chosen.name} backend needs a key: set FAL_KEY (or FAL_KEY_ID and "
            "FAL_KEY_SECRET), or use backend=\"preview\" to render offline. Nothing was sent.",
            kind="credentials", endpoint_id=schema.endpoint_id)
    cost = 0.0 if chosen.name == "preview" else estimate_cost(schema, validated)
    history_id = log.start(schema.endpoint_id, chosen.name, validated, sweep_id=sweep_id,
                           cost_usd=cost, **image_columns)
    job = Job(schema=schema, arguments=validated, backend=chosen, history=log, history_id=history_id)
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


def resume(history: History | None = None, *, backend: str | Backend | None = None,
           sweep_id: str | None = None) -> list[Job]:
    """Follow every job the history has not seen finish (e.g. after a kernel restart).

    A row that was submitted is followed by its request id and finished, never sent again; jobs
    this process is already following are returned as they are. A row with no request id, whose
    process is gone, is marked failed. `sweep_id` limits this to one sweep's rows.
    """
    log = _history(history)
    jobs = []
    for row in log.unfinished():
        if sweep_id is not None and row.get("sweep_id") != sweep_id:
            continue
        live = live_job(log, row["id"])
        if live is not None:
            jobs.append(live)
        elif not row.get("request_id"):
            log.finish(row["id"], status=JobStatus.FAILED, error_type="interrupted",
                       error_message="The process stopped before a request id came back. If it "
                       "stopped while sending, the request may still have reached the backend: "
                       "check its dashboard before running it again.")
        else:
            jobs.append(_follow(log, row, backend))
    return jobs


def _follow(log: History, row: Mapping[str, Any], backend: str | Backend | None) -> Job:
    """A Job that follows a submitted row by its request id, on the backend that ran it."""
    try:
        schema = load_schema(row["endpoint_id"])
    except SchemaError:  # an endpoint read from a document this process never saw: no fields needed
        schema = EndpointSchema(endpoint_id=row["endpoint_id"], fields=())
    job = Job(schema=schema, arguments=row["arguments"],
              backend=resolve_backend(backend or row["backend"], history=log), history=log,
              history_id=row["id"], request_id=row["request_id"])
    job.generation.status = JobStatus(row["status"])
    return job.start(follow_only=True)
