"""Media on disk: input images stored by content hash, downloaded videos, probing, thumbnails.

What comes from outside is bounded: `download` fetches only http(s) URLs (never a local file,
even through a redirect), within a size cap and an overall deadline, and keeps a file only when
it looks like the video or image asked for; input images over `MAX_INPUT_PIXELS` are refused
before they are decoded.

Heavy libraries (Pillow, PyAV, numpy) are imported inside the functions that need them, so
`import sora_widgets` stays fast.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import io
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeGuard, Union

from .._errors import GenerationError, ValidationError

if TYPE_CHECKING:
    import httpx
    from PIL import Image

#: Anything `normalize_image` accepts: a URL or data URI, a path, raw bytes or a PIL image.
ImageInput = Union[str, os.PathLike[str], bytes, bytearray, memoryview, "Image.Image"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters or more: "C:\x" is a path
_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}

#: The largest input image accepted, in pixels: checked from the header, before decoding.
MAX_INPUT_PIXELS = 40_000_000
#: `download`'s overall deadline when none is given: long enough for a 2 GB video on a slow line.
DOWNLOAD_DEADLINE_S = 15 * 60.0
#: The environment variable that caps one download, in megabytes (read at each call).
MAX_DOWNLOAD_MB_VAR = "SORA_WIDGETS_MAX_DOWNLOAD_MB"
_DEFAULT_MAX_DOWNLOAD_MB = 2048
_IMAGE_FETCH_MAX_BYTES = 64 << 20  # load_image's URLs: an input image, not a video
_IMAGE_FETCH_DEADLINE_S = 60.0
_MAX_REDIRECTS = 5
_SNIFF_BYTES = 512  # how much of a body is looked at before it is believed to be a video or image
_PARTIAL = re.compile(r"^\..+\.(?:(\d+)-)?[A-Za-z0-9_]+\.part$")  # .<name>.<pid>-<random>.part
_WRITING: set[str] = set()  # the .part files this process is writing now: remove_partials spares them
_WRITING_LOCK = threading.Lock()


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


def sniff_video(data: bytes) -> str | None:
    """The video container named by the first bytes ("mp4" for MP4/MOV, "webm" for WebM/MKV), else None."""
    if data[4:8] == b"ftyp":
        return "mp4"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    return None


def _describe(value: Any) -> str:
    """A short, safe description of what the user gave, for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_pil_image(value: Any) -> TypeGuard[Image.Image]:
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
        with warnings.catch_warnings():  # PIL warns of a likely bomb; refuse it instead
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                _check_pixels(img.size, given)
                img.load()
                if kind is not None:
                    return data, kind
                out = io.BytesIO()
                img.convert("RGBA" if "A" in img.getbands() else "RGB").save(out, format="PNG")
                return out.getvalue(), "png"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _BadImage(f"{given} is too large to open safely ({exc}); the limit is "
                        f"{MAX_INPUT_PIXELS / 1e6:g} million pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        start = bytes(data[:12])
        raise _BadImage(f"{given} could not be read as an image "
                        f"({len(data)} bytes starting {start!r}): {exc}") from exc


def _check_pixels(size: tuple[int, int], given: str) -> None:
    """Refuse an image larger than MAX_INPUT_PIXELS before it is decoded (a decompression bomb)."""
    width, height = size
    if width * height > MAX_INPUT_PIXELS:
        raise _BadImage(f"{given} is {width}x{height} pixels ({width * height / 1e6:.1f} million), "
                        f"over the limit of {MAX_INPUT_PIXELS / 1e6:g} million pixels")


def _pil_bytes(img: Image.Image) -> bytes:
    """A PIL image as PNG bytes (lossless, so the stored copy is exactly what was shown)."""
    if img.mode not in ("1", "L", "LA", "I", "P", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _read_local(value: str | os.PathLike[str]) -> tuple[bytes, str]:
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


@contextlib.contextmanager
def _part_file(dest: Path) -> Iterator[str]:
    """A new empty `.<name>.<random>.part` file beside `dest`, removed on the way out unless it
    was renamed; while it is in use, remove_partials in this process leaves it alone."""
    with _WRITING_LOCK:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.{os.getpid()}-", suffix=".part")
        _WRITING.add(os.path.realpath(tmp))
    os.close(fd)
    try:
        yield tmp
    finally:
        with _WRITING_LOCK:
            _WRITING.discard(os.path.realpath(tmp))
            if os.path.exists(tmp):
                os.unlink(tmp)


def atomic_write(dest: Path, data: bytes) -> None:
    """Write `data` to `dest` through a temporary file in the same folder, then rename."""
    with _part_file(dest) as tmp:
        Path(tmp).write_bytes(data)
        os.replace(tmp, dest)


def _url_problem(url: str) -> str | None:
    """Why `url` is not an http(s) URL with a host, as a phrase ("has no host"), or None."""
    match = _SCHEME.match(url)
    if match is None:
        return "is a local path, not an http(s) URL"
    scheme = match.group(1).lower()
    if scheme not in ("http", "https"):
        return f"uses {scheme}:, and only http(s) URLs are fetched"
    try:
        host = urllib.parse.urlsplit(url).hostname
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    return None if host else "has no host"


def _remote_url(value: Any) -> str | None:
    """The http(s) URL `value` names, or None for local content; other URL schemes are refused."""
    if not isinstance(value, str) or not (match := _SCHEME.match(value.strip())):
        return None
    scheme, url = match.group(1).lower(), value.strip()
    if scheme in ("http", "https"):
        if (problem := _url_problem(url)) is not None:
            raise _BadImage(f"the URL {_describe(_shown(url))} {problem}")
        return url
    if scheme != "data":
        raise _BadImage(f"{scheme}: URLs are not accepted (got {_describe(value)}); give an "
                        "http(s) URL, a data URI, a local file path, bytes or a PIL image")
    return None


def check_remote_url(value: str, field: str) -> str:
    """`value` stripped, when it is an http(s) URL with a host; else ValidationError naming `field`."""
    try:
        url = _remote_url(value)
    except _BadImage as exc:
        raise ValidationError([(field, str(exc))]) from exc
    if url is None:
        raise ValidationError([(field, f"expected an http(s) URL, got {_describe(value)}")])
    return url


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


def _shown(url: str) -> str:
    """`url` fit for a message: no query string, fragment or user:password (signed URLs carry
    tokens there), at most 100 characters."""
    base = re.split(r"[?#]", url, maxsplit=1)[0]
    text = re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/]*@", r"\1", base) + ("?..." if "?" in url else "")
    return text if len(text) <= 100 else text[:97] + "..."


def _refused(url: str, why: str) -> GenerationError:
    """The error for a download that was refused: it names the URL (without its query) and why."""
    return GenerationError(f"refused to download {_shown(url)}: {why}", kind="download")


def _refuse_bad_redirect(response: httpx.Response) -> None:
    """A response hook: stop before httpx follows a redirect to anything but an http(s) URL."""
    if response.has_redirect_location:
        target = urllib.parse.urljoin(str(response.request.url), response.headers["location"])
        if (problem := _url_problem(target)) is not None:
            raise _refused(str(response.request.url), f"it redirects to {_shown(target)}, which {problem}")


def _http_client(timeout: float, transport: httpx.BaseTransport | None) -> httpx.Client:
    """A client that follows at most a few redirects, each checked to stay on http(s)."""
    import httpx

    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                        follow_redirects=True, max_redirects=_MAX_REDIRECTS, transport=transport,
                        event_hooks={"response": [_refuse_bad_redirect]})


