"""Endpoint schemas as data: read fal's OpenAPI documents into ordered, typed fields.

fal publishes one OpenAPI document per endpoint. `EndpointSchema.from_openapi` reads any of
them (resolving `$ref`, `allOf`, and `anyOf [T, null]` as an optional T), so a new endpoint or
model snapshot is a new JSON file or a fetched document, never a code change.
"""

from __future__ import annotations

import functools
import html
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

from .._errors import OfflineError, SchemaError
from .._home import run_home
from .._values import _bounds_phrase, _show

# the value helpers live in _values; schema re-exports them for the modules that read fields
from .._values import did_you_mean as did_you_mean
from .._values import to_lines as to_lines
from .._values import to_ratio as to_ratio
from .._values import to_seconds as to_seconds

LIVE_SCHEMA_URL = "https://fal.ai/api/openapi/queue/openapi.json?endpoint_id={endpoint_id}"
DEFAULT_ENDPOINT = "fal-ai/sora-2/image-to-video"
MAX_DOCUMENT_BYTES = 10 << 20  # fal's documents are tens of kilobytes


class _Unset:
    """Marks a field with no default, which is different from a default of None."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Field:
    """One input or output field of an endpoint, with everything needed to build and check it."""

    name: str
    type: str  # string | integer | number | boolean | array | object | any
    required: bool = False
    default: Any = UNSET
    enum: tuple[Any, ...] | None = None
    description: str = ""
    title: str = ""
    examples: tuple[Any, ...] = ()
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    item_type: str | None = None
    item_enum: tuple[Any, ...] | None = None
    format: str | None = None
    #: fal's `ui.field` hint ("image", "video", "audio", "file"), or None
    ui_field: str | None = None
    #: fal's `ui.hidden`: the field gets no control (its default is sent)
    hidden: bool = False
    #: fal's `ui.important`: the field stays out of "Advanced"
    important: bool = False
    #: fal's `x-fal` media limits (max_file_size, min_width, max_height, max_aspect_ratio, ...)
    limits: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: for outputs: "video", "image" or "file" when the field holds fal File objects (or a list)
    media: str | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not UNSET

    @property
    def kind(self) -> str:
        """What sort of control fits this field: enum, boolean, integer, number, text, image,
        list, object or any."""
        if self.enum is not None:
            return "enum"
        if self.ui_field == "image" or (self.type == "string" and looks_like_image(self.name)):
            return "image"
        if self.type == "string":
            return "text"
        if self.type == "array":
            return "list"
        return self.type

    @property
    def label(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()

    @property
    def seconds(self) -> tuple[float, ...] | None:
        """For a duration-like enum, each allowed value in seconds (4, "4s", "5" ...), else None."""
        if self.enum is None:
            return None
        values = tuple(to_seconds(v) for v in self.enum)
        return None if any(v is None for v in values) else values  # type: ignore[return-value]

    def allowed(self) -> str:
        """A short phrase naming what values this field accepts, for messages and help text."""
        if self.enum is not None:
            return "one of " + ", ".join(_show(v) for v in self.enum)
        bounds = _bounds_phrase(self)
        return f"{self.type}{' ' + bounds if bounds else ''}"


def looks_like_image(name: str) -> bool:
    """Image inputs by fal's naming habits: image_url, start_image_url, first_frame_url ..."""
    return name in ("image_url", "image") or name.endswith(("image_url", "frame_url"))


#: the names endpoints give the length of the video they are asked for
DURATION_FIELDS = ("duration", "duration_seconds", "num_seconds")



