"""FalBackend against the fake fal server, through the real fal_client and httpx over HTTPS."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx
import pytest
from fakefal import FakeFal, Fault, content_policy_error, validation_error

from sora_widgets._errors import CredentialsError, GenerationError, ValidationError
from sora_widgets.backends._fal_errors import Context, translate
from sora_widgets.backends.base import Backend
from sora_widgets.backends.fal import FalBackend
from sora_widgets.records import JobEvent

APP = "fal-ai/sora-2/image-to-video"
KEY = "sk-test-VERY-SECRET-4242"
ARGS = {"prompt": "a lighthouse at dusk", "image_url": "https://example.com/frame.png", "duration": 4}


@pytest.fixture
def fal(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> FalBackend:
    monkeypatch.setenv("FAL_KEY", KEY)
    fakefal.configure(queue_s=0.1, run_s=0.3)
    return FalBackend(backoff_s=0.02, max_backoff_s=0.1, poll_min_s=0.05, poll_max_s=0.2)


async def follow(fal: FalBackend, request_id: str) -> list[JobEvent]:
    return [event async for event in fal.events(APP, request_id)]


async def run_job(fal: FalBackend) -> tuple[str, list[JobEvent], dict]:
    request_id = await fal.submit(APP, ARGS)
    events = await follow(fal, request_id)
    return request_id, events, await fal.result(APP, request_id)


# -- following a job ---------------------------------------------------------------------------


async def test_stream_follows_a_3s_job_in_at_most_5_requests(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.configure(queue_s=0.4, run_s=2.6, logs=["Starting", "Rendering", "Encoding"])
    request_id, events, result = await run_job(fal)
    assert fakefal.count() <= 5
    # the stream said COMPLETED, so fal_client's AsyncRequestHandle.get() sends the GET alone
    assert dict(fakefal.counts) == {"submit": 1, "stream": 1, "result": 1}
    # on one kept-alive connection: the stream's body ends and fal_client's pool is ours too
    assert len({r.client_port for r in fakefal.requests}) == 1
    assert events[0].kind == "queued" and events[0].position is not None
    assert events[-1].kind == "completed" and sum(e.is_final for e in events) == 1
    assert [line for e in events for line in e.logs] == ["Starting", "Rendering", "Encoding"]
    running = [e for e in events if e.kind == "running"]
    assert running and all(e.elapsed_s is not None for e in running)
    assert result["video"]["url"] == fakefal.media_url("video.mp4")
    assert fakefal.of_kind("stream")[0].query["logs"] == ["1"]
    assert fakefal.of_kind("stream")[0].path.endswith(f"/requests/{request_id}/status/stream")


async def test_broken_stream_is_reopened_then_polling_takes_over(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.configure(queue_s=0.1, run_s=0.6, logs=["a", "b", "c"])
    fakefal.add_fault("stream", Fault.break_stream(after_events=1), times=10)
    _, events, result = await run_job(fal)
    assert fakefal.count("stream") == 1 + fal.stream_reopens
    assert fakefal.count("status") >= 1
    assert events[-1].kind == "completed" and result["video_id"]
    assert [line for e in events for line in e.logs] == ["a", "b", "c"]


async def test_unavailable_stream_falls_back_to_adaptive_polling(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.configure(queue_s=0.3, run_s=0.6)
    fakefal.add_fault("stream", Fault.http(404))
    _, events, _ = await run_job(fal)
    assert fakefal.count("stream") == 1 and events[-1].kind == "completed"
    polls = [r for r in fakefal.of_kind("status") if r.query["logs"] == ["true"]]
    assert polls and len(polls) < 0.9 / 0.05, "polling should back off"


async def test_polls_result_and_cancel_are_fal_client_calls(fal: FalBackend, fakefal: FakeFal) -> None:
    """Submit and stream are ours; the status fallback, result and cancel are fal_client's calls.

    fal_client's handle sends `logs=true`/`false` (httpx's encoding of its bool) where our stream
    sends `logs=1`. Its `get()` checks the status (without logs) before the result GET unless
    our events() already saw COMPLETED (here the last poll did).
    """
    from fal_client.client import USER_AGENT

    fakefal.configure(queue_s=0.2, run_s=0.3)
    fakefal.add_fault("stream", Fault.http(404))
    await run_job(fal)
    pattern = [(r.kind, r.method, tuple(r.query.get("logs", ()))) for r in fakefal.requests]
    assert pattern[:2] == [("submit", "POST", ()), ("stream", "GET", ("1",))]
    assert pattern[-1] == ("result", "GET", ())
    assert len(pattern) > 3 and set(pattern[2:-1]) == {("status", "GET", ("true",))}
    request_id = await fal.submit(APP, ARGS)
    await fal.cancel(APP, request_id)
    assert fakefal.requests[-1].method == "PUT" and fakefal.requests[-1].kind == "cancel"
    assert {r.headers["user-agent"] for r in fakefal.requests} == {USER_AGENT}


async def test_polling_interval_grows_to_its_cap(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    fakefal.configure(queue_s=2.0, run_s=0.2)
    fal = FalBackend(use_stream=False, poll_min_s=0.25, poll_max_s=3.0)
    await run_job(fal)
    assert fakefal.count("stream") == 0
    assert 5 <= fakefal.count("status") <= 8  # 0.25, 0.375, 0.56, 0.84 ... vs 22 at 0.1 s, +1 for the result


async def test_status_5xx_and_drops_are_retried(fal: FalBackend, fakefal: FakeFal) -> None:
    fal.use_stream = False
    fakefal.add_fault("status", Fault.http(503), times=2)
    fakefal.add_fault("status", Fault.nginx(502))
    fakefal.add_fault("status", Fault.drop())
    fakefal.add_fault("status", Fault.rate_limited(0.05))
    _, events, _ = await run_job(fal)
    assert events[-1].kind == "completed" and fakefal.count("status") >= 6


async def test_submit_honours_retry_after(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.add_fault("submit", Fault.rate_limited(0.4))
    assert await fal.submit(APP, ARGS)
    first, second = fakefal.arrivals("submit")  # the server's clock: the second POST waited
    assert second - first >= 0.4
    assert fakefal.count("submit") == 2 and len(fakefal.jobs) == 1


async def test_result_429_is_retried_by_fal_client_before_retry_after(fal: FalBackend, fakefal: FakeFal) -> None:
    """Pins fal_client 1.0.3: it retries a 429 itself (after ~0.1 s, not after Retry-After); our
    Retry-After wait only follows its 10 tries. With no retries of ours (max_attempts=1) and a
    per-call bound far below the Retry-After, only fal_client's own retry can fetch the result."""
    request_id = await fal.submit(APP, ARGS)
    await follow(fal, request_id)
    fal.max_attempts, fal.read_timeout_s = 1, 5.0
    fakefal.add_fault("result", Fault.rate_limited(60))
    assert (await fal.result(APP, request_id))["video_id"]
    assert [r.kind for r in fakefal.requests[-2:]] == ["result", "result"] and fakefal.count("result") == 2


