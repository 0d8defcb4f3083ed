"""Endpoint status, the model list and prices: offline from bundled knowledge, online from fal's
Platform API (the fake's), and a retired endpoint failing clearly after one request."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from fakefal import FakeFal
from test_any_endpoint import ENDPOINT as UNSEEN
from test_any_endpoint import unseen_document

import sora_widgets as sw
from sora_widgets.history import History
from sora_widgets.pricing import estimate_cost, price_for

SECRET = "fal-test-key-STATUS-5e1d22"
SORA = "fal-ai/sora-2/image-to-video"
KLING = "fal-ai/kling-video/v2.1/standard/image-to-video"


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", SECRET)


# --- offline ---------------------------------------------------------------------------------


def test_offline_the_sora_2_family_is_retired_with_date_and_source(fakefal: FakeFal) -> None:
    for endpoint in (SORA, "fal-ai/sora-2/text-to-video/pro", "fal-ai/sora-2/video-to-video/remix"):
        status = sw.endpoint_status(endpoint)
        assert status.status == "retired" and status.since == date(2026, 9, 24)
        assert "OpenAI" in status.source and "bundled" in status.source
        assert status.checked_at is None and not status.usable
    assert sw.endpoint_status(KLING).status == "active"
    unknown = sw.endpoint_status("acme/never-heard-of")
    assert unknown.status == "unknown" and unknown.usable and "not blocked" in unknown.message
    assert fakefal.count("platform") == 0  # no key: nothing is asked


def test_offline_find_endpoints_lists_the_bundled_models(fakefal: FakeFal) -> None:
    found = {e.endpoint_id: e for e in sw.find_endpoints()}
    assert KLING in found and SORA in found and "fal-ai/sora-2/text-to-video" not in found
    assert found[SORA].status == "retired" and found[KLING].origin == "bundled"
    assert [e.endpoint_id for e in sw.find_endpoints("veo")] == ["fal-ai/veo3.1/image-to-video"]
    assert fakefal.count("platform") == 0


# --- online, with a key ------------------------------------------------------------------------


def test_online_fal_says_and_the_answer_is_cached_for_a_day(fakefal: FakeFal, keyed: None) -> None:
    fakefal.add_model("acme/fresh-video", display_name="Fresh", unit_price=0.05)
    fresh = sw.endpoint_status("acme/fresh-video")
    assert fresh.status == "active" and "Platform API" in fresh.source and fresh.checked_at
    sora = sw.endpoint_status(SORA)  # fal: deprecated; bundled: shut down upstream
    assert sora.status == "retired" and "deprecated" in sora.source and sora.since == date(2026, 9, 24)
    fakefal.set_model_status(KLING, "deprecated")
    assert sw.endpoint_status(KLING).status == "deprecated"
    missing = sw.endpoint_status("acme/never-heard-of")
    assert missing.status == "unknown" and "no entry" in missing.message
    asked = fakefal.count("platform")
    assert sw.endpoint_status("acme/fresh-video").status == "active"
    assert fakefal.count("platform") == asked  # from the run folder's cache
    for request in fakefal.of_kind("platform"):
        assert request.headers.get("authorization") == f"Key {SECRET}"


def test_online_status_falls_back_to_bundled_knowledge_when_fal_errs(fakefal: FakeFal,
                                                                     keyed: None) -> None:
    from fakefal import Fault

    fakefal.add_fault("platform", Fault.http(500, {"error": {"type": "server_error",
                                                             "message": f"boom {SECRET}"}}))
    status = sw.endpoint_status(SORA)
    assert status.status == "retired" and "could not be asked" in status.message
    assert SECRET not in str(status)


def test_online_find_endpoints_adds_fals_models(fakefal: FakeFal, keyed: None) -> None:
    fakefal.add_model("acme/fresh-video", display_name="Fresh Video", unit_price=0.05)
    found = {e.endpoint_id: e for e in sw.find_endpoints()}
    assert found["acme/fresh-video"].origin == "fal" and found["acme/fresh-video"].display_name == "Fresh Video"
    assert found[KLING].origin == "bundled"  # bundled first, fal's copy not repeated
    assert [e.endpoint_id for e in sw.find_endpoints("fresh")] == ["acme/fresh-video"]


def test_online_prices_come_from_fals_pricing_api(fakefal: FakeFal, keyed: None) -> None:
    fakefal.add_model("acme/fresh-video", unit_price=0.05, unit="second")
    fakefal.add_model("acme/flat-video", unit_price=0.30, unit="video")
    fakefal.add_openapi(UNSEEN, None)
    price = price_for("acme/fresh-video")
    assert price is not None and price.usd == 0.05 and price.source == "fal's pricing API"
    assert estimate_cost("acme/flat-video", {}) == pytest.approx(0.30)
    schema = sw.EndpointSchema.from_openapi(unseen_document())
    fakefal.add_model(UNSEEN, unit_price=0.02, unit="second")
    assert estimate_cost(schema, {"duration": "10"}) == pytest.approx(0.20)
    assert estimate_cost(schema, {}) == pytest.approx(0.10)  # its default "5"
    assert estimate_cost("acme/not-priced", {"duration": 5}) is None


# --- a retired endpoint -----------------------------------------------------------------------


def test_a_retired_endpoint_fails_after_one_request_with_a_clear_error(
        fakefal: FakeFal, keyed: None, tmp_path: Path) -> None:
    log = History(tmp_path / "runs")
    fakefal.retire(SORA)
    with pytest.raises(sw.GenerationError) as caught:
        sw.generate(endpoint=SORA, prompt="x", image_url="https://example.com/a.png", history=log,
                    timeout=60)
    error = caught.value
    assert error.kind == "endpoint_unavailable" and error.status_code == 404
    assert SORA in str(error) and "find_endpoints" in str(error) and "2026-09-24" in str(error)
    assert fakefal.count("submit") == 1 and not fakefal.jobs
    row = log.get(error.history_id)
    assert row["status"] == "failed" and row["error_type"] == "endpoint_unavailable"
    assert SORA in row["error_message"]


def test_a_410_or_a_not_found_application_is_the_same_clear_error(
        fakefal: FakeFal, keyed: None, tmp_path: Path) -> None:
    log = History(tmp_path / "runs")
    fakefal.retire(KLING, status=410, detail="Gone")
    with pytest.raises(sw.GenerationError, match="has no endpoint") as caught:
        sw.generate(endpoint=KLING, prompt="x", image_url="https://example.com/a.png", history=log,
                    timeout=60)
    assert caught.value.kind == "endpoint_unavailable" and fakefal.count("submit") == 1
    fakefal.retire(KLING, status=400, detail="Application 'kling-video' does not exist")
    with pytest.raises(sw.GenerationError) as caught:
        sw.generate(endpoint=KLING, prompt="x", image_url="https://example.com/a.png", history=log,
                    timeout=60)
    assert caught.value.kind == "endpoint_unavailable" and fakefal.count("submit") == 2


def test_the_panel_says_retired_before_anything_is_sent_and_keeps_past_runs(
        fakefal: FakeFal, keyed: None, tmp_path: Path, image: Path) -> None:
    log = History(tmp_path / "runs")
    past = sw.generate(endpoint=SORA, prompt="an old run", image_url=image, backend="preview",
                       history=log, timeout=120)
    fakefal.retire(SORA)
    panel = sw.Panel(SORA, history=log)
    assert panel.backend_name == "fal"
    banner = panel.status_banner.value
    assert "was retired on 2026-09-24" in banner and "History tab" in banner
    assert "pick another model" in banner and "$" not in banner
    assert fakefal.count("submit") == 0
    panel.tabs.selected_index = 1
    assert past.history_id in [value for _, value in panel.history_view.rows.options]
    panel.arguments = {"prompt": "a new run", "image_url": "https://example.com/a.png"}
    assert panel.valid  # a retired endpoint is not blocked: its one request fails clearly
    job = panel.generate()
    with pytest.raises(sw.GenerationError):
        job.result(60)
    assert job.generation.error_type == "endpoint_unavailable" and fakefal.count("submit") == 1


def test_an_endpoint_known_only_to_fal_gives_a_working_panel_and_generation(
        fakefal: FakeFal, keyed: None, tmp_path: Path) -> None:
    """A document fetched from fal (the fake), an output called `videos`, no code change."""
    log = History(tmp_path / "runs")
    fakefal.add_model(UNSEEN, display_name="Unseen", unit_price=0.02, openapi=unseen_document())
    fakefal.configure_endpoint(UNSEEN, queue_s=0.1, run_s=0.2, result={
        "videos": [{"url": fakefal.media_url("video.mp4"), "content_type": "video/mp4",
                    "file_size": len(fakefal.media["video.mp4"])}], "seed": 4})
    panel = sw.Panel(history=log)
    panel.endpoint = UNSEEN  # not bundled: fetched from fal's OpenAPI URL and cached
    assert panel.endpoint == UNSEEN and "start_image_url" in panel.controls
    assert fakefal.count("openapi") == 1 and UNSEEN in sw.schema.cached_endpoints()
    panel.arguments = {"prompt": "Waves", "start_image_url": "https://example.com/a.png"}
    gen = panel.generate().result(60)
    assert gen.ok and gen.video_url == fakefal.media_url("video.mp4")
    assert Path(gen.video_path).read_bytes() == fakefal.media["video.mp4"]
    row = log.get(gen.history_id)
    assert row["endpoint_id"] == UNSEEN and row["result"]["seed"] == 4
    assert row["media"][0]["field"] == "videos" and row["cost_usd"] == pytest.approx(0.10)
    assert json.dumps(row, default=str).count(SECRET) == 0


KILLED_MID_DOWNLOAD = """
import sys
import sora_widgets as sw
log = sw.History(sys.argv[1])
job = sw.submit(endpoint=sys.argv[2], prompt="survive", start_image_url="https://example.com/a.png",
                history=log)
