"""Reading OpenAPI documents into fields: $ref, allOf, anyOf-null, order, bounds, loading."""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import pytest

import sora_widgets as sw
from sora_widgets.schema import UNSET

# A fal-shaped document for an endpoint the package has never seen, written here by hand.
UPSCALER_DOC = {
    "openapi": "3.0.4",
    "info": {"title": "Toy Upscaler", "version": "1", "x-fal-metadata": {"endpointId": "acme/upscale"}},
    "components": {
        "schemas": {
            "Scale": {"type": "integer", "enum": [2, 4], "title": "Scale", "default": 2},
            "Base": {
                "type": "object",
                "properties": {"seed": {"anyOf": [{"type": "integer", "minimum": 0}, {"type": "null"}],
                                        "description": "Random seed"}},
            },
            "UpscaleInput": {
                "allOf": [{"$ref": "#/components/schemas/Base"}],
                "type": "object",
                "x-fal-order-properties": ["image_url", "scale", "strength", "face_fix", "seed",
                                           "styles", "note"],
                "required": ["image_url"],
                "properties": {
                    "note": {"type": "string", "maxLength": 10, "examples": ["hello"]},
                    "image_url": {"type": "string", "description": "Image to upscale"},
                    "scale": {"allOf": [{"$ref": "#/components/schemas/Scale"}], "description": "Factor"},
                    "strength": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5},
                    "face_fix": {"type": "boolean", "default": False},
                    "styles": {"anyOf": [{"type": "array", "maxItems": 2,
                                          "items": {"type": "string", "enum": ["film", "anime", "clay"]}},
                                         {"type": "null"}]},
                },
            },
            "UpscaleOutput": {"type": "object", "required": ["image"],
                              "properties": {"image": {"$ref": "#/components/schemas/File"}}},
            "File": {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
        }
    },
    "paths": {
        "/acme/upscale": {"post": {"requestBody": {"content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/UpscaleInput"}}}}}},
        "/acme/upscale/requests/{request_id}": {"get": {"responses": {"200": {"content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/UpscaleOutput"}}}}}}},
    },
}


@pytest.fixture
def toy() -> sw.EndpointSchema:
    return sw.EndpointSchema.from_openapi(UPSCALER_DOC)


def test_unknown_endpoint_fields_come_out_in_published_order(toy: sw.EndpointSchema) -> None:
    assert toy.endpoint_id == "acme/upscale"
    assert toy.names == ["image_url", "scale", "strength", "face_fix", "seed", "styles", "note"]
    assert toy.required == ["image_url"]
    assert [o.name for o in toy.outputs] == ["image"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("scale", {"type": "integer", "enum": (2, 4), "default": 2, "description": "Factor"}),
        ("strength", {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5}),
        ("face_fix", {"type": "boolean", "default": False, "kind": "boolean"}),
        ("seed", {"type": "integer", "nullable": True, "minimum": 0, "default": UNSET}),
        ("styles", {"type": "array", "nullable": True, "max_items": 2, "item_type": "string",
                    "item_enum": ("film", "anime", "clay"), "kind": "list"}),
        ("note", {"max_length": 10, "examples": ("hello",), "required": False}),
        ("image_url", {"required": True, "kind": "image", "description": "Image to upscale"}),
    ],
)
def test_field_attributes_survive_ref_allof_and_anyof_null(toy: sw.EndpointSchema, name: str,
                                                            expected: dict) -> None:
    field = toy[name]
    for attribute, value in expected.items():
        assert getattr(field, attribute) == value, attribute


def test_a_missing_field_is_not_found_naming_it_and_the_endpoint(toy: sw.EndpointSchema) -> None:
    with pytest.raises(sw.NotFoundError) as caught:
        toy["scael"]
    assert isinstance(caught.value, KeyError) and caught.value.key == "scael"
    assert str(caught.value) == 'acme/upscale has no field \'scael\' (did you mean "scale"?)'
    assert "scael" not in toy


def test_validation_of_an_unseen_endpoint_needs_no_code(toy: sw.EndpointSchema) -> None:
    args = toy.validate({"image_url": "https://e.com/a.png", "scale": "4", "styles": ["film"]})
    assert args == {"image_url": "https://e.com/a.png", "scale": 4, "strength": 0.5,
                    "face_fix": False, "styles": ["film"]}
    with pytest.raises(sw.ValidationError) as info:
        toy.validate({"image_url": "x", "scale": 3, "strength": 2, "styles": ["film", "oil"]})
    assert info.value.fields == ["scale", "strength", "styles"]


def test_bad_references_are_schema_errors() -> None:
    doc = json.loads(json.dumps(UPSCALER_DOC))
    doc["components"]["schemas"]["UpscaleInput"]["properties"]["scale"] = {"$ref": "#/components/schemas/Nope"}
    with pytest.raises(sw.SchemaError, match="Nope"):
        sw.EndpointSchema.from_openapi(doc)


def test_self_referencing_schema_is_refused() -> None:
    doc = json.loads(json.dumps(UPSCALER_DOC))
    doc["components"]["schemas"]["Loop"] = {"$ref": "#/components/schemas/Loop"}
    doc["components"]["schemas"]["UpscaleInput"]["properties"]["scale"] = {"$ref": "#/components/schemas/Loop"}
    with pytest.raises(sw.SchemaError, match="itself"):
        sw.EndpointSchema.from_openapi(doc)


