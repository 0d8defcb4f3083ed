"""Downloads only from the network, bounded and checked, through the fake fal server over HTTPS.

Every refusal is a GenerationError(kind="download") that names the URL (without its query) and
leaves nothing behind: no file under the final name and no `.part` file.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
from fakefal import HOSTILE_PAGE, FakeFal

from sora_widgets._errors import GenerationError, ValidationError
from sora_widgets.media import MAX_DOWNLOAD_MB_VAR, download, probe_video, remove_partials

_hangs_if_broken = pytest.mark.timeout(20)  # a missing bound fails the test instead of hanging it


def _files(folder: Path) -> list[str]:
    """Every file left in `folder` (hidden `.part` files included); none when it does not exist."""
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def _refused(url: str, folder: Path, **options: object) -> GenerationError:
    """Download `url` expecting a refusal; checks the error kind and that nothing was left."""
    with pytest.raises(GenerationError) as caught:
        download(url, folder, name="clip.mp4", **options)  # type: ignore[arg-type]
    assert caught.value.kind == "download", caught.value
    assert _files(folder) == []
    return caught.value


def _eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether `check()` becomes true within `seconds` (the fake's threads end on their own time)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _audio_only_mp4() -> bytes:
    """A valid MP4 that holds a short silent AAC track and no video stream."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        stream.layout = "mono"
        for i in range(4):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                               layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()


# --- only http(s) ----------------------------------------------------------------------------


@pytest.mark.parametrize("make_url", [
    lambda secret: secret.as_uri(),
    lambda secret: "file://localhost" + str(secret),
    lambda secret: str(secret),
    lambda secret: secret,
    lambda secret: "ftp://127.0.0.1/clip.mp4",
    lambda secret: "data:video/mp4;base64," + base64.b64encode(b"\x00\x00\x00\x18ftypmp42").decode(),
    lambda secret: "javascript:alert(1)",
    lambda secret: "https:///clip.mp4",
    lambda secret: "http://",
], ids=["file-url", "file-url-host", "path", "Path", "ftp", "data", "javascript", "no-host", "bare"])
def test_only_http_urls_with_a_host_are_downloaded(tmp_path: Path, fakefal: FakeFal,
                                                   make_url: Callable[[Path], object]) -> None:
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"\x00\x00\x00\x18ftypmp42 private")
    error = _refused(make_url(secret), tmp_path / "videos")  # type: ignore[arg-type]
    assert str(error).startswith("refused to download ")
    assert "only http(s) URLs" in str(error) or "a local path" in str(error) or "no host" in str(error)
    assert not (tmp_path / "videos").exists() and fakefal.count("media") == 0


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/etc/passwd"])
def test_a_redirect_off_http_is_refused_with_a_clear_error(tmp_path: Path, fakefal: FakeFal,
                                                           location: str) -> None:
    url = fakefal.hostile_media("moved.mp4", ("redirect", location))
    error = _refused(url, tmp_path / "videos")
    assert f"it redirects to {location}" in str(error) and "only http(s) URLs are fetched" in str(error)
    assert error.__cause__ is None and fakefal.count("media") == 1  # not httpx's UnsupportedProtocol


def test_a_redirect_to_other_media_is_followed_and_checked(tmp_path: Path, fakefal: FakeFal) -> None:
    video = fakefal.media["video.mp4"]
    kept = download(fakefal.hostile_media("moved.mp4", ("redirect", "video.mp4")), tmp_path / "v",
                    name="clip.mp4", kind="video")
    assert kept.read_bytes() == video and _files(tmp_path / "v") == ["clip.mp4"]
    fakefal.hostile_media("page.mp4", "html")
    error = _refused(fakefal.hostile_media("bounce.mp4", ("redirect", "page.mp4")), tmp_path / "w",
                     kind="video")
    assert "an HTML page, not a video" in str(error)


def test_a_redirect_loop_ends(tmp_path: Path, fakefal: FakeFal) -> None:
    error = _refused(fakefal.hostile_media("loop.mp4", ("redirect", "loop.mp4")), tmp_path / "v")
    assert "redirect" in str(error).lower() and 2 <= fakefal.count("media") <= 10


# --- content checks ---------------------------------------------------------------------------


def test_an_html_page_served_as_video_is_refused(tmp_path: Path, fakefal: FakeFal) -> None:
    url = fakefal.hostile_media("video.mp4", "html") + "?token=s3cret&expires=9"
    error = _refused(url, tmp_path / "videos", kind="video")
    assert "HTML page, not a video" in str(error) and fakefal.media_url("video.mp4") in str(error)
    assert "s3cret" not in str(error)
    kept = download(url, tmp_path / "any", name="page.html")  # without a kind, nothing is sniffed
    assert kept.read_text() == HOSTILE_PAGE