print(job.history_id, flush=True)
job.result(120)
"""


def test_a_job_killed_while_keeping_its_media_is_finished_by_resume_without_resending(
        fakefal: FakeFal, keyed: None, tmp_path: Path) -> None:
    """SIGKILL between the first and second of three media downloads, then resume() here."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from fakefal import Fault

    document = tmp_path / "unseen.json"
    document.write_text(json.dumps(unseen_document()))
    log = History(tmp_path / "runs")
    video = fakefal.media["video.mp4"]
    fakefal.media["second.mp4"] = video + b"-second"
    fakefal.configure_endpoint(UNSEEN, queue_s=0.1, run_s=0.2, result={
        "videos": [{"url": fakefal.media_url("video.mp4"), "content_type": "video/mp4"},
                   {"url": fakefal.media_url("second.mp4"), "content_type": "video/mp4"}],
        "image": {"url": fakefal.media_url("thumbnail.webp"), "content_type": "image/webp"}})
    fakefal.add_fault("media", Fault.delay(0))
    fakefal.add_fault("media", Fault.delay(60))  # the second download hangs: the kill lands here
    child = subprocess.Popen([sys.executable, "-c", KILLED_MID_DOWNLOAD, str(log.path), str(document)],
                             env=os.environ, stdout=subprocess.PIPE, text=True)
    try:
        row_id = int(child.stdout.readline())
        deadline = time.monotonic() + 60
        while fakefal.count("media") < 2:
            assert time.monotonic() < deadline and child.poll() is None, "the download never started"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert log.get(row_id)["status"] == "running" and fakefal.count("submit") == 1
    [job] = sw.resume(History(log.path))  # another process than the one that sent it
    gen = job.result(60)
    assert gen.ok and job.history_id == row_id and fakefal.count("submit") == 1
    row = log.get(row_id)
    assert row["status"] == "completed" and [m["field"] for m in row["media"]] == ["videos", "videos", "image"]
    kept = [Path(m["path"]).read_bytes() for m in row["media"]]
    assert kept == [video, video + b"-second", fakefal.media["thumbnail.webp"]]
    assert Path(row["video_path"]).read_bytes() == video  # the first video is the run's video


