"""Every lower-level exception a backend can meet ends up in the package's error tree.

The fal backend catches `LOWER_LEVEL_ERRORS` and explains each through `translate`. Walked here,
httpx's way: every error class httpx (and httpx-sse) and fal_client define, the OSErrors below
them (a raw `ssl.SSLError`, a reset socket, our own time bound) and answers that cannot be read,
each for a call that may be retried (the result) and for the one that must not be (the submit);
then fal's HTTP answers by status code, with realistic bodies that echo the key back. Each must
become a GenerationError with a kind from ERROR_KINDS and a message without the key. The preview
backend's own failures are checked through its API, the fal ones that need a server through the
fake one.
"""

from __future__ import annotations

import asyncio
import errno
import json
import ssl
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import fal_client.auth
import fal_client.client
import httpx
import httpx_sse
import pytest
from fakefal import FakeFal, Fault, content_policy_error, validation_error
from fal_client.auth import MissingCredentialsError
from fal_client.client import FalClientError, FalClientHTTPError, FalClientTimeoutError, RealtimeError

from sora_widgets._errors import ERROR_KINDS, CredentialsError, GenerationError, SoraWidgetsError
from sora_widgets.backends._fal_errors import LOWER_LEVEL_ERRORS, Context, translate
from sora_widgets.backends.fal import FalBackend
from sora_widgets.backends.preview import PreviewBackend

APP = "fal-ai/sora-2/image-to-video"
T2V = "fal-ai/sora-2/text-to-video"
KEY = "fal-key-id-4242:VERY-SECRET-echoed-back-0042"
ARGS = {"prompt": "a lighthouse at dusk", "image_url": "https://example.com/frame.png", "duration": 4}
ECHO = f"the key {KEY} was refused"
REQUEST = httpx.Request("POST", f"https://queue.fal.run/{APP}")
NGINX_502 = ("<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
             "</center><hr><center>nginx</center></body></html>")

#: httpx's (and httpx-sse's) errors -> kind for the result (retried) and for the submit (never resent)
HTTPX_KINDS: dict[type[Exception], tuple[str, str]] = {
    httpx.ConnectError: ("network", "network"),  # nothing was sent
    httpx.ConnectTimeout: ("network", "network"),
    httpx.TimeoutException: ("timeout", "lost_answer"),
    httpx.ReadTimeout: ("timeout", "lost_answer"),
    httpx.WriteTimeout: ("timeout", "lost_answer"),
    httpx.PoolTimeout: ("timeout", "lost_answer"),
    httpx.RequestError: ("network", "lost_answer"),
    httpx.TransportError: ("network", "lost_answer"),
    httpx.NetworkError: ("network", "lost_answer"),
    httpx.ReadError: ("network", "lost_answer"),
    httpx.WriteError: ("network", "lost_answer"),
    httpx.CloseError: ("network", "lost_answer"),
    httpx.ProxyError: ("network", "lost_answer"),
    httpx.UnsupportedProtocol: ("network", "lost_answer"),
    httpx.ProtocolError: ("network", "lost_answer"),
    httpx.LocalProtocolError: ("network", "lost_answer"),
    httpx.RemoteProtocolError: ("network", "lost_answer"),
    httpx.DecodingError: ("server", "lost_answer"),  # fal answered, unreadably
    httpx.TooManyRedirects: ("server", "lost_answer"),
    httpx_sse.SSEError: ("network", "lost_answer"),
}
#: fal_client's own errors (FalClientHTTPError is walked with the status table below)
FAL_CLIENT_ERRORS: list[tuple[Exception, str, str]] = [
    (FalClientTimeoutError(timeout=60.0, request_id="req-1"), "timeout", "lost_answer"),
    (FalClientError(f"upload failed: {ECHO}"), "server", "server"),
    (MissingCredentialsError("Please set the FAL_KEY environment variable"), "credentials", "credentials"),
]
NOT_MET = {RealtimeError: "the backend never opens fal's realtime connection"}
#: Python's own: what httpcore lets through, our per-call time bound, answers that cannot be read
PYTHON_ERRORS: list[tuple[Exception, str, str]] = [
    (ssl.SSLError(1, "[SSL: SSLV3_ALERT_BAD_RECORD_MAC] sslv3 alert bad record mac"), "network", "lost_answer"),
    (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), "network", "lost_answer"),
    (OSError(errno.EPIPE, f"Broken pipe ({ECHO})"), "network", "lost_answer"),
    (TimeoutError(), "timeout", "lost_answer"),
    (asyncio.TimeoutError(), "timeout", "lost_answer"),
    (KeyError("request_id"), "server", "lost_answer"),
    (json.JSONDecodeError("Expecting value", NGINX_502, 0), "server", "lost_answer"),
    (ValueError("Unknown status: PAUSED"), "server", "lost_answer"),
]
#: fal's answers: (status, body, headers, kind for the result, kind for the submit)
ANSWERS: list[tuple[int, Any, dict[str, str], str, str]] = [
    (400, {"detail": f"Invalid request: {ECHO}"}, {}, "rejected", "rejected"),
    (400, {"detail": "Request was cancelled", "error_type": "client_cancelled"}, {}, "cancelled", "cancelled"),
    (401, {"detail": f"No user found for Key ID and Secret: {ECHO}"}, {}, "credentials", "credentials"),
    (403, {"detail": "User is locked. Reason: Exhausted balance."}, {}, "credentials", "credentials"),
    (404, {"detail": "Application 'sora-2' not found"}, {}, "not_found", "endpoint_unavailable"),
    (410, {"detail": "Application 'sora-2' has been retired"}, {}, "rejected", "endpoint_unavailable"),
    (413, {"detail": "Request body too large"}, {}, "rejected", "rejected"),
    (422, validation_error("duration", f"Input should be 4, 8 or 12 ({ECHO})", "enum")[1], {},
     "validation", "validation"),
    (422, content_policy_error("prompt")[1], {}, "content_policy", "content_policy"),
    (422, content_policy_error("image_url", ("intellectual_property",))[1], {}, "ip_blocked", "ip_blocked"),
    (429, {"detail": "Too many requests"}, {"Retry-After": "2"}, "rate_limited", "rate_limited"),
    (500, {"detail": f"Runner crashed: {ECHO}", "error_type": "runner_server_error"}, {}, "server", "server"),
    (502, NGINX_502, {"Content-Type": "text/html"}, "server", "lost_answer"),
    (503, {"detail": "Service temporarily unavailable"}, {"Retry-After": "1"}, "server", "server"),
    (504, {"detail": "Request timed out", "error_type": "request_timeout"},
     {"X-Fal-Request-Timeout-Type": "user"}, "timeout", "timeout"),
    (504, {"detail": "Gateway timeout"}, {}, "timeout", "lost_answer"),
]


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)