def test_the_fakes_real_mp4_is_kept_as_a_video(tmp_path: Path, fakefal: FakeFal) -> None:
    video = fakefal.media["video.mp4"]
    kept = download(fakefal.media_url("video.mp4"), tmp_path / "videos", name="1-video.mp4",
                    kind="video", size=len(video))
    assert kept.read_bytes() == video and probe_video(kept).frames == 4
    assert _files(tmp_path / "videos") == ["1-video.mp4"]


@pytest.mark.parametrize("body,words", [
    (b"\x00\x00\x00\x18ftypmp42fake-video", "not a playable video"),  # a header and nothing else
    (None, "holds no video stream"),  # an MP4 of sound only
    (b"", "an empty file, not a video"),
    (b'{"detail": "expired"}', "a JSON document, not a video"),
    (b"\x00" * 4096, "nothing but zero bytes, not a video"),
])
def test_a_video_must_look_like_one_and_hold_a_video_stream(tmp_path: Path, fakefal: FakeFal,
                                                            body: bytes | None, words: str) -> None:
    fakefal.media["video.mp4"] = _audio_only_mp4() if body is None else body
    error = _refused(fakefal.media_url("video.mp4"), tmp_path / "videos", kind="video")
    assert words in str(error)


def test_an_image_url_holding_a_video_is_refused(tmp_path: Path, fakefal: FakeFal) -> None:
    fakefal.media["poster.png"] = fakefal.media["video.mp4"]
    error = _refused(fakefal.media_url("poster.png"), tmp_path / "images", kind="image")
    assert "an MP4/MOV video, not an image" in str(error)
    kept = download(fakefal.media_url("thumbnail.webp"), tmp_path / "images", name="t.webp", kind="image")
    assert kept.read_bytes() == fakefal.media["thumbnail.webp"]


def test_an_unknown_kind_is_a_programming_error(tmp_path: Path, fakefal: FakeFal) -> None:
    with pytest.raises(ValueError):
        download(fakefal.media_url("video.mp4"), tmp_path, name="v.mp4", kind="audio")
    assert fakefal.count("media") == 0


# --- size cap and deadline ---------------------------------------------------------------------


@_hangs_if_broken
def test_a_huge_content_length_is_refused_before_reading(tmp_path: Path, fakefal: FakeFal,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_DOWNLOAD_MB_VAR, "1")
    error = _refused(fakefal.hostile_media("huge.mp4", "huge"), tmp_path / "videos")
    assert "it is 300.0 MB, over the download limit of 1.0 MB" in str(error)
    assert _eventually(lambda: fakefal.streaming_media() == 0)  # the server saw the client leave


def test_a_declared_size_over_the_cap_is_refused(tmp_path: Path, fakefal: FakeFal) -> None:
    error = _refused(fakefal.media_url("video.mp4"), tmp_path / "videos", size=5 << 20, max_bytes=1 << 20)
    assert "it is 5.0 MB, over the download limit of 1.0 MB" in str(error)


@_hangs_if_broken
def test_an_endless_body_is_cut_at_the_cap(tmp_path: Path, fakefal: FakeFal,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MAX_DOWNLOAD_MB_VAR, "1")
    error = _refused(fakefal.hostile_media("endless.mp4", "endless"), tmp_path / "videos")
    assert "more than the limit of 1.0 MB (SORA_WIDGETS_MAX_DOWNLOAD_MB)" in str(error) and "cut" in str(error)
    assert _eventually(lambda: fakefal.streaming_media() == 0)


@_hangs_if_broken
def test_an_endless_body_of_zeros_is_refused_as_a_video_at_once(tmp_path: Path, fakefal: FakeFal) -> None:
    error = _refused(fakefal.hostile_media("endless.mp4", "endless"), tmp_path / "videos", kind="video")
    assert "nothing but zero bytes, not a video" in str(error)


@_hangs_if_broken
def test_a_trickle_ends_at_the_deadline(tmp_path: Path, fakefal: FakeFal) -> None:
    error = _refused(fakefal.hostile_media("slow.mp4", "trickle"), tmp_path / "videos", deadline_s=0.5)
    assert "still arriving after the deadline of 0.5 s" in str(error)
    assert _eventually(lambda: fakefal.streaming_media() == 0)


