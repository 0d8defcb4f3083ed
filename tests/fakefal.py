"""A fake fal.ai queue server: HTTPS on 127.0.0.1 with a trustme CA, for tests and benchmarks.

It speaks the queue protocol as fal_client 1.0.3 uses it (submit, status, status stream, result,
cancel) and serves media files. Jobs run in simulated real time (queue, then run with log lines,
then COMPLETED). Every request is counted and recorded; faults are injected per request kind.

    fake = FakeFal().start()          # or the `fakefal` pytest fixture
    fake.configure(queue_s=0.2, run_s=1.0, logs=["a", "b"])
    fake.add_fault("status", Fault.http(503))
    ...
    fake.count("status"), fake.requests, fake.stop()

fal_client reads FAL_RUN_HOST / FAL_QUEUE_RUN_HOST at import: call `fake.environment()` and put
it into os.environ before the first `import fal_client`.
"""

from __future__ import annotations

import collections
import json
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

KINDS = ("submit", "status", "stream", "result", "cancel", "media", "other")

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
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


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

    def environment(self) -> dict[str, str]:
        """The variables that point fal_client (and httpx) at this fake."""
        return {"FAL_RUN_HOST": self.host, "FAL_QUEUE_RUN_HOST": self.host, "SSL_CERT_FILE": self.ca_path}

    def media_url(self, name: str) -> str:
        return f"{self.base_url}/media/{name}"

    # configuration ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget jobs, faults, counts and recorded requests; back to the default job spec."""
        with self._lock:
            self.spec = JobSpec()
            self._next_specs: collections.deque[JobSpec] = collections.deque()
            self._faults: dict[str, collections.deque[Fault]] = collections.defaultdict(collections.deque)
            self._refuse = 0
            self.jobs: dict[str, Job] = {}
            self.requests: list[Recorded] = []
            self.counts: collections.Counter[str] = collections.Counter()
            self.accepted_keys: set[str] | None = None
            self.media: dict[str, bytes] = {"video.mp4": b"\x00\x00\x00\x18ftypmp42fake-video",
                                            "thumbnail.webp": b"RIFF\x00\x00\x00\x00WEBPfake",
                                            "spritesheet.webp": b"RIFF\x00\x00\x00\x00WEBPsprites"}

    def configure(self, **fields: Any) -> JobSpec:
        """Change the default JobSpec for jobs submitted from now on (e.g. run_s=3, error=...)."""
        with self._lock:
            self.spec = replace(self.spec, **_spec_fields(fields))
            return self.spec

    def add_job(self, **fields: Any) -> None:
        """Queue a one-off JobSpec (default spec plus these fields) for the next submission."""
        with self._lock:
            self._next_specs.append(replace(self.spec, **_spec_fields(fields)))

    def add_fault(self, kind: str, fault: Fault, times: int = 1) -> None:
        """Apply `fault` to the next `times` requests of `kind` (one of KINDS)."""
        if kind not in KINDS:
            raise ValueError(f"unknown request kind {kind!r}; use one of {KINDS}")
        with self._lock:
            self._faults[kind].extend([fault] * times)

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

    # used by the handler ---------------------------------------------------------------------

    def _record(self, rec: Recorded) -> Fault | None:
        with self._lock:
            self.requests.append(rec)
            self.counts[rec.kind] += 1
            queue = self._faults.get(rec.kind)
            return queue.popleft() if queue else None

    def _take_refusal(self) -> bool:
        with self._lock:
            if self._refuse > 0:
                self._refuse -= 1
                return True
            return False

    def _new_job(self, app: str, arguments: Any) -> Job:
        with self._lock:
            spec = self._next_specs.popleft() if self._next_specs else self.spec
            job = Job(request_id=str(uuid.uuid4()), app=app, arguments=arguments, spec=spec,
                      created=time.monotonic(), created_wall=datetime.now(timezone.utc))
            self.jobs[job.request_id] = job
            return job

    def _urls(self, app: str, rid: str) -> dict[str, str]:
        parts = app.split("/")
        base = f"{self.base_url}/{'/'.join(parts[:2])}/requests/{rid}"
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
            try:
                tls.close()
            except OSError:
                pass

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
        if kind != "media" and not self._authorised():
            return
        if kind == "stream":
            self._stream(match, fault)
            return
        status, payload, ctype = self._answer(kind, url.path, match, rec)
        if fault is not None and fault.action == "drop_after":
            self._drop()
            return
        if fault is not None and fault.action == "delay":
            time.sleep(fault.seconds)
        self._send(status, payload, ctype)

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
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _kind(method: str, path: str, match: re.Match[str] | None) -> str:
    if method == "GET" and path.startswith("/media/"):
        return "media"
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
