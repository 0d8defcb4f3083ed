"""Endpoint schemas as data: `EndpointSchema`, and where its OpenAPI document comes from.

fal publishes one OpenAPI document per endpoint. A schema is read from a bundled document, one
fetched earlier into the run folder's cache, a local file, or fal's live document (then cached),
so a new endpoint or model snapshot is a new JSON file or a fetched document, never a code change.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Union

from .._errors import NotFoundError, OfflineError, SchemaError
from .._home import run_home
from .._values import did_you_mean, literal
from .fields import Field
from .openapi import endpoint_id_of, input_fields, output_fields

LIVE_SCHEMA_URL = "https://fal.ai/api/openapi/queue/openapi.json?endpoint_id={endpoint_id}"
DEFAULT_ENDPOINT = "fal-ai/sora-2/image-to-video"
MAX_DOCUMENT_BYTES = 10 << 20  # fal's documents are tens of kilobytes


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
        endpoint_id = endpoint_id or endpoint_id_of(doc)
        info = doc.get("info", {})
        return cls(
            endpoint_id=endpoint_id,
            fields=input_fields(doc, endpoint_id),
            outputs=output_fields(doc, endpoint_id),
            title=str(info.get("title", "")),
            source=info.get("x-sora-widgets-source", {}),
            document=doc,
        )

    def __getitem__(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise NotFoundError(f"{self.endpoint_id} has no field {name!r}{did_you_mean(name, self.names)}",
                            key=name)

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
        from .._html import schema_html

        return schema_html(self.endpoint_id, [
            (f.name + (" *" if f.required else ""), f.type, f.allowed(),
             literal(f.default) if f.has_default else "", f.description) for f in self.fields])


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
        return EndpointSchema.from_openapi(_read_document(path))
    return _load_named(endpoint_id)


def _read_document(path: Path, endpoint_id: str | None = None) -> dict[str, Any]:
    """The OpenAPI document in a JSON file, or a SchemaError saying why it cannot be one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:  # not JSON, not UTF-8, unreadable
        raise SchemaError(f"{path} is not a readable OpenAPI JSON document: {exc}",
                          endpoint_id=endpoint_id) from exc
    if not isinstance(doc, dict):
        raise SchemaError(f"{path} holds a JSON {type(doc).__name__}, not an OpenAPI document.",
                          endpoint_id=endpoint_id)
    return doc


@functools.cache
def _load_named(endpoint_id: str) -> EndpointSchema:
    resource = resources.files("sora_widgets") / "schemas" / _file_name(endpoint_id)
    if not resource.is_file():
        cached = _cache_path(endpoint_id)
        if cached.is_file():
            return EndpointSchema.from_openapi(_read_document(cached, endpoint_id))
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
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    except OSError:  # a read-only run folder: the document is used, just not kept for next time
        pass
    _load_named.cache_clear()  # a newer document replaces what this process read before
    return schema
