"""A fake fal.ai server: HTTPS on 127.0.0.1 with a trustme CA, for tests and benchmarks.

It speaks the queue protocol as fal_client 1.0.3 uses it (submit, status, status stream, result,
cancel) for any endpoint id, serves media files, fal's Platform API (model search, pricing, cost
estimate under /v1) and per-endpoint OpenAPI documents. Jobs run in simulated real time (queue,
then run with log lines, then COMPLETED). Every request is counted and recorded; faults are
injected per request kind (KINDS).

    fake = FakeFal().start()          # or the `fakefal` pytest fixture
    fake.configure(queue_s=0.2, run_s=1.0, logs=["a", "b"])      # every endpoint's jobs
    fake.configure_endpoint("fal-ai/kling-video/v2.1/standard/image-to-video",
                            result={"video": {"url": fake.media_url("video.mp4")}})  # one endpoint
    fake.add_fault("status", Fault.http(503))
    fake.retire("fal-ai/sora-2/image-to-video")    # submit -> 404 {"detail": "Application 'sora-2' not found"}
    fake.add_model("acme/new-video", display_name="New", unit_price=0.07, openapi=doc)
    fake.set_model_status("acme/new-video", "deprecated")
    fake.add_openapi("acme/other", doc)
    ...
    fake.count("status"), fake.count("platform"), fake.requests, fake.arrivals("submit")
    fake.reset(), fake.stop()

Platform API (shapes from fal's "Platform APIs" OpenAPI v1, see the /v1 section below):
    GET  /v1/models?endpoint_id=..&endpoint_id=..&q=..&category=..&status=..&limit=..&cursor=..&expand=openapi-3.0
         -> {"models": [{"endpoint_id", "metadata": {...}, "openapi"?}], "next_cursor", "has_more"}
    GET  /v1/models/pricing?endpoint_id=..   -> {"prices": [{"endpoint_id", "unit_price", "unit", "currency"}], ...}
    POST /v1/models/pricing/estimate {"estimate_type": "unit_price"|"historical_api_price",
         "endpoints": {id: {"unit_quantity"|"call_quantity": n}}} -> {"estimate_type", "total_cost", "currency"}
    Errors: {"error": {"type": "authorization_error"|"validation_error"|"not_found"|..., "message"}}.
    /v1/models answers without a key (fal: "Authentication: Optional"; set
    `fake.platform_models_require_key = True` to refuse that); pricing and estimate need one (401).
OpenAPI documents: GET /api/openapi/queue/openapi.json?endpoint_id=<id> (no auth; 404 when none).

Hostile media, for download tests: `fake.hostile_media(name, how)` makes `fake.media_url(name)`
misbehave instead of serving `fake.media[name]` (returns that URL):
    "html"                   an HTML page sent as Content-Type: video/mp4
    "huge"                   HUGE_MEDIA_BYTES (300 MB) of zeros announced by Content-Length, streamed
    "endless"                zeros in a chunked body (no Content-Length) that never ends
    "trickle"                a chunked body of one zero byte every 0.1 s that never ends
    ("redirect", location)   302 to `location`: a URL as given ("file:///etc/passwd"), else a media name
The streamed bodies end when the client disconnects, on `fake.reset()` (which also forgets them) and
on `fake.stop()`; `fake.streaming_media()` counts the ones being sent right now.

fal_client reads FAL_RUN_HOST / FAL_QUEUE_RUN_HOST at import: call `fake.environment()` and put
it into os.environ before the first `import fal_client`. It also carries SORA_WIDGETS_FAL_API_URL
(`https://<host>/v1`) and SORA_WIDGETS_FAL_OPENAPI_URL (a template with `{endpoint_id}`).
"""

from __future__ import annotations

import base64
import collections
import contextlib
import functools
import io
import json
import math
import re
import socket
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trustme

KINDS = ("submit", "status", "stream", "result", "cancel", "media", "platform", "openapi", "other")
HOSTILE_MEDIA = ("html", "huge", "endless", "trickle", "redirect")
HUGE_MEDIA_BYTES = 300 << 20
HOSTILE_PAGE = ("<!DOCTYPE html><html><head><title>Sign in</title></head>"
                "<body><h1>Please sign in to view this file</h1></body></html>")

_REQUEST_PATH = re.compile(r"^/(?P<app>.+?)/requests/(?P<rid>[^/]+)(?P<rest>/status/stream|/status|/cancel)?$")


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, applied to the next request of a kind (see FakeFal.add_fault)."""

    action: str  # "http" | "nginx" | "drop" | "drop_after" | "delay" | "break_stream"
    status: int = 503
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()
    seconds: float = 0.0
    after_events: int = 1

    @classmethod
    def http(cls, status: int, body: Any = None, **headers: str) -> Fault:
        """Answer with this status and JSON body (default `{"detail": ...}`) instead of the real one."""
        body = {"detail": f"fake error {status}"} if body is None else body
        return cls("http", status=status, body=body, headers=tuple((k.replace("_", "-"), v) for k, v in headers.items()))

    @classmethod
    def nginx(cls, status: int = 502) -> Fault:
        """An ingress-style HTML error page (fal_client itself retries these)."""
        page = f"<html><head><title>{status} Bad Gateway</title></head><body><center><h1>{status}</h1></center><hr><center>nginx</center></body></html>"
        return cls("nginx", status=status, body=page)

    @classmethod
    def rate_limited(cls, retry_after: float = 0.2) -> Fault:
        """429 with a Retry-After header."""
        return cls("http", status=429, body={"detail": "Too many requests"}, headers=(("Retry-After", f"{retry_after:g}"),))

    @classmethod
    def drop(cls) -> Fault:
        """Read the request, then close the connection without answering; nothing is processed."""
        return cls("drop")

    @classmethod
    def drop_after(cls) -> Fault:
        """Process the request (a submit creates its job), then close without answering."""
        return cls("drop_after")

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Process the request, but wait this long before answering."""
        return cls("delay", seconds=seconds)

    @classmethod
    def break_stream(cls, after_events: int = 1) -> Fault:
        """For `stream`: send this many events, then cut the connection mid-body."""
        return cls("break_stream", after_events=after_events)


@functools.lru_cache(maxsize=1)
def tiny_mp4() -> bytes:
    """The default `video.mp4`: a real, playable H.264 MP4 (64x48, 4 grey frames at 8 fps), so
    that a client that checks what it downloads keeps it."""
    import av
    import numpy as np

    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 60 * i, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


