"""The offline preview backend: real playable MP4s, fal-like job events, cancel, restart recovery."""

from __future__ import annotations

import asyncio
import json
import re
import struct
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from sora_widgets._errors import GenerationError, ValidationError
from sora_widgets.backends.base import Backend
from sora_widgets.backends.preview import LABEL, PreviewBackend, camera_for, output_size
from sora_widgets.media import probe_video
from sora_widgets.research.metrics import video_metrics

I2V = "fal-ai/sora-2/image-to-video"
T2V = "fal-ai/sora-2/text-to-video"


def _photo(path: Path, size: tuple[int, int] = (640, 400)) -> Path:
    """A photo-like test image with structure at every scale (so PSNR means something)."""
    gray = Image.effect_mandelbrot(size, (-2.2, -1.2, 1.0, 1.2), 60)
    Image.merge("RGB", (gray, gray.rotate(180), Image.linear_gradient("L").resize(size))).save(path)
    return path


def _top_level_boxes(path: Path) -> list[str]:
    """The names of an MP4's top-level boxes, in file order."""
    names, data, offset = [], path.read_bytes(), 0
    while offset + 8 <= len(data):
        size, name = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        names.append(name.decode("latin-1"))
        offset += size
    return names


def _run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _follow(backend: PreviewBackend, request_id: str, endpoint: str = I2V) -> list[Any]:
    return [event async for event in backend.events(endpoint, request_id)]


def test_backend_protocol_and_description(monkeypatch: pytest.MonkeyPatch) -> None:
    backend = PreviewBackend()
    assert isinstance(backend, Backend)
    assert backend.name == "preview"
    assert "no model made these videos" in backend.describe()
    assert "no FAL_KEY set" in backend.describe()
    monkeypatch.setenv("FAL_KEY", "secret-value-123")
    assert "secret-value-123" not in backend.describe()
    assert "not used" in backend.describe()


def test_media_dir_defaults_to_history_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(tmp_path / "runs"))
    assert PreviewBackend().media_dir == (tmp_path / "runs" / "media").resolve()


@pytest.mark.parametrize(("arguments", "image", "size"), [
    ({"resolution": "720p", "aspect_ratio": "16:9"}, None, (1280, 720)),
    ({"resolution": "720p", "aspect_ratio": "9:16"}, (100, 50), (720, 1280)),
    ({"aspect_ratio": "auto"}, (300, 600), (720, 1280)),
    ({"aspect_ratio": "auto"}, (600, 300), (1280, 720)),
    ({"resolution": "1080p", "aspect_ratio": "16:9"}, None, (1920, 1080)),
    ({}, None, (1280, 720)),
])
def test_output_size_follows_resolution_and_aspect(arguments: dict[str, Any],
                                                   image: tuple[int, int] | None,
                                                   size: tuple[int, int]) -> None:
    assert output_size(arguments, image) == size


def test_camera_follows_words_in_the_prompt() -> None:
    assert camera_for("a quiet lake").zoom_end > camera_for("a quiet lake").zoom_start
    assert camera_for("slow zoom out over the city").zoom_start > 1.0
    assert camera_for("the camera pans left").pan_x < 0
    assert camera_for("Panning right, then tilt up").pan_y < 0 < camera_for("pan right").pan_x


