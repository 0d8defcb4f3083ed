"""FalBackend's inputs: local files and bytes in `*_url` / `*_urls` fields become uploaded URLs.

Each content is uploaded once: keyed by sha256 in a cache (the history's upload table, so a
restarted notebook reuses it), and concurrent uploads of the same bytes share one request.
http(s) URLs and data: URIs pass through; other URL schemes are refused, naming the field.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from .._errors import ValidationError
from ..media import NormalizedImage, classify_image

#: uploader(data, content_type, file_name) -> URL, sync or async (FalBackend's `uploader=`)
Uploader = Callable[[bytes, str, str], str | Awaitable[str]]
#: send(endpoint_id, data, content_type, file_name) -> URL: how new bytes reach fal
Send = Callable[[str, bytes, str, str], Awaitable[str]]


class Uploads:
    """Replaces local inputs by URLs, sending each content once through `send`."""

    def __init__(self, send: Send, cache: MutableMapping[str, str] | None = None) -> None:
        self._send = send
        self._cache: MutableMapping[str, str] = {} if cache is None else cache
        self._inflight: dict[str, asyncio.Task[str]] = {}

    async def as_urls(self, endpoint_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """`arguments` with every local file or bytes in a `*_url` / `*_urls` field uploaded."""
        out = dict(arguments)
        for name, value in arguments.items():
            if name.endswith("_url"):
                out[name] = await self._as_url(endpoint_id, name, value)
            elif name.endswith("_urls") and isinstance(value, (list, tuple)):
                out[name] = [await self._as_url(endpoint_id, name, item) for item in value]
        return out

    async def _as_url(self, endpoint_id: str, name: str, value: Any) -> Any:
        if isinstance(value, NormalizedImage):  # checked and stored once by prepare_arguments
            if value.url is not None or value.local_path is None:
                return value.value
            data = await _read(value.local_path, endpoint_id, name)
            return await self._upload(endpoint_id, data,
                                      value.content_type or "application/octet-stream", value.local_path.name)
        if not isinstance(value, (str, bytes, os.PathLike)):
            return value
        try:
            source = classify_image(value, field=name)  # a file in any `*_url` field, not only images
        except ValidationError as exc:  # file:, javascript: ..., or an http(s) URL without a host
            raise ValidationError(exc.errors, endpoint_id=endpoint_id) from exc
        if source.url is not None:
            return value
        if source.path is None:
            data = bytes(source.given)
            return await self._upload(endpoint_id, data, "application/octet-stream", "upload.bin")
        path = source.path
        if not path.is_file():
            raise ValidationError([(name, f"file not found: {path}")], endpoint_id=endpoint_id)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = await _read(path, endpoint_id, name)
        return await self._upload(endpoint_id, data, content_type, path.name)

    async def _upload(self, endpoint_id: str, data: bytes, content_type: str, file_name: str) -> str:
        """Upload once per sha256; concurrent uploads of the same bytes share one request."""
        digest = hashlib.sha256(data).hexdigest()
        task = self._inflight.get(digest)
        if task is None:
            task = asyncio.ensure_future(
                self._upload_once(digest, endpoint_id, data, content_type, file_name))
            self._inflight[digest] = task
            task.add_done_callback(lambda _task: self._inflight.pop(digest, None))
        return await asyncio.shield(task)  # one caller giving up does not cancel the others' upload

    async def _upload_once(self, digest: str, endpoint_id: str, data: bytes, content_type: str,
                           file_name: str) -> str:
        """The URL remembered for `digest`, or a new upload remembered before it is shared (the
        cache may be the history file, so it is read and written off the job loop)."""
        known = await asyncio.to_thread(self._cache.get, digest)
        if known is not None:
            return str(known)
        url = await self._send(endpoint_id, data, content_type, file_name)
        await asyncio.to_thread(self._cache.__setitem__, digest, url)
        return url


async def _read(path: Path, endpoint_id: str, field: str) -> bytes:
    """A local input's bytes, read off the job loop; a file gone or unreadable names its field."""
    try:
        return await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise ValidationError([(field, f"the file {path} could not be read ({exc.strerror or exc})")],
                              endpoint_id=endpoint_id) from exc