@dataclass(frozen=True)
class EndpointSchema:
    """An endpoint's inputs and outputs in their published order; validates arguments."""

    endpoint_id: str
    fields: tuple[Field, ...]
    outputs: tuple[Field, ...] = ()
    title: str = ""
    source: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_openapi(cls, doc: Mapping[str, Any], *, endpoint_id: str | None = None) -> EndpointSchema:
        """Read a fal OpenAPI document (as served per endpoint) into an EndpointSchema."""
        endpoint_id = endpoint_id or _endpoint_id_of(doc)
        input_node = _input_schema(doc, endpoint_id)
        output_node = _output_schema(doc, endpoint_id)
        info = doc.get("info", {})
        return cls(
            endpoint_id=endpoint_id,
            fields=_fields_of(doc, input_node),
            outputs=_fields_of(doc, output_node) if output_node else (),
            title=str(info.get("title", "")),
            source=info.get("x-sora-widgets-source", {}),
            document=doc,
        )

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.endpoint_id} has no field {name!r}{did_you_mean(name, self.names)}")

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[Field]:
        return iter(self.fields)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def defaults(self) -> dict[str, Any]:
        """The request a user starts from: every field that has a default, at its default."""
        return {f.name: f.default for f in self.fields if f.has_default}

    def validate(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """Check arguments locally; return them normalised with defaults filled, or raise
        ValidationError listing every problem."""
        from .validation import validate

        return validate(self, arguments)

    def __repr__(self) -> str:
        return f"EndpointSchema({self.endpoint_id!r}, fields={self.names})"

    def _repr_html_(self) -> str:
        rows = []
        for f in self.fields:
            default = _show(f.default) if f.has_default else ""
            rows.append(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in (
                    f.name + (" *" if f.required else ""), f.type, f.allowed(), default,
                    f.description)) + "</tr>")
        head = "".join(f"<th>{h}</th>" for h in ("field", "type", "allowed", "default", "description"))
        return (f"<b>{html.escape(self.endpoint_id)}</b> (* required)"
                f"<table><tr>{head}</tr>{''.join(rows)}</table>")


# --- reading OpenAPI documents -------------------------------------------------------------


def _endpoint_id_of(doc: Mapping[str, Any]) -> str:
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
    post = doc.get("paths", {}).get("/" + endpoint_id, {}).get("post")
    if post is not None:
        content: Mapping[str, Mapping[str, Any]] = post.get("requestBody", {}).get("content", {})
        for media in content.values():
            if "schema" in media:
                found: Mapping[str, Any] = media["schema"]
                return found
    for name, node in _components(doc).items():
        if name.endswith("Input"):
            return node
    raise SchemaError(f"No input schema found for {endpoint_id}: expected a POST to "
                      f"/{endpoint_id} with a JSON request body.", endpoint_id=endpoint_id)


def _output_schema(doc: Mapping[str, Any], endpoint_id: str) -> Mapping[str, Any] | None:
    item = doc.get("paths", {}).get(f"/{endpoint_id}/requests/{{request_id}}", {})
    ok = item.get("get", {}).get("responses", {}).get("200", {})
    content: Mapping[str, Mapping[str, Any]] = ok.get("content", {})
    for media in content.values():
        if "schema" in media:
            found: Mapping[str, Any] = media["schema"]
            return found
    for name, node in _components(doc).items():
        if name.endswith("Output"):
            return node
    return None


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


# --- finding schemas -----------------------------------------------------------------------


def _file_name(endpoint_id: str) -> str:
    return endpoint_id.strip("/").replace("/", "__") + ".json"


def bundled_endpoints() -> list[str]:
    """The endpoint ids whose schema ships with the package."""
    folder = resources.files("sora_widgets") / "schemas"
    return sorted(p.name[:-5].replace("__", "/") for p in folder.iterdir()
                  if p.name.endswith(".json"))


def load_schema(endpoint_id: str | os.PathLike[str] = DEFAULT_ENDPOINT) -> EndpointSchema:
    """The bundled schema of `endpoint_id` (or of a local OpenAPI JSON file given by path).

    Bundled schemas are read once per process; a file given by path is read every time, so an
    edited document takes effect at once.
    """
    if isinstance(endpoint_id, os.PathLike) or endpoint_id.endswith(".json"):
        path = Path(endpoint_id)
        if not path.is_file():
            raise SchemaError(f"No schema file at {path}.")
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:  # not JSON, not UTF-8, unreadable
            raise SchemaError(f"{path} is not a readable OpenAPI JSON document: {exc}") from exc
        if not isinstance(doc, dict):
            raise SchemaError(f"{path} holds a JSON {type(doc).__name__}, not an OpenAPI document.")
        return EndpointSchema.from_openapi(doc)
    return _load_named(endpoint_id)


@functools.cache
def _load_named(endpoint_id: str) -> EndpointSchema:
    resource = resources.files("sora_widgets") / "schemas" / _file_name(endpoint_id)
    if not resource.is_file():
        cached = _cache_path(endpoint_id)
        if cached.is_file():
            return EndpointSchema.from_openapi(json.loads(cached.read_text(encoding="utf-8")))
        known = bundled_endpoints()
        raise SchemaError(
            f"No bundled schema for {endpoint_id!r}{did_you_mean(endpoint_id, known)}. "
            f"Bundled: {', '.join(known)}. For another fal endpoint use "
            f"sw.fetch_schema({endpoint_id!r}) when online.", endpoint_id=endpoint_id)
    doc = json.loads(resource.read_text(encoding="utf-8"))
    return EndpointSchema.from_openapi(doc, endpoint_id=endpoint_id)