def _check_status(response: httpx.Response, url: str) -> None:
    """Refuse an HTTP error answer, keeping its status code on the error."""
    if response.status_code >= 400:
        raise GenerationError(f"downloading {_shown(url)} failed: HTTP {response.status_code}",
                              kind="download", status_code=response.status_code)


def _bounded_chunks(response: httpx.Response, url: str, *, max_bytes: int, limit_name: str,
                    started: float, deadline_s: float) -> Iterator[bytes]:
    """The body as it arrives (a fixed chunk size would wait to fill it), cut past `max_bytes`
    or `deadline_s` after the monotonic time `started`, so neither a flood nor a trickle lasts."""
    got = 0
    for chunk in response.iter_bytes():
        got += len(chunk)
        if got > max_bytes:
            raise _refused(url, f"it sent more than the limit of {_megabytes(max_bytes)} "
                                f"({limit_name}); the download was cut")
        if time.monotonic() - started > deadline_s:
            raise _refused(url, f"it was still arriving after the deadline of {deadline_s:g} s "
                                f"({got} bytes so far)")
        yield chunk


def _fetch_bytes(url: str, *, timeout: float) -> bytes:
    """An input image's bytes from an http(s) URL, bounded like a download."""
    import httpx

    started = time.monotonic()
    try:
        with _http_client(timeout, None) as client, client.stream("GET", url) as response:
            _check_status(response, url)
            return b"".join(_bounded_chunks(
                response, url, max_bytes=_IMAGE_FETCH_MAX_BYTES, limit_name="input images",
                started=started, deadline_s=_IMAGE_FETCH_DEADLINE_S))
    except httpx.HTTPError as exc:
        raise GenerationError(f"could not fetch {_shown(url)}: {exc}", kind="download") from exc


