"""What a media file is: its format sniffed from the first bytes, a video probed with PyAV, its first
frame as a thumbnail, and how it measures against an endpoint's `x-fal` limits.

PyAV and Pillow are imported inside the functions that need them, so `import sora_widgets` stays fast.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import GenerationError
from .files import atomic_write

if TYPE_CHECKING:
    from PIL import Image

_LOOKS_LIKE = {"mp4": "an MP4/MOV video", "webm": "a WebM/Matroska video", "png": "a PNG image",
               "jpeg": "a JPEG image", "webp": "a WebP image", "gif": "a GIF image"}
_UNITS = {"width": " px", "height": " px", "duration": " s", "fps": " fps", "aspect_ratio": ""}


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


def looks_like(head: bytes) -> str:
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


def limit_problems(limits: Mapping[str, Any], path: Path, *, kind: str = "image",
                   size: tuple[int, int] | None = None) -> list[str]:
    """What breaks fal's `x-fal` media limits (file size, width, height, aspect ratio, and for
    videos duration and fps) in the local file `path`, as phrases naming the limit.

    `size` is an image's (width, height) when already known (`NormalizedImage.size`): the file
    is then not opened again."""
    problems = []
    file_size = path.stat().st_size
    if isinstance(limits.get("max_file_size"), (int, float)) and file_size > limits["max_file_size"]:
        problems.append(f"is {file_size / 1e6:.1f} MB, over the endpoint's limit of "
                        f"{limits['max_file_size'] / 1e6:.1f} MB")
    if any(k.endswith(("_width", "_height", "_aspect_ratio")) for k in limits) or kind == "video":
        measured = _measured(path, kind, size)
        measured["aspect_ratio"] = measured["width"] / max(1, measured["height"])
        problems += [problem for name, value in measured.items()
                     for problem in _out_of_range(name, value, limits)]
    return problems


def _measured(path: Path, kind: str, size: tuple[int, int] | None) -> dict[str, float]:
    """Width and height of the file (and a video's duration and fps), read from its header."""
    if kind == "video":
        info = probe_video(path)
        return {"width": info.width, "height": info.height, "duration": info.duration_s, "fps": info.fps}
    if size is None:
        from PIL import Image

        with Image.open(path) as img:
            size = img.size
    return {"width": size[0], "height": size[1]}


def _out_of_range(name: str, value: float, limits: Mapping[str, Any]) -> list[str]:
    """The phrases for `value` below `min_<name>` or above `max_<name>`, if either is set."""
    low, high = limits.get(f"min_{name}"), limits.get(f"max_{name}")
    unit = _UNITS[name]
    shown = f"{value:g}{unit}" if name != "aspect_ratio" else f"{value:.2f}"
    words = name.replace("_", " ")
    problems = []
    if isinstance(low, (int, float)) and value < low:
        problems.append(f"has {words} {shown}, below the minimum {low:g}{unit}")
    if isinstance(high, (int, float)) and value > high:
        problems.append(f"has {words} {shown}, above the maximum {high:g}{unit}")
    return problems
