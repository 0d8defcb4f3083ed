"""Benchmark 5: offline preview rendering speed, in seconds of 720p video per wall second.

Ours is `render_preview` (what PreviewBackend runs in its thread): camera crop, scale, label,
thumbnail and sprite sheet, H.264 encode. The baseline is the encoder alone: PyAV libx264 with
the same settings over the same number of identical 1280x720 frames, the most any renderer
built on it could reach on this machine.
"""

from __future__ import annotations

import time
from pathlib import Path

from ._common import APP, Row, Section, median, smooth_image

FPS = 24  # PreviewBackend's default frame rate
GOAL = 4.0


def _ours(image: Path, out: Path, seconds: int, stem: str) -> float:
    from sora_widgets.backends.preview import render_preview

    arguments = {"prompt": "a lighthouse at dusk, slow zoom in", "image_url": str(image),
                 "duration": seconds, "resolution": "720p", "aspect_ratio": "16:9"}
    start = time.perf_counter()
    result = render_preview(arguments, APP, out, stem, fps=FPS)
    took = time.perf_counter() - start
    assert result["video"]["width"] == 1280 and result["video"]["height"] == 720
    return seconds / took


def _encoder_only(image: Path, out: Path, seconds: int) -> float:
    import av
    from PIL import Image

    frame = av.VideoFrame.from_image(Image.open(image).convert("RGB")).reformat(format="yuv420p")
    start = time.perf_counter()
    with av.open(str(out / "baseline.mp4"), "w", format="mp4",
                 options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "23"}
        stream.codec_context.gop_size = 2 * FPS
        stream.codec_context.thread_count = 0
        for i in range(seconds * FPS):
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return seconds / (time.perf_counter() - start)


def run(folder: Path, *, lengths: tuple[int, ...], repeat: int) -> Section:
    """Median speed over `repeat` renders of each length, ours and encoder-only."""
    image = smooth_image(folder / "first-frame.png")
    _ours(image, folder, 1, "warm-up")  # first use loads libx264 and fonts: not part of any figure
    _encoder_only(image, folder, 1)
    rows = []
    for seconds in lengths:
        ours = median([_ours(image, folder, seconds, f"bench-{seconds}-{i}") for i in range(repeat)])
        base = median([_encoder_only(image, folder, seconds) for _ in range(repeat)])
        rows.append(Row(f"5. preview render, {seconds} s 720p video", ours, base, "x realtime",
                        f">= {GOAL:g}x realtime", ours >= GOAL))
    return Section("Offline preview rendering", rows, [
        (f"render_preview at 1280x720, {FPS} fps, libx264 ultrafast crf 23, from a 1280x720 "
        f"photo-like PNG; median of {repeat}. Baseline: the same encoder over identical frames "
        "(no crop, scale or label), so ratio = share of the bare encoder's speed kept.")])
