"""Media on disk: input images stored by content hash, downloaded videos, probing, thumbnails.

Heavy libraries (Pillow, PyAV, numpy) are imported inside the functions that need them, so
`import sora_widgets` stays fast.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from ._errors import GenerationError, ValidationError

if TYPE_CHECKING:
    import httpx
    from PIL import Image

#: Anything `normalize_image` accepts: a URL or data URI, a path, raw bytes or a PIL image.
ImageInput = Union[str, os.PathLike, bytes, bytearray, memoryview, "Image.Image"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters or more: "C:\x" is a path
_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}


@dataclass(frozen=True)
class NormalizedImage:
    """An image input made ready for a request: `value` goes into the arguments."""

    value: str
    sha256: str | None
    local_path: Path | None
    content_type: str | None


@dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as read from its container and first video stream."""

    duration_s: float
    fps: float
    width: int
    height: int
    frames: int
    codec: str
    pix_fmt: str


class _BadImage(Exception):
    """An unusable image input; the public functions turn it into a ValidationError for a field."""


def sniff_image(data: bytes) -> str | None:
    """The image format named by the first bytes ("png", "jpeg", "webp", "gif"), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return None


def _describe(value: Any) -> str:
    """A short, safe description of what the user gave, for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_pil_image(value: Any) -> bool:
    pil = sys.modules.get("PIL.Image")  # a PIL image can only exist once PIL is imported
    return pil is not None and isinstance(value, pil.Image)


def _decode_data_uri(uri: str) -> bytes:
    """The bytes of a base64 `data:` URI."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.endswith(";base64"):
        raise _BadImage(f"the data URI {_describe(uri)} is not base64 data "
                        "(expected data:image/png;base64,...)")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise _BadImage(f"the data URI {_describe(uri)} holds invalid "
                        f"base64 ({exc})") from exc


def _image_bytes(data: bytes, given: str) -> tuple[bytes, str]:
    """Check that `data` is a readable image; PNG/JPEG/WebP/GIF kept as is, others become PNG."""
    from PIL import Image, UnidentifiedImageError

    kind = sniff_image(data)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if kind is not None:
                return data, kind
            out = io.BytesIO()
            img.convert("RGBA" if "A" in img.getbands() else "RGB").save(out, format="PNG")
            return out.getvalue(), "png"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        start = bytes(data[:12])
        raise _BadImage(f"{given} could not be read as an image "
                        f"({len(data)} bytes starting {start!r}): {exc}") from exc


def _pil_bytes(img: Image.Image) -> bytes:
    """A PIL image as PNG bytes (lossless, so the stored copy is exactly what was shown)."""
    if img.mode not in ("1", "L", "LA", "I", "P", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _read_local(value: str | os.PathLike) -> tuple[bytes, str]:
    path = Path(value).expanduser()
    if not path.is_file():
        what = "is a folder, not an image file" if path.is_dir() else "does not exist"
        raise _BadImage(f"the file {str(value)!r} {what} "
                        f"(looked for {path.resolve()})")
    return path.read_bytes(), f"the file {str(value)!r}"


def _store(data: bytes, kind: str, media_dir: Path) -> tuple[str, Path]:
    """Write `data` once to media_dir/inputs/<sha256>.<ext>; returns the digest and path."""
    digest = hashlib.sha256(data).hexdigest()
    dest = Path(media_dir) / "inputs" / f"{digest}.{'jpg' if kind == 'jpeg' else kind}"
    if not (dest.is_file() and dest.stat().st_size == len(data)):
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(dest, data)
    return digest, dest


def atomic_write(dest: Path, data: bytes) -> None:
    """Write `data` to `dest` through a temporary file in the same folder, then rename."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _remote_url(value: Any) -> str | None:
    """The http(s) URL `value` names, or None for local content; other URL schemes are refused."""
    if not isinstance(value, str) or not (match := _SCHEME.match(value.strip())):
        return None
    scheme, url = match.group(1).lower(), value.strip()
    if scheme in ("http", "https"):
        if not urllib.parse.urlsplit(url).netloc:
            raise _BadImage(f"the URL {_describe(url)} has no host")
        return url
    if scheme != "data":
        raise _BadImage(f"{scheme}: URLs are not accepted (got {_describe(value)}); give an "
                        "http(s) URL, a data URI, a local file path, bytes or a PIL image")
    return None


def _local_content(value: Any) -> tuple[bytes, str, str | None]:
    """(bytes, how messages name them, value to keep) for a data URI, path, bytes or PIL image."""
    if isinstance(value, str) and value.strip().lower().startswith("data:"):
        return _decode_data_uri(value.strip()), "the data URI", value.strip()
    if isinstance(value, (str, os.PathLike)):
        return (*_read_local(value), None)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value), f"the {len(value)} bytes given", None
    if _is_pil_image(value):
        return _pil_bytes(value), "the PIL image", None
    raise _BadImage(f"expected a URL, a file path, bytes or a PIL image, got {type(value).__name__}")