def _cache_path(endpoint_id: str) -> Path:
    return run_home() / "schemas" / _file_name(endpoint_id)


def cached_endpoints() -> list[str]:
    """Endpoint ids whose live document was fetched into this run folder before."""
    folder = run_home() / "schemas"
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5].replace("__", "/") for p in folder.glob("*.json"))


def openapi_url(endpoint_id: str) -> str:
    """Where fal serves `endpoint_id`'s OpenAPI document (`SORA_WIDGETS_FAL_OPENAPI_URL`, a
    template with `{endpoint_id}`, moves it, e.g. to a test server)."""
    template = os.environ.get("SORA_WIDGETS_FAL_OPENAPI_URL") or LIVE_SCHEMA_URL
    return template.format(endpoint_id=endpoint_id)


#: what every public call accepts as an endpoint: an id, a path to an OpenAPI document, a schema
EndpointSpec = Union[str, "os.PathLike[str]", "EndpointSchema"]


def schema_for(endpoint: EndpointSpec, *, fetch: bool = True) -> EndpointSchema:
    """The schema an endpoint stands for: an EndpointSchema as is, a `.json` path read afresh, an
    id from the bundled or cached documents, else (with `fetch`) fal's live document."""
    if isinstance(endpoint, EndpointSchema):
        return endpoint
    if isinstance(endpoint, os.PathLike) or str(endpoint).endswith(".json"):
        return load_schema(os.fspath(endpoint))
    if not isinstance(endpoint, str) or not endpoint.strip():
        raise SchemaError(f"An endpoint is an id such as {DEFAULT_ENDPOINT!r}, a path to an "
                          f"OpenAPI .json document or an EndpointSchema, not {endpoint!r}.")
    try:
        return load_schema(endpoint)
    except SchemaError as missing:
        if not fetch:
            raise
        try:
            return fetch_schema(endpoint)
        except OfflineError:
            raise missing from None
        except SchemaError as fetched:
            raise SchemaError(f"{missing} Asked for its live document, {fetched}",
                              endpoint_id=endpoint) from None


def fetch_schema(endpoint_id: str, *, url: str | None = None, timeout: float = 10.0
                 ) -> EndpointSchema:
    """Fetch fal's live OpenAPI document for `endpoint_id`, cache it beside the history, read it.

    Offline, this raises OfflineError; `load_schema` finds the cached copy afterwards.
    """
    import httpx

    from .._http import TooMuch, bounded_request

    address = url.format(endpoint_id=endpoint_id) if url else openapi_url(endpoint_id)
    try:
        response = bounded_request("GET", address, timeout_s=timeout, deadline_s=3 * timeout,
                                   max_bytes=MAX_DOCUMENT_BYTES)
    except httpx.InvalidURL as exc:
        raise SchemaError(f"{endpoint_id!r} does not make a valid document address ({exc}).",
                          endpoint_id=endpoint_id) from exc
    except httpx.HTTPError as exc:
        raise OfflineError(
            f"Could not reach {address} to fetch the schema of {endpoint_id} ({type(exc).__name__}). "
            "Offline, use a bundled schema with sw.load_schema(), or a saved document with "
            "sw.EndpointSchema.from_openapi(doc).", endpoint_id=endpoint_id) from exc
    except TooMuch as exc:
        raise SchemaError(f"The schema of {endpoint_id} was refused: {exc}.",
                          endpoint_id=endpoint_id) from exc
    if response.status == 404:
        raise SchemaError(f"fal publishes no document for {endpoint_id!r} (HTTP 404): it may be "
                          "misspelt or retired; sw.find_endpoints() lists fal's video models.",
                          endpoint_id=endpoint_id)
    if response.status != 200:
        raise SchemaError(f"fal answered {response.status} for the schema of {endpoint_id}: "
                          f"{' '.join(response.text[:200].split())}", endpoint_id=endpoint_id)
    try:
        doc = response.json()
    except ValueError as exc:
        raise SchemaError(f"The schema of {endpoint_id} from {address} is not JSON.",
                          endpoint_id=endpoint_id) from exc
    if not isinstance(doc, dict):
        raise SchemaError(f"The schema of {endpoint_id} from {address} is not an OpenAPI document.",
                          endpoint_id=endpoint_id)
    schema = EndpointSchema.from_openapi(doc, endpoint_id=endpoint_id)
    cache = _cache_path(endpoint_id)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    _load_named.cache_clear()  # a newer document replaces what this process read before
    return schema