def test_a_hostile_platform_api_is_refused_and_the_bundled_knowledge_answers(
        fakefal: FakeFal, keyed: None) -> None:
    """An HTML page where JSON should be, and a body over the cap: neither is taken as fal's word."""
    from fakefal import Fault

    from sora_widgets.schema.platform import MAX_ANSWER_BYTES, PlatformAPI

    fakefal.add_fault("platform", Fault("nginx", status=200, body="<html><body>Welcome</body></html>"))
    page = sw.endpoint_status(KLING)
    assert page.status == "active" and "not a JSON object" in page.message and page.checked_at is None
    fakefal.add_fault("platform", Fault.http(200, {"models": [], "pad": "x" * (MAX_ANSWER_BYTES + 1)}))
    with pytest.raises(sw.PlatformError, match="more than 20 MB"):
        PlatformAPI().models(endpoint_ids=[SORA])
    assert fakefal.count("platform") == 2


def test_a_document_that_is_not_one_is_refused_naming_the_endpoint(fakefal: FakeFal) -> None:
    fakefal.add_openapi("acme/html-doc", None)
    with pytest.raises(sw.SchemaError, match="publishes no document for 'acme/html-doc'"):
        sw.fetch_schema("acme/html-doc")
    from fakefal import Fault

    fakefal.add_fault("openapi", Fault("nginx", status=200, body="<html>a login page</html>"))
    with pytest.raises(sw.SchemaError, match="is not JSON") as caught:
        sw.fetch_schema("acme/html-doc")
    assert caught.value.endpoint_id == "acme/html-doc"
    assert "acme/html-doc" not in sw.schema.cached_endpoints()