def normalize_image(value: ImageInput, *, media_dir: Path,
                    field: str = "image_url") -> NormalizedImage:
    """Turn any image input into a request value; local content is kept under media/inputs.

    http(s) URLs pass unchanged; paths, bytes, PIL images and data URIs are checked to be
    images and copied to `media_dir/inputs/<sha256>.<ext>` (a data URI stays the value).
    Raises ValidationError naming `field` for a missing file, a non-image, a `file:` or
    `javascript:` URL or an unsupported kind of value.
    """
    try:
        url = _remote_url(value)
        if url is not None:
            return NormalizedImage(value=url, sha256=None, local_path=None, content_type=None)
        data, given, keep = _local_content(value)
        data, kind = _image_bytes(data, given)
    except _BadImage as exc:
        raise ValidationError([(field, str(exc))]) from exc
    digest, path = _store(data, kind, Path(media_dir))
    return NormalizedImage(value=keep or str(path), sha256=digest, local_path=path,
                           content_type=_CONTENT_TYPES[kind])


def load_image(value: ImageInput, *, timeout: float = 5.0, field: str = "image_url") -> Image.Image:
    """Open any image input as an RGB PIL image, fetching http(s) URLs with a short timeout.

    Raises ValidationError (naming `field`) for unusable content and
    GenerationError(kind="download") when a URL cannot be fetched.
    """
    from PIL import Image

    if _is_pil_image(value):
        return value.convert("RGB")
    try:
        url = _remote_url(value)
        if url is not None:
            data, given = _fetch_bytes(url, timeout=timeout), f"the image at {_describe(url)}"
        else:
            data, given, _ = _local_content(value)
        data, _ = _image_bytes(data, given)
    except _BadImage as exc:
        raise ValidationError([(field, str(exc))]) from exc
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


def _http_client(timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    import httpx

    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                        follow_redirects=True, transport=transport)


def _fetch_bytes(url: str, *, timeout: float) -> bytes:
    import httpx

    try:
        with _http_client(timeout, None) as client:
            response = client.get(url)
            response.raise_for_status()
            return response.content
    except httpx.HTTPError as exc:
        raise GenerationError(f"could not fetch {url}: {exc}", kind="download") from exc


def _local_source(url_or_path: str | os.PathLike) -> Path | None:
    """The local file a file:// URL or plain path names; None for http(s)."""
    text = os.fspath(url_or_path)
    match = _SCHEME.match(text)
    if match is None:
        return Path(text).expanduser()
    scheme = match.group(1).lower()
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(text).path))
    if scheme in ("http", "https"):
        return None
    raise GenerationError(f"cannot download {_describe(text)}: unsupported URL scheme {scheme}:",
                          kind="download")


def download(
    url_or_path: str | os.PathLike,
    dest_dir: Path,
    *,
    name: str,
    size: int | None = None,
    timeout: float = 60.0,
    transport: httpx.BaseTransport | None = None,
) -> Path:
    """Fetch a media URL (http(s), file:// or a local path) to `dest_dir/name`, atomically.

    A file already there with the expected size (`size`, or the server's Content-Length) is
    kept. Local files are hard-linked when possible, else copied. Any failure raises
    GenerationError(kind="download"); a partial file is never left under the final name.
    """
    if Path(name).name != name or name in ("", ".", ".."):
        raise ValueError(f"name must be a plain file name, got {name!r}")
    dest_dir = Path(dest_dir)
    dest = dest_dir / name
    if size is not None and dest.is_file() and dest.stat().st_size == size:
        return dest
    source = _local_source(url_or_path)
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
        if source is not None:
            return _copy_local(source, dest)
        return _download_http(os.fspath(url_or_path), dest, size, timeout, transport)
    except OSError as exc:
        raise GenerationError(f"could not save {name} in {dest_dir}: {exc}", kind="download") from exc


