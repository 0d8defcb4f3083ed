"""The fake fal server's Platform API (/v1), OpenAPI documents, retired endpoints and any-endpoint queue."""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from typing import Any

import fal_client
import httpx
import pytest
from fakefal import FakeFal, Fault, openapi_document, validation_error
from fal_client.client import Completed, FalClientHTTPError

KEY = "fake-key-id:fake-key-secret"
SORA = "fal-ai/sora-2/image-to-video"
SORA_FAMILY = ["fal-ai/sora-2/image-to-video", "fal-ai/sora-2/image-to-video/pro", "fal-ai/sora-2/text-to-video",
               "fal-ai/sora-2/text-to-video/pro", "fal-ai/sora-2/video-to-video/remix"]
KLING = "fal-ai/kling-video/v2.1/standard/image-to-video"
VEO = "fal-ai/veo3.1/image-to-video"
ACTIVE = [KLING, VEO, "fal-ai/pixverse/v5/image-to-video", "fal-ai/minimax/hailuo-02/standard/image-to-video"]
METADATA_KEYS = {"display_name", "category", "description", "status", "tags", "updated_at", "is_favorited",
                 "thumbnail_url", "model_url", "date", "highlighted", "pinned"}


@pytest.fixture
def http(fakefal: FakeFal) -> Iterator[httpx.Client]:
    """A client trusting the fake's CA, with a key."""
    with httpx.Client(base_url=fakefal.api_url, headers={"Authorization": f"Key {KEY}"},
                      verify=ssl.create_default_context(cafile=fakefal.ca_path)) as client:
        yield client


@pytest.fixture
def anon(fakefal: FakeFal) -> Iterator[httpx.Client]:
    """A client trusting the fake's CA, without a key."""
    with httpx.Client(base_url=fakefal.api_url, verify=ssl.create_default_context(cafile=fakefal.ca_path)) as client:
        yield client


