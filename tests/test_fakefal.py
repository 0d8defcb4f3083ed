"""The fake fal server speaks the queue protocol the real, unmodified fal_client expects."""

from __future__ import annotations

import json
import os
import time

import fal_client
import httpx
import pytest
from fakefal import FakeFal, Fault, content_policy_error, validation_error
from fal_client.client import Completed, FalClientHTTPError, InProgress, Queued

APP = "fal-ai/sora-2/image-to-video"
KEY = "fake-key-id:fake-key-secret"


@pytest.fixture
def client(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> fal_client.SyncClient:
    monkeypatch.setenv("FAL_KEY", KEY)
    return fal_client.SyncClient(key=KEY)


def test_environment_points_fal_client_at_the_fake(fakefal: FakeFal) -> None:
    assert os.environ["FAL_QUEUE_RUN_HOST"] == fakefal.host
    assert fal_client.client.QUEUE_URL_FORMAT == f"https://{fakefal.host}/"


def test_subscribe_runs_a_job_end_to_end(fakefal: FakeFal, client: fal_client.SyncClient) -> None:
    fakefal.configure(queue_s=0.2, run_s=0.4, logs=["one", "two"])
    updates: list[object] = []
    result = client.subscribe(APP, {"prompt": "a cat", "image_url": "https://x/y.png"},
                              with_logs=True, on_queue_update=updates.append)
    assert result["video"]["url"] == fakefal.media_url("video.mp4")
    assert result["video_id"].startswith("video_")
    assert any(isinstance(u, Queued) for u in updates)
    assert any(isinstance(u, InProgress) for u in updates)
    final = updates[-1]
    assert isinstance(final, Completed) and [e["message"] for e in final.logs] == ["one", "two"]
    assert fakefal.count("submit") == 1 and fakefal.count("result") == 1
    submit = fakefal.of_kind("submit")[0]
    assert submit.json == {"prompt": "a cat", "image_url": "https://x/y.png"}
    assert submit.headers["authorization"] == f"Key {KEY}"
    assert submit.path == f"/{APP}"


def test_status_payloads_follow_the_protocol(fakefal: FakeFal, client: fal_client.SyncClient) -> None:
    fakefal.configure(queue_s=0.3, run_s=0.3, queue_position=3)
    handle = client.submit(APP, {"prompt": "p"})
    assert handle.status_url == f"{fakefal.base_url}/fal-ai/sora-2/requests/{handle.request_id}/status"
    first = handle.status()
    assert isinstance(first, Queued) and 0 <= first.position <= 3
    time.sleep(0.4)
    assert isinstance(handle.status(with_logs=True), InProgress)
    time.sleep(0.3)
    done = handle.status(with_logs=False)
    assert isinstance(done, Completed) and done.logs is None and done.metrics == {"inference_time": 0.3}
    assert fakefal.of_kind("status")[0].query["logs"] == ["false"]


def test_stream_sends_one_status_per_change_and_ends(fakefal: FakeFal, client: fal_client.SyncClient) -> None:
    fakefal.configure(queue_s=0.1, run_s=0.3, logs=["a"])
    handle = client.submit(APP, {"prompt": "p"})
    with httpx.Client(headers={"Authorization": f"Key {KEY}"}) as http:
        response = http.get(handle.status_url + "/stream", params={"logs": "1"})
        http.get(handle.response_url)  # the stream's connection is kept alive, as on fal
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    assert events[0]["status"] == "IN_QUEUE" and events[-1]["status"] == "COMPLETED"
    assert [e["message"] for e in events[-1]["logs"]] == ["a"]
    assert fakefal.count("stream") == 1
    assert fakefal.of_kind("result")[0].client_port == fakefal.of_kind("stream")[0].client_port


def test_cancel_while_queued_then_after_completion(fakefal: FakeFal, client: fal_client.SyncClient) -> None:
    fakefal.configure(queue_s=5, run_s=5)
    handle = client.submit(APP, {"prompt": "p"})
    handle.cancel()
    assert isinstance(handle.status(), Completed)
    with pytest.raises(FalClientHTTPError) as info:
        client.result(APP, handle.request_id)
    assert info.value.status_code == 400
    with pytest.raises(FalClientHTTPError) as again:
        handle.cancel()
    assert again.value.status_code == 400 and "ALREADY_COMPLETED" in again.value.response.text


@pytest.mark.parametrize(("error", "status"), [(validation_error("duration", "bad"), 422), (content_policy_error(), 422)])
def test_failed_job_completes_and_its_result_is_the_error(fakefal: FakeFal, client: fal_client.SyncClient,
                                                          error: tuple[int, dict], status: int) -> None:
    fakefal.configure(queue_s=0, run_s=0.1, error=error)
    with pytest.raises(FalClientHTTPError) as info:
        client.subscribe(APP, {"prompt": "p"})
    assert info.value.status_code == status and isinstance(info.value.message, list)


def test_nginx_502_is_retried_by_fal_client_but_json_503_is_not(fakefal: FakeFal, client: fal_client.SyncClient) -> None:
    fakefal.configure(queue_s=0, run_s=0.05)
    handle = client.submit(APP, {"prompt": "p"})
    fakefal.add_fault("status", Fault.nginx(502))
    handle.status()
    assert fakefal.count("status") == 2
    fakefal.add_fault("status", Fault.http(503))
    with pytest.raises(FalClientHTTPError):
        handle.status()


def test_fal_client_resubmits_after_a_dropped_connection(fakefal: FakeFal, client: fal_client.SyncClient) -> None:
    """Why FalBackend does its own submit: fal_client sends it again and two jobs run."""
    fakefal.add_fault("submit", Fault.drop_after())
    client.submit(APP, {"prompt": "p"})
    assert fakefal.count("submit") == 2 and len(fakefal.jobs) == 2


def test_faults_rate_limit_delay_refuse_and_bad_key(fakefal: FakeFal) -> None:
    headers = {"Authorization": f"Key {KEY}"}
    with httpx.Client(headers=headers) as http:
        fakefal.add_fault("submit", Fault.rate_limited(1.5))
        limited = http.post(f"{fakefal.base_url}/{APP}", json={})
        assert limited.status_code == 429 and limited.headers["retry-after"] == "1.5"
        fakefal.add_fault("media", Fault.delay(0.3))
        started = time.monotonic()
        assert http.get(fakefal.media_url("video.mp4")).content == fakefal.media["video.mp4"]
        assert time.monotonic() - started >= 0.3
    fakefal.refuse_connections(1)
    with httpx.Client(headers=headers) as fresh:
        with pytest.raises(httpx.ConnectError):
            fresh.get(fakefal.media_url("video.mp4"))
        fakefal.accepted_keys = {"another"}
        assert fresh.post(f"{fakefal.base_url}/{APP}", json={}).status_code == 401
    assert fakefal.count("media") == 1  # the refused connection never made a request


def test_stream_break_cuts_the_body(fakefal: FakeFal, client: fal_client.SyncClient) -> None:
    fakefal.configure(queue_s=0.1, run_s=0.3)
    handle = client.submit(APP, {"prompt": "p"})
    fakefal.add_fault("stream", Fault.break_stream(after_events=1))
    with (httpx.Client(headers={"Authorization": f"Key {KEY}"}) as http,
          pytest.raises(httpx.RemoteProtocolError)):
        http.get(handle.status_url + "/stream")


def test_reset_forgets_everything(fakefal: FakeFal) -> None:
    fakefal.add_fault("status", Fault.drop())
    fakefal.configure(run_s=9)
    fakefal.reset()
    assert fakefal.count() == 0 and fakefal.spec.run_s != 9 and not fakefal.jobs


def test_arrivals_are_read_on_the_servers_clock(fakefal: FakeFal, client: fal_client.SyncClient) -> None:
    before = time.monotonic()
    first, second = client.submit(APP, {"prompt": "p"}), client.submit(APP, {"prompt": "q"})
    arrivals = fakefal.arrivals("submit")
    assert first.request_id != second.request_id and len(arrivals) == 2
    assert before <= arrivals[0] <= arrivals[1] <= time.monotonic()
    assert fakefal.arrivals("result") == []
