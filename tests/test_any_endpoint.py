"""Any fal video endpoint, from its OpenAPI document alone: hints, panel, preview, history, media.

The document below is written here, in a shape no bundled endpoint has: the image is
`start_image_url` (a `ui.field` image with `x-fal` limits), durations are the strings "5" and "10",
a hidden field, an important boolean, and an output with a `videos` list and a poster `image`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import sora_widgets as sw
from sora_widgets.history import History
from sora_widgets.media import find_media

ENDPOINT = "acme/unseen-video/v1/image-to-video"


def unseen_document() -> dict[str, Any]:
    """An OpenAPI document of an endpoint the package has never seen."""
    file = {"type": "object", "title": "File", "required": ["url"],
            "properties": {"url": {"type": "string"}, "content_type": {"type": "string"},
                           "file_size": {"type": "integer"}}}
    return {
        "openapi": "3.0.4",
        "info": {"title": "Unseen video", "x-fal-metadata": {"endpointId": ENDPOINT,
                                                             "category": "image-to-video"}},
        "paths": {
            f"/{ENDPOINT}": {"post": {"requestBody": {"content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/UnseenInput"}}}}}},
            f"/{ENDPOINT}/requests/{{request_id}}": {"get": {"responses": {"200": {"content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/UnseenOutput"}}}}}}},
        },
        "components": {"schemas": {
            "UnseenInput": {
                "type": "object",
                "x-fal-order-properties": ["prompt", "start_image_url", "duration", "camera_fixed",
                                           "aspect_ratio", "internal_flag"],
                "required": ["prompt", "start_image_url"],
                "properties": {
                    "prompt": {"type": "string", "maxLength": 800},
                    "start_image_url": {"type": "string", "ui": {"field": "image"},
                                        "x-fal": {"max_file_size": 50_000, "min_width": 32,
                                                  "max_aspect_ratio": 2.5}},
                    "duration": {"type": "string", "enum": ["5", "10"], "default": "5"},
                    "camera_fixed": {"type": "boolean", "default": False, "ui": {"important": True}},
                    "aspect_ratio": {"anyOf": [{"type": "string", "enum": ["16:9", "1:1"]},
                                               {"type": "string"}], "default": "16:9"},
                    "internal_flag": {"type": "boolean", "default": True, "ui": {"hidden": True}},
                },
            },
            "UnseenOutput": {"type": "object", "required": ["videos"], "properties": {
                "videos": {"type": "array", "items": {"allOf": [{"$ref": "#/components/schemas/VideoFile"}]}},
                "image": {"$ref": "#/components/schemas/File"}, "seed": {"type": "integer"}}},
            "VideoFile": {**file, "title": "VideoFile"},
            "File": file,
        }},
    }


@pytest.fixture
def document(tmp_path: Path) -> Path:
    path = tmp_path / "unseen.json"
    path.write_text(json.dumps(unseen_document()))
    return path


def test_the_document_gives_fields_with_fals_hints(document: Path) -> None:
    schema = sw.load_schema(document)
    assert schema.endpoint_id == ENDPOINT
    image = schema["start_image_url"]
    assert image.kind == "image" and image.limits["max_file_size"] == 50_000
    assert schema["internal_flag"].hidden and schema["camera_fixed"].important
    assert schema["duration"].seconds == (5.0, 10.0)
    free = schema["aspect_ratio"]  # suggestions, yet any text is allowed
    assert free.enum is None and free.type == "string" and "1:1" in free.examples
    assert schema.validate({"prompt": "x", "start_image_url": "https://e.com/a.png",
                            "aspect_ratio": "21:9"})["aspect_ratio"] == "21:9"
    outputs = {f.name: f.media for f in schema.outputs}
    assert outputs == {"videos": "video", "image": "image", "seed": None}


def test_the_panel_hides_hidden_fields_and_keeps_important_ones_in_view(document: Path,
                                                                        tmp_path: Path) -> None:
    import ipywidgets as widgets

    panel = sw.Panel(document, backend="preview", history=History(tmp_path / "runs"))
    assert panel.endpoint == ENDPOINT
    assert "internal_flag" not in panel.controls and "camera_fixed" in panel.controls
    folded = [w for w in panel.fields_box.children if isinstance(w, widgets.Accordion)]
    assert not folded  # the only boolean is important, so nothing goes under "Advanced"
    panel.arguments = {"prompt": "A lighthouse"}
    assert panel.arguments == {"prompt": "A lighthouse", "duration": "5", "camera_fixed": False,
                               "aspect_ratio": "16:9"}


def test_a_local_image_over_the_endpoints_limits_is_refused_naming_the_field(
        document: Path, tmp_path: Path) -> None:
    from helpers import png_bytes

    log = History(tmp_path / "runs")
    wide = tmp_path / "wide.png"
    wide.write_bytes(png_bytes(size=(300, 40)))  # aspect 7.5, over the 2.5 allowed
    with pytest.raises(sw.ValidationError) as caught:
        sw.submit(endpoint=document, prompt="x", start_image_url=wide, backend="preview", history=log)
    assert caught.value.fields == ["start_image_url"]
    assert "aspect ratio 7.50, above the maximum 2.5" in str(caught.value)
    assert len(log) == 0  # nothing recorded, nothing sent


def test_an_unseen_endpoint_generates_offline_into_the_history(document: Path, tmp_path: Path,
                                                               image: Path) -> None:
    log = History(tmp_path / "runs")
    gen = sw.generate(endpoint=document, prompt="Waves roll in", start_image_url=image,
                      duration="10", aspect_ratio="1:1", backend="preview", history=log,
                      timeout=120)
    assert gen.ok and gen.endpoint_id == ENDPOINT
    from sora_widgets.media import probe_video

    info = probe_video(gen.video_path)
    assert info.duration_s == pytest.approx(10, abs=0.1) and info.width == info.height  # 1:1
    row = log.get(gen.history_id)
    assert row["endpoint_id"] == ENDPOINT and row["arguments"]["duration"] == "10"
    assert Path(row["video_path"]).is_file() and row["result"]["video"]["url"]
    assert [m["kind"] for m in row["media"]][:1] == ["video"]


def test_media_are_found_whatever_the_output_calls_them() -> None:
    output = {"videos": [{"url": "https://cdn.example/a.mp4", "content_type": "video/mp4"},
                         {"url": "https://cdn.example/b.webm"}],
              "image": {"url": "https://cdn.example/poster.png", "file_size": 12},
              "seed": 7, "video_id": "v1"}
    found = find_media(output)
    assert [(m.role, m.kind) for m in found] == [("videos[0]", "video"), ("videos[1]", "video"),
                                                 ("image", "image")]
    assert found[2].file_size == 12


def test_a_number_for_a_text_enum_of_lengths_becomes_the_option_that_means_it() -> None:
    veo = sw.load_schema("fal-ai/veo3.1/image-to-video")  # durations "4s", "6s", "8s"
    base = {"prompt": "x", "image_url": "https://e.com/a.png"}
    assert veo.validate({**base, "duration": 6})["duration"] == "6s"
    kling = sw.load_schema("fal-ai/kling-video/v2.1/standard/image-to-video")  # "5", "10"
    assert kling.validate({**base, "duration": 10})["duration"] == "10"
    with pytest.raises(sw.ValidationError) as caught:
        kling.validate({**base, "duration": 7})
    assert caught.value.errors == [("duration", 'must be one of "5", "10" (got 7)')]