def _copy_local(source: Path, dest: Path) -> Path:
    if not source.is_file():
        raise GenerationError(f"cannot download {source}: no such file", kind="download")
    if dest.is_file() and (dest.samefile(source) or dest.stat().st_size == source.stat().st_size):
        return dest
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        try:
            os.link(source, tmp)
        except OSError:  # another file system, or links not allowed: copy instead
            shutil.copyfile(source, tmp)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _download_http(url: str, dest: Path, size: int | None, timeout: float,
                   transport: httpx.BaseTransport | None) -> Path:
    import httpx

    try:
        with _http_client(timeout, transport) as client, client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise GenerationError(f"downloading {url} failed: HTTP {response.status_code}",
                                      kind="download", status_code=response.status_code)
            length = response.headers.get("content-length")
            if response.headers.get("content-encoding", "identity") != "identity":
                length = None  # compressed on the wire: the length is not the file's size
            expected = size if size is not None else (int(length) if length else None)
            if expected is not None and dest.is_file() and dest.stat().st_size == expected:
                return dest
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    for chunk in response.iter_bytes(1 << 20):
                        fh.write(chunk)
                got = os.path.getsize(tmp)
                if expected is not None and got != expected:
                    raise GenerationError(f"downloading {url} stopped early: got {got} of "
                                          f"{expected} bytes", kind="download")
                os.replace(tmp, dest)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except httpx.HTTPError as exc:
        raise GenerationError(f"downloading {url} failed: {exc}", kind="download") from exc
    return dest


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read duration, frame rate, size, frame count and codec of a video's first video stream.

    Raises GenerationError(kind="media") when the file is missing or not a video.
    """
    import av

    try:
        with av.open(os.fspath(path)) as container:
            if not container.streams.video:
                raise GenerationError(f"{path} holds no video stream", kind="media")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or 0
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = (container.duration or 0) / av.time_base
            frames = stream.frames or sum(1 for packet in container.demux(stream) if packet.size)
            return VideoInfo(duration_s=duration, fps=float(rate), width=stream.width,
                             height=stream.height, frames=frames,
                             codec=stream.codec_context.name, pix_fmt=stream.format.name)
    except (av.FFmpegError, OSError) as exc:
        raise GenerationError(f"cannot read the video {path}: {exc}", kind="media") from exc


def thumbnail_of(video_path: str | os.PathLike, dest: str | os.PathLike, *,
                 max_side: int | None = None) -> Path:
    """Save the first frame of a video as an image (format from `dest`'s suffix, e.g. .jpg)."""
    import av

    dest = Path(dest)
    try:
        with av.open(os.fspath(video_path)) as container:
            frame = next(container.decode(video=0))
            image = frame.to_image()
    except (av.FFmpegError, OSError, StopIteration) as exc:
        raise GenerationError(f"cannot read a frame from {video_path}: {exc}", kind="media") from exc
    if max_side:
        image.thumbnail((max_side, max_side))
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}.get(dest.suffix.lower())
    if fmt is None:
        raise ValueError(f"thumbnail suffix must be .jpg, .png or .webp, got {dest.name!r}")
    out = io.BytesIO()
    image.save(out, format=fmt, **({"quality": 88} if fmt == "JPEG" else {}))
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(dest, out.getvalue())
    return dest


def contact_sheet(tiles: list[Image.Image], *, columns: int = 5) -> Image.Image:
    """Equal-sized frames laid out in rows of `columns`, like fal's spritesheets."""
    from PIL import Image

    w, h = tiles[0].size
    rows = (len(tiles) + columns - 1) // columns
    sheet = Image.new("RGB", (w * min(columns, len(tiles)), h * rows))
    for n, tile in enumerate(tiles):
        sheet.paste(tile, ((n % columns) * w, (n // columns) * h))
    return sheet


def limit_problems(limits: Mapping[str, Any], path: Path, *, kind: str = "image") -> list[str]:
    """What breaks fal's `x-fal` media limits (file size, width, height, aspect ratio, and for
    videos duration and fps) in the local file `path`, as phrases naming the limit."""
    problems = []
    size = path.stat().st_size
    if isinstance(limits.get("max_file_size"), (int, float)) and size > limits["max_file_size"]:
        problems.append(f"is {size / 1e6:.1f} MB, over the endpoint's limit of "
                        f"{limits['max_file_size'] / 1e6:.1f} MB")
    measured: dict[str, float] = {}
    if any(k.endswith(("_width", "_height", "_aspect_ratio")) for k in limits) or kind == "video":
        if kind == "video":
            info = probe_video(path)
            measured = {"width": info.width, "height": info.height, "duration": info.duration_s,
                        "fps": info.fps}
        else:
            from PIL import Image

            with Image.open(path) as img:
                measured = {"width": img.width, "height": img.height}
        measured["aspect_ratio"] = measured["width"] / max(1, measured["height"])
    units = {"width": " px", "height": " px", "duration": " s", "fps": " fps", "aspect_ratio": ""}
    for name, value in measured.items():
        low, high = limits.get(f"min_{name}"), limits.get(f"max_{name}")
        shown = f"{value:g}{units[name]}" if name != "aspect_ratio" else f"{value:.2f}"
        if isinstance(low, (int, float)) and value < low:
            problems.append(f"has {name.replace('_', ' ')} {shown}, below the minimum {low:g}{units[name]}")
        if isinstance(high, (int, float)) and value > high:
            problems.append(f"has {name.replace('_', ' ')} {shown}, above the maximum {high:g}{units[name]}")
    return problems


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
            items.append(MediaItem(field=name, index=index if isinstance(value, list) else None,
                                   kind=kind, url=entry["url"], content_type=content_type,
                                   file_size=size if isinstance(size, int) and not isinstance(size, bool) else None))
    return items


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


_VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".m4v")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def _media_kind(content_type: str | None, declared: str | None, url: str, name: str) -> str:
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