@pytest.mark.parametrize("value", ["abc", "0", "-1", "1.5", "2 GB"])
def test_a_bad_max_download_mb_is_a_clear_error(tmp_path: Path, fakefal: FakeFal,
                                                monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(MAX_DOWNLOAD_MB_VAR, value)
    with pytest.raises(ValidationError) as caught:
        download(fakefal.media_url("video.mp4"), tmp_path / "videos", name="v.mp4")
    assert isinstance(caught.value, ValueError) and caught.value.fields == [MAX_DOWNLOAD_MB_VAR]
    assert f"whole number of megabytes, 1 or more (got {value!r})" in str(caught.value)
    assert fakefal.count("media") == 0 and not (tmp_path / "videos").exists()


# --- messages --------------------------------------------------------------------------------


def test_messages_name_the_url_without_its_query_or_password(tmp_path: Path, fakefal: FakeFal) -> None:
    url = fakefal.media_url("gone.mp4").replace("https://", "https://user:pa55word@")
    error = _refused(url + "?X-Amz-Signature=s3cret#t=1", tmp_path / "videos")
    assert error.status_code == 404
    assert f"downloading {fakefal.media_url('gone.mp4')}?... failed: HTTP 404" in str(error)
    assert "s3cret" not in str(error) and "pa55word" not in str(error)


# --- leftovers -------------------------------------------------------------------------------


def test_remove_partials_removes_only_download_leftovers(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    (videos / "deep" / "deeper").mkdir(parents=True)
    fd, made = tempfile.mkstemp(dir=videos, prefix=".x.mp4.", suffix=".part")  # as download() names it
    os.close(fd)
    leftovers = [videos / ".x.mp4.abc.part", Path(made), tmp_path / ".history.sqlite.k2j4h6g8.part"]
    kept = [videos / "x.mp4", videos / "notes.part", videos / ".hidden.part", videos / ".x.mp4.a-b.part",
            videos / "deep" / "deeper" / ".y.mp4.abc.part"]
    for path in leftovers + kept:
        path.write_bytes(b"partial")
    (videos / "deep" / ".z.jpg.abc.part").write_bytes(b"partial")
    assert remove_partials(tmp_path, older_than_s=3600) == 0  # all written just now
    assert remove_partials(tmp_path) == 3  # the folder and its direct subfolders
    assert (videos / "deep" / ".z.jpg.abc.part").exists()
    assert remove_partials(videos) == 1 and not (videos / "deep" / ".z.jpg.abc.part").exists()
    assert all(path.exists() for path in kept) and not any(path.exists() for path in leftovers)
    assert remove_partials(tmp_path / "missing") == 0


def test_remove_partials_keeps_a_fresh_part_when_asked(tmp_path: Path) -> None:
    fresh, old = tmp_path / ".a.mp4.abc.part", tmp_path / ".b.mp4.abc.part"
    fresh.write_bytes(b"growing")
    old.write_bytes(b"left by a killed download")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert remove_partials(tmp_path, older_than_s=3600) == 1
    assert fresh.exists() and not old.exists()


@_hangs_if_broken
def test_remove_partials_spares_a_download_in_progress(tmp_path: Path, fakefal: FakeFal) -> None:
    folder = tmp_path / "videos"
    outcome: list[BaseException] = []

    def slow_download() -> None:
        try:
            download(fakefal.hostile_media("slow.mp4", "trickle"), folder, name="a.mp4", deadline_s=1.5)
        except GenerationError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=slow_download)
    worker.start()
    assert _eventually(lambda: any(name.endswith(".part") for name in _files(folder)))
    assert remove_partials(folder) == 0 and len(_files(folder)) == 1  # still being written
    worker.join()
    assert "deadline" in str(outcome[0]) and _files(folder) == []
    assert _eventually(lambda: fakefal.streaming_media() == 0)


# --- the fake's hostile media itself -----------------------------------------------------------


@_hangs_if_broken
def test_reset_ends_a_hostile_body_and_forgets_it(fakefal: FakeFal) -> None:
    url = fakefal.hostile_media("endless.mp4", "endless")
    assert _eventually(lambda: fakefal.streaming_media() == 0)  # an earlier test's body has ended
    with httpx.Client() as client, client.stream("GET", url) as response:
        assert response.headers["content-type"] == "video/mp4" and "content-length" not in response.headers
        chunks = response.iter_raw()
        assert next(chunks) and fakefal.streaming_media() == 1
        fakefal.reset()
        with pytest.raises(httpx.RemoteProtocolError):  # cut: no last chunk
            for _ in chunks:
                pass
    assert _eventually(lambda: fakefal.streaming_media() == 0)
    with httpx.Client() as client:
        assert client.get(url).status_code == 404  # forgotten: an ordinary missing file again


def test_hostile_media_names_its_kinds(fakefal: FakeFal) -> None:
    for how in ("gzip", ("redirect",), ("html", "x")):
        with pytest.raises(ValueError):
            fakefal.hostile_media("x.mp4", how)  # type: ignore[arg-type]


def test_remove_partials_spares_another_live_process_download_until_it_dies(tmp_path: Path) -> None:
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        theirs = tmp_path / f".000001-v.video.mp4.{other.pid}-k2j4_x.part"
        theirs.write_bytes(b"half a video")
        assert remove_partials(tmp_path) == 0 and theirs.exists()  # a second kernel still writing
    finally:
        other.kill()
        other.wait()
    assert remove_partials(tmp_path) == 1 and not theirs.exists()  # its writer is gone
