"""The preview's renderer: a labelled Ken Burns MP4 (H.264, yuv420p, +faststart) from one image.

Kept apart from the backend's job handling so each reads top to bottom. The source image is
converted to YUV once; each frame is a crop of those planes, scaled by swscale, with the
"PREVIEW" label blended in, which keeps 720p rendering several times faster than real time.
"""

from __future__ import annotations

import os
import re
import textwrap
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import GenerationError, ValidationError
from .._values import to_lines, to_ratio, to_seconds
from ..media import contact_sheet, load_image
from ..schema.fields import DURATION_FIELDS, looks_like_image

if TYPE_CHECKING:
    import av
    import numpy as np
    from PIL import Image

LABEL = "PREVIEW — not made by any model"
_SHORT_SIDE = {"720p": 720, "1080p": 1080, "true_1080p": 1080}
_SOURCE_SCALE = 1.5  # the source is 1.5x the output, so whole-pixel crops still move smoothly


class RenderCancelled(Exception):
    """Raised inside the render thread when the job's cancel flag is set."""


@dataclass(frozen=True)
class Camera:
    """A Ken Burns move: zoom factors at start and end, pan direction in -1..1 on each axis."""

    zoom_start: float = 1.0
    zoom_end: float = 1.12
    pan_x: float = 0.25
    pan_y: float = 0.0
    words: str = "slow zoom in"

    def box(self, t: float, width: int, height: int) -> tuple[int, int, int, int]:
        """The whole-pixel crop (x, y, w, h) of a width x height source at time t in 0..1."""
        zoom = self.zoom_start + (self.zoom_end - self.zoom_start) * t
        cw, ch = width / zoom, height / zoom
        x = (width - cw) * (0.5 + 0.5 * self.pan_x * t)
        y = (height - ch) * (0.5 + 0.5 * self.pan_y * t)
        w, h = round(cw / 2) * 2, round(ch / 2) * 2  # even, as 4:2:0 chroma needs
        return min(round(x), width - w), min(round(y), height - h), w, h


def camera_for(prompt: str) -> Camera:
    """The camera move that words in the prompt ask for ("zoom out", "pans left"); else a zoom in."""
    text = prompt.lower()
    pans = set(re.findall(r"\b(?:pan|tilt)(?:s|ning|ed)?\s+(left|right|up|down)\b", text))
    pan_x = float(("right" in pans) - ("left" in pans))
    pan_y = float(("down" in pans) - ("up" in pans))
    if re.search(r"\bzoom(?:s|ing|ed)?\s+out\b", text):
        return Camera(1.12, 1.0, pan_x, pan_y, "slow zoom out")
    if pan_x or pan_y:
        return Camera(1.0, 1.15, pan_x, pan_y, "pan " + " and ".join(sorted(pans)))
    if re.search(r"\bzoom(?:s|ing|ed)?\s+in\b", text):
        return Camera(1.0, 1.15, 0.0, 0.0, "zoom in")
    return Camera()


def preview_seconds(arguments: dict[str, Any]) -> float:
    """The length to render: the request's duration by meaning (8, "8", "8s", duration_seconds),
    else 4 seconds; capped to 0.5..60 s. ValueError for a duration that is no length."""
    for name in DURATION_FIELDS:
        if arguments.get(name) is None:
            continue
        seconds = to_seconds(arguments[name])
        if seconds is None:
            raise ValueError(f"{name} {arguments[name]!r} is not a length in seconds")
        return min(60.0, max(0.5, seconds))
    return 4.0