def test_openapi_31_type_lists_and_numeric_exclusive_bounds() -> None:
    doc = json.loads(json.dumps(UPSCALER_DOC))
    props = doc["components"]["schemas"]["UpscaleInput"]["properties"]
    props["strength"] = {"type": ["number", "null"], "exclusiveMinimum": 0, "exclusiveMaximum": 1}
    field = sw.EndpointSchema.from_openapi(doc)["strength"]
    assert (field.type, field.nullable, field.exclusive_minimum, field.exclusive_maximum) == (
        "number", True, 0, 1)


def test_bundled_image_to_video_schema_has_all_nine_inputs_and_four_outputs() -> None:
    schema = sw.load_schema("fal-ai/sora-2/image-to-video")
    assert sorted(schema.names) == sorted(["prompt", "image_url", "resolution", "aspect_ratio",
                                           "duration", "delete_video", "model",
                                           "detect_and_block_ip", "character_ids"])
    order = schema.document["components"]["schemas"]["Sora2ImageToVideoInput"]
    assert schema.names == order["x-fal-order-properties"]
    assert schema.required == ["prompt", "image_url"]
    assert schema["duration"].enum == (4, 8, 12, 16, 20) and schema["duration"].default == 4
    assert schema["model"].enum == ("sora-2", "sora-2-2025-12-08", "sora-2-2025-10-06")
    assert schema["aspect_ratio"].enum == ("auto", "9:16", "16:9")
    assert schema["delete_video"].default is True and schema["detect_and_block_ip"].default is False
    assert schema["character_ids"].max_items == 2
    assert schema["prompt"].max_length == 5000
    assert [o.name for o in schema.outputs] == ["video", "video_id", "thumbnail", "spritesheet"]
    assert schema.source["retrieved"]


@pytest.mark.parametrize("endpoint", [
    "fal-ai/sora-2/image-to-video", "fal-ai/sora-2/image-to-video/pro",
    "fal-ai/sora-2/text-to-video", "fal-ai/sora-2/text-to-video/pro",
    "fal-ai/sora-2/video-to-video/remix",
])
def test_every_bundled_endpoint_loads_with_its_provenance(endpoint: str) -> None:
    assert endpoint in sw.bundled_endpoints()
    schema = sw.load_schema(endpoint)
    assert schema.endpoint_id == endpoint
    assert "prompt" in schema.required
    assert schema.source.get("urls") and schema.source.get("retrieved")
    defaults = schema.defaults()
    assert all(schema[name].required is False for name in defaults)


def test_unknown_bundled_endpoint_suggests_the_near_one() -> None:
    with pytest.raises(sw.SchemaError, match='did you mean "fal-ai/sora-2/image-to-video"'):
        sw.load_schema("fal-ai/sora-2/image-to-vid")


def test_load_schema_reads_a_local_document_afresh_each_time(tmp_path: Path) -> None:
    path = tmp_path / "upscale.json"
    path.write_text(json.dumps(UPSCALER_DOC))
    assert sw.load_schema(str(path)).endpoint_id == "acme/upscale"
    edited = json.loads(json.dumps(UPSCALER_DOC))
    edited["info"]["x-fal-metadata"]["endpointId"] = "acme/upscale-v2"
    path.write_text(json.dumps(edited))
    assert sw.load_schema(str(path)).endpoint_id == "acme/upscale-v2"


class _DocHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server's name
        body = json.dumps(UPSCALER_DOC).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_fetch_schema_reads_and_caches_the_live_document(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DocHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/openapi.json?endpoint_id={{endpoint_id}}"
        schema = sw.fetch_schema("acme/upscale", url=url)
    finally:
        server.shutdown()
    assert schema.names[0] == "image_url"
    cached = tmp_path / "schemas" / "acme__upscale.json"
    assert json.loads(cached.read_text())["info"]["title"] == "Toy Upscaler"
    assert sw.load_schema("acme/upscale").names == schema.names


def test_fetch_schema_offline_is_a_clear_error() -> None:
    with pytest.raises(sw.OfflineError, match="Could not reach"):
        sw.fetch_schema("acme/upscale", url="https://127.0.0.1:9/x?e={endpoint_id}", timeout=2)


def test_schema_renders_itself_escaped(toy: sw.EndpointSchema) -> None:
    doc = json.loads(json.dumps(UPSCALER_DOC))
    doc["components"]["schemas"]["UpscaleInput"]["properties"]["note"]["description"] = "<b>x</b>"
    html = sw.EndpointSchema.from_openapi(doc)._repr_html_()
    assert "&lt;b&gt;x&lt;/b&gt;" in html and "<b>x</b>" not in html
    assert repr(toy).startswith("EndpointSchema('acme/upscale'")


def test_a_corrupt_cached_document_is_a_schema_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(tmp_path))
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "acme__broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(sw.SchemaError, match="not a readable OpenAPI JSON document") as caught:
        sw.load_schema("acme/broken")
    assert caught.value.endpoint_id == "acme/broken"