def validation_error(field: str = "prompt", msg: str = "Input should be a valid string", type: str = "string_type") -> tuple[int, dict[str, Any]]:
    """A 422 result with fal's detail list, for `configure(error=...)`."""
    return 422, {"detail": [{"loc": ["body", field], "msg": msg, "type": type,
                             "url": f"https://docs.fal.ai/errors#{type}"}]}


def content_policy_error(field: str = "prompt", categories: tuple[str, ...] = ("violence",)) -> tuple[int, dict[str, Any]]:
    """A 422 result for a moderation refusal."""
    return 422, {"detail": [{"loc": ["body", field], "type": "content_policy_violation",
                             "msg": "The content could not be processed because it was flagged by a content checker.",
                             "url": "https://docs.fal.ai/errors#content_policy_violation",
                             "categories": list(categories)}]}


@dataclass
class JobSpec:
    """How a simulated job behaves: queue and run time, log lines, the result or the error."""

    queue_s: float = 0.2
    run_s: float = 0.5
    queue_position: int = 2
    logs: tuple[str, ...] = ("Starting generation", "Rendering frames", "Encoding video")
    result: dict[str, Any] | None = None  # None: a default Sora-like output pointing at /media
    error: tuple[int, Any] | None = None  # (status, JSON body) returned by the result GET


@dataclass
class Job:
    """A submitted request and its clock."""

    request_id: str
    app: str
    arguments: Any
    spec: JobSpec
    created: float
    created_wall: datetime
    cancelled_at: float | None = None

    def phase(self, now: float) -> tuple[str, float]:
        """(IN_QUEUE | IN_PROGRESS | COMPLETED, seconds since the phase began)."""
        t = now - self.created
        if self.cancelled_at is not None and now >= self.cancelled_at:
            return "COMPLETED", now - self.cancelled_at
        if t < self.spec.queue_s:
            return "IN_QUEUE", t
        if t < self.spec.queue_s + self.spec.run_s:
            return "IN_PROGRESS", t - self.spec.queue_s
        return "COMPLETED", t - self.spec.queue_s - self.spec.run_s

    def log_entries(self, now: float) -> list[dict[str, Any]]:
        """Log lines emitted so far, spread evenly over the run time."""
        n = len(self.spec.logs)
        run_start = self.spec.queue_s
        out = []
        for i, message in enumerate(self.spec.logs):
            at = run_start + (i + 1) / (n + 1) * self.spec.run_s
            if self.cancelled_at is not None and self.created + at > self.cancelled_at:
                break
            if now - self.created >= at:
                stamp = self.created_wall + timedelta(seconds=at)
                out.append({"message": message, "level": "INFO", "source": "user",
                            "timestamp": stamp.isoformat()})
        return out


@dataclass
class Recorded:
    """One request as the fake received it."""

    kind: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    client_port: int = 0  # the client's end of the connection: same port, same connection
    at: float = field(default_factory=time.monotonic)  # when the server read it (its monotonic clock)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


# -- the model catalog (Platform API) and OpenAPI documents ---------------------------------------

APP_NAMESPACES = ("workflows", "comfy")  # fal_client's: an id under one of these has 3 app parts
MODEL_STATUSES = ("active", "deprecated")  # fal's metadata.status enum (Platform APIs v1)
PLATFORM_ERROR_TYPES = ("authorization_error", "validation_error", "not_found", "rate_limited",
                        "server_error", "not_implemented")


def platform_error(status: int, type: str, message: str) -> tuple[int, dict[str, Any]]:
    """A Platform API error: `{"error": {"type": ..., "message": ...}}` (not the queue's detail)."""
    return status, {"error": {"type": type, "message": message}}


@dataclass
class Model:
    """One catalog entry: what GET /v1/models and /v1/models/pricing report for an endpoint."""

    endpoint_id: str
    display_name: str
    category: str = "image-to-video"
    status: str = "active"  # "active" | "deprecated"
    description: str = ""
    unit_price: float | None = None  # None: /v1/models/pricing has no price for it
    unit: str = "second"
    currency: str = "USD"
    call_price: float | None = None  # per call, for historical_api_price (default: unit_price)
    tags: tuple[str, ...] = ()
    date: str = "2025-10-06T00:00:00Z"
    updated_at: str = "2026-08-01T00:00:00Z"

    def entry(self, fake: FakeFal, *, authenticated: bool) -> dict[str, Any]:
        """The model object of a /v1/models answer (without expansions)."""
        return {"endpoint_id": self.endpoint_id, "metadata": {
            "display_name": self.display_name, "category": self.category,
            "description": self.description, "status": self.status, "tags": list(self.tags),
            "updated_at": self.updated_at, "is_favorited": False if authenticated else None,
            "thumbnail_url": fake.media_url("thumbnail.webp"),
            "model_url": f"{fake.base_url}/{self.endpoint_id}", "license_type": "commercial",
            "date": self.date, "highlighted": False, "kind": "inference", "pinned": False}}


def _schema_name(endpoint_id: str) -> str:
    parts = endpoint_id.split("/")
    words = re.split(r"[^A-Za-z0-9]+", "/".join(parts[1:] or parts))
    return "".join(w[:1].upper() + w[1:] for w in words if w) or "Endpoint"


def _file_schema(title: str, *, video: bool) -> dict[str, Any]:
    def nullable(kind: str, text: str) -> dict[str, Any]:
        return {"anyOf": [{"type": kind}, {"type": "null"}], "description": text}
    props: dict[str, Any] = {
        "url": {"title": "Url", "type": "string", "description": "The URL where the file can be downloaded from."},
        "content_type": nullable("string", "The mime type of the file."),
        "file_name": nullable("string", "The name of the file. It will be auto-generated if not provided."),
        "file_size": nullable("integer", "The size of the file in bytes.")}
    if video:
        props.update(width=nullable("integer", "The width of the video"), height=nullable("integer", "The height of the video"),
                     fps=nullable("number", "The FPS of the video"), duration=nullable("number", "The duration of the video"),
                     num_frames=nullable("integer", "The number of frames in the video"))
    return {"title": title, "type": "object", "x-fal-order-properties": list(props), "properties": props,
            "required": ["url"]}


