"""Input images, classified once and decoded once: an http(s) URL stays a URL; a path, data URI,
bytes or PIL image is checked to be an image (refused over MAX_INPUT_PIXELS before it is decoded)
and stored under media/inputs by content hash. Callers hand on the typed result, never the raw value.

Pillow is imported inside the functions that need it, so `import sora_widgets` stays fast.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, Union

from .._errors import GenerationError, ValidationError
from .downloads import fetch_bytes, shown_url, url_problem, url_scheme
from .files import atomic_write
from .probe import sniff_image

if TYPE_CHECKING:
    from PIL import Image

#: Anything `normalize_image` accepts: a URL or data URI, a path, raw bytes or a PIL image.
ImageInput = Union[str, os.PathLike[str], bytes, bytearray, memoryview, "Image.Image"]
#: How an image input was given: an http(s) URL, a data URI, a local path, bytes or a PIL image.
ImageKind = Literal["url", "data_uri", "path", "bytes", "pil"]

#: The largest input image accepted, in pixels: checked from the header, before decoding.
MAX_INPUT_PIXELS = 40_000_000
_CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp", "gif": "image/gif"}
_IMAGE_FETCH_MAX_BYTES = 64 << 20  # load_image's URLs: an input image, not a video
_IMAGE_FETCH_DEADLINE_S = 60.0


@dataclass(frozen=True)
class ImageSource:
    """An image input classified by its form alone (nothing read, fetched or decoded yet)."""

    kind: ImageKind
    given: Any  # the input as given; a URL or data URI stripped of surrounding blanks

    @property
    def is_remote(self) -> bool:
        """An http(s) URL: the image stays where it is; there is nothing local to store or upload."""
        return self.kind == "url"

    @property
    def url(self) -> str | None:
        """What a request can carry as is (the http(s) URL or the data URI), else None."""
        return str(self.given) if self.kind in ("url", "data_uri") else None

    @property
    def path(self) -> Path | None:
        """The local file a path names (`~` expanded; not checked to exist), else None."""
        return Path(self.given).expanduser() if self.kind == "path" else None


@dataclass(frozen=True)
class NormalizedImage:
    """An image input classified, checked and stored once: hand this on, not the raw input.

    `value` goes into the request's arguments: the http(s) URL, the data URI, or the stored copy's
    path. All local content (every kind but "url") was decoded once and kept at `local_path`
    (media/inputs/<sha256>.<ext>) with its content type and size in pixels; a remote image is
    not fetched, so those are None.
    """

    value: str
    sha256: str | None
    local_path: Path | None
    content_type: str | None
    kind: ImageKind
    width: int | None
    height: int | None

    @property
    def is_remote(self) -> bool:
        """An http(s) URL, not fetched: no local copy, hash, content type or size."""
        return self.kind == "url"

    @property
    def url(self) -> str | None:
        """What a request can carry as is (the http(s) URL or the data URI); None when the local
        file must be uploaded (or opened) instead."""
        return self.value if self.kind in ("url", "data_uri") else None

    @property
    def size(self) -> tuple[int, int] | None:
        """(width, height) in pixels of local content, read once when it was checked."""
        return None if self.width is None or self.height is None else (self.width, self.height)


class _BadImage(Exception):
    """An unusable image input; the public functions turn it into a ValidationError for a field."""


def _describe(value: Any) -> str:
    """A short, safe description of what the user gave, for error messages."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_pil_image(value: Any) -> TypeGuard[Image.Image]:
    pil = sys.modules.get("PIL.Image")  # a PIL image can only exist once PIL is imported
    return pil is not None and isinstance(value, pil.Image)


def classify_image(value: object, *, field: str = "image_url") -> ImageSource:
    """Say once what an image input is, from its form alone: nothing is read, fetched or decoded.

    Raises ValidationError naming `field` for an http(s) URL without a host, any other URL
    scheme (`file:`, `javascript:` ...) and a value of an unsupported type.
    """
    try:
        return _classify(value)
    except _BadImage as exc:
        raise ValidationError([(field, str(exc))]) from exc


