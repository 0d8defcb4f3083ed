"""Reading fal's OpenAPI documents: find an endpoint's input and output schemas, resolve `$ref`,
`allOf` and `anyOf [T, null]` (an optional T), and turn each property into a `Field`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._errors import SchemaError
from .fields import UNSET, Field


def input_fields(doc: Mapping[str, Any], endpoint_id: str) -> tuple[Field, ...]:
    """The fields `endpoint_id` accepts, in their published order; SchemaError when the document
    has no input schema for it."""
    return _fields_of(doc, _input_schema(doc, endpoint_id))


def output_fields(doc: Mapping[str, Any], endpoint_id: str) -> tuple[Field, ...]:
    """The fields of `endpoint_id`'s result, in their published order (none when not published)."""
    node = _output_schema(doc, endpoint_id)
    return _fields_of(doc, node) if node else ()


def endpoint_id_of(doc: Mapping[str, Any]) -> str:
    """The endpoint a document describes: fal's metadata, else its first POST path."""
    meta = doc.get("info", {}).get("x-fal-metadata", {})
    if meta.get("endpointId"):
        return str(meta["endpointId"])
    paths: Mapping[str, Any] = doc.get("paths", {})
    for path, item in paths.items():
        if "post" in item and "/requests/" not in path:
            return path.strip("/")
    raise SchemaError("The document names no endpoint: no info.x-fal-metadata.endpointId and "
                      "no POST path to submit to.")


def _input_schema(doc: Mapping[str, Any], endpoint_id: str) -> Mapping[str, Any]:
    post = doc.get("paths", {}).get("/" + endpoint_id, {}).get("post") or {}
    found = _body_schema(doc, post.get("requestBody", {}), "Input")
    if found is None:
        raise SchemaError(f"No input schema found for {endpoint_id}: expected a POST to "
                          f"/{endpoint_id} with a JSON request body.", endpoint_id=endpoint_id)
    return found


def _output_schema(doc: Mapping[str, Any], endpoint_id: str) -> Mapping[str, Any] | None:
    item = doc.get("paths", {}).get(f"/{endpoint_id}/requests/{{request_id}}", {})
    return _body_schema(doc, item.get("get", {}).get("responses", {}).get("200", {}), "Output")


def _body_schema(doc: Mapping[str, Any], body: Mapping[str, Any], suffix: str) -> Mapping[str, Any] | None:
    """The schema of a request or response body, else the first component named `*<suffix>`."""
    content: Mapping[str, Mapping[str, Any]] = body.get("content", {})
    for media in content.values():
        if "schema" in media:
            found: Mapping[str, Any] = media["schema"]
            return found
    return next((node for name, node in _components(doc).items() if name.endswith(suffix)), None)


def _components(doc: Mapping[str, Any]) -> Mapping[str, Mapping[str, Any]]:
    """The document's named schemas (`components.schemas`)."""
    schemas: Mapping[str, Mapping[str, Any]] = doc.get("components", {}).get("schemas", {})
    return schemas


def _lookup(doc: Mapping[str, Any], ref: str) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise SchemaError(f"Only local $ref are supported, got {ref!r}.")
    node: Any = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            raise SchemaError(f"$ref {ref!r} points at nothing in the document.")
        node = node[part]
    if not isinstance(node, Mapping):
        raise SchemaError(f"$ref {ref!r} points at a {type(node).__name__}, not a schema.")
    return node


def resolve(doc: Mapping[str, Any], node: Mapping[str, Any], _seen: frozenset[str] = frozenset()
            ) -> dict[str, Any]:
    """Inline `$ref` and merge `allOf`; an `anyOf`/`oneOf` with null becomes `nullable`."""
    node = dict(node)
    if "$ref" in node:
        ref = node.pop("$ref")
        if ref in _seen:
            raise SchemaError(f"$ref {ref!r} refers to itself.")
        node = {**resolve(doc, _lookup(doc, ref), _seen | {ref}), **node}
    for sub in node.pop("allOf", []):
        merged = resolve(doc, sub, _seen)
        required = sorted(set(node.get("required", [])) | set(merged.get("required", [])))
        properties = {**merged.get("properties", {}), **node.get("properties", {})}
        node = {**merged, **node}
        if required:
            node["required"] = required
        if properties:
            node["properties"] = properties
    for key in ("anyOf", "oneOf"):
        if key not in node:
            continue
        branches = [resolve(doc, b, _seen) for b in node.pop(key)]
        real = [b for b in branches if b.get("type") != "null"]
        if len(real) < len(branches):
            node["nullable"] = True
        if len(real) == 1:
            node = {**real[0], **node}
        elif real and all(b.get("type") == "string" for b in real):
            # fal's "suggestions or any text": anyOf [{enum: [...]}, {type: string}]
            free = next((b for b in real if "enum" not in b), None)
            if free is None:
                node = {**real[0], **node, "enum": [v for b in real for v in b.get("enum", [])]}
            else:
                node = {**free, **node, "x-suggestions": [v for b in real for v in b.get("enum", [])]}
        elif real:
            node.setdefault("x-union", real)
    if isinstance(node.get("type"), list):
        types = [t for t in node["type"] if t != "null"]
        node["nullable"] = node.get("nullable", False) or len(types) < len(node["type"])
        node["type"] = types[0] if len(types) == 1 else "any"
    return node


