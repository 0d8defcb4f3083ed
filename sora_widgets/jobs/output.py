"""A finished job's output: its media found and described on the Generation, then kept in the run
folder (fal's URLs expire), so the row points at files that last.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import GenerationError
from ..backends import Backend
from ..records import Generation
from ..schema.documents import EndpointSchema

if TYPE_CHECKING:
    from ..history.store import History

__all__ = ["describe_output", "keep_media"]


def describe_output(gen: Generation, output: Mapping[str, Any], schema: EndpointSchema) -> None:
    """Fill `gen` from the endpoint's output: the result, every media item, and the video, poster
    and spritesheet URLs the history's columns hold."""
    from ..media import find_media

    gen.result = dict(output)
    gen.media = [asdict(item) for item in find_media(output, schema.outputs)]
    videos = [m for m in gen.media if m["kind"] == "video"]
    images = [m for m in gen.media if m["kind"] == "image"]
    gen.video_url = videos[0]["url"] if videos else None
    gen.video_id = output.get("video_id") if isinstance(output.get("video_id"), str) else None
    gen.thumbnail_url = (_url(output.get("thumbnail"))
                         or (images[0]["url"] if images and not videos else None))
    gen.spritesheet_url = _url(output.get("spritesheet"))


def keep_media(gen: Generation, *, history: History, history_id: int, backend: Backend) -> None:
    """Copy every video and image the endpoint returned into the media folder; the first video
    (and poster image) also fill the history's video columns.

    Only http(s) URLs are fetched, bounded and checked to hold what they claim; a file the
    backend rendered itself (the offline preview) is linked. The main result (the first video,
    else the first image) must be kept, or the run fails with its URL and request id kept; an
    extra file that cannot be kept is noted in the logs."""
    from ..media import download, link_or_copy, remove_partials

    folder = history.media_dir / "videos"
    remove_partials(folder)
    stem = _safe_name(f"{history_id:06d}-{gen.video_id or gen.request_id}")
    main = next((m for m in gen.media if m["kind"] == "video"),
                next((m for m in gen.media if m["kind"] == "image"), None))
    for item in gen.media:
        if item["kind"] not in ("video", "image"):
            continue
        role = _safe_name(item["field"] + ("" if item["index"] is None else f"-{item['index']}"))
        default = ".mp4" if item["kind"] == "video" else ".jpg"
        name = f"{stem}.{role}" + _suffix(item["url"], default)
        own = _own_file(backend, item["url"])
        try:
            kept = (link_or_copy(own, folder / name) if own is not None else
                    download(item["url"], folder, name=name, size=item["file_size"], kind=item["kind"]))
        except GenerationError as exc:
            if item is main:
                raise GenerationError(
                    f"The {item['kind']} was made (request id {gen.request_id}) but could not be "
                    f"kept: {exc} Its URL stays in the history.", kind="download",
                    endpoint_id=gen.endpoint_id, request_id=gen.request_id,
                    history_id=history_id) from exc
            gen.logs.append(f"Could not keep a local copy of the {role} file: {exc}")
            continue
        item["path"] = str(kept)
        if item["url"] == gen.video_url and gen.video_path is None:
            gen.video_path = item["path"]
        elif item["url"] == gen.thumbnail_url and gen.thumbnail_path is None:
            gen.thumbnail_path = item["path"]
        elif item["url"] == gen.spritesheet_url and gen.spritesheet_path is None:
            gen.spritesheet_path = item["path"]


def _own_file(backend: Backend, url: str) -> Path | None:
    """The local file behind a `file:` URL inside the folder the backend renders into (the
    offline preview's own output); None for anything else, which must come over http(s)."""
    root = getattr(backend, "local_media_root", None)
    if root is None or not url.startswith("file:"):
        return None
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)).resolve()
    return path if path.is_relative_to(Path(root).resolve()) and path.is_file() else None


def _safe_name(text: str) -> str:
    """Server-chosen words (a video id, an output field) made fit for a file name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[:80] or "media"


def _url(node: Any) -> str | None:
    return node.get("url") if isinstance(node, Mapping) else None


def _suffix(url: str, default: str) -> str:
    """The file suffix a media URL names (".mp4", ".webp"), or `default`."""
    tail = url.split("?")[0].rsplit("/", 1)[-1]
    ext = tail.rsplit(".", 1)[1].lower() if "." in tail else ""
    return "." + ext if ext.isalnum() and ext.isascii() and len(ext) <= 4 else default