def test_720p_render_is_a_playable_streamable_h264_mp4(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    backend = PreviewBackend(media_dir=tmp_path / "media", queue_s=0.01)

    async def scenario() -> tuple[str, dict[str, Any]]:
        args = await backend.prepare(I2V, {"prompt": "a garden", "image_url": str(photo),
                                           "duration": 4, "resolution": "720p",
                                           "aspect_ratio": "16:9"})
        request_id = await backend.submit(I2V, args)
        return request_id, await backend.result(I2V, request_id)

    request_id, result = _run(scenario())
    assert request_id.startswith("preview-") and result["video_id"] == request_id
    assert result["preview"] is True
    mp4 = Path(result["video"]["url"].removeprefix("file://"))
    assert mp4 == (tmp_path / "media" / "preview" / f"{request_id}.mp4").resolve()
    info = probe_video(mp4)
    assert (info.codec, info.pix_fmt, info.width, info.height) == ("h264", "yuv420p", 1280, 720)
    assert (info.fps, info.frames, info.duration_s) == (24.0, 96, 4.0)
    assert result["video"] | {"url": None} == {
        "url": None, "content_type": "video/mp4", "file_name": mp4.name,
        "file_size": mp4.stat().st_size, "width": 1280, "height": 720, "fps": 24, "duration": 4.0,
        "num_frames": 96}
    boxes = _top_level_boxes(mp4)
    assert boxes.index("moov") < boxes.index("mdat"), boxes  # +faststart: streamable
    with av.open(str(mp4)) as container:  # every frame decodes
        assert sum(1 for _ in container.decode(video=0)) == 96
    thumb = Path(result["thumbnail"]["url"].removeprefix("file://"))
    with Image.open(thumb) as image:
        assert (image.format, image.size) == ("JPEG", (1280, 720))
    assert Path(result["spritesheet"]["url"].removeprefix("file://")).is_file()
    # the first frame is the photo (apart from the small label), and the camera really moves
    measured = video_metrics(mp4, image=photo)
    assert measured["psnr_db"] > 22 and measured["ssim"] > 0.7
    assert measured["motion"] > 0.0005  # a still video measures about 0.0001


def test_events_arrive_in_order_with_throttled_progress(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png", (200, 320))
    backend = PreviewBackend(media_dir=tmp_path / "media", queue_s=0.1, scale=0.25, speed=4.0)

    async def scenario() -> list[Any]:
        request_id = await backend.submit(I2V, {"prompt": "x", "image_url": str(photo),
                                                "duration": 4})
        return await _follow(backend, request_id)

    events = _run(scenario())
    kinds = [event.kind for event in events]
    assert kinds[0] == "queued" and events[0].position == 0
    assert kinds[-1] == "completed" and set(kinds[1:-1]) == {"running"}
    logs = [line for event in events for line in event.logs]
    assert logs[0].startswith("Preview render: 180x320")  # auto aspect follows the tall photo
    assert "Rendering frame 96/96" in logs
    elapsed = [event.elapsed_s for event in events if event.kind == "running"]
    assert elapsed == sorted(elapsed)
    done = [int(line.split()[-1].split("/")[0]) for line in logs if line.startswith("Rendering frame")]
    assert done == sorted(set(done)) and done[-1] == 96 and len(done) < 96  # throttled, not one a frame
    pace = re.search(r"\(([\d.]+)x real time\)", logs[-1])
    assert pace and float(pace[1]) <= 4.0  # the renderer's own report: speed=4.0 caps its pace


def test_cancel_while_running_stops_the_render(tmp_path: Path) -> None:
    backend = PreviewBackend(media_dir=tmp_path / "media", queue_s=0.01, scale=0.25, speed=1.0)

    async def scenario() -> tuple[list[Any], str]:
        request_id = await backend.submit(T2V, {"prompt": "a long slow shot", "duration": 8})
        events = []
        async for event in backend.events(T2V, request_id):
            events.append(event)
            if event.kind == "running":
                await backend.cancel(T2V, request_id)
        with pytest.raises(GenerationError) as caught:
            await backend.result(T2V, request_id)
        assert caught.value.kind == "cancelled" and caught.value.request_id == request_id
        return events, request_id

    events, request_id = _run(scenario())
    assert events[-1].kind == "cancelled"
    folder = tmp_path / "media" / "preview"
    assert not (folder / f"{request_id}.mp4").exists()
    assert not list(folder.glob("*.part"))
    assert json.loads((folder / f"{request_id}.json").read_text())["status"] == "cancelled"


def test_cancel_while_queued_is_immediate(tmp_path: Path) -> None:
    backend = PreviewBackend(media_dir=tmp_path / "media", queue_s=30)

    async def scenario() -> list[Any]:
        request_id = await backend.submit(T2V, {"prompt": "never rendered"})
        await asyncio.wait_for(backend.cancel(T2V, request_id), timeout=2)
        return await _follow(backend, request_id, T2V)

    assert [event.kind for event in _run(scenario())] == ["cancelled"]


def test_a_new_backend_finishes_a_job_after_a_restart(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "photo.png")
    media = tmp_path / "media"
    args = {"prompt": "x", "image_url": str(photo), "duration": 4, "aspect_ratio": "16:9"}

    async def first_session() -> str:  # the kernel dies right after submitting
        return await PreviewBackend(media_dir=media, queue_s=30, scale=0.25).submit(I2V, args)

    request_id = _run(first_session())
    assert not (media / "preview" / f"{request_id}.mp4").exists()

    async def second_session() -> tuple[list[Any], dict[str, Any]]:
        backend = PreviewBackend(media_dir=media, queue_s=0.01, scale=0.25)
        return await _follow(backend, request_id), await backend.result(I2V, request_id)

    events, result = _run(second_session())
    assert events[-1].kind == "completed"
    assert any("restart" in line for event in events for line in event.logs)
    assert probe_video(media / "preview" / f"{request_id}.mp4").frames == 96

    async def third_session() -> tuple[list[Any], dict[str, Any]]:  # done: answered from disk
        backend = PreviewBackend(media_dir=media)
        return await _follow(backend, request_id), await backend.result(I2V, request_id)

    assert _run(third_session()) == ([events[-1]], result)


def test_a_render_interrupted_by_a_closing_loop_stays_resumable(tmp_path: Path) -> None:
    media = tmp_path / "media"

    async def first_session() -> str:  # the loop closes while the render thread is busy
        backend = PreviewBackend(media_dir=media, queue_s=0.01, scale=0.25, speed=1.0)
        request_id = await backend.submit(T2V, {"prompt": "interrupted", "duration": 8})
        async for event in backend.events(T2V, request_id):
            if event.kind == "running":
                return request_id
        raise AssertionError("the job never ran")

    request_id = _run(first_session())
    folder = media / "preview"
    assert not (folder / f"{request_id}.mp4").exists() and not list(folder.glob("*.part"))
    assert json.loads((folder / f"{request_id}.json").read_text())["status"] == "queued"
    backend = PreviewBackend(media_dir=media, queue_s=0.01, scale=0.25)
    assert _run(backend.result(T2V, request_id))["video"]["num_frames"] == 192


def test_a_missing_video_is_rendered_again(tmp_path: Path) -> None:
    media = tmp_path / "media"

    async def render(backend: PreviewBackend, request_id: str | None = None) -> dict[str, Any]:
        request_id = request_id or await backend.submit(T2V, {"prompt": "a card"})
        return await backend.result(T2V, request_id)

    first = _run(render(PreviewBackend(media_dir=media, queue_s=0.01, scale=0.25)))
    mp4 = Path(first["video"]["url"].removeprefix("file://"))
    mp4.unlink()
    again = _run(render(PreviewBackend(media_dir=media, queue_s=0.01, scale=0.25),
                        first["video_id"]))
    assert mp4.is_file() and again["video"]["num_frames"] == first["video"]["num_frames"]


def test_unreachable_image_url_renders_a_labelled_placeholder(tmp_path: Path) -> None:
    backend = PreviewBackend(media_dir=tmp_path / "media", queue_s=0.01, scale=0.25)

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        args = await backend.prepare(I2V, {"prompt": "x", "image_url": "http://127.0.0.1:9/cat.png"})
        assert args["image_url"] == "http://127.0.0.1:9/cat.png"
        request_id = await backend.submit(I2V, args)
        return await _follow(backend, request_id), await backend.result(I2V, request_id)

    events, result = _run(scenario())
    logs = " ".join(line for event in events for line in event.logs)
    assert "placeholder" in logs and "127.0.0.1:9/cat.png" in logs
    assert events[-1].kind == "completed" and result["video"]["width"] == 320


def test_text_to_video_renders_a_prompt_card(tmp_path: Path) -> None:
    backend = PreviewBackend(media_dir=tmp_path / "media", queue_s=0.01, scale=0.25)

    async def scenario() -> dict[str, Any]:
        request_id = await backend.submit(T2V, {"prompt": "A red fox in snow", "duration": 4,
                                                "aspect_ratio": "9:16"})
        return await backend.result(T2V, request_id)

    result = _run(scenario())
    assert (result["video"]["width"], result["video"]["height"]) == (180, 320)
    assert "PREVIEW" in LABEL and "not made by any model" in LABEL


def test_prepare_stores_local_images_and_rejects_missing_files(tmp_path: Path) -> None:
    backend = PreviewBackend(media_dir=tmp_path / "media")
    image = Image.new("RGB", (32, 24), "orange")
    prepared = _run(backend.prepare(I2V, {"prompt": "x", "image_url": image}))
    stored = Path(prepared["image_url"])
    assert stored.parent == (tmp_path / "media" / "inputs").resolve() and stored.suffix == ".png"
    with pytest.raises(ValidationError) as caught:
        _run(backend.prepare(I2V, {"prompt": "x", "image_url": str(tmp_path / "nope.png")}))
    assert caught.value.fields == ["image_url"]


def test_a_failed_render_ends_with_a_failed_event(tmp_path: Path) -> None:
    backend = PreviewBackend(media_dir=tmp_path / "media", queue_s=0.01, scale=0.25)

    async def scenario() -> list[Any]:
        request_id = await backend.submit(T2V, {"prompt": "x", "duration": "forever"})
        events = await _follow(backend, request_id, T2V)
        with pytest.raises(GenerationError) as caught:
            await backend.result(T2V, request_id)
        assert caught.value.kind == "render"
        return events

    events = _run(scenario())
    assert events[-1].kind == "failed" and "forever" in (events[-1].message or "")


def test_unknown_request_ids_are_refused(tmp_path: Path) -> None:
    backend = PreviewBackend(media_dir=tmp_path / "media")
    for request_id in ("preview-" + "0" * 32, "../../etc/passwd"):
        with pytest.raises(GenerationError) as caught:
            _run(backend.result(I2V, request_id))
        assert caught.value.kind == "not_found"
