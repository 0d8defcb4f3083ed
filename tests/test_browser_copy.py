"""browser_copy: a video's H.264 stream copied unchanged, its AAC audio re-encoded to Opus or MP3,
checked by probing the result with PyAV and, in Debian's Chromium, by playing it with sound."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from sora_widgets import GenerationError, ValidationError
from sora_widgets.media.browser_copy import browser_copy

SECONDS, FPS, RATE = 4.0, 24, 48_000
TONE_HZ = 440.0


def write_video(path: Path, *, audio: str | None = "aac", size: tuple[int, int] = (1280, 720),
                seconds: float = SECONDS, bitrate: int | None = None) -> Path:
    """A preview-like video: H.264 at `size`, 24 fps, moving gradients, and (unless `audio` is
    None) a 440 Hz stereo tone encoded with `audio` at 48 kHz."""
    import av
    import numpy as np

    width, height = size
    ys, xs = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "veryfast"}
        if bitrate:
            video.bit_rate = bitrate
        sound = container.add_stream(audio, rate=RATE, layout="stereo") if audio else None
        chunk = 1024 if audio == "aac" else 960
        sent = 0  # audio samples written so far
        for i in range(round(seconds * FPS)):
            rgb = np.empty((height, width, 3), np.uint8)
            rgb[..., 0] = (xs + 8 * i) % 256
            rgb[..., 1] = (ys + 4 * i) % 256
            rgb[..., 2] = (xs // 7 + ys // 5 + 16 * i) % 256
            if bitrate:  # noise a codec cannot squeeze: the file grows with the bitrate
                rgb ^= np.random.default_rng(i).integers(0, 64, rgb.shape, np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            while sound is not None and sent + chunk <= (i + 1) / FPS * RATE:
                t = (np.arange(chunk) + sent) / RATE
                tone = (0.3 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
                frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                frame.sample_rate, frame.pts = RATE, sent
                container.mux(sound.encode(frame))
                sent += chunk
        container.mux(video.encode())
        if sound is not None:
            container.mux(sound.encode())
    return path


@pytest.fixture(scope="module")
def sora_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 s 720p H.264 video with an AAC track, as Sora's MP4s are."""
    return write_video(tmp_path_factory.mktemp("videos") / "sora.mp4")


def probe(path: Path) -> dict[str, object]:
    """Codec and duration of each stream, the video packets' digest, and the audio's loudness."""
    import av
    import numpy as np

    out: dict[str, object] = {}
    with av.open(str(path)) as container:
        for stream in container.streams:
            out[f"{stream.type}_codec"] = stream.codec_context.codec.name
            out[f"{stream.type}_s"] = float(stream.duration * stream.time_base)
        digest = hashlib.sha256()
        for packet in container.demux(container.streams.video[0]):
            digest.update(bytes(packet))
        out["video_packets"] = digest.hexdigest()
    if "audio_codec" in out:
        with av.open(str(path)) as container:
            samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        out["audio_rms"] = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    return out


@pytest.mark.parametrize("audio, codec", [("opus", "opus"), ("mp3", "mp3")])
def test_the_copy_keeps_the_h264_stream_and_reencodes_only_the_audio(
        sora_like: Path, tmp_path: Path, audio: str, codec: str) -> None:
    started = time.perf_counter()
    copy = browser_copy(sora_like, audio=audio, dest=tmp_path / f"copy.{audio}.mp4")  # type: ignore[arg-type]
    took = time.perf_counter() - started
    print(f"\nbrowser_copy(audio={audio!r}) of a 4 s 720p video with AAC audio: {took * 1000:.0f} ms, "
          f"{sora_like.stat().st_size // 1000} kB -> {copy.stat().st_size // 1000} kB")
    before, after = probe(sora_like), probe(copy)
    assert before["audio_codec"] == "aac" and after["video_codec"] == "h264"
    assert after["video_packets"] == before["video_packets"]  # copied, not re-encoded
    assert after["audio_codec"].startswith(codec)  # type: ignore[union-attr]
    assert abs(after["video_s"] - before["video_s"]) <= 0.1  # type: ignore[operator]
    assert abs(after["audio_s"] - before["audio_s"]) <= 0.1  # type: ignore[operator]
    assert abs(after["audio_s"] - SECONDS) <= 0.1  # type: ignore[operator]
    assert after["audio_rms"] == pytest.approx(before["audio_rms"], rel=0.2)  # the tone, not silence


def test_the_copy_goes_beside_the_video_and_is_made_once(sora_like: Path, tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(sora_like.read_bytes())
    copy = browser_copy(video)
    assert copy == tmp_path / "clip.opus.mp4"
    made = copy.stat().st_mtime_ns
    assert browser_copy(video) == copy and copy.stat().st_mtime_ns == made
    assert not list(tmp_path.glob(".*.part"))


def test_a_video_whose_audio_plays_everywhere_is_left_as_it_is(tmp_path: Path) -> None:
    silent = write_video(tmp_path / "silent.mp4", audio=None, size=(320, 180), seconds=1)
    opus = write_video(tmp_path / "opus.mp4", audio="libopus", size=(320, 180), seconds=1)
    assert browser_copy(silent) == silent and browser_copy(opus, audio="mp3") == opus
    assert sorted(p.name for p in tmp_path.iterdir()) == ["opus.mp4", "silent.mp4"]


def test_bad_requests_are_refused_in_words(sora_like: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="audio: must be one of opus, mp3"):
        browser_copy(sora_like, audio="aac")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="dest: must differ"):
        browser_copy(sora_like, dest=sora_like)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with pytest.raises(GenerationError, match="broken.mp4") as info:
        browser_copy(broken)
    assert info.value.kind == "media"
    with pytest.raises(GenerationError, match="missing.mp4"):
        browser_copy(tmp_path / "missing.mp4")


@pytest.mark.browser
@pytest.mark.timeout(300)
def test_chromium_plays_the_copy_with_its_sound(sora_like: Path, tmp_path: Path) -> None:
    """Opened from disk in Debian's Chromium, the Opus copy plays and its audio is decoded."""
    from test_browser import VIDEO_MS, _chromium_page, _require_chromium

    _require_chromium()
    copy = browser_copy(sora_like, dest=tmp_path / "copy.mp4")
    page_file = tmp_path / "play.html"
    page_file.write_text(f"<video src='{copy.name}' muted playsinline></video>", encoding="utf-8")
    with _chromium_page("browser-copy") as page:
        page.goto(page_file.as_uri())
        video = page.locator("video").element_handle()
        page.wait_for_function("v => v.readyState >= 2", arg=video, timeout=VIDEO_MS)
        video.evaluate("v => v.play()")
        page.wait_for_function("v => v.currentTime > 1", arg=video, timeout=VIDEO_MS)
        state = video.evaluate("v => ({error: v.error && v.error.code, width: v.videoWidth, "
                               "duration: v.duration, audio: v.webkitAudioDecodedByteCount})")
    assert state["error"] is None and state["width"] == 1280, state
    assert abs(state["duration"] - SECONDS) <= 0.1, state
    assert state["audio"] > 0, state