async def test_resume_from_a_request_id_with_a_fresh_backend(fal: FalBackend, fakefal: FakeFal) -> None:
    request_id = await fal.submit(APP, ARGS)
    await fal.aclose()
    del fal  # the "kernel restart"
    fresh = FalBackend()
    events = await follow(fresh, request_id)
    assert events[-1].kind == "completed"
    assert (await fresh.result(APP, request_id))["video_id"]
    assert fakefal.count("submit") == 1
    again = await follow(fresh, request_id)  # a finished job: one event, no waiting
    assert [e.kind for e in again] == ["completed"]


async def test_result_of_a_job_not_followed_here_waits_for_it(fal: FalBackend, fakefal: FakeFal) -> None:
    """Without events() having seen COMPLETED, result() lets fal_client's get() poll first."""
    request_id = await fal.submit(APP, ARGS)
    assert (await fal.result(APP, request_id))["video_id"]
    assert fakefal.count("status") >= 2 and fakefal.count("result") == 1 and fakefal.count("stream") == 0


async def test_backend_works_across_event_loops(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    fakefal.configure(queue_s=0, run_s=0.05)
    fal = FalBackend()
    request_id = await fal.submit(APP, ARGS)
    elsewhere = await asyncio.to_thread(asyncio.run, follow(fal, request_id))  # e.g. a script's own loop
    assert elsewhere[-1].kind == "completed"
    assert (await fal.result(APP, request_id))["video_id"]


# -- submit: once, and only once ------------------------------------------------------------------


async def test_submit_is_not_resent_after_a_dropped_connection(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.add_fault("submit", Fault.drop_after())
    with pytest.raises(GenerationError) as info:
        await fal.submit(APP, ARGS)
    error = info.value
    assert error.kind == "lost_answer" and "may have accepted" in str(error)
    assert fakefal.count("submit") == 1 and len(fakefal.jobs) == 1


async def test_submit_is_not_resent_after_a_read_timeout(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    fakefal.add_fault("submit", Fault.delay(1.0))
    fal = FalBackend(read_timeout_s=0.3)
    with pytest.raises(GenerationError) as info:
        await fal.submit(APP, ARGS)
    assert info.value.kind == "lost_answer" and "not sent again" in str(info.value)
    assert fakefal.count("submit") == 1


async def test_submit_is_retried_when_the_connection_was_refused(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.refuse_connections(2)
    assert await fal.submit(APP, ARGS)
    assert fakefal.count("submit") == 1 and len(fakefal.jobs) == 1


@pytest.mark.parametrize(("fault", "kind"), [(Fault.nginx(502), "lost_answer"), (Fault.http(504), "lost_answer"),
                                             (Fault.http(500, {"detail": "boom"}), "server"),
                                             (Fault.http(400, {"detail": "bad"}), "rejected")])
async def test_submit_errors_that_may_have_been_taken_are_not_retried(
        fal: FalBackend, fakefal: FakeFal, fault: Fault, kind: str) -> None:
    fakefal.add_fault("submit", fault)
    with pytest.raises(GenerationError) as info:
        await fal.submit(APP, ARGS)
    assert info.value.kind == kind and fakefal.count("submit") == 1


async def test_a_503_at_submit_is_declined_so_it_is_sent_again_after_retry_after(
        fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.add_fault("submit", Fault.http(503, {"detail": "busy"}, **{"Retry-After": "0.05"}), times=2)
    assert await fal.submit(APP, ARGS)
    assert fakefal.count("submit") == 3 and len(fakefal.jobs) == 1


async def test_result_not_retried_when_fal_says_so(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.configure(queue_s=0, run_s=0)
    request_id = await fal.submit(APP, ARGS)
    fakefal.add_fault("result", Fault.http(503, {"detail": "runner gone"}, X_Fal_Retryable="false"))
    with pytest.raises(GenerationError) as info:
        await fal.result(APP, request_id)
    assert info.value.kind == "server" and fakefal.count("result") == 1


async def test_submit_retries_429(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.add_fault("submit", Fault.rate_limited(0.1))
    assert await fal.submit(APP, ARGS)
    assert fakefal.count("submit") == 2 and len(fakefal.jobs) == 1


# -- failures as GenerationErrors -----------------------------------------------------------------


@pytest.mark.parametrize(("error", "kind", "field"), [
    (validation_error("duration", "Input should be 4, 8, 12, 16 or 20", "enum"), "validation", "duration"),
    (content_policy_error("prompt"), "content_policy", "prompt"),
    (content_policy_error("image_url", ("intellectual_property",)), "ip_blocked", "image_url"),
    ((504, {"detail": "Request timed out", "error_type": "request_timeout"}), "timeout", None),
    ((500, {"detail": "Runner crashed", "error_type": "runner_server_error"}), "server", None),
])
async def test_failed_jobs_raise_from_result(fal: FalBackend, fakefal: FakeFal, error: tuple, kind: str, field: str | None) -> None:
    fakefal.configure(error=error)
    request_id = await fal.submit(APP, ARGS)
    assert (await follow(fal, request_id))[-1].kind == "completed"
    with pytest.raises(GenerationError) as info:
        await fal.result(APP, request_id)
    error_ = info.value
    assert (error_.kind, error_.field, error_.request_id, error_.endpoint_id) == (kind, field, request_id, APP)
    if field:
        assert field in str(error_)
    assert fakefal.count("result") == 1, "a job's own failure is not retried"


async def test_validation_message_names_the_field_and_fal_message(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.configure(error=validation_error("prompt", "String should have at most 5000 characters"))
    request_id = await fal.submit(APP, ARGS)
    await follow(fal, request_id)
    with pytest.raises(GenerationError, match="prompt: String should have at most 5000 characters"):
        await fal.result(APP, request_id)


@pytest.mark.parametrize("status", [401, 403])
async def test_refused_key_names_the_variable_never_the_value(fal: FalBackend, fakefal: FakeFal, status: int) -> None:
    fakefal.add_fault("submit", Fault.http(status, {"detail": "Invalid key"}))
    with pytest.raises(CredentialsError) as info:
        await fal.submit(APP, ARGS)
    error = info.value
    assert error.kind == "credentials" and "FAL_KEY" in str(error) and KEY not in str(error)


async def test_refused_key_pair(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY_ID", "id-123")
    monkeypatch.setenv("FAL_KEY_SECRET", "secret-456")
    fakefal.accepted_keys = {"something-else"}
    fal = FalBackend()
    assert fal.describe() == "fal.ai (key from FAL_KEY_ID + FAL_KEY_SECRET)"
    with pytest.raises(CredentialsError, match=r"FAL_KEY_ID \+ FAL_KEY_SECRET") as info:
        await fal.submit(APP, ARGS)
    assert "secret-456" not in str(info.value)
    assert fakefal.of_kind("submit")[0].headers["authorization"] == "Key id-123:secret-456"


async def test_missing_key_raises_before_anything_is_sent(fakefal: FakeFal) -> None:
    fal = FalBackend()
    assert fal.describe() == "fal.ai (no key found: set FAL_KEY)"
    for call in (fal.submit(APP, ARGS), fal.result(APP, "r"), fal.cancel(APP, "r"), follow(fal, "r")):
        with pytest.raises(CredentialsError, match="FAL_KEY"):
            await call
    assert fakefal.count() == 0


async def test_rate_limit_that_outlasts_the_deadline(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    fal = FalBackend(retry_deadline_s=1.0)
    fakefal.add_fault("submit", Fault.rate_limited(5))
    with pytest.raises(GenerationError) as info:
        await fal.submit(APP, ARGS)
    assert info.value.kind == "rate_limited" and fakefal.count("submit") == 1 and not fakefal.jobs


async def test_persistent_5xx_and_drops_end_as_server_and_timeout(fal: FalBackend, fakefal: FakeFal) -> None:
    fal.max_attempts, fal.read_timeout_s = 3, 0.5
    request_id = await fal.submit(APP, ARGS)
    await follow(fal, request_id)
    fakefal.add_fault("result", Fault.http(503), times=3)  # a JSON 503: fal_client raises it at once
    with pytest.raises(GenerationError) as info:
        await fal.result(APP, request_id)
    assert info.value.kind == "server" and fakefal.count("result") == 3
    fakefal.add_fault("result", Fault.drop(), times=3)  # fal_client retries dropped connections itself
    assert (await fal.result(APP, request_id))["video_id"] and fakefal.count("result") == 7
    fakefal.add_fault("result", Fault.drop(), times=100)  # ... until our bound on each call cuts it
    with pytest.raises(GenerationError) as info:
        await fal.result(APP, request_id)
    assert info.value.kind == "timeout"


async def test_slow_result_times_out(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    fakefal.configure(queue_s=0, run_s=0)
    fal = FalBackend(read_timeout_s=0.2, max_attempts=2, backoff_s=0.01)
    request_id = await fal.submit(APP, ARGS)
    fakefal.add_fault("result", Fault.delay(0.6), times=2)
    with pytest.raises(GenerationError) as info:
        await fal.result(APP, request_id)
    assert info.value.kind == "timeout" and fakefal.count("result") == 2


async def test_unknown_request_id(fal: FalBackend) -> None:
    with pytest.raises(GenerationError) as info:
        await fal.result(APP, "no-such-request")
    assert info.value.kind == "not_found"


# -- cancel ---------------------------------------------------------------------------------------


async def test_cancel_a_running_job(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.configure(queue_s=0.1, run_s=5)
    request_id = await fal.submit(APP, ARGS)
    await fal.cancel(APP, request_id)
    events = await follow(fal, request_id)
    assert events[-1].kind == "completed" and events[-1].message
    with pytest.raises(GenerationError) as info:
        await fal.result(APP, request_id)
    assert info.value.kind == "cancelled"
    assert fakefal.of_kind("cancel")[0].method == "PUT"


async def test_cancel_of_a_completed_job_says_already_completed(fal: FalBackend, fakefal: FakeFal) -> None:
    fakefal.configure(queue_s=0, run_s=0)
    request_id = await fal.submit(APP, ARGS)
    with pytest.raises(GenerationError) as info:
        await fal.cancel(APP, request_id)
    assert info.value.kind == "already_completed"
    assert (await fal.result(APP, request_id))["video_id"]


# -- inputs ---------------------------------------------------------------------------------------


class RecordingUploader:
    def __init__(self) -> None:
        self.calls: list[tuple[int, str, str]] = []

    async def __call__(self, data: bytes, content_type: str, file_name: str) -> str:
        self.calls.append((len(data), content_type, file_name))
        await asyncio.sleep(0.01)
        return f"https://cdn.example/{len(self.calls)}/{file_name}"


async def test_local_images_are_uploaded_once_per_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    first, copy, other = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.jpg"
    first.write_bytes(b"\x89PNG same bytes")
    copy.write_bytes(b"\x89PNG same bytes")
    other.write_bytes(b"\xff\xd8 jpeg")
    uploader = RecordingUploader()
    fal = FalBackend(uploader=uploader)
    sent = await fal.prepare(APP, {**ARGS, "image_url": str(first)})
    assert sent["image_url"] == "https://cdn.example/1/a.png" and sent["prompt"] == ARGS["prompt"]
    many = await asyncio.gather(*(fal.prepare(APP, {"image_url": p}) for p in (copy, first, str(copy))))
    assert {m["image_url"] for m in many} == {"https://cdn.example/1/a.png"}
    both = await fal.prepare(APP, {"image_urls": [str(other), "https://x/y.png"], "end_image_url": other})
    assert both["image_urls"] == ["https://cdn.example/2/c.jpg", "https://x/y.png"]
    assert both["end_image_url"] == "https://cdn.example/2/c.jpg"
    assert uploader.calls == [(15, "image/png", "a.png"), (7, "image/jpeg", "c.jpg")]


async def test_an_image_checked_by_prepare_arguments_is_uploaded_as_it_was_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from helpers import png_bytes

    from sora_widgets.media import normalize_image

    monkeypatch.setenv("FAL_KEY", KEY)
    stored = normalize_image(png_bytes(), media_dir=tmp_path)
    remote = normalize_image("https://x/y.png", media_dir=tmp_path)
    uploader = RecordingUploader()
    sent = await FalBackend(uploader=uploader).prepare(APP, {"image_url": stored, "end_image_url": remote})
    assert stored.local_path is not None
    assert sent == {"image_url": f"https://cdn.example/1/{stored.local_path.name}", "end_image_url": "https://x/y.png"}
    assert uploader.calls == [(stored.local_path.stat().st_size, "image/png", stored.local_path.name)]


async def test_urls_pass_through_and_bad_inputs_name_the_field(tmp_path: Path) -> None:
    uploads: list[bytes] = []
    fal = FalBackend(uploader=lambda data, ctype, name: uploads.append(data) or "https://cdn/x")
    args = {"image_url": "data:image/png;base64,AAAA", "video_url": "http://h/v.mp4", "duration": 4}
    assert await fal.prepare(APP, args) == args
    for bad in ("javascript:alert(1)", "file:///etc/passwd", str(tmp_path / "missing.png")):
        with pytest.raises(ValidationError) as info:
            await fal.prepare(APP, {"image_url": bad})
        assert info.value.fields == ["image_url"]
    assert (await fal.prepare(APP, {"image_url": b"raw"}))["image_url"] == "https://cdn/x"  # sync uploader
    assert uploads == [b"raw"]


async def test_persistent_upload_cache_is_used(tmp_path: Path) -> None:
    image = tmp_path / "i.png"
    image.write_bytes(b"cached")
    import hashlib

    cache = {hashlib.sha256(b"cached").hexdigest(): "https://cdn/old"}
    uploader = RecordingUploader()
    fal = FalBackend(uploader=uploader, upload_cache=cache)
    assert (await fal.prepare(APP, {"image_url": image}))["image_url"] == "https://cdn/old"
    assert uploader.calls == []


# -- identity, secrets and the error table --------------------------------------------------------


def test_backend_protocol_and_plain_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", KEY)
    fal = FalBackend()
    assert isinstance(fal, Backend) and fal.name == "fal"
    assert fal.describe() == "fal.ai (key from FAL_KEY)"
    passed = FalBackend(key="explicit-secret")
    assert "explicit-secret" not in repr(passed) + passed.describe()
    assert all(KEY not in text for text in (repr(fal), fal.describe(), str(vars(fal))))


def _status_error(status: int, body: object, **headers: str) -> httpx.HTTPStatusError:
    request = httpx.Request("GET", "https://queue.fal.run/x/y/requests/r")
    response = httpx.Response(status, json=body, headers=headers, request=request)
    return httpx.HTTPStatusError("error", request=request, response=response)


@pytest.mark.parametrize(("action", "exc", "kind"), [
    ("result", _status_error(422, {"detail": [{"loc": ["body", "prompt"], "msg": "too long", "type": "x"}]}), "validation"),
    ("result", _status_error(422, {"detail": [{"loc": ["body", "prompt"], "msg": "m", "type": "content_policy_violation"}]}), "content_policy"),
    ("result", _status_error(422, {"detail": [{"loc": ["body", "image_url"], "msg": "m", "type": "content_policy_violation",
                                               "categories": ["intellectual_property"]}]}), "ip_blocked"),
    ("submit", _status_error(401, {"detail": "no"}), "credentials"),
    ("submit", _status_error(403, {"detail": "no"}), "credentials"),
    ("status", _status_error(429, {"detail": "slow down"}), "rate_limited"),
    ("result", _status_error(504, {"detail": "timed out"}), "timeout"),
    ("result", _status_error(503, {"detail": "x"}), "server"),
    ("result", _status_error(404, {"detail": "x"}), "not_found"),
    ("result", _status_error(400, {"detail": "Request was cancelled", "error_type": "client_cancelled"}), "cancelled"),
    ("cancel", _status_error(400, {"status": "ALREADY_COMPLETED"}), "already_completed"),
    ("submit", _status_error(400, {"detail": "bad"}), "rejected"),
    ("status", httpx.ReadTimeout("read"), "timeout"),
    ("status", httpx.ConnectError("refused"), "network"),
    ("submit", httpx.ReadTimeout("read"), "lost_answer"),
    ("submit", httpx.RemoteProtocolError("gone"), "lost_answer"),
    ("upload", httpx.ConnectTimeout("slow"), "network"),
])
def test_every_lower_level_error_is_translated(action: str, exc: Exception, kind: str) -> None:
    error = translate(exc, Context(action, APP, "FAL_KEY", "req-1"))
    assert isinstance(error, GenerationError) and error.kind == kind
    assert isinstance(error, CredentialsError) == (kind == "credentials")
    assert error.request_id == "req-1" and str(error)


def _fal_client_error(status: int, body: object) -> Exception:
    """A FalClientHTTPError built the way fal_client 1.0.3 builds it (message = the body's detail)."""
    from fal_client.client import FalClientHTTPError

    response = httpx.Response(status, json=body, request=httpx.Request("GET", "https://queue.fal.run/x/y/requests/r"))
    detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
    error_type = body.get("error_type") if isinstance(body, dict) else None
    return FalClientHTTPError(detail, status, dict(response.headers), response=response, error_type=error_type)


@pytest.mark.parametrize(("action", "exc", "kind", "field"), [
    ("upload", _fal_client_error(422, {"detail": [{"loc": ["body", "image_url"], "msg": "bad", "type": "t"}]}),
     "validation", "image_url"),
    ("result", _fal_client_error(422, {"detail": [{"loc": ["body", "prompt"], "msg": "m",
                                                   "type": "content_policy_violation"}]}),
     "content_policy", "prompt"),
    ("result", _fal_client_error(400, {"detail": "Request was cancelled", "error_type": "client_cancelled"}),
     "cancelled", None),
    ("cancel", _fal_client_error(400, {"status": "ALREADY_COMPLETED"}), "already_completed", None),
    ("status", _fal_client_error(401, {"detail": "Invalid key"}), "credentials", None),
    ("status", _fal_client_error(429, {"detail": "slow down"}), "rate_limited", None),
    ("result", _fal_client_error(404, {"detail": "Request not found"}), "not_found", None),
    ("result", _fal_client_error(503, {"detail": "busy"}), "server", None),
    ("result", TimeoutError(), "timeout", None),
])
def test_fal_client_errors_are_translated(action: str, exc: Exception, kind: str, field: str | None) -> None:
    error = translate(exc, Context(action, APP, "FAL_KEY", "req-1"))
    assert (error.kind, error.field, error.request_id) == (kind, field, "req-1")
    assert isinstance(error, CredentialsError) == (kind == "credentials")


def test_missing_credentials_from_fal_client_are_translated() -> None:
    from fal_client.auth import MissingCredentialsError

    assert translate(MissingCredentialsError("x"), Context("submit", APP, "no key")).kind == "credentials"


async def failures(fal: FalBackend, fakefal: FakeFal, request_id: str) -> list[GenerationError]:
    """One failure of each sort fal can answer with, every answer echoing the key back."""
    echo = f"the key {KEY} was used"
    seen: list[GenerationError] = []
    for kind, fault in [("result", Fault.http(401, {"detail": echo})),
                        ("submit", Fault.http(400, {"detail": echo})),
                        ("submit", Fault.http(422, {"detail": [{"loc": ["body", "prompt"], "msg": echo,
                                                                 "type": "value_error"}]})),
                        ("submit", Fault.nginx(502)), ("submit", Fault.drop_after()),
                        ("result", Fault.http(500, {"detail": echo, "error_type": "runner_server_error"}))]:
        fakefal.add_fault(kind, fault)
        call = fal.result(APP, request_id) if kind == "result" else fal.submit(APP, ARGS)
        with pytest.raises(GenerationError) as info:
            await call
        seen.append(info.value)
    with pytest.raises(GenerationError) as info:
        await fal.cancel(APP, request_id)
    return [*seen, info.value]


async def test_the_key_never_leaks(fal: FalBackend, fakefal: FakeFal, caplog: pytest.LogCaptureFixture) -> None:
    """A full job, then failures whose answers echo the key: no text this backend made holds it."""
    caplog.set_level(logging.DEBUG)
    fakefal.add_fault("status", Fault.http(503))
    fakefal.add_fault("stream", Fault.break_stream(1))
    fal.use_stream = True
    request_id, events, result = await run_job(fal)
    errors = await failures(fal, fakefal, request_id)
    assert [e.kind for e in errors] == ["credentials", "rejected", "validation", "lost_answer", "lost_answer",
                                        "server", "already_completed"]
    assert isinstance(errors[0], CredentialsError)
    said = [text for error in errors for text in (str(error), repr(error), str(error.field))]
    texts = [*said, caplog.text, repr(fal), fal.describe(), repr(events), repr(result)]
    assert all(KEY not in text for text in texts)
    assert all(KEY.encode() not in r.body for r in fakefal.requests)
    assert {r.headers.get("authorization") for r in fakefal.requests if r.kind != "media"} == {f"Key {KEY}"}
