"""The media files an endpoint's output names, found whatever its fields are called, each with its
kind (video, image, audio, file), so the job knows what to download and how to check it.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".m4v")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


@dataclass(frozen=True)
class MediaItem:
    """One media file an endpoint returned: where it sits in the output, its kind and URL."""

    field: str
    index: int | None
    kind: str  # "video" | "image" | "audio" | "file"
    url: str
    content_type: str | None = None
    file_size: int | None = None

    @property
    def role(self) -> str:
        """`video`, `videos[1]`, `thumbnail`: the output path, for file names and messages."""
        return self.field if self.index is None else f"{self.field}[{self.index}]"


def find_media(output: Mapping[str, Any], outputs: Iterable[Any] = ()) -> list[MediaItem]:
    """Every fal File object (`{"url": ..., "content_type": ...}`) in an endpoint's output, in
    order, whatever the field is called (`video`, `videos`, `image`, `images` ...).

    The kind comes from the content type, else from the output schema's `Field.media` (pass the
    schema's `outputs`), else from the URL's suffix."""
    declared = {f.name: f.media for f in outputs if getattr(f, "media", None)}
    items: list[MediaItem] = []
    for name, value in output.items():
        entries = value if isinstance(value, list) else [value]
        for index, entry in enumerate(entries):
            if not (isinstance(entry, Mapping) and isinstance(entry.get("url"), str)):
                continue
            content_type = entry.get("content_type") if isinstance(entry.get("content_type"), str) else None
            kind = _media_kind(content_type, declared.get(name), entry["url"], name)
            size = entry.get("file_size")
            file_size = size if isinstance(size, int) and not isinstance(size, bool) else None
            items.append(MediaItem(field=name, index=index if isinstance(value, list) else None,
                                   kind=kind, url=entry["url"], content_type=content_type,
                                   file_size=file_size))
    return items


def _media_kind(content_type: str | None, declared: str | None, url: str, name: str) -> str:
    """One file's kind: from its content type, else the output schema, else its URL or field name."""
    if content_type:
        major = content_type.split("/", 1)[0].lower()
        if major in ("video", "image", "audio"):
            return major
    if declared in ("video", "image"):
        return declared
    path = urllib.parse.urlsplit(url).path.lower()
    if path.endswith(_VIDEO_SUFFIXES) or "video" in name:
        return "video"
    if path.endswith(_IMAGE_SUFFIXES) or any(w in name for w in ("image", "thumbnail", "sprite")):
        return "image"
    return "file"