def output_size(arguments: dict[str, Any], image_size: tuple[int, int] | None,
                scale: float = 1.0) -> tuple[int, int]:
    """Frame size: a short side from the resolution (720p, 1080p, 480p ...; 720 by default) and
    the shape from the aspect ratio (16:9, 9:16, 1:1, 4:3 ...), or the image's shape for `auto`."""
    resolution = arguments.get("resolution")
    short = _SHORT_SIDE.get(str(resolution)) or to_lines(resolution) or 720
    ratio = to_ratio(arguments.get("aspect_ratio"))
    if ratio is not None:
        ratio = min(4.0, max(0.25, ratio))  # a typo cannot make a 1 x 10000 video
    else:
        ratio = 16 / 9 if image_size is None or image_size[0] >= image_size[1] else 9 / 16
    width, height = (round(short * ratio), short) if ratio >= 1 else (short, round(short / ratio))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _font(size: int) -> Any:
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _gradient(width: int, height: int, seed: str) -> Image.Image:
    """A diagonal two-colour gradient, its colours picked from `seed` so cards differ."""
    import numpy as np
    from PIL import Image

    h = zlib.crc32(seed.encode())
    top = np.array([40 + h % 60, 50 + (h >> 8) % 80, 90 + (h >> 16) % 100], np.float32)
    bottom = np.array([10 + (h >> 24) % 40, 20 + (h >> 4) % 40, 30 + (h >> 12) % 50], np.float32)
    ramp = (np.linspace(0, 1, height)[:, None] * 0.7 + np.linspace(0, 1, width)[None, :] * 0.3)
    pixels = top + (bottom - top) * ramp[..., None].astype(np.float32)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def _card(width: int, height: int, title: str, body: str) -> Image.Image:
    """A gradient card with a title and wrapped body text (text-to-video, or a missing image)."""
    from PIL import ImageDraw

    card = _gradient(width, height, body)
    draw = ImageDraw.Draw(card)
    size = max(10, height // 18)
    lines = textwrap.wrap(body, width=max(12, int(width * 0.8 / (size * 0.55))))[:8] or [""]
    y = height // 2 - (len(lines) + 1) * size * 6 // 10
    draw.text((width // 10, y), title, font=_font(max(8, size * 2 // 3)), fill=(255, 220, 120))
    for line in lines:
        y += size * 12 // 10
        draw.text((width // 10, y), line, font=_font(size), fill="white")
    return card


def _label(size: int) -> Image.Image:
    """The RGBA stamp "PREVIEW — not made by any model"; the dash is drawn, fonts may lack it."""
    from PIL import Image, ImageDraw

    font, pad = _font(size), max(3, size // 2)
    before, after = LABEL.split("—")
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    w_before, w_after = probe.textlength(before, font=font), probe.textlength(after, font=font)
    dash = size
    width = int(2 * pad + w_before + dash + w_after) + 1
    patch = Image.new("RGBA", (width + width % 2, (size + 2 * pad) + (size % 2)), (0, 0, 0, 0))
    draw = ImageDraw.Draw(patch)
    draw.rounded_rectangle((0, 0, patch.width - 1, patch.height - 1), radius=pad,
                           fill=(0, 0, 0, 170))
    draw.text((pad, pad), before, font=font, fill=(255, 255, 255, 255), anchor="lt")
    mid = pad + round(size * 0.42)
    draw.line((pad + w_before, mid, pad + w_before + dash - 1, mid), fill=(255, 255, 255, 255),
              width=max(1, size // 12))
    draw.text((pad + w_before + dash, pad), after, font=font, fill=(255, 255, 255, 255), anchor="lt")
    return patch


def _plane(frame: av.VideoFrame, index: int) -> np.ndarray:
    """A writable numpy view of one plane of a frame (without the row padding)."""
    import numpy as np

    plane = frame.planes[index]
    pixels: np.ndarray = np.frombuffer(memoryview(plane), np.uint8)
    return pixels.reshape(-1, plane.line_size)[:plane.height, :plane.width]


class _Stamp:
    """The label converted once to YUV 4:2:0 with its alpha, blended into each frame in place,
    at the top of the frame."""

    def __init__(self, frame_w: int, frame_h: int) -> None:
        import av
        import numpy as np

        margin = max(2, frame_h // 40) // 2 * 2
        patch = _label(max(8, min(frame_h // 30, frame_w // 24)))  # about 3/4 of the width at most
        patch = patch.crop((0, 0, min(patch.width, (frame_w - 2 * margin) // 2 * 2), patch.height))
        self.w, self.h = patch.size
        # top left: a browser draws its video controls over the bottom of a paused frame
        self.x, self.y = margin, margin
        yuv = av.VideoFrame.from_image(patch.convert("RGB")).reformat(format="yuv420p")
        self.planes = [_plane(yuv, i).astype(np.float32) for i in range(3)]
        alpha = np.asarray(patch.getchannel("A"), np.float32) / 255
        half = alpha.reshape(self.h // 2, 2, self.w // 2, 2).mean(axis=(1, 3))
        self.alphas = [alpha, half, half]

    def apply(self, frame: av.VideoFrame) -> None:
        for i, (fg, alpha) in enumerate(zip(self.planes, self.alphas)):
            div = 1 if i == 0 else 2
            x, y, (h, w) = self.x // div, self.y // div, fg.shape
            region = _plane(frame, i)[y:y + h, x:x + w]
            region[...] = (region + (fg - region) * alpha).astype(region.dtype)


def _image_source(arguments: dict[str, Any], endpoint_id: str) -> Any:
    """The input image of any endpoint: `image_url`, else the first `*image_url` / `*frame_url`
    field (start_image_url, first_frame_url ...); None for text-to-video."""
    if "text-to-video" in endpoint_id:
        return None
    if arguments.get("image_url"):
        return arguments["image_url"]
    return next((v for k, v in arguments.items()
                 if looks_like_image(k) and v and not k.startswith(("end", "last", "tail"))), None)


def _still(arguments: dict[str, Any], endpoint_id: str, scale: float,
           log: Callable[[str], None]) -> tuple[Image.Image, int, int]:
    """The picture the camera moves over (1.5x the frame) and the frame size."""
    from PIL import Image, ImageOps

    image, source = None, _image_source(arguments, endpoint_id)
    if source:
        try:
            image = load_image(source, timeout=3.0)
        except (ValidationError, GenerationError) as exc:
            log(f"Could not load the input image ({exc}); rendering a placeholder frame instead.")
    width, height = output_size(arguments, image.size if image else None, scale)
    size = (round(width * _SOURCE_SCALE / 2) * 2, round(height * _SOURCE_SCALE / 2) * 2)
    if image is not None:
        still = ImageOps.fit(image, size, Image.Resampling.BICUBIC)
    elif source:
        still = _card(*size, "Input image not available offline (placeholder)", str(source)[:300])
    else:
        still = _card(*size, "Text to video", str(arguments.get("prompt") or "(no prompt)"))
    return still, width, height


def render_preview(arguments: dict[str, Any], endpoint_id: str, out_dir: Path, stem: str, *,
                   fps: int = 24, scale: float = 1.0, speed: float | None = None,
                   cancel: threading.Event | None = None,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Render `out_dir/<stem>.mp4` (+ .jpg thumbnail, .sprites.jpg) and return fal-shaped output.

    Runs synchronously (call it in a thread); setting `cancel` stops it between frames, and
    `log` receives progress lines (at most about two a second).
    """
    import av

    cancel, log = cancel or threading.Event(), log or (lambda line: None)
    still, width, height = _still(arguments, endpoint_id, scale, log)
    base = av.VideoFrame.from_image(still).reformat(format="yuv420p")  # converted once
    planes, (src_w, src_h) = [_plane(base, i) for i in range(3)], still.size
    camera = camera_for(str(arguments.get("prompt", "")))
    frames = max(1, round(preview_seconds(arguments) * fps))
    stamp, sprites, sprite_at = _Stamp(width, height), [], {i * (frames - 1) // 9 for i in range(10)}
    tile = (240 * width // max(width, height) // 2 * 2, 240 * height // max(width, height) // 2 * 2)
    log(f"Preview render: {width}x{height} at {fps} fps, {frames} frames, camera: {camera.words}")
    out_dir.mkdir(parents=True, exist_ok=True)
    mp4, part = out_dir / f"{stem}.mp4", out_dir / f".{stem}.mp4.part"
    started = last_log = time.monotonic()
    try:
        with av.open(str(part), "w", format="mp4", options={"movflags": "+faststart"}) as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"preset": "ultrafast", "crf": "26"}  # fastest; small enough files
            stream.codec_context.gop_size = 2 * fps  # a keyframe every 2 s keeps seeking snappy
            stream.codec_context.thread_count = 0
            for i in range(frames):
                if cancel.is_set():
                    raise RenderCancelled
                x, y, w, h = camera.box(i / max(1, frames - 1), src_w, src_h)
                crop = av.VideoFrame(w, h, "yuv420p")
                for n, plane in enumerate(planes):  # chroma planes are half size
                    d = 1 if n == 0 else 2
                    _plane(crop, n)[...] = plane[y // d:y // d + h // d, x // d:x // d + w // d]
                frame = crop.reformat(width, height, "yuv420p", interpolation="BILINEAR")
                stamp.apply(frame)
                if i == 0:
                    thumbnail = frame.to_image()
                if i in sprite_at:
                    sprites.append(frame.reformat(*tile, format="rgb24").to_image())
                frame.pts = i
                container.mux(stream.encode(frame))
                if (now := time.monotonic()) - last_log >= 0.5 or i == frames - 1:
                    log(f"Rendering frame {i + 1}/{frames}")
                    last_log = now
                if speed:
                    cancel.wait(max(0.0, started + (i + 1) / (fps * speed) - time.monotonic()))
            container.mux(stream.encode(None))
        os.replace(part, mp4)
    finally:
        part.unlink(missing_ok=True)
    took = time.monotonic() - started
    log(f"Encoded {frames / fps:.1f} s of video in {took:.1f} s ({frames / fps / took:.1f}x real time)")
    thumb, sheet = out_dir / f"{stem}.jpg", out_dir / f"{stem}.sprites.jpg"
    thumbnail.save(thumb, format="JPEG", quality=88)
    grid = contact_sheet(sprites, columns=5)
    grid.save(sheet, format="JPEG", quality=80)
    return {"video": _file(mp4, "video/mp4", width=width, height=height, fps=fps,
                           duration=frames / fps, num_frames=frames),
            "video_id": stem,
            "thumbnail": _file(thumb, "image/jpeg", width=width, height=height),
            "spritesheet": _file(sheet, "image/jpeg", width=grid.width, height=grid.height),
            "preview": True}


def _file(path: Path, content_type: str, **extra: Any) -> dict[str, Any]:
    """A fal-style File entry for a local file."""
    return {"url": path.resolve().as_uri(), "content_type": content_type, "file_name": path.name,
            "file_size": path.stat().st_size, **extra}