def _subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _defined_in(cls: type, *packages: str) -> bool:
    return any(cls.__module__ == p or cls.__module__.startswith(p + ".") for p in packages)


def _response(status: int, body: Any, headers: dict[str, str]) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body, headers=headers, request=REQUEST)
    return httpx.Response(status, json=body, headers=headers, request=REQUEST)


def _status_errors(status: int, body: Any, headers: dict[str, str]) -> list[Exception]:
    """The answer as our submit and stream meet it (httpx) and as fal_client's calls raise it."""
    response = _response(status, body, headers)
    ours = httpx.HTTPStatusError(f"HTTP {status}", request=REQUEST, response=response)
    try:
        fal_client.client._raise_for_status(response)  # how fal_client 1.0.3 builds its error
    except FalClientHTTPError as exc:
        return [ours, exc]
    raise AssertionError(f"fal_client did not raise for HTTP {status}")


def _check(exc: Exception, action: str, kind: str | None = None) -> GenerationError:
    """`exc` translated for `action`: in the tree, with a known kind, and without the key."""
    assert isinstance(exc, LOWER_LEVEL_ERRORS), f"the backend does not catch {type(exc).__name__}"
    error = translate(exc, Context(action, APP, "FAL_KEY", "req-1"))
    assert isinstance(error, SoraWidgetsError) and isinstance(error, GenerationError)
    assert error.kind in ERROR_KINDS and error.kind != "error", (type(exc).__name__, error.kind)
    if kind is not None:
        assert error.kind == kind, (type(exc).__name__, action, error.kind, str(error))
    assert isinstance(error, CredentialsError) == (error.kind == "credentials")
    assert (error.endpoint_id, error.request_id) == (APP, "req-1") and str(error)
    for text in (str(error), repr(error), str(error.field)):
        assert KEY not in text and KEY.partition(":")[2] not in text
    return error


def test_the_walk_covers_every_error_httpx_and_fal_client_define() -> None:
    """A new exception class in httpx, httpx-sse or fal_client fails here until it is mapped."""
    from_httpx = {c for c in _subclasses(httpx.HTTPError) if _defined_in(c, "httpx", "httpx_sse")}
    assert from_httpx == {*HTTPX_KINDS, httpx.HTTPStatusError}
    from_fal_client = {value for module in (fal_client.client, fal_client.auth) for value in vars(module).values()
                       if isinstance(value, type) and issubclass(value, BaseException)
                       and _defined_in(value, "fal_client")}
    assert from_fal_client == {*(type(exc) for exc, _, _ in FAL_CLIENT_ERRORS), FalClientHTTPError, *NOT_MET}


@pytest.mark.parametrize("action", ["result", "submit"])
@pytest.mark.parametrize("cls", list(HTTPX_KINDS), ids=lambda cls: cls.__name__)
def test_httpx_errors_are_translated(cls: type[Exception], action: str) -> None:
    exc = cls(f"failed with Authorization: Key {KEY}", request=REQUEST)
    _check(exc, action, HTTPX_KINDS[cls][action == "submit"])