@pytest.fixture
def client(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> fal_client.SyncClient:
    monkeypatch.setenv("FAL_KEY", KEY)
    return fal_client.SyncClient(key=KEY)


def ids(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [m["endpoint_id"] for m in answer.json()["models"]]


# -- environment ---------------------------------------------------------------------------------

def test_environment_names_the_platform_api_and_the_openapi_template(fakefal: FakeFal) -> None:
    env = fakefal.environment()
    assert env["SORA_WIDGETS_FAL_API_URL"] == f"https://{fakefal.host}/v1"
    template = env["SORA_WIDGETS_FAL_OPENAPI_URL"]
    assert template == f"https://{fakefal.host}/api/openapi/queue/openapi.json?endpoint_id={{endpoint_id}}"
    assert template.format(endpoint_id=KLING).endswith(f"endpoint_id={KLING}")
    assert os.environ["SORA_WIDGETS_FAL_API_URL"] == env["SORA_WIDGETS_FAL_API_URL"]  # set by conftest


# -- GET /v1/models ------------------------------------------------------------------------------

def test_default_catalog_sora_is_deprecated_and_video_models_are_active(fakefal: FakeFal, http: httpx.Client) -> None:
    answer = http.get("/models", params={"limit": 100})
    body = answer.json()
    assert set(body) == {"models", "next_cursor", "has_more"}
    assert body["has_more"] is False and body["next_cursor"] is None
    by_id = {m["endpoint_id"]: m["metadata"] for m in body["models"]}
    assert set(SORA_FAMILY + ACTIVE) <= set(by_id)
    assert all(by_id[i]["status"] == "deprecated" for i in SORA_FAMILY)
    assert all(by_id[i]["status"] == "active" and by_id[i]["category"] == "image-to-video" for i in ACTIVE)
    assert all(METADATA_KEYS <= set(meta) for meta in by_id.values())
    assert by_id[KLING]["is_favorited"] is False  # with a key
    assert fakefal.count("platform") == 1 and fakefal.of_kind("platform")[0].path == "/v1/models"


def test_find_mode_by_repeated_endpoint_id_keeps_the_order_asked(http: httpx.Client) -> None:
    answer = http.get("/models", params=[("endpoint_id", VEO), ("endpoint_id", SORA), ("endpoint_id", "acme/none")])
    assert ids(answer) == [VEO, SORA]
    assert answer.json()["models"][1]["metadata"]["display_name"] == "Sora 2"
    assert ids(http.get("/models", params={"endpoint_id": f"{KLING},{VEO}"})) == [KLING, VEO]
    assert ids(http.get("/models", params={"endpoint_id": "acme/none"})) == []


def test_search_by_text_category_and_status(http: httpx.Client) -> None:
    assert ids(http.get("/models", params={"q": "kling"})) == [KLING]
    assert ids(http.get("/models", params={"search": "kling"})) == [KLING]  # alias for `q`
    assert set(ids(http.get("/models", params={"q": "sora 2"}))) == set(SORA_FAMILY)
    assert set(ids(http.get("/models", params={"q": "Sora", "category": "text-to-video"}))) == {
        "fal-ai/sora-2/text-to-video", "fal-ai/sora-2/text-to-video/pro"}
    assert ids(http.get("/models", params={"category": "image-to-video", "status": "active"})) == ACTIVE
    assert set(ids(http.get("/models", params={"status": "deprecated"}))) == set(SORA_FAMILY)
    assert ids(http.get("/models", params={"q": "veo", "endpoint_id": KLING})) == []  # ids narrow a search
    bad = http.get("/models", params={"status": "retired"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "validation_error"


def test_pagination_with_limit_and_cursor(http: httpx.Client) -> None:
    everything = ids(http.get("/models", params={"limit": 100}))
    seen: list[str] = []
    cursors: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = http.get("/models", params=params).json()
        seen += [m["endpoint_id"] for m in page["models"]]
        assert page["has_more"] == (page["next_cursor"] is not None)
        if not page["has_more"]:
            break
        cursors.append(page["next_cursor"])
        params = {"limit": 2, "cursor": page["next_cursor"]}
    assert seen == everything and len(everything) >= 9
    assert cursors[0] == "Mg=="  # fal's cursor encodes the page number
    for bad in ({"cursor": "not a cursor"}, {"limit": 0}, {"limit": "x"}):
        answer = http.get("/models", params=bad)
        assert answer.status_code == 400 and answer.json()["error"]["type"] == "validation_error"


def test_expand_openapi_adds_the_document_or_an_expansion_error(fakefal: FakeFal, http: httpx.Client) -> None:
    fakefal.add_model("acme/no-doc", display_name="No doc")
    answer = http.get("/models", params=[("endpoint_id", KLING), ("endpoint_id", "acme/no-doc"),
                                          ("expand", "openapi-3.0")])
    kling, no_doc = answer.json()["models"]
    assert kling["openapi"]["openapi"].startswith("3.0")
    assert kling["openapi"]["info"]["x-fal-metadata"]["endpointId"] == KLING
    assert no_doc["openapi"] == {"error": {"code": "expansion_failed", "message": "No OpenAPI schema for acme/no-doc"}}
    plain = http.get("/models", params={"endpoint_id": KLING}).json()["models"][0]
    assert "openapi" not in plain and "enterprise_status" not in plain
    assert http.get("/models", params={"endpoint_id": KLING, "expand": "enterprise_status"}
                    ).json()["models"][0]["enterprise_status"] == "ready"


def test_add_model_set_status_and_reset(fakefal: FakeFal, http: httpx.Client) -> None:
    doc = openapi_document("acme/new-video", {"prompt": {"type": "string"}})
    model = fakefal.add_model("acme/new-video", display_name="New video", category="text-to-video",
                              description="Brand new", unit_price=0.07, openapi=doc)
    assert model.unit == "second" and model.status == "active"
    meta = http.get("/models", params={"endpoint_id": "acme/new-video"}).json()["models"][0]["metadata"]
    assert (meta["display_name"], meta["category"], meta["status"], meta["description"]) == (
        "New video", "text-to-video", "active", "Brand new")
    fakefal.set_model_status(KLING, "deprecated")
    assert http.get("/models", params={"endpoint_id": KLING}).json()["models"][0]["metadata"]["status"] == "deprecated"
    with pytest.raises(ValueError):
        fakefal.set_model_status(KLING, "removed")
    with pytest.raises(ValueError):
        fakefal.add_model("acme/x", status="gone")
    fakefal.reset()
    assert ids(http.get("/models", params={"endpoint_id": "acme/new-video"})) == []
    assert http.get("/models", params={"endpoint_id": KLING}).json()["models"][0]["metadata"]["status"] == "active"


# -- auth ----------------------------------------------------------------------------------------

def test_pricing_and_estimate_need_a_key_and_models_answer_without_one(fakefal: FakeFal, anon: httpx.Client,
                                                                       http: httpx.Client) -> None:
    for answer in (anon.get("/models/pricing", params={"endpoint_id": KLING}),
                   anon.post("/models/pricing/estimate", json={"estimate_type": "unit_price",
                                                               "endpoints": {KLING: {"unit_quantity": 5}}})):
        assert answer.status_code == 401
        assert answer.json() == {"error": {"type": "authorization_error", "message": "Authentication required"}}
    public = anon.get("/models", params={"endpoint_id": KLING})
    assert public.status_code == 200 and public.json()["models"][0]["metadata"]["is_favorited"] is None
    assert anon.get("/models", headers={"Authorization": "Bearer x"}).status_code == 401
    fakefal.accepted_keys = {"another"}
    wrong = http.get("/models", params={"endpoint_id": KLING})
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "Invalid API key"
    fakefal.accepted_keys = None
    fakefal.platform_models_require_key = True
    assert anon.get("/models").status_code == 401
    assert http.get("/models").status_code == 200
    assert fakefal.count("platform") == 7


# -- pricing and estimate ------------------------------------------------------------------------

def test_pricing_for_repeated_and_comma_separated_ids(http: httpx.Client) -> None:
    answer = http.get("/models/pricing", params=[("endpoint_id", SORA), ("endpoint_id", f"{KLING},acme/none")])
    assert answer.json() == {"prices": [
        {"endpoint_id": SORA, "unit_price": 0.10, "unit": "second", "currency": "USD"},
        {"endpoint_id": KLING, "unit_price": 0.05, "unit": "second", "currency": "USD"}],
        "next_cursor": None, "has_more": False}
    missing = http.get("/models/pricing")
    assert missing.status_code == 400 and missing.json()["error"]["type"] == "validation_error"
    assert http.post("/models/pricing").status_code == 405


def test_estimate_unit_price_and_historical(fakefal: FakeFal, http: httpx.Client) -> None:
    unit = http.post("/models/pricing/estimate", json={
        "estimate_type": "unit_price", "endpoints": {SORA: {"unit_quantity": 8}, KLING: {"unit_quantity": 5}}})
    assert unit.json() == {"estimate_type": "unit_price", "total_cost": 1.05, "currency": "USD"}
    fakefal.add_model("acme/flat", unit_price=0.02, unit="image", call_price=0.5)
    calls = http.post("/models/pricing/estimate", json={
        "estimate_type": "historical_api_price", "endpoints": {"acme/flat": {"call_quantity": 3}}})
    assert calls.json() == {"estimate_type": "historical_api_price", "total_cost": 1.5, "currency": "USD"}
    assert fakefal.of_kind("platform")[0].json["endpoints"][SORA] == {"unit_quantity": 8}
    for body in ({"estimate_type": "guess", "endpoints": {SORA: {"unit_quantity": 1}}},
                 {"estimate_type": "unit_price", "endpoints": {}},
                 {"estimate_type": "historical_api_price", "endpoints": {SORA: {"call_quantity": 0}}},
                 {"estimate_type": "historical_api_price", "endpoints": {SORA: {"call_quantity": 1.5}}},
                 {"estimate_type": "unit_price", "endpoints": {SORA: {"call_quantity": 1}}}):
        bad = http.post("/models/pricing/estimate", json=body)
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "validation_error", body
    unknown = http.post("/models/pricing/estimate", json={"estimate_type": "unit_price",
                                                          "endpoints": {"acme/none": {"unit_quantity": 1}}})
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found"
    assert http.get("/nowhere").status_code == 404


def test_platform_faults_apply_to_the_platform_kind(fakefal: FakeFal, http: httpx.Client) -> None:
    fakefal.add_fault("platform", Fault.http(503, {"error": {"type": "server_error", "message": "down"}}))
    assert http.get("/models").status_code == 503
    assert http.get("/models").status_code == 200
    assert fakefal.count("platform") == 2 and fakefal.count("submit") == 0


# -- OpenAPI documents ---------------------------------------------------------------------------

def test_openapi_documents_are_served_without_a_key_and_404_when_missing(fakefal: FakeFal, anon: httpx.Client) -> None:
    template = fakefal.environment()["SORA_WIDGETS_FAL_OPENAPI_URL"]
    kling = anon.get(template.format(endpoint_id=KLING))
    assert kling.status_code == 200
    doc = kling.json()
    assert doc["info"]["x-fal-metadata"] == {
        "endpointId": KLING, "category": "image-to-video", "playgroundUrl": f"https://fal.ai/models/{KLING}",
        "documentationUrl": f"https://fal.ai/models/{KLING}/api"}
    inputs = doc["components"]["schemas"]["KlingVideoV21StandardImageToVideoInput"]
    assert inputs["required"] == ["prompt", "image_url"] and inputs["properties"]["duration"]["enum"] == ["5", "10"]
    assert f"/{KLING}" in doc["paths"] and f"/{KLING}/requests/{{request_id}}" in doc["paths"]
    sora = anon.get(template.format(endpoint_id=SORA)).json()  # the package's bundled document
    assert sora["info"]["x-fal-metadata"]["endpointId"] == SORA
    missing = anon.get(template.format(endpoint_id="acme/none"))
    assert missing.status_code == 404 and "acme/none" in missing.json()["detail"]
    custom = {"openapi": "3.0.4", "info": {"title": "x"}}
    fakefal.add_openapi("acme/none", custom)
    assert anon.get(template.format(endpoint_id="acme/none")).json() == custom
    fakefal.add_openapi("acme/none", None)
    assert anon.get(template.format(endpoint_id="acme/none")).status_code == 404
    assert fakefal.count("openapi") == 5 and fakefal.count("platform") == 0


# -- retired endpoints ---------------------------------------------------------------------------

def test_retire_makes_a_submit_answer_404_with_a_json_detail_and_no_job(fakefal: FakeFal, client: fal_client.SyncClient,
                                                                          http: httpx.Client) -> None:
    fakefal.configure(queue_s=0, run_s=0.05)
    before = client.submit(SORA, {"prompt": "p"})
    fakefal.retire(SORA)
    raw = http.post(f"{fakefal.base_url}/{SORA}", json={"prompt": "p"})
    assert raw.status_code == 404 and raw.json() == {"detail": "Application 'sora-2' not found"}
    with pytest.raises(FalClientHTTPError) as info:
        client.submit(SORA, {"prompt": "p"})
    assert info.value.status_code == 404 and info.value.message == "Application 'sora-2' not found"
    assert len(fakefal.jobs) == 1 and fakefal.count("submit") == 3
    assert client.result(SORA, before.request_id)["video"]  # a job from before still finishes
    assert client.submit("fal-ai/sora-2/text-to-video", {"prompt": "p"}).request_id  # other ids are untouched
    fakefal.reset()
    assert client.submit(SORA, {"prompt": "p"}).request_id


def test_retire_a_whole_app_with_another_status_and_detail(fakefal: FakeFal, http: httpx.Client) -> None:
    fakefal.retire("fal-ai/sora-2", status=410, detail="Sora 2 was shut down")
    for endpoint in SORA_FAMILY:
        answer = http.post(f"{fakefal.base_url}/{endpoint}", json={})
        assert answer.status_code == 410 and answer.json() == {"detail": "Sora 2 was shut down"}
    assert not fakefal.jobs
    fakefal.unretire("fal-ai/sora-2")
    assert http.post(f"{fakefal.base_url}/{SORA}", json={}).status_code == 200


# -- any endpoint's queue ------------------------------------------------------------------------

def test_real_fal_client_runs_a_multi_slash_endpoint_with_its_own_result(fakefal: FakeFal,
                                                                        client: fal_client.SyncClient) -> None:
    fakefal.configure(queue_s=0.05, run_s=0.1)
    videos = {"videos": [{"url": fakefal.media_url("video.mp4"), "content_type": "video/mp4",
                          "file_size": len(fakefal.media["video.mp4"])}]}
    spec = fakefal.configure_endpoint(KLING, result=videos)
    assert spec.result == videos and spec.run_s == 0.1
    fakefal.configure_endpoint(VEO, result={"image": {"url": fakefal.media_url("thumbnail.webp")}})
    handle = client.submit(KLING, {"prompt": "p", "image_url": "https://x/y.png"})
    assert handle.status_url == f"{fakefal.base_url}/fal-ai/kling-video/requests/{handle.request_id}/status"
    assert client.result(KLING, handle.request_id) == videos
    assert isinstance(handle.status(), Completed)
    assert client.subscribe(VEO, {"prompt": "p"})["image"]["url"].endswith("thumbnail.webp")
    assert "video_id" in client.subscribe(SORA, {"prompt": "p"})  # the default Sora-like output
    assert [r.path for r in fakefal.of_kind("submit")] == [f"/{KLING}", f"/{VEO}", f"/{SORA}"]
    assert fakefal.jobs[handle.request_id].app == KLING


def test_cancel_and_errors_on_any_endpoint(fakefal: FakeFal, client: fal_client.SyncClient) -> None:
    pixverse = "fal-ai/pixverse/v5/image-to-video"
    fakefal.configure(queue_s=5, run_s=5)
    handle = client.submit(pixverse, {"prompt": "p"})
    handle.cancel()
    assert isinstance(handle.status(), Completed)
    fakefal.configure_endpoint(pixverse, queue_s=0, run_s=0.05, error=validation_error("duration", "bad"))
    with pytest.raises(FalClientHTTPError) as info:
        client.subscribe(pixverse, {"prompt": "p"})
    assert info.value.status_code == 422
    fakefal.add_job(error=None)  # a one-off names `error`; the endpoint's queue_s/run_s still apply
    assert client.subscribe(pixverse, {"prompt": "p"})["video"]
    last = list(fakefal.jobs.values())[-1]
    assert last.spec.run_s == 0.05 and last.spec.error is None
    with pytest.raises(TypeError):
        fakefal.configure_endpoint(pixverse, no_such_field=1)