def _classify(value: object) -> ImageSource:
    if isinstance(value, str) and (scheme := url_scheme(value.strip())) is not None:
        text = value.strip()
        if scheme in ("http", "https"):
            if (problem := url_problem(text)) is not None:
                raise _BadImage(f"the URL {_describe(shown_url(text))} {problem}")
            return ImageSource("url", text)
        if scheme == "data":
            return ImageSource("data_uri", text)
        raise _BadImage(f"{scheme}: URLs are not accepted (got {_describe(value)}); give an "
                        "http(s) URL, a data URI, a local file path, bytes or a PIL image")
    if isinstance(value, (str, os.PathLike)):
        return ImageSource("path", value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ImageSource("bytes", value)
    if _is_pil_image(value):
        return ImageSource("pil", value)
    raise _BadImage(f"expected a URL, a file path, bytes or a PIL image, got {type(value).__name__}")


def check_remote_url(value: str, field: str) -> str:
    """`value` stripped, when it is an http(s) URL with a host; else ValidationError naming `field`."""
    source = classify_image(value, field=field)
    if not source.is_remote:
        raise ValidationError([(field, f"expected an http(s) URL, got {_describe(value)}")])
    return str(source.given)


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


def _read_local(source: ImageSource, path: Path) -> tuple[bytes, str]:
    """The bytes of the file a path names, and how messages name it (as the user wrote it)."""
    if not path.is_file():
        what = "is a folder, not an image file" if path.is_dir() else "does not exist"
        raise _BadImage(f"the file {str(source.given)!r} {what} "
                        f"(looked for {path.resolve()})")
    try:
        return path.read_bytes(), f"the file {str(source.given)!r}"
    except OSError as exc:
        raise _BadImage(f"the file {str(source.given)!r} could not be read ({exc.strerror or exc})") from exc


def _pil_bytes(img: Image.Image) -> bytes:
    """A PIL image as PNG bytes (lossless, so the stored copy is exactly what was shown)."""
    if img.mode not in ("1", "L", "LA", "I", "P", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def _content(source: ImageSource) -> tuple[bytes, str]:
    """(bytes, how messages name them) of local content: a data URI, path, bytes or PIL image."""
    if source.kind == "data_uri":
        return _decode_data_uri(str(source.given)), "the data URI"
    if source.path is not None:
        return _read_local(source, source.path)
    if isinstance(source.given, (bytes, bytearray, memoryview)):
        return bytes(source.given), f"the {len(source.given)} bytes given"
    return _pil_bytes(source.given), "the PIL image"


def _check_pixels(size: tuple[int, int], given: str) -> None:
    """Refuse an image larger than MAX_INPUT_PIXELS before it is decoded (a decompression bomb)."""
    width, height = size
    if width * height > MAX_INPUT_PIXELS:
        raise _BadImage(f"{given} is {width}x{height} pixels ({width * height / 1e6:.1f} million), "
                        f"over the limit of {MAX_INPUT_PIXELS / 1e6:g} million pixels")


def _image_bytes(data: bytes, given: str) -> tuple[bytes, str, tuple[int, int]]:
    """Check that `data` is a readable image: (bytes, format, size); PNG/JPEG/WebP/GIF kept as
    is, others become PNG."""
    from PIL import Image, UnidentifiedImageError

    kind = sniff_image(data)
    try:
        with warnings.catch_warnings():  # PIL warns of a likely bomb; refuse it instead
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                _check_pixels(img.size, given)
                img.load()
                if kind is not None:
                    return data, kind, img.size
                out = io.BytesIO()
                img.convert("RGBA" if "A" in img.getbands() else "RGB").save(out, format="PNG")
                return out.getvalue(), "png", img.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _BadImage(f"{given} is too large to open safely ({exc}); the limit is "
                        f"{MAX_INPUT_PIXELS / 1e6:g} million pixels") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        start = bytes(data[:12])
        raise _BadImage(f"{given} could not be read as an image "
                        f"({len(data)} bytes starting {start!r}): {exc}") from exc


def _store(data: bytes, kind: str, media_dir: Path) -> tuple[str, Path]:
    """Write `data` once to media_dir/inputs/<sha256>.<ext>; returns the digest and path."""
    digest = hashlib.sha256(data).hexdigest()
    dest = Path(media_dir) / "inputs" / f"{digest}.{'jpg' if kind == 'jpeg' else kind}"
    if not (dest.is_file() and dest.stat().st_size == len(data)):
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(dest, data)
        except OSError as exc:
            raise GenerationError(f"The input image could not be kept in {dest.parent} "
                                  f"({exc.strerror or exc}).", kind="media") from exc
    return digest, dest


def normalize_image(value: ImageInput | ImageSource | NormalizedImage, *, media_dir: Path,
                    field: str = "image_url") -> NormalizedImage:
    """Turn any image input into a request value; local content is kept under media/inputs.

    http(s) URLs pass unchanged; paths, bytes, PIL images and data URIs are checked to be
    images and copied to `media_dir/inputs/<sha256>.<ext>` (a data URI stays the value). An
    ImageSource is not classified again; a NormalizedImage is returned as it is.
    Raises ValidationError naming `field` for a missing file, a non-image, a `file:` or
    `javascript:` URL or an unsupported kind of value.
    """
    if isinstance(value, NormalizedImage):
        return value
    source = value if isinstance(value, ImageSource) else classify_image(value, field=field)
    if source.is_remote:
        return NormalizedImage(value=str(source.given), sha256=None, local_path=None, content_type=None,
                               kind=source.kind, width=None, height=None)
    try:
        data, kind, (width, height) = _image_bytes(*_content(source))
    except _BadImage as exc:
        raise ValidationError([(field, str(exc))]) from exc
    digest, path = _store(data, kind, Path(media_dir))
    return NormalizedImage(value=source.url or str(path), sha256=digest, local_path=path,
                           content_type=_CONTENT_TYPES[kind], kind=source.kind, width=width, height=height)


def load_image(value: ImageInput | ImageSource | NormalizedImage, *, timeout: float = 5.0,
               field: str = "image_url") -> Image.Image:
    """Open any image input as an RGB PIL image, fetching http(s) URLs with a short timeout.

    Raises ValidationError (naming `field`) for unusable content and
    GenerationError(kind="download") when a URL cannot be fetched.
    """
    from PIL import Image

    if _is_pil_image(value):
        return value.convert("RGB")
    if isinstance(value, NormalizedImage):  # its stored copy, else the URL it stands for
        value = value.local_path or value.value
    source = value if isinstance(value, ImageSource) else classify_image(value, field=field)
    try:
        if source.is_remote:
            data = fetch_bytes(str(source.given), timeout=timeout, max_bytes=_IMAGE_FETCH_MAX_BYTES,
                               deadline_s=_IMAGE_FETCH_DEADLINE_S, limit_name="input images")
            given = f"the image at {_describe(source.given)}"
        else:
            data, given = _content(source)
        data = _image_bytes(data, given)[0]
    except _BadImage as exc:
        raise ValidationError([(field, str(exc))]) from exc
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")
