"""Video metrics on videos made here, with known motion, brightness and first frames."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from sora_widgets._errors import GenerationError
from sora_widgets.records import Generation, JobStatus
from sora_widgets.research.metrics import generation_metrics, psnr, ssim, video_metrics

W, H = 160, 90


def _scene(seed: int) -> np.ndarray:
    """A textured RGB picture (smooth shapes plus detail), different for each seed."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:H, 0:W]
    base = np.stack([np.sin(x / (5 + c + seed) + c) * np.cos(y / (7 + seed)) for c in range(3)], -1)
    pixels = (base * 90 + 128 + rng.normal(0, 6, (H, W, 3))).clip(0, 255)
    return pixels.astype(np.uint8)


def _write(path: Path, frame_at: Callable[[int], np.ndarray], *, frames: int, fps: int) -> Path:
    """Encode frame_at(0..frames-1) as a near-lossless H.264 MP4."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12", "preset": "ultrafast"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame_at(i)))
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _moving_square(i: int) -> np.ndarray:
    pixels = np.full((H, W, 3), 40, np.uint8)
    x = (i * 6) % (W - 30)
    pixels[30:60, x:x + 30] = 230
    return pixels


def test_psnr_of_known_errors() -> None:
    a = np.zeros((8, 8, 3), np.uint8)
    assert psnr(a, a) == 100.0
    assert psnr(a, a + 1) == pytest.approx(48.13, abs=0.01)  # MSE 1
    assert psnr(a, a + 255) == pytest.approx(0.0)


def test_ssim_is_one_for_identical_and_falls_with_damage() -> None:
    clean = _scene(1)[..., 1].astype(float)
    rng = np.random.default_rng(0)
    assert ssim(clean, clean) == pytest.approx(1.0)
    slightly = ssim(clean, clean + rng.normal(0, 5, clean.shape))
    badly = ssim(clean, clean + rng.normal(0, 40, clean.shape))
    assert 1.0 > slightly > badly
    assert abs(ssim(clean, _scene(5)[..., 1].astype(float))) < 0.3
    assert ssim(clean, 255 - clean) < 0
    with pytest.raises(ValueError):
        ssim(clean, clean[:, :-1])


def test_delivered_format_against_the_request(tmp_path: Path) -> None:
    video = _write(tmp_path / "v.mp4", lambda i: _scene(1), frames=24, fps=12)
    m = video_metrics(video, requested={"duration": 2, "resolution": "720p", "aspect_ratio": "16:9"})
    assert (m["duration_s"], m["fps"], m["frames"], m["resolution"]) == (2.0, 12.0, 24, "160x90")
    assert (m["duration_match"], m["resolution_match"], m["aspect_match"]) == (True, False, True)
    other = video_metrics(video, requested={"duration": "4s", "resolution": "auto",
                                            "aspect_ratio": "9:16"})
    assert (other["duration_match"], other["resolution_match"], other["aspect_match"]) == (False, None, False)
    assert "duration_match" not in video_metrics(video)


def test_a_still_video_has_no_motion_or_flicker(tmp_path: Path) -> None:
    m = video_metrics(_write(tmp_path / "still.mp4", lambda i: _scene(2), frames=24, fps=24))
    assert m["motion"] < 0.002 and m["flicker"] < 0.001 and m["frames_analyzed"] == 24


def test_a_moving_square_has_motion_but_steady_brightness(tmp_path: Path) -> None:
    m = video_metrics(_write(tmp_path / "square.mp4", _moving_square, frames=24, fps=24))
    assert m["motion"] > 0.01 and m["flicker"] < 0.005  # a still video: about 0.0001


def test_alternating_brightness_is_flicker(tmp_path: Path) -> None:
    def flashing(i: int) -> np.ndarray:
        return (_scene(3).astype(int) + (40 if i % 2 else -40)).clip(0, 255).astype(np.uint8)

    m = video_metrics(_write(tmp_path / "flash.mp4", flashing, frames=24, fps=24))
    assert m["flicker"] > 0.2


def test_first_frame_fidelity_to_the_input_image(tmp_path: Path) -> None:
    image = Image.fromarray(_scene(4))
    video = _write(tmp_path / "v.mp4", lambda i: _scene(4), frames=6, fps=24)
    same = video_metrics(video, image=image)
    assert same["psnr_db"] > 30 and same["ssim"] > 0.9
    bigger = image.resize((W * 4, H * 4), Image.Resampling.BICUBIC)  # resized to the frame first
    assert video_metrics(video, image=bigger)["ssim"] > 0.8
    other = video_metrics(video, image=Image.fromarray(_scene(9)))
    assert other["psnr_db"] < 20 and other["ssim"] < 0.3
    assert video_metrics(video)["psnr_db"] is None


def test_a_file_that_is_not_a_video_is_a_media_error(tmp_path: Path) -> None:
    (tmp_path / "x.mp4").write_bytes(b"nothing here")
    with pytest.raises(GenerationError) as caught:
        video_metrics(tmp_path / "x.mp4")
    assert caught.value.kind == "media"


def test_generation_metrics_add_timings_and_cost(tmp_path: Path) -> None:
    photo = tmp_path / "in.png"
    Image.fromarray(_scene(6)).save(photo)
    video = _write(tmp_path / "v.mp4", lambda i: _scene(6), frames=24, fps=12)
    gen = Generation(endpoint_id="fal-ai/sora-2/image-to-video", backend="preview",
                     status=JobStatus.COMPLETED, video_path=str(video), queued_s=0.5, running_s=3.0,
                     total_s=3.6, cost_usd=0.4,
                     arguments={"prompt": "x", "image_url": str(photo), "duration": 2})
    m = generation_metrics(gen)
    assert (m["queued_s"], m["running_s"], m["total_s"], m["cost_usd"]) == (0.5, 3.0, 3.6, 0.4)
    assert m["duration_match"] is True and m["psnr_db"] > 30
    gen.arguments["image_url"] = "http://127.0.0.1:9/gone.png"  # offline: no comparison, still metrics
    offline = generation_metrics(gen)
    assert offline["psnr_db"] is None and "127.0.0.1:9/gone.png" in offline["image_error"]
    assert offline["motion"] < 0.002
    with pytest.raises(GenerationError) as caught:
        generation_metrics(Generation(endpoint_id="e", backend="fal", arguments={}, request_id="r1"))
    assert caught.value.kind == "media" and caught.value.request_id == "r1"


def test_a_video_too_small_for_ssim_says_so_instead_of_raising(tmp_path: Path) -> None:
    path = tmp_path / "tiny.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 6, 4, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((4, 6, 3), 40 * i, np.uint8))
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    found = video_metrics(path, image=Image.new("RGB", (6, 4), (40, 40, 40)))
    assert found["psnr_db"] is not None and found["ssim"] is None
    assert "at least 7 px" in found["image_error"]
