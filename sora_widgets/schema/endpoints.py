"""Which fal endpoints exist and whether they still run: `endpoint_status` and `find_endpoints`.

With a key, fal's Platform API answers (cached for a day in the run folder). Offline, bundled
knowledge answers, dated and with its source (`known_endpoints.json`: the Sora 2 family was
retired upstream on 2026-09-24). Nothing here ever blocks a request: an unknown status is shown
as unknown, and a retired endpoint still gets its one request, which fails clearly.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from typing import Any, Literal

from .._errors import OfflineError, PlatformError, SchemaError
from .documents import bundled_endpoints, cached_endpoints

__all__ = ["EndpointInfo", "EndpointStatus", "endpoint_status", "find_endpoints", "known_endpoints"]

Status = Literal["active", "deprecated", "retired", "unknown"]


@dataclass(frozen=True)
class EndpointStatus:
    """Whether an endpoint runs today, since when, and who says so."""

    endpoint_id: str
    status: Status
    since: date | None
    source: str
    checked_at: datetime | None
    message: str

    @property
    def usable(self) -> bool:
        """False only when the endpoint is known to be gone; unknown never blocks anything."""
        return self.status != "retired"

    def __str__(self) -> str:
        when = f" since {self.since.isoformat()}" if self.since else ""
        return f"{self.endpoint_id}: {self.status}{when}. {self.message}".strip()


@dataclass(frozen=True)
class EndpointInfo:
    """One endpoint a picker can offer: its id, name, category, status and where it was found."""

    endpoint_id: str
    display_name: str
    category: str
    status: Status
    origin: str  # "bundled" | "cached" | "fal"
    description: str = ""


@functools.lru_cache(maxsize=1)
def known_endpoints() -> dict[str, Any]:
    """The bundled knowledge: families and endpoints with status, date, source and message."""
    text = (resources.files("sora_widgets") / "known_endpoints.json").read_text(encoding="utf-8")
    return dict(json.loads(text))


def _known(endpoint_id: str) -> Mapping[str, Any] | None:
    data = known_endpoints()
    entry: Mapping[str, Any] | None = data["endpoints"].get(endpoint_id)
    if entry is not None:
        return entry
    return next((f for f in data["families"] if endpoint_id.startswith(f["prefix"])), None)


def _offline_status(endpoint_id: str, why: str = "") -> EndpointStatus:
    entry = _known(endpoint_id)
    as_of = known_endpoints()["as_of"]
    if entry is None or entry.get("status") not in ("active", "deprecated", "retired"):
        return EndpointStatus(endpoint_id, "unknown", None, f"no bundled knowledge (as of {as_of})",
                              None, f"Its status is not known here{why}; generating is not blocked.")
    since = entry.get("since")
    return EndpointStatus(endpoint_id, entry["status"], date.fromisoformat(since) if since else None,
                          f"bundled knowledge as of {as_of}: {entry['source']}", None,
                          entry.get("message", "") + why)


def endpoint_status(endpoint_id: str, *, online: bool | None = None) -> EndpointStatus:
    """`endpoint_id`'s status: fal's own model metadata when a key is set (cached for a day),
    else the bundled, dated knowledge; `unknown` when neither knows it.

    fal's metadata says `active` or `deprecated`; an endpoint fal no longer lists, or lists as
    deprecated, that the bundled knowledge says was shut down upstream is `retired`.
    """
    from .platform import PlatformAPI

    api = PlatformAPI()
    if online is False or (online is None and not api.has_key):
        return _offline_status(endpoint_id)
    try:
        answer = api.models(endpoint_ids=[endpoint_id])
    except (OfflineError, PlatformError) as exc:
        return _offline_status(endpoint_id, f" (fal's Platform API could not be asked: {exc})")
    checked = datetime.fromisoformat(answer["read_at"])
    model = next((m for m in answer["models"] if m.get("endpoint_id") == endpoint_id), None)
    known = _offline_status(endpoint_id)
    source = f"fal's Platform API (GET /v1/models), read {answer['read_at']}"
    if model is None:
        if known.status == "retired":
            return EndpointStatus(endpoint_id, "retired", known.since, f"{source}: not listed; "
                                  f"{known.source}", checked, known.message)
        return EndpointStatus(endpoint_id, "unknown", None, source, checked,
                              "fal's model list has no entry for it: check the id; generating is "
                              "not blocked.")
    meta = model.get("metadata") or {}
    status = str(meta.get("status") or "unknown")
    if status == "deprecated" and known.status == "retired":
        return EndpointStatus(endpoint_id, "retired", known.since, f"{source}: deprecated; "
                              f"{known.source}", checked, known.message)
    if status not in ("active", "deprecated"):
        status = "unknown"
    message = {"active": "fal lists it as active.",
               "deprecated": "fal lists it as deprecated: it may stop working; consider another model.",
               "unknown": "fal's metadata gives no status it knows."}[status]
    if status == "active" and known.status == "retired":
        message = ("fal lists it as active, although the bundled knowledge says it was retired "
                   "upstream: fal's own status wins.")
    return EndpointStatus(endpoint_id, status, None, source, checked, message)  # type: ignore[arg-type]


def find_endpoints(search: str | None = None, category: str | None = "image-to-video", *,
                   online: bool | None = None) -> list[EndpointInfo]:
    """fal's models matching `search` and `category` (Platform API with a key, cached for a day),
    after the bundled and cached endpoints that match; offline, only those."""
    from .platform import PlatformAPI

    found: dict[str, EndpointInfo] = {}
    for origin, ids in (("bundled", bundled_endpoints()), ("cached", cached_endpoints())):
        for endpoint_id in ids:
            info = _local_info(endpoint_id, origin)
            if endpoint_id not in found and _matches(info, search, category):
                found[endpoint_id] = info
    api = PlatformAPI()
    if online is True or (online is None and api.has_key):
        try:
            models = api.models(search=search, category=category)["models"]
        except (OfflineError, PlatformError):
            models = []
        for model in models:
            meta = model.get("metadata") or {}
            endpoint_id = str(model.get("endpoint_id", ""))
            if not endpoint_id or endpoint_id in found:
                continue
            listed = meta.get("status")
            status: Status = listed if listed in ("active", "deprecated") else "unknown"
            found[endpoint_id] = EndpointInfo(endpoint_id, str(meta.get("display_name") or endpoint_id),
                                              str(meta.get("category") or ""), status, "fal",
                                              str(meta.get("description") or ""))
    return list(found.values())


def _local_info(endpoint_id: str, origin: str) -> EndpointInfo:
    """What the bundled knowledge (else the endpoint's own document) says about a local endpoint;
    known endpoints are described without reading their documents, so a panel opens fast."""
    from .documents import load_schema

    own = known_endpoints()["endpoints"].get(endpoint_id)
    category, title = _category_from_id(endpoint_id), (own or {}).get("display_name")
    if not (own or _known(endpoint_id)) or not category:
        try:
            schema = load_schema(endpoint_id)
            meta = schema.document.get("info", {}).get("x-fal-metadata", {})
            category = str(meta.get("category") or category)
            generic = schema.title.startswith("Queue OpenAPI")  # fal's titles say nothing
            title = title or (None if generic else schema.title)
        except (SchemaError, ValueError, OSError):  # a damaged cached document still shows
            pass
    return EndpointInfo(endpoint_id, str(title or endpoint_id), category,
                        _offline_status(endpoint_id).status, origin)


def _category_from_id(endpoint_id: str) -> str:
    for category in ("image-to-video", "text-to-video", "video-to-video"):
        if category in endpoint_id:
            return category
    return ""


def _matches(info: EndpointInfo, search: str | None, category: str | None) -> bool:
    if category and info.category != category:
        return False
    if search:
        words = search.lower().split()
        text = f"{info.endpoint_id} {info.display_name} {info.description}".lower()
        return all(word in text for word in words)
    return True