def openapi_document(endpoint_id: str, inputs: dict[str, dict[str, Any]], *, required: tuple[str, ...] = ("prompt",),
                     outputs: dict[str, dict[str, Any]] | None = None, output_required: tuple[str, ...] = ("video",),
                     category: str = "image-to-video") -> dict[str, Any]:
    """A queue OpenAPI document in the shape fal serves per endpoint (`info.x-fal-metadata`,
    `components.schemas.<Name>Input/<Name>Output`, VideoFile/ImageFile, the four queue paths).
    `inputs` / `outputs` map property names to JSON schemas (order kept: x-fal-order-properties);
    the default output is `{"video": VideoFile}`."""
    name = _schema_name(endpoint_id)
    ref = "#/components/schemas/"
    if outputs is None:
        outputs = {"video": {"title": "Video", "description": "The generated video", "allOf": [{"$ref": ref + "VideoFile"}]}}
    props = {k: {"title": k.replace("_", " ").title(), **v} for k, v in inputs.items()}
    out_props = {k: {"title": k.replace("_", " ").title(), **v} for k, v in outputs.items()}
    request_id = {"name": "request_id", "in": "path", "required": True, "schema": {"type": "string", "description": "Request ID"}}
    queue_status = {"200": {"description": "The request status.",
                            "content": {"application/json": {"schema": {"$ref": ref + "QueueStatus"}}}}}
    return {
        "openapi": "3.0.4",
        "info": {"title": f"Queue OpenAPI for {endpoint_id}", "version": "1.0.0",
                 "description": f"The OpenAPI schema for the {endpoint_id} queue.",
                 "x-fal-metadata": {"endpointId": endpoint_id, "category": category,
                                    "playgroundUrl": f"https://fal.ai/models/{endpoint_id}",
                                    "documentationUrl": f"https://fal.ai/models/{endpoint_id}/api"}},
        "components": {
            "securitySchemes": {"apiKeyAuth": {"type": "apiKey", "in": "header", "name": "Authorization",
                                               "description": 'Fal Key, e.g. "Key <key>"'}},
            "schemas": {
                "QueueStatus": {"type": "object", "required": ["status", "request_id"], "properties": {
                    "status": {"type": "string", "enum": ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]},
                    "request_id": {"type": "string", "description": "The request id."},
                    "response_url": {"type": "string"}, "status_url": {"type": "string"},
                    "cancel_url": {"type": "string"}, "logs": {"type": "object", "additionalProperties": True},
                    "metrics": {"type": "object", "additionalProperties": True},
                    "queue_position": {"type": "integer"}}},
                f"{name}Input": {"title": f"{name}Input", "type": "object", "x-fal-order-properties": list(props),
                                 "properties": props, "required": list(required)},
                f"{name}Output": {"title": f"{name}Output", "type": "object", "x-fal-order-properties": list(out_props),
                                  "properties": out_props, "required": list(output_required)},
                "VideoFile": _file_schema("VideoFile", video=True),
                "ImageFile": _file_schema("ImageFile", video=False)}},
        "paths": {
            f"/{endpoint_id}/requests/{{request_id}}/status": {"get": {"parameters": [request_id, {
                "name": "logs", "in": "query", "required": False,
                "schema": {"type": "number", "description": "Whether to include logs (`1`) in the response or not (`0`)."}}],
                "responses": queue_status}},
            f"/{endpoint_id}/requests/{{request_id}}/cancel": {"put": {"parameters": [request_id], "responses": {
                "200": {"description": "The request was cancelled.", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"success": {"type": "boolean"}}}}}}}}},
            f"/{endpoint_id}": {"post": {"requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"{ref}{name}Input"}}}}, "responses": queue_status}},
            f"/{endpoint_id}/requests/{{request_id}}": {"get": {"parameters": [request_id], "responses": {
                "200": {"description": "Result of the request.", "content": {"application/json": {
                    "schema": {"$ref": f"{ref}{name}Output"}}}}}}}},
        "servers": [{"url": "https://queue.fal.run"}],
        "security": [{"apiKeyAuth": []}],
    }


def _enum(values: list[Any], default: Any, text: str, kind: str = "string") -> dict[str, Any]:
    return {"type": kind, "enum": values, "default": default, "description": text}


_PROMPT = {"type": "string", "description": "The text prompt describing the video you want to generate",
           "minLength": 1, "maxLength": 2500}
_IMAGE = {"type": "string", "description": "URL of the image to use as the first frame",
          "examples": ["https://storage.googleapis.com/falserverless/example_inputs/image.png"]}

# endpoint -> (display name, unit price per second or per video, unit, description, inputs of its document)
_ACTIVE_IMAGE_TO_VIDEO: dict[str, tuple[str, float, str, str, dict[str, dict[str, Any]]]] = {
    "fal-ai/kling-video/v2.1/standard/image-to-video": (
        "Kling 2.1 (standard)", 0.05, "second", "Image-to-video with Kling 2.1 Standard.", {
            "prompt": _PROMPT, "image_url": _IMAGE,
            "duration": _enum(["5", "10"], "5", "The duration of the generated video in seconds"),
            "negative_prompt": {"type": "string", "default": "blur, distort, and low quality", "maxLength": 2500},
            "cfg_scale": {"type": "number", "default": 0.5, "minimum": 0, "maximum": 1,
                          "description": "How closely the model sticks to the prompt"}}),
    "fal-ai/veo3.1/image-to-video": (
        "Veo 3.1", 0.40, "second", "Google Veo 3.1: animate an image into a video with sound.", {
            "prompt": {**_PROMPT, "maxLength": 20000}, "image_url": _IMAGE,
            "aspect_ratio": _enum(["auto", "9:16", "16:9"], "auto", "The aspect ratio of the generated video"),
            "duration": _enum(["4s", "6s", "8s"], "8s", "The duration of the generated video"),
            "negative_prompt": {"type": "string", "description": "What to avoid"},
            "resolution": _enum(["720p", "1080p"], "720p", "The resolution of the generated video"),
            "generate_audio": {"type": "boolean", "default": True, "description": "Whether to generate audio"},
            "seed": {"type": "integer", "description": "Random seed"}}),
    "fal-ai/pixverse/v5/image-to-video": (
        "PixVerse v5", 0.30, "video", "PixVerse v5 image-to-video.", {
            "prompt": {**_PROMPT, "maxLength": 2048}, "image_url": _IMAGE,
            "resolution": _enum(["360p", "540p", "720p", "1080p"], "720p", "The resolution of the generated video"),
            "duration": _enum(["5", "8", "10"], "5", "The duration of the generated video in seconds"),
            "negative_prompt": {"type": "string", "default": ""},
            "seed": {"type": "integer"}}),
    "fal-ai/minimax/hailuo-02/standard/image-to-video": (
        "MiniMax Hailuo 02 (standard)", 0.045, "second", "MiniMax Hailuo-02 image-to-video, 768p.", {
            "prompt": {**_PROMPT, "maxLength": 2000}, "image_url": _IMAGE,
            "duration": _enum(["6", "10"], "6", "The duration of the video in seconds"),
            "prompt_optimizer": {"type": "boolean", "default": True, "description": "Whether to use the prompt optimizer"},
            "resolution": _enum(["512P", "768P"], "768P", "The resolution of the generated video")}),
}