def _type_of(node: Mapping[str, Any]) -> str:
    if "type" in node:
        return str(node["type"])
    values = node.get("enum") or []
    if values and all(isinstance(v, bool) for v in values):
        return "boolean"
    if values and all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "integer"
    if values and all(isinstance(v, (int, float)) for v in values):
        return "number"
    if values and all(isinstance(v, str) for v in values):
        return "string"
    if "properties" in node:
        return "object"
    if "items" in node:
        return "array"
    return "any"


def _fields_of(doc: Mapping[str, Any], node: Mapping[str, Any]) -> tuple[Field, ...]:
    schema = resolve(doc, node)
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    order = list(schema.get("x-fal-order-properties", []))
    names = [n for n in order if n in properties] + [n for n in properties if n not in order]
    return tuple(_field(doc, name, properties[name], name in required) for name in names)


def _field(doc: Mapping[str, Any], name: str, raw: Mapping[str, Any], required: bool) -> Field:
    node = resolve(doc, raw)
    items = resolve(doc, node["items"]) if isinstance(node.get("items"), Mapping) else {}
    examples = node.get("examples", [node["example"]] if "example" in node else [])
    ui: Mapping[str, Any] = node["ui"] if isinstance(node.get("ui"), Mapping) else {}
    suggestions = node.get("x-suggestions")
    if suggestions and not examples:
        examples = list(suggestions)
    return Field(
        name=name,
        type=_type_of(node),
        required=required,
        default=node.get("default", UNSET),
        enum=tuple(node["enum"]) if "enum" in node else None,
        description=str(node.get("description", "")),
        title=str(node.get("title", "")),
        examples=tuple(examples) if isinstance(examples, list) else (examples,),
        nullable=bool(node.get("nullable", False)),
        minimum=node.get("minimum"),
        maximum=node.get("maximum"),
        exclusive_minimum=_exclusive(node, "exclusiveMinimum", "minimum"),
        exclusive_maximum=_exclusive(node, "exclusiveMaximum", "maximum"),
        min_length=node.get("minLength"),
        max_length=node.get("maxLength"),
        min_items=node.get("minItems"),
        max_items=node.get("maxItems"),
        item_type=_type_of(items) if items else None,
        item_enum=tuple(items["enum"]) if "enum" in items else None,
        format=node.get("format"),
        ui_field=str(ui["field"]) if isinstance(ui.get("field"), str) else None,
        hidden=bool(ui.get("hidden", False)),
        important=bool(ui.get("important", False)),
        limits=dict(node["x-fal"]) if isinstance(node.get("x-fal"), Mapping) else {},
        media=_media_kind(name, node, items),
    )


def _media_kind(name: str, node: Mapping[str, Any], items: Mapping[str, Any]) -> str | None:
    """"video", "image" or "file" for an output holding fal File objects ({url, content_type}), by
    the object's title, the field's name, or its content type; None for anything else."""
    target = items if node.get("type") == "array" else node
    if "url" not in target.get("properties", {}):
        return None
    words = f"{target.get('title', '')} {name}".lower()
    for kind in ("video", "image"):
        if kind in words:
            return kind
    if any(w in words for w in ("thumbnail", "spritesheet", "frame", "poster")):
        return "image"
    return "file"


def _exclusive(node: Mapping[str, Any], key: str, plain: str) -> float | None:
    """OpenAPI 3.1 gives the bound as a number; 3.0 as a flag on minimum/maximum."""
    value = node.get(key)
    if isinstance(value, bool):
        return node.get(plain) if value else None
    return value

