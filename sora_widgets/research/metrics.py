"""Video metrics on the CPU with numpy and PyAV, no model weights.

What was delivered against what was asked (duration, frame rate, size), how faithful the first
frame is to the input image (PSNR and SSIM), how much the picture moves (mean absolute
difference of consecutive frames) and how much its brightness flickers. Every frame is decoded
(with threads) but analysed at a reduced size, so a 20 s 720p video takes well under a second.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from .._errors import GenerationError, ValidationError
from .._values import to_lines, to_ratio, to_seconds
from ..media import ImageInput, load_image, probe_video
from ..schema.fields import DURATION_FIELDS

if TYPE_CHECKING:
    import numpy as np

    from ..records import Generation

#: frames are analysed for motion and flicker at most this wide (area-averaged, grayscale)
ANALYSIS_WIDTH = 320
#: PSNR of identical images is infinite; it is reported as this many dB to stay a plain number
PSNR_CAP_DB = 100.0
_SHORT_SIDE = {"720p": 720, "1080p": 1080, "true_1080p": 1080}


_SSIM_WINDOW = 7  # pixels a side of SSIM's window: smaller videos get no SSIM


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB of two uint8 images of the same shape (capped at 100)."""
    import numpy as np

    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return PSNR_CAP_DB if mse == 0 else min(PSNR_CAP_DB, 10 * math.log10(255.0**2 / mse))


def _box_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over every k x k window fully inside `x` (an integral image, so O(pixels))."""
    import numpy as np

    c = np.zeros((x.shape[0] + 1, x.shape[1] + 1))
    c[1:, 1:] = x.cumsum(0).cumsum(1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def ssim(a: np.ndarray, b: np.ndarray, *, window: int = 7) -> float:
    """Structural similarity (Wang et al. 2004) of two grayscale images on a 0..255 scale.

    Our own implementation: local means, variances and covariance over a uniform
    `window` x `window` window (as scikit-image does by default), the usual constants
    C1 = (0.01 * 255)^2 and C2 = (0.03 * 255)^2, averaged over every window inside the image.
    1.0 means identical; unrelated images score near 0.
    """
    import numpy as np

    x, y = a.astype(np.float64), b.astype(np.float64)
    if x.shape != y.shape or min(x.shape) < window:
        raise ValueError(f"ssim needs two images of one shape, at least {window} px a side; "
                         f"got {x.shape} and {y.shape}")
    mx, my = _box_mean(x, window), _box_mean(y, window)
    vx = _box_mean(x * x, window) - mx * mx
    vy = _box_mean(y * y, window) - my * my
    cov = _box_mean(x * y, window) - mx * my
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    score = ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(score.mean())


def luma(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an RGB uint8 array, as float64 on a 0..255 scale."""
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _fit(image: Any, width: int, height: int) -> np.ndarray:
    """The image scaled to cover width x height and centre-cropped, as the renderer frames it."""
    import numpy as np
    from PIL import Image, ImageOps

    return np.asarray(ImageOps.fit(image, (width, height), Image.Resampling.BICUBIC))


def _requested(info_w: int, info_h: int, duration: float,
               requested: dict[str, Any]) -> dict[str, Any]:
    """Requested duration, resolution and aspect ratio next to whether the video matches them."""
    out: dict[str, Any] = {}
    want = next((to_seconds(requested[n]) for n in DURATION_FIELDS if n in requested), None)
    if want is not None:  # 8, "8" or "8s", whatever the endpoint calls it
        out.update(requested_duration_s=want, duration_match=abs(duration - want) <= 0.5)
    if "resolution" in requested:
        short = _SHORT_SIDE.get(str(requested["resolution"])) or to_lines(requested["resolution"])
        out.update(requested_resolution=str(requested["resolution"]),
                   resolution_match=None if short is None else min(info_w, info_h) == short)
    if "aspect_ratio" in requested:
        ratio = to_ratio(requested["aspect_ratio"])
        out.update(requested_aspect_ratio=str(requested["aspect_ratio"]),
                   aspect_match=None if ratio is None
                   else abs(info_w / info_h - ratio) <= 0.02 * ratio)
    return out


def video_metrics(video_path: str | os.PathLike[str], *, image: ImageInput | None = None,
                  requested: dict[str, Any] | None = None) -> dict[str, Any]:
    """Measure a video file; compare it with the input `image` and the `requested` arguments.

    Returns a flat dict (one DataFrame row): duration_s, fps, width, height, frames, codec,
    resolution ("1280x720"); requested_* and *_match when `requested` names them; psnr_db and
    ssim of the first frame against `image` (None without one; `image_error` says why when
    it cannot be opened, e.g. a remote URL offline); motion (mean absolute
    difference of consecutive frames, 0 still .. 1); flicker (mean absolute change of mean
    brightness between consecutive frames, 0..1). Raises GenerationError(kind="media") for a
    file that is not a video.
    """
    import av
    import numpy as np

    info = probe_video(video_path)
    small_w = min(ANALYSIS_WIDTH, info.width) // 2 * 2 or 2
    small_h = max(2, round(info.height * small_w / info.width) // 2 * 2)
    first, motion, brightness, previous = None, [], [], None
    try:
        with av.open(os.fspath(video_path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if first is None:
                    first = frame.to_ndarray(format="rgb24")
                gray = frame.reformat(width=small_w, height=small_h, format="gray",
                                      interpolation="AREA").to_ndarray().astype(np.int16)
                brightness.append(float(gray.mean()))
                if previous is not None:
                    motion.append(float(np.abs(gray - previous).mean()))
                previous = gray
    except (av.FFmpegError, OSError) as exc:
        raise GenerationError(f"cannot decode the video {video_path}: {exc}", kind="media") from exc
    result: dict[str, Any] = {
        "duration_s": round(info.duration_s, 3), "fps": round(info.fps, 3), "width": info.width,
        "height": info.height, "frames": info.frames, "codec": info.codec,
        "resolution": f"{info.width}x{info.height}",
    }
    result.update(_requested(info.width, info.height, info.duration_s, requested or {}))
    result["psnr_db"] = result["ssim"] = None
    if image is not None and first is not None:
        try:
            target = _fit(load_image(image), info.width, info.height)
        except (ValidationError, GenerationError) as exc:  # e.g. a remote image while offline
            result["image_error"] = str(exc)
        else:
            result["psnr_db"] = round(psnr(first, target), 3)
            if min(info.width, info.height) >= _SSIM_WINDOW:
                result["ssim"] = round(ssim(luma(first), luma(target), window=_SSIM_WINDOW), 4)
            else:
                result["image_error"] = f"SSIM needs a video at least {_SSIM_WINDOW} px a side"
    steps = np.abs(np.diff(brightness)) if len(brightness) > 1 else np.zeros(1)
    result.update(motion=round(float(np.mean(motion)) / 255 if motion else 0.0, 5),
                  flicker=round(float(steps.mean()) / 255, 5), frames_analyzed=len(brightness))
    return result


def generation_metrics(generation: Generation) -> dict[str, Any]:
    """Video metrics of a finished Generation plus its queue time, run time and cost."""
    video = generation.video_path  # never a `file:` URL's path: only what a job kept is measured
    if not video or not os.path.isfile(video):
        raise GenerationError("this generation has no video on disk to measure", kind="media",
                              request_id=generation.request_id, history_id=generation.history_id)
    metrics = video_metrics(video, image=generation.arguments.get("image_url"),
                            requested=generation.arguments)
    metrics.update(queued_s=generation.queued_s, running_s=generation.running_s,
                   total_s=generation.total_s, cost_usd=generation.cost_usd)
    return metrics