# Sora 2: the upstream model is shut down (2026-09-24); fal's status enum has no "removed", so it
# is "deprecated" here. Its queue still works in the fake unless a test calls fake.retire(...).
_SORA_2: dict[str, tuple[str, str, float]] = {
    "fal-ai/sora-2/image-to-video": ("Sora 2", "image-to-video", 0.10),
    "fal-ai/sora-2/image-to-video/pro": ("Sora 2 Pro", "image-to-video", 0.30),
    "fal-ai/sora-2/text-to-video": ("Sora 2", "text-to-video", 0.10),
    "fal-ai/sora-2/text-to-video/pro": ("Sora 2 Pro", "text-to-video", 0.30),
    "fal-ai/sora-2/video-to-video/remix": ("Sora 2 Remix", "video-to-video", 0.10),
}

_BUNDLED_SCHEMAS = Path(__file__).resolve().parents[1] / "sora_widgets" / "schemas"
_doc_cache: dict[str, dict[str, Any] | None] = {}


def _bundled_doc(endpoint_id: str) -> dict[str, Any] | None:
    """The package's bundled OpenAPI document for a Sora 2 endpoint, read once (None if absent)."""
    if endpoint_id not in _doc_cache:
        path = _BUNDLED_SCHEMAS / (endpoint_id.replace("/", "__") + ".json")
        try:
            _doc_cache[endpoint_id] = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            _doc_cache[endpoint_id] = None
    doc = _doc_cache[endpoint_id]
    return json.loads(json.dumps(doc)) if doc is not None else None


def default_catalog() -> tuple[dict[str, Model], dict[str, dict[str, Any]]]:
    """The models and OpenAPI documents a fresh (or reset) fake serves."""
    models: dict[str, Model] = {}
    docs: dict[str, dict[str, Any]] = {}
    for endpoint_id, (name, category, price) in _SORA_2.items():
        models[endpoint_id] = Model(endpoint_id, name, category=category, status="deprecated", unit_price=price,
                                    description=f"OpenAI's {name} ({category.replace('-', ' ')}).",
                                    tags=("pro",) if endpoint_id.endswith("/pro") else ())
        doc = _bundled_doc(endpoint_id)
        if doc is not None:
            docs[endpoint_id] = doc
    for endpoint_id, (name, price, unit, text, inputs) in _ACTIVE_IMAGE_TO_VIDEO.items():
        models[endpoint_id] = Model(endpoint_id, name, unit_price=price, unit=unit, description=text)
        docs[endpoint_id] = openapi_document(endpoint_id, inputs, required=("prompt", "image_url"))
    return models, docs


def _encode_cursor(page: int) -> str:
    return base64.b64encode(str(page).encode()).decode()  # fal's cursor "encodes the page number": "Mg==" is 2


def _decode_cursor(cursor: str) -> int | None:
    try:
        page = int(base64.b64decode(cursor.encode(), validate=True).decode())
    except (ValueError, UnicodeDecodeError):
        return None
    return page if page >= 1 else None


def _multi(query: dict[str, list[str]], name: str) -> list[str]:
    """A repeatable query parameter, also accepting comma-separated values; order kept, no repeats."""
    out: list[str] = []
    for value in query.get(name, []):
        for item in value.split(","):
            item = item.strip()
            if item and item not in out:
                out.append(item)
    return out


def _words(text: str) -> str:
    return " ".join(re.split(r"[^a-z0-9]+", text.lower()))