def _megabytes(n: int) -> str:
    """A byte count for messages, in MB with one decimal."""
    return f"{n / (1 << 20):.1f} MB"


def _max_download_bytes() -> int:
    """The cap on one download: SORA_WIDGETS_MAX_DOWNLOAD_MB megabytes (default 2048), read now."""
    raw = os.environ.get(MAX_DOWNLOAD_MB_VAR, "").strip()
    if not raw:
        return _DEFAULT_MAX_DOWNLOAD_MB << 20
    if not raw.isdigit() or int(raw) < 1:
        raise ValidationError([(MAX_DOWNLOAD_MB_VAR, "must be a whole number of megabytes, "
                                                     f"1 or more (got {raw!r})")])
    return int(raw) << 20


def download(
    url: str | os.PathLike[str],
    dest_dir: Path,
    *,
    name: str,
    size: int | None = None,
    kind: str | None = None,
    timeout: float = 60.0,
    deadline_s: float | None = None,
    max_bytes: int | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Path:
    """Fetch an http(s) media URL to `dest_dir/name`, atomically, bounded and checked.

    Anything else (a local path, `file:`, `data:`, `ftp:` ..., or a redirect to one) is refused
    without being read. The body may be at most `max_bytes` (default: the environment's
    SORA_WIDGETS_MAX_DOWNLOAD_MB, else 2048 MB) and must arrive within `deadline_s` (default
    DOWNLOAD_DEADLINE_S, 15 minutes); `timeout` bounds each connect and read. With `kind`
    "video" or "image" the first bytes must look like one (a video must also hold a video
    stream) before the file gets its name. A file already there with the expected size (`size`,
    or the server's Content-Length) is kept. Any failure raises GenerationError(kind="download")
    and leaves nothing under the final name, nor a `.part` file.
    """
    if Path(name).name != name or name in ("", ".", ".."):
        raise ValueError(f"name must be a plain file name, got {name!r}")
    if kind not in (None, "video", "image"):
        raise ValueError(f"kind must be 'video', 'image' or None, got {kind!r}")
    text = os.fspath(url).strip()
    if (problem := _url_problem(text)) is not None:
        raise _refused(text, f"it {problem}")
    cap = _max_download_bytes() if max_bytes is None else max_bytes
    dest = Path(dest_dir) / name
    if size is not None and dest.is_file() and dest.stat().st_size == size:
        return dest
    wait = DOWNLOAD_DEADLINE_S if deadline_s is None else deadline_s
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        return _download_http(text, dest, size=size, kind=kind, cap=cap, deadline_s=wait,
                              timeout=min(timeout, wait), transport=transport)
    except OSError as exc:
        raise GenerationError(f"could not save {name} in {dest.parent}: {exc}", kind="download") from exc


def _download_http(url: str, dest: Path, *, size: int | None, kind: str | None, cap: int,
                   deadline_s: float, timeout: float, transport: httpx.BaseTransport | None) -> Path:
    import httpx

    started = time.monotonic()
    try:
        with _http_client(timeout, transport) as client, client.stream("GET", url) as response:
            _check_status(response, url)
            expected = _expected_size(response, url, size, cap)
            if expected is not None and dest.is_file() and dest.stat().st_size == expected:
                return dest
            chunks = _bounded_chunks(response, url, max_bytes=cap, limit_name=MAX_DOWNLOAD_MB_VAR,
                                     started=started, deadline_s=deadline_s)
            _save_checked(chunks, dest, url=url, expected=expected, kind=kind)
    except httpx.HTTPError as exc:
        raise GenerationError(f"downloading {_shown(url)} failed: {exc}", kind="download") from exc
    return dest


def _expected_size(response: httpx.Response, url: str, size: int | None, cap: int) -> int | None:
    """The file's size as announced (`size`, else Content-Length); refused before reading when
    either is over the cap."""
    length = response.headers.get("content-length", "")
    if response.headers.get("content-encoding", "identity") != "identity" or not length.isdigit():
        length = ""  # compressed on the wire (so not the file's size), or not a number
    announced = int(length) if length else None
    for n in (size, announced):
        if n is not None and n > cap:
            raise _refused(url, f"it is {_megabytes(n)}, over the download limit of "
                                f"{_megabytes(cap)} ({MAX_DOWNLOAD_MB_VAR})")
    return size if size is not None else announced


def _save_checked(chunks: Iterable[bytes], dest: Path, *, url: str, expected: int | None,
                  kind: str | None) -> None:
    """Write `chunks` to a `.part` file beside `dest` and rename it only once every check passed."""
    with _part_file(dest) as tmp:
        with open(tmp, "wb") as fh:
            got = _write_sniffed(chunks, fh, url=url, kind=kind)
        if expected is not None and got != expected:
            how = "stopped early" if got < expected else "sent more than announced"
            raise GenerationError(f"downloading {_shown(url)} {how}: got {got} of {expected} bytes",
                                  kind="download")
        if kind == "video":
            _check_playable(tmp, dest.name, url)
        os.replace(tmp, dest)


def _write_sniffed(chunks: Iterable[bytes], fh: BinaryIO, *, url: str,
                   kind: str | None) -> int:
    """Write the body, checking its first bytes look like `kind` as soon as they have arrived."""
    head, got = b"", 0
    for chunk in chunks:
        fh.write(chunk)
        got += len(chunk)
        if kind is not None and len(head) < _SNIFF_BYTES:
            head += chunk[:_SNIFF_BYTES]
            if len(head) >= _SNIFF_BYTES:
                _check_content(head, kind, url)
    if kind is not None and len(head) < _SNIFF_BYTES:
        _check_content(head, kind, url)
    return got


_LOOKS_LIKE = {"mp4": "an MP4/MOV video", "webm": "a WebM/Matroska video", "png": "a PNG image",
               "jpeg": "a JPEG image", "webp": "a WebP image", "gif": "a GIF image"}


def _check_content(head: bytes, kind: str, url: str) -> None:
    """Refuse a body whose first bytes are not a video (or an image) as `kind` asks."""
    if (sniff_video(head) if kind == "video" else sniff_image(head)) is None:
        wanted = "a video" if kind == "video" else "an image"
        raise _refused(url, f"it looks like {_looks_like(head)}, not {wanted}")


def _looks_like(head: bytes) -> str:
    """What the first bytes of a body look like, for a refusal message ("an HTML page")."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        return "an empty file"
    if text.startswith((b"<!doctype", b"<html", b"<head", b"<body")):
        return "an HTML page"
    if text.startswith((b"<?xml", b"<svg")):
        return "an XML document"
    if text.startswith((b"{", b"[")):
        return "a JSON document"
    if (found := sniff_video(head) or sniff_image(head)) is not None:
        return _LOOKS_LIKE[found]
    if not head.strip(b"\x00"):
        return "nothing but zero bytes"
    if all(32 <= byte < 127 or byte in b"\t\r\n" for byte in head):
        return "plain text"
    return f"unknown data starting {head[:8]!r}"


def _check_playable(path: str, name: str, url: str) -> None:
    """Refuse a downloaded "video" that PyAV cannot open or that holds no video stream."""
    try:
        probe_video(path)
    except GenerationError as exc:  # its message names the .part file: name the file asked for
        raise _refused(url, f"it is not a playable video ({str(exc).replace(path, name)})") from exc


def link_or_copy(source: Path, dest: Path) -> Path:
    """Put the local file `source` at `dest` (a hard link, else a copy), atomically.

    For files the package made itself (the offline preview's renders) only: unlike `download`
    it takes any local path. Raises GenerationError(kind="download") when it cannot.
    """
    source, dest = Path(source), Path(dest)
    if not source.is_file():
        raise GenerationError(f"cannot copy {source}: no such file", kind="download")
    try:
        if dest.is_file() and (dest.samefile(source) or dest.stat().st_size == source.stat().st_size):
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with _part_file(dest) as tmp:
            os.unlink(tmp)  # a hard link needs a free name; the random one stays ours
            try:
                os.link(source, tmp)
            except OSError:  # another file system, or links not allowed: copy instead
                shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
    except OSError as exc:
        raise GenerationError(f"could not save {dest.name} in {dest.parent}: {exc}",
                              kind="download") from exc
    return dest


def remove_partials(folder: Path, *, older_than_s: float = 0) -> int:
    """Delete the `.<name>.<pid>-<random>.part` files that killed downloads left in `folder` and
    its direct subfolders, if last written over `older_than_s` ago; returns how many.

    Other files are never touched, nor the `.part` files this process is writing now, nor those
    of another process that still runs (the pid in the name says whose it is), so two kernels
    sharing a run folder never cut each other's downloads.
    """
    folders = [Path(folder)]
    if not folders[0].is_dir():
        return 0
    with os.scandir(folders[0]) as entries:
        folders += [Path(e.path) for e in entries if e.is_dir(follow_symlinks=False)]
    cutoff = time.time() - older_than_s
    removed = 0
    for where in folders:
        with os.scandir(where) as entries:
            removed += sum(_remove_stale(e, cutoff) for e in entries
                           if (match := _PARTIAL.match(e.name)) and not _writer_alive(match.group(1)))
    return removed


def _writer_alive(pid_text: str | None) -> bool:
    """Whether another running process wrote a `.part` file (its pid is in the name)."""
    from .._owner import pid_alive

    return pid_text is not None and int(pid_text) != os.getpid() and pid_alive(int(pid_text))


def _remove_stale(entry: os.DirEntry[str], cutoff: float) -> bool:
    """Delete one `.part` file last written before `cutoff` unless this process is writing it."""
    with _WRITING_LOCK, contextlib.suppress(FileNotFoundError):  # gone meanwhile: not ours to count
        if (entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_mtime <= cutoff
                and os.path.realpath(entry.path) not in _WRITING):
            os.unlink(entry.path)
            return True
    return False


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
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


def thumbnail_of(video_path: str | os.PathLike[str], dest: str | os.PathLike[str], *,
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
            file_size = size if isinstance(size, int) and not isinstance(size, bool) else None
            items.append(MediaItem(field=name, index=index if isinstance(value, list) else None,
                                   kind=kind, url=entry["url"], content_type=content_type,
                                   file_size=file_size))
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