@pytest.mark.parametrize("action", ["result", "submit"])
@pytest.mark.parametrize(("exc", "result_kind", "submit_kind"), [*FAL_CLIENT_ERRORS, *PYTHON_ERRORS],
                         ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None)
def test_fal_client_and_python_errors_are_translated(exc: Exception, result_kind: str, submit_kind: str,
                                                     action: str) -> None:
    _check(exc, action, submit_kind if action == "submit" else result_kind)


@pytest.mark.parametrize("action", ["result", "submit"])
@pytest.mark.parametrize(("status", "body", "headers", "result_kind", "submit_kind"), ANSWERS,
                         ids=[f"{status}-{i}" for i, (status, *_) in enumerate(ANSWERS)])
def test_fal_answers_are_translated(status: int, body: Any, headers: dict[str, str], result_kind: str,
                                    submit_kind: str, action: str) -> None:
    for exc in _status_errors(status, body, headers):
        error = _check(exc, action, submit_kind if action == "submit" else result_kind)
        assert error.status_code == (None if error.kind == "lost_answer" else status)


@pytest.mark.parametrize("status", [s for s in HTTPStatus if 400 <= s <= 504], ids=int)
def test_every_error_status_is_translated(status: HTTPStatus) -> None:
    for action in ("submit", "status", "stream", "result", "cancel", "upload"):
        for exc in _status_errors(status, {"detail": f"{status.phrase}: {ECHO}"}, {}):
            _check(exc, action)


# -- through the fake server ----------------------------------------------------------------------


@pytest.fixture
def fal(fakefal: FakeFal) -> FalBackend:
    fakefal.configure(queue_s=0, run_s=0)
    return FalBackend(backoff_s=0.01, max_backoff_s=0.05, poll_min_s=0.05, poll_max_s=0.2)


async def test_a_key_given_in_code_is_not_echoed_back(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAL_KEY")
    secret = "given-in-code-SECRET-7777"
    fal = FalBackend(key=secret)
    echo = f"key {secret} was used"
    fakefal.add_fault("submit", Fault.http(400, {"detail": echo}))
    fakefal.add_fault("submit", Fault.http(422, {"detail": [{"loc": ["body", secret], "msg": echo, "type": "x"}]}))
    fakefal.add_fault("submit", Fault.http(401, {"detail": echo}))
    errors = []
    for _ in range(3):
        with pytest.raises(GenerationError) as info:
            await fal.submit(APP, ARGS)
        errors.append(info.value)
    assert [e.kind for e in errors] == ["rejected", "validation", "credentials"]
    assert "the key= argument" in str(errors[-1])
    assert all(secret not in text for e in errors for text in (str(e), repr(e), str(e.field)))


async def test_an_unreadable_submit_answer_is_a_lost_answer_never_sent_again(fal: FalBackend,
                                                                             fakefal: FakeFal) -> None:
    for answer in ("<html>Accepted</html>", {"status": "IN_QUEUE"}):  # no JSON, no request id
        fakefal.add_fault("submit", Fault.http(200, answer))
        with pytest.raises(GenerationError) as info:
            await fal.submit(APP, ARGS)
        assert info.value.kind == "lost_answer" and "may have accepted" in str(info.value)
    assert fakefal.count("submit") == 2


async def test_an_unreadable_result_is_a_server_error(fal: FalBackend, fakefal: FakeFal) -> None:
    request_id = await fal.submit(APP, ARGS)
    for answer in ("<html>Oops</html>", ["not", "an", "object"]):
        fakefal.add_fault("result", Fault.http(200, answer))
        with pytest.raises(GenerationError) as info:
            await fal.result(APP, request_id)
        assert (info.value.kind, info.value.request_id) == ("server", request_id)
        assert "could not be read" in str(info.value)


# -- the preview backend --------------------------------------------------------------------------


def test_a_preview_folder_that_refuses_files_fails_as_a_render_error(tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "preview").write_text("a file where the folder should be")
    backend = PreviewBackend(media_dir=media, queue_s=0)
    with pytest.raises(GenerationError) as caught:
        asyncio.run(backend.submit(T2V, {"prompt": "never saved"}))
    assert caught.value.kind == "render" and "could not save" in str(caught.value)


@pytest.mark.parametrize("saved", ["not json", "[]", "{}", '{"endpoint_id": 1, "arguments": {}, "status": "failed"}',
                                   '{"endpoint_id": "e/x", "arguments": {}, "status": "failed", "error": 5}'])
def test_a_saved_preview_job_that_is_not_one_is_not_found(tmp_path: Path, saved: str) -> None:
    request_id = "preview-" + "a" * 32
    folder = tmp_path / "media" / "preview"
    folder.mkdir(parents=True)
    (folder / f"{request_id}.json").write_text(saved)
    with pytest.raises(GenerationError) as caught:
        asyncio.run(PreviewBackend(media_dir=tmp_path / "media").result(T2V, request_id))
    assert (caught.value.kind, caught.value.request_id) == ("not_found", request_id)