class FakeFal:
    """The control object: start/stop the server, configure jobs, inject faults, read counts."""

    def __init__(self, *, no_delay: bool = False) -> None:
        """`no_delay=True` sets TCP_NODELAY on each connection: otherwise every answer (headers and
        body written apart) waits ~40 ms on Nagle's algorithm and delayed ACKs, which a benchmark
        of client overhead must not measure."""
        self.no_delay = no_delay
        self._ca = trustme.CA()
        cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self._ssl)
        self._dir = tempfile.TemporaryDirectory(prefix="fakefal-")
        self.ca_path = str(Path(self._dir.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_path)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._epoch = 0  # reset() counts up: hostile bodies begun before a reset end
        self._streaming = 0  # hostile bodies being sent now
        self.reset()

    # lifecycle -------------------------------------------------------------------------------

    def start(self) -> FakeFal:
        """Listen on a free port of 127.0.0.1 in a background thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler, fake=self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fakefal", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, end open streams and remove the CA file."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._dir.cleanup()

    def __enter__(self) -> FakeFal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return self._server.server_address[1]

    @property
    def host(self) -> str:
        """host:port, the value for FAL_RUN_HOST and FAL_QUEUE_RUN_HOST."""
        return f"127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"https://{self.host}"

    @property
    def api_url(self) -> str:
        """The Platform API base, standing for https://api.fal.ai/v1."""
        return f"{self.base_url}/v1"

    @property
    def openapi_url_template(self) -> str:
        """Where the fake serves OpenAPI documents, with a literal `{endpoint_id}` to fill in."""
        return f"{self.base_url}/api/openapi/queue/openapi.json?endpoint_id={{endpoint_id}}"

    def environment(self) -> dict[str, str]:
        """The variables that point fal_client (and httpx), and sora_widgets' Platform API and
        OpenAPI look-ups, at this fake."""
        return {"FAL_RUN_HOST": self.host, "FAL_QUEUE_RUN_HOST": self.host, "SSL_CERT_FILE": self.ca_path,
                "SORA_WIDGETS_FAL_API_URL": self.api_url,
                "SORA_WIDGETS_FAL_OPENAPI_URL": self.openapi_url_template}

    def media_url(self, name: str) -> str:
        return f"{self.base_url}/media/{name}"

    # configuration ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget jobs, faults, counts and recorded requests; back to the default job spec, no
        per-endpoint specs, nothing retired, and the default model catalog and documents."""
        with self._lock:
            self._epoch += 1
            self._hostile: dict[str, str | tuple[str, str]] = {}
            self.spec = JobSpec()
            self._next_specs: collections.deque[tuple[JobSpec, frozenset[str]]] = collections.deque()
            self._endpoint_fields: dict[str, dict[str, Any]] = {}
            self._retired: dict[str, tuple[int, Any]] = {}
            self.models, self.openapi_docs = default_catalog()
            self.platform_models_require_key = False  # fal: GET /v1/models works without a key
            self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
            self._refuse = 0
            self.jobs: dict[str, Job] = {}
            self.requests: list[Recorded] = []
            self.counts: collections.Counter[str] = collections.Counter()
            self.accepted_keys: set[str] | None = None
            self.media: dict[str, bytes] = {"video.mp4": tiny_mp4(),
                                            "thumbnail.webp": b"RIFF\x00\x00\x00\x00WEBPfake",
                                            "spritesheet.webp": b"RIFF\x00\x00\x00\x00WEBPsprites"}

    def configure(self, **fields: Any) -> JobSpec:
        """Change the default JobSpec for jobs submitted from now on (e.g. run_s=3, error=...)."""
        with self._lock:
            self.spec = replace(self.spec, **_spec_fields(fields))
            return self.spec

    def add_job(self, **fields: Any) -> None:
        """Queue a one-off JobSpec (default spec plus these fields) for the next submission (to
        any endpoint; a configure_endpoint() field it does not name still applies)."""
        with self._lock:
            self._next_specs.append((replace(self.spec, **_spec_fields(fields)), frozenset(fields)))

    def configure_endpoint(self, endpoint_id: str, **fields: Any) -> JobSpec:
        """JobSpec fields for jobs submitted to this one endpoint (exact id), over the default
        spec: e.g. `result={"videos": [...]}` or `error=validation_error(...)`. Calling it again
        adds to the fields; `reset()` forgets them. Returns the spec such a job gets now."""
        JobSpec(**_spec_fields(dict(fields)))  # unknown field names fail here
        with self._lock:
            merged = {**self._endpoint_fields.get(endpoint_id, {}), **_spec_fields(fields)}
            self._endpoint_fields[endpoint_id] = merged
            return replace(self.spec, **merged)

    def retire(self, *endpoint_ids: str, status: int = 404, detail: Any = None) -> None:
        """Make a submit to these endpoints (or to any id below one, e.g. "fal-ai/sora-2") answer
        `status` with `{"detail": detail}`; no job is created. The default detail is fal's
        "Application '<alias>' not found". Jobs already submitted keep working."""
        with self._lock:
            for endpoint_id in endpoint_ids:
                endpoint_id = endpoint_id.strip("/")
                text = detail if detail is not None else f"Application '{_app_alias(endpoint_id)}' not found"
                self._retired[endpoint_id] = (status, {"detail": text})

    def unretire(self, *endpoint_ids: str) -> None:
        """Undo retire() for these ids."""
        with self._lock:
            for endpoint_id in endpoint_ids:
                self._retired.pop(endpoint_id.strip("/"), None)

    def add_model(self, endpoint_id: str, *, display_name: str | None = None, category: str = "image-to-video",
                  status: str = "active", description: str = "", unit_price: float | None = None,
                  unit: str = "second", openapi: dict[str, Any] | None = None, currency: str = "USD",
                  call_price: float | None = None, tags: tuple[str, ...] = ()) -> Model:
        """Add (or replace) a catalog entry for the Platform API; `unit_price` None means no
        price; `openapi` also registers its document (see add_openapi)."""
        if status not in MODEL_STATUSES:
            raise ValueError(f"fal's model status is one of {MODEL_STATUSES}, not {status!r}")
        model = Model(endpoint_id, display_name or endpoint_id.rsplit("/", 1)[-1], category=category, status=status,
                      description=description, unit_price=unit_price, unit=unit, currency=currency,
                      call_price=call_price, tags=tuple(tags))
        with self._lock:
            self.models[endpoint_id] = model
            if openapi is not None:
                self.openapi_docs[endpoint_id] = openapi
        return model

    def remove_model(self, endpoint_id: str) -> None:
        """Drop a catalog entry (its OpenAPI document stays; add_openapi(id, None) drops that)."""
        with self._lock:
            self.models.pop(endpoint_id, None)

    def set_model_status(self, endpoint_id: str, status: str) -> None:
        """Change a catalog entry's metadata.status ("active" or "deprecated")."""
        if status not in MODEL_STATUSES:
            raise ValueError(f"fal's model status is one of {MODEL_STATUSES}, not {status!r}")
        with self._lock:
            self.models[endpoint_id] = replace(self.models[endpoint_id], status=status)

    def add_openapi(self, endpoint_id: str, doc: dict[str, Any] | None) -> None:
        """Serve `doc` at /api/openapi/queue/openapi.json?endpoint_id=<id> (None: serve a 404)."""
        with self._lock:
            if doc is None:
                self.openapi_docs.pop(endpoint_id, None)
            else:
                self.openapi_docs[endpoint_id] = doc

    def add_fault(self, kind: str, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` requests of `kind` (one of KINDS)."""
        if kind not in KINDS:
            raise ValueError(f"unknown request kind {kind!r}; use one of {KINDS}")
        with self._lock:
            self._faults[kind].extend([fault] * times)

    def clear_faults(self) -> None:
        """Forget the faults not used yet (e.g. an outage ends), keeping jobs and counts."""
        with self._lock:
            for queue in self._faults.values():
                queue.clear()

    def hostile_media(self, name: str, how: str | tuple[str, str]) -> str:
        """Make media_url(name) misbehave as `how` says (see the module docstring); returns that URL."""
        kind = how[0] if isinstance(how, tuple) else how
        if kind not in HOSTILE_MEDIA or (kind == "redirect") != (isinstance(how, tuple) and len(how) == 2):
            raise ValueError(f"hostile media is one of {HOSTILE_MEDIA[:-1]} or ('redirect', location), not {how!r}")
        with self._lock:
            self._hostile[name] = how
        return self.media_url(name)

    def streaming_media(self) -> int:
        """How many hostile media bodies ("huge", "endless", "trickle") are being sent right now."""
        with self._lock:
            return self._streaming

    def refuse_connections(self, times: int = 1) -> None:
        """Close the next `times` new connections before the TLS handshake (a connect error)."""
        with self._lock:
            self._refuse += times

    # inspection ------------------------------------------------------------------------------

    def count(self, kind: str | None = None) -> int:
        """Requests received of one kind, or of all kinds."""
        with self._lock:
            return sum(self.counts.values()) if kind is None else self.counts[kind]

    def of_kind(self, kind: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.kind == kind]

    def arrivals(self, kind: str) -> list[float]:
        """When each request of `kind` arrived, in order, by the server's clock (time.monotonic):
        gaps between them show a client's waits without timing the client."""
        return [r.at for r in self.of_kind(kind)]

    # used by the handler ---------------------------------------------------------------------

    def _record(self, rec: Recorded) -> Fault | None:
        with self._lock:
            self.requests.append(rec)
            self.counts[rec.kind] += 1
            queue = self._faults.get(rec.kind)
            return queue.popleft() if queue else None

    def _hostile_for(self, name: str) -> tuple[str | tuple[str, str], int] | None:
        """How media `name` misbehaves and the reset epoch it was asked in; None when it does not."""
        with self._lock:
            how = self._hostile.get(name)
            return None if how is None else (how, self._epoch)

    def _serving(self, epoch: int) -> bool:
        """Whether a hostile body begun in `epoch` may go on: no stop() and no reset() since."""
        return not self._stopping.is_set() and self._epoch == epoch

    def _count_stream(self, delta: int) -> None:
        with self._lock:
            self._streaming += delta

    def _take_refusal(self) -> bool:
        with self._lock:
            if self._refuse > 0:
                self._refuse -= 1
                return True
            return False

    def _new_job(self, app: str, arguments: Any) -> Job:
        with self._lock:
            overlay = self._endpoint_fields.get(app, {})
            if self._next_specs:
                one_off, named = self._next_specs.popleft()
                spec = replace(one_off, **{k: v for k, v in overlay.items() if k not in named})
            else:
                spec = replace(self.spec, **overlay) if overlay else self.spec
            job = Job(request_id=str(uuid.uuid4()), app=app, arguments=arguments, spec=spec,
                      created=time.monotonic(), created_wall=datetime.now(timezone.utc))
            self.jobs[job.request_id] = job
            return job

    def _retired_answer(self, app: str) -> tuple[int, Any] | None:
        with self._lock:
            for endpoint_id, answer in self._retired.items():
                if app == endpoint_id or app.startswith(endpoint_id + "/"):
                    return answer
            return None

    def _urls(self, app: str, rid: str) -> dict[str, str]:
        parts = app.split("/")
        keep = 3 if parts[0] in APP_NAMESPACES else 2
        base = f"{self.base_url}/{'/'.join(parts[:keep])}/requests/{rid}"
        return {"response_url": base, "status_url": base + "/status", "cancel_url": base + "/cancel"}

    def _status(self, job: Job, with_logs: bool, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        phase, _ = job.phase(now)
        out: dict[str, Any] = {"status": phase, "request_id": job.request_id, **self._urls(job.app, job.request_id)}
        if phase == "IN_QUEUE":
            frac = (now - job.created) / job.spec.queue_s if job.spec.queue_s else 1.0
            out["queue_position"] = min(job.spec.queue_position, int((job.spec.queue_position + 1) * (1 - frac)))
            return out
        out["logs"] = job.log_entries(now) if with_logs else None
        if phase == "COMPLETED":
            out["metrics"] = {"inference_time": job.spec.run_s}
            if job.spec.error is not None or job.cancelled_at is not None:
                out["error"] = "Request was cancelled" if job.cancelled_at is not None else "Request failed"
                out["error_type"] = "client_cancelled" if job.cancelled_at is not None else "request_error"
        return out

    def _result(self, job: Job) -> tuple[int, Any]:
        if job.cancelled_at is not None:
            return 400, {"detail": "Request was cancelled", "error_type": "client_cancelled"}
        if job.spec.error is not None:
            return job.spec.error
        if job.spec.result is not None:
            return 200, job.spec.result
        video = self.media["video.mp4"]
        return 200, {
            "video": {"url": self.media_url("video.mp4"), "content_type": "video/mp4", "file_name": "video.mp4",
                      "file_size": len(video), "width": 1280, "height": 720, "fps": 30.0,
                      "duration": 4.0, "num_frames": 120},
            "video_id": f"video_{job.request_id[:8]}",
            "thumbnail": {"url": self.media_url("thumbnail.webp"), "content_type": "image/webp"},
            "spritesheet": {"url": self.media_url("spritesheet.webp"), "content_type": "image/webp"},
        }


    # the Platform API (/v1) and OpenAPI documents -------------------------------------------------

    def _platform(self, method: str, path: str, query: dict[str, list[str]], body: bytes,
                  authenticated: bool) -> tuple[int, Any]:
        route = path.rstrip("/")
        routes = {"/v1/models": ("GET", self._models), "/v1/models/pricing": ("GET", self._pricing),
                  "/v1/models/pricing/estimate": ("POST", self._estimate)}
        if route not in routes:
            return platform_error(404, "not_found", f"No route {path}")
        allowed, handler = routes[route]
        if method != allowed:
            return platform_error(405, "validation_error", f"{method} is not allowed on {path}; use {allowed}")
        return handler(query, body, authenticated)

    def _models(self, query: dict[str, list[str]], body: bytes, authenticated: bool) -> tuple[int, Any]:
        ids = _multi(query, "endpoint_id")
        if len(ids) > 50:
            return platform_error(400, "validation_error", "endpoint_id accepts 1-50 values")
        text = (query.get("q") or query.get("search") or [""])[0]
        category = (query.get("category") or [""])[0]
        status = (query.get("status") or [""])[0]
        if status and status not in MODEL_STATUSES:
            return platform_error(400, "validation_error", f"status must be one of {', '.join(MODEL_STATUSES)}")
        try:
            limit = int((query.get("limit") or ["50"])[0])
        except ValueError:
            limit = 0
        if limit < 1:
            return platform_error(400, "validation_error", "limit must be an integer >= 1")
        page = 1
        if query.get("cursor"):
            decoded = _decode_cursor(query["cursor"][0])
            if decoded is None:
                return platform_error(400, "validation_error", "Invalid cursor")
            page = decoded
        expand = _multi(query, "expand")
        words = _words(text).split()
        with self._lock:
            found = [m for m in self.models.values()
                     if (not ids or m.endpoint_id in ids)
                     and (not category or m.category == category)
                     and (not status or m.status == status)
                     and all(w in _words(" ".join((m.endpoint_id, m.display_name, m.description, m.category, *m.tags)))
                             for w in words)]
            if ids:  # find mode answers in the order asked
                found.sort(key=lambda m: ids.index(m.endpoint_id))
            start = (page - 1) * limit
            chunk = found[start:start + limit]
            has_more = start + limit < len(found)
            out = []
            for m in chunk:
                entry = m.entry(self, authenticated=authenticated)
                if "openapi-3.0" in expand:
                    doc = self.openapi_docs.get(m.endpoint_id)
                    entry["openapi"] = json.loads(json.dumps(doc)) if doc is not None else {"error": {
                        "code": "expansion_failed", "message": f"No OpenAPI schema for {m.endpoint_id}"}}
                if "enterprise_status" in expand:
                    entry["enterprise_status"] = "ready" if m.status == "active" else "pending"
                out.append(entry)
        return 200, {"models": out, "next_cursor": _encode_cursor(page + 1) if has_more else None, "has_more": has_more}

    def _pricing(self, query: dict[str, list[str]], body: bytes, authenticated: bool) -> tuple[int, Any]:
        ids = _multi(query, "endpoint_id")
        if not ids:
            return platform_error(400, "validation_error", "endpoint_id is required")
        if len(ids) > 50:
            return platform_error(400, "validation_error", "endpoint_id accepts 1-50 values")
        with self._lock:
            prices = [{"endpoint_id": m.endpoint_id, "unit_price": m.unit_price, "unit": m.unit, "currency": m.currency}
                      for m in (self.models.get(i) for i in ids) if m is not None and m.unit_price is not None]
        return 200, {"prices": prices, "next_cursor": None, "has_more": False}

    def _estimate(self, query: dict[str, list[str]], body: bytes, authenticated: bool) -> tuple[int, Any]:
        try:
            request = json.loads(body or b"null")
        except ValueError:
            return platform_error(400, "validation_error", "Body is not JSON")
        if not isinstance(request, dict):
            return platform_error(400, "validation_error", "Body must be a JSON object")
        kind = request.get("estimate_type")
        quantity_key = {"historical_api_price": "call_quantity", "unit_price": "unit_quantity"}.get(kind)
        if quantity_key is None:
            return platform_error(400, "validation_error", "estimate_type must be historical_api_price or unit_price")
        endpoints = request.get("endpoints")
        if not isinstance(endpoints, dict) or not endpoints:
            return platform_error(400, "validation_error", "endpoints must map endpoint ids to quantities")
        total = 0.0
        currency = "USD"
        with self._lock:
            for endpoint_id, item in endpoints.items():
                qty = item.get(quantity_key) if isinstance(item, dict) else None
                ok = (isinstance(qty, int) and not isinstance(qty, bool) and qty >= 1) if kind == "historical_api_price" \
                    else (isinstance(qty, (int, float)) and not isinstance(qty, bool) and math.isfinite(qty) and qty >= 1e-6)
                if not ok:
                    return platform_error(400, "validation_error",
                                          f"endpoints[{endpoint_id!r}].{quantity_key} is missing or out of range")
                model = self.models.get(endpoint_id)
                price = None if model is None else (
                    model.call_price if kind == "historical_api_price" and model.call_price is not None else model.unit_price)
                if model is None or price is None:
                    return platform_error(404, "not_found", f"No pricing found for endpoint '{endpoint_id}'")
                total += price * qty
                currency = model.currency
        return 200, {"estimate_type": kind, "total_cost": round(total, 6), "currency": currency}

    def _openapi(self, method: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        if method != "GET":
            return 405, {"detail": "Method not allowed"}
        endpoint_id = (query.get("endpoint_id") or [""])[0].strip("/")
        if not endpoint_id:
            return 400, {"detail": "endpoint_id is required"}
        with self._lock:
            doc = self.openapi_docs.get(endpoint_id)
        if doc is None:
            return 404, {"detail": f"No OpenAPI schema found for endpoint '{endpoint_id}'"}
        return 200, doc


def _app_alias(endpoint_id: str) -> str:
    parts = endpoint_id.split("/")
    if parts[0] in APP_NAMESPACES and len(parts) > 2:
        return parts[2]
    return parts[1] if len(parts) > 1 else parts[0]


def _spec_fields(fields: dict[str, Any]) -> dict[str, Any]:
    if "logs" in fields:
        fields["logs"] = tuple(fields["logs"])
    return fields


class _Server(ThreadingHTTPServer):
    """A threading server whose connections are wrapped in TLS in their own thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # socketserver's 5 drops SYNs when many jobs connect at once (1 s stalls)

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *, fake: FakeFal) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.fake._take_refusal():
            request.close()
            return
        if self.fake.no_delay:
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.fake._ssl.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            with contextlib.suppress(OSError):
                tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Client disconnects are part of the tests; stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default per-request stderr line."""

    @property
    def fake(self) -> FakeFal:
        return self.server.fake

    def do_POST(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        match = _REQUEST_PATH.match(url.path)
        kind = _kind(self.command, url.path, match)
        rec = Recorded(kind=kind, method=self.command, path=url.path, query=parse_qs(url.query),
                       headers={k.lower(): v for k, v in self.headers.items()}, body=body,
                       client_port=self.client_address[1])
        fault = self.fake._record(rec)
        if fault is not None and fault.action == "drop":
            self._drop()
            return
        if fault is not None and fault.action in ("http", "nginx"):
            self._send_fault(fault)
            return
        if kind == "media" and self._send_hostile(url.path.removeprefix("/media/")):
            return
        if kind == "platform":
            authenticated = self._platform_authorised(url.path)
            if authenticated is None:
                return
            status, payload = self.fake._platform(self.command, url.path, rec.query, body, authenticated)
            self._finish(status, payload, "application/json", fault)
            return
        if kind == "openapi":
            status, payload = self.fake._openapi(self.command, rec.query)
            self._finish(status, payload, "application/json", fault)
            return
        if kind != "media" and not self._authorised():
            return
        if kind == "stream":
            self._stream(match, fault)
            return
        status, payload, ctype = self._answer(kind, url.path, match, rec)
        self._finish(status, payload, ctype, fault)

    def _finish(self, status: int, payload: Any, ctype: str, fault: Fault | None) -> None:
        if fault is not None and fault.action == "drop_after":
            self._drop()
            return
        if fault is not None and fault.action == "delay":
            time.sleep(fault.seconds)
        self._send(status, payload, ctype)

    def _platform_authorised(self, path: str) -> bool | None:
        """True with a good key, False with none where fal allows that (/v1/models), else None
        after answering 401 in the Platform API's error shape."""
        auth = self.headers.get("Authorization")
        if auth is None:
            if path.rstrip("/") == "/v1/models" and not self.fake.platform_models_require_key:
                return False
            self._send(*platform_error(401, "authorization_error", "Authentication required"))
            return None
        scheme, _, key = auth.partition(" ")
        if scheme != "Key" or not key or (self.fake.accepted_keys is not None and key not in self.fake.accepted_keys):
            self._send(*platform_error(401, "authorization_error", "Invalid API key"))
            return None
        return True

    def _authorised(self) -> bool:
        auth = self.headers.get("Authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme != "Key" or not key:
            self._send(401, {"detail": "No authorization header"})
            return False
        if self.fake.accepted_keys is not None and key not in self.fake.accepted_keys:
            self._send(401, {"detail": "Invalid key"})
            return False
        return True

    def _answer(self, kind: str, path: str, match: re.Match[str] | None, rec: Recorded) -> tuple[int, Any, str]:
        fake = self.fake
        if kind == "submit":
            retired = fake._retired_answer(path.strip("/"))
            if retired is not None:
                return retired[0], retired[1], "application/json"
            try:
                arguments = json.loads(rec.body or b"{}")
            except ValueError:
                return 400, {"detail": "Body is not JSON"}, "application/json"
            job = fake._new_job(path.strip("/"), arguments)
            return 200, {"request_id": job.request_id, **fake._urls(job.app, job.request_id),
                         "queue_position": job.spec.queue_position}, "application/json"
        if kind == "media":
            name = path.removeprefix("/media/")
            data = fake.media.get(name)
            if data is None:
                return 404, {"detail": "Not found"}, "application/json"
            ctype = "video/mp4" if name.endswith(".mp4") else "image/webp" if name.endswith(".webp") else "application/octet-stream"
            return 200, data, ctype
        job = fake.jobs.get(match["rid"]) if match else None
        if job is None:
            return 404, {"detail": "Request not found"}, "application/json"
        if kind == "status":
            logs = rec.query.get("logs", ["0"])[0].lower() in ("1", "true")
            return 200, fake._status(job, logs), "application/json"
        if kind == "cancel":
            phase, _ = job.phase(time.monotonic())
            if phase == "COMPLETED":
                return 400, {"status": "ALREADY_COMPLETED"}, "application/json"
            job.cancelled_at = time.monotonic()
            return 202, {"status": "CANCELLATION_REQUESTED"}, "application/json"
        if kind == "result":
            if job.phase(time.monotonic())[0] != "COMPLETED":
                return 400, {"detail": "Request is still in progress"}, "application/json"
            status, payload = fake._result(job)
            return status, payload, "application/json"
        return 404, {"detail": "Not found"}, "application/json"

    def _stream(self, match: re.Match[str] | None, fault: Fault | None) -> None:
        """Server-sent events, one per status change, in a chunked body that ends after COMPLETED;
        the connection is kept alive for the next request, as fal's HTTP/1.1 and HTTP/2 ones are."""
        job = self.fake.jobs.get(match["rid"]) if match else None
        if job is None:
            self._send(404, {"detail": "Request not found"})
            return
        logs = parse_qs(urlsplit(self.path).query).get("logs", ["0"])[0].lower() in ("1", "true")
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        last: dict[str, Any] | None = None
        sent = 0
        try:
            while not self.fake._stopping.is_set():
                status = self.fake._status(job, logs)
                if status != last:
                    if fault is not None and fault.action == "break_stream" and sent >= fault.after_events:
                        self.wfile.write(b"5\r\nda")  # half a chunk, then the connection goes away
                        self.wfile.flush()
                        self._drop()
                        return
                    self._chunk(f"data: {json.dumps(status)}\n\n".encode())
                    sent += 1
                    last = status
                    if status["status"] == "COMPLETED":
                        break
                time.sleep(0.02)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self.close_connection = self.fake._stopping.is_set()
        except OSError:
            self.close_connection = True

    def _send_hostile(self, name: str) -> bool:
        """Answer a media request set up by FakeFal.hostile_media(); False for ordinary media."""
        found = self.fake._hostile_for(name)
        if found is None:
            return False
        how, epoch = found
        if isinstance(how, tuple):
            target = how[1]
            location = target if ":" in target or target.startswith("/") else self.fake.media_url(target)
            self._send(302, b"", "text/plain", {"Location": location})
        elif how == "html":
            self._send(200, HOSTILE_PAGE, "video/mp4")
        else:
            self._send_zeros(how, epoch)
        return True

    def _send_zeros(self, how: str, epoch: int) -> None:
        """Zeros as `how` says, until the body is done, the client leaves, or reset() or stop()."""
        self.close_connection = True  # a cut body cannot be followed by another answer
        self.connection.settimeout(5)  # a client that neither reads nor leaves frees the thread too
        block = b"\0" * (1 if how == "trickle" else 1 << 16)
        sent = 0
        self.fake._count_stream(+1)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            if how == "huge":
                self.send_header("Content-Length", str(HUGE_MEDIA_BYTES))
            else:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            while self.fake._serving(epoch) and (how != "huge" or sent < HUGE_MEDIA_BYTES):
                if how == "huge":
                    self.wfile.write(block[:HUGE_MEDIA_BYTES - sent])
                else:
                    self._chunk(block)
                sent += len(block)
                if how == "trickle":
                    self.fake._stopping.wait(0.1)
        except OSError:  # the client went away (BrokenPipe, ConnectionReset, a TLS EOF) or stalled
            pass
        finally:
            self.fake._count_stream(-1)

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _send_fault(self, fault: Fault) -> None:
        if fault.action == "nginx":
            self._send(fault.status, fault.body, "text/html")
            return
        headers = dict(fault.headers)
        self._send(fault.status, fault.body, "application/json", headers)

    def _send(self, status: int, payload: Any, ctype: str = "application/json", headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else (
            payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            if isinstance(payload, dict) and payload.get("error_type"):
                self.send_header("X-Fal-Error-Type", str(payload["error_type"]))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _kind(method: str, path: str, match: re.Match[str] | None) -> str:
    if method == "GET" and path.startswith("/media/"):
        return "media"
    if path == "/v1" or path.startswith("/v1/"):
        return "platform"
    if path == "/api/openapi/queue/openapi.json":
        return "openapi"
    if match is None:
        return "submit" if method == "POST" else "other"
    rest = match["rest"] or ""
    if method == "GET" and rest == "/status/stream":
        return "stream"
    if method == "GET" and rest == "/status":
        return "status"
    if method == "PUT" and rest == "/cancel":
        return "cancel"
    if method == "GET" and rest == "":
        return "result"
    return "other"
