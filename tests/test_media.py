"""Image inputs, media downloads, probing and thumbnails."""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.server
import io
import ssl
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
import pytest
import trustme
from PIL import Image

from sora_widgets._errors import GenerationError, ValidationError
from sora_widgets.media import (
    MAX_INPUT_PIXELS,
    NormalizedImage,
    check_remote_url,
    classify_image,
    contact_sheet,
    download,
    limit_problems,
    link_or_copy,
    load_image,
    normalize_image,
    probe_video,
    sniff_image,
    sniff_video,
    thumbnail_of,
)


def _image_bytes(fmt: str, size: tuple[int, int] = (12, 8)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, format=fmt)
    return out.getvalue()


def _big_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of this size, all black: a few kilobytes that decode to width*height pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"\x00" * ((width + 7) // 8 + 1) * height  # filter byte + packed bits, per row
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9))
            + chunk(b"IEND", b""))


def _bad_field(caught: pytest.ExceptionInfo[ValidationError]) -> tuple[str, str]:
    assert isinstance(caught.value, ValueError) and len(caught.value.errors) == 1
    return caught.value.errors[0]


def _write_video(path: Path, *, frames: int = 32, fps: int = 16, size: tuple[int, int] = (64, 48)
                 ) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for i in range(frames):
            pixels = np.full((size[1], size[0], 3), (i * 7) % 256, np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels)
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _serve(root: Path, asked: list[str], tls: ssl.SSLContext | None = None
           ) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `root` on 127.0.0.1 in a thread, over TLS when given a context; returns the base URL."""

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            asked.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A plain HTTP server on 127.0.0.1 serving a folder; yields (base URL, folder, paths asked)."""
    root, asked = tmp_path / "served", []
    root.mkdir()
    server, base = _serve(root, asked)
    yield base, root, asked
    server.shutdown()
    server.server_close()


# --- normalize_image: every kind of input ---------------------------------------------------


def test_http_urls_pass_unchanged_without_a_copy(tmp_path: Path) -> None:
    result = normalize_image("  https://example.com/cat.png ", media_dir=tmp_path)
    assert (result.value, result.sha256, result.local_path) == ("https://example.com/cat.png", None, None)
    assert not (tmp_path / "inputs").exists()


@pytest.mark.parametrize("fmt,ext,ctype", [("PNG", "png", "image/png"), ("JPEG", "jpg", "image/jpeg"),
                                            ("WEBP", "webp", "image/webp"), ("GIF", "gif", "image/gif")])
def test_local_files_are_stored_by_content_hash(tmp_path: Path, fmt: str, ext: str, ctype: str) -> None:
    data = _image_bytes(fmt)
    source = tmp_path / f"photo.{fmt.lower()}"
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    for value in (str(source), source):
        result = normalize_image(value, media_dir=tmp_path / "media")
        assert result.local_path == tmp_path / "media" / "inputs" / f"{digest}.{ext}"
        assert (result.value, result.sha256, result.content_type) == (str(result.local_path), digest, ctype)
        assert result.local_path.read_bytes() == data
    assert len(list((tmp_path / "media" / "inputs").iterdir())) == 1


def test_bytes_and_bytearray_are_stored(tmp_path: Path) -> None:
    data = _image_bytes("JPEG")
    first = normalize_image(data, media_dir=tmp_path)
    second = normalize_image(bytearray(data), media_dir=tmp_path)
    assert first == second and first.local_path is not None and first.local_path.suffix == ".jpg"


def test_pil_images_are_stored_losslessly_as_png(tmp_path: Path) -> None:
    image = Image.new("RGB", (10, 6), (1, 2, 3))
    image.putpixel((4, 4), (250, 0, 7))
    result = normalize_image(image, media_dir=tmp_path)
    assert result.content_type == "image/png" and result.local_path is not None
    with Image.open(result.local_path) as stored:
        assert np.array_equal(np.asarray(stored.convert("RGB")), np.asarray(image))
    cmyk = normalize_image(Image.new("CMYK", (4, 4)), media_dir=tmp_path)
    assert cmyk.content_type == "image/png"


def test_data_uris_stay_as_data_uris_with_a_local_copy(tmp_path: Path) -> None:
    data = _image_bytes("PNG")
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    result = normalize_image(uri, media_dir=tmp_path)
    assert result.value == uri and result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.local_path is not None and result.local_path.read_bytes() == data


def test_other_image_formats_become_png(tmp_path: Path) -> None:
    result = normalize_image(_image_bytes("BMP"), media_dir=tmp_path)
    assert result.content_type == "image/png" and sniff_image(result.local_path.read_bytes()) == "png"


# --- normalize_image: each error names image_url and says what was given -----------------------


def test_a_missing_file_is_a_validation_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_image(str(tmp_path / "holiday.png"), media_dir=tmp_path)
    field, message = _bad_field(caught)
    assert field == "image_url" and "holiday.png" in message and "does not exist" in message


def test_a_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_image(tmp_path, media_dir=tmp_path)
    assert "folder" in _bad_field(caught)[1]


@pytest.mark.parametrize("value,words", [
    (b"hello, not an image", "the 19 bytes given could not be read as an image"),
    (_image_bytes("PNG")[:40], "could not be read as an image"),  # truncated PNG
    ("data:image/png,rawtext", "not base64"),
    ("data:image/png;base64,@@@", "invalid base64"),
    ("data:text/plain;base64," + base64.b64encode(b"just text").decode(), "the data URI could not be read"),
    ("file:///etc/passwd", "file: URLs are not accepted"),
    ("javascript:alert(1)", "javascript: URLs are not accepted"),
    ("https:///no-host.png", "has no host"),
    ("http://", "has no host"),
    ("http://user@:80/x.png", "has no host"),
    ("http://[::1/x.png", "not a valid URL"),
    (42, "got int"),
])
def test_unusable_inputs_are_validation_errors(tmp_path: Path, value: object, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_image(value, media_dir=tmp_path)  # type: ignore[arg-type]
    field, message = _bad_field(caught)
    assert field == "image_url" and words in message
    assert not (tmp_path / "inputs").exists()


def test_an_image_over_the_pixel_limit_is_refused_before_decoding(tmp_path: Path) -> None:
    side = int(MAX_INPUT_PIXELS ** 0.5) + 100  # just over the limit, under PIL's own bomb check
    big = _big_png(side, side)
    with Image.open(io.BytesIO(big)) as check:  # the PNG is valid: only the limit refuses it
        assert check.size == (side, side)
    for value in (big, "data:image/png;base64," + base64.b64encode(big).decode()):
        with pytest.raises(ValidationError) as caught:
            normalize_image(value, media_dir=tmp_path, field="end_image_url")
        field, message = _bad_field(caught)
        assert field == "end_image_url" and f"{side}x{side} pixels" in message
        assert f"limit of {MAX_INPUT_PIXELS / 1e6:g} million pixels" in message
    with pytest.raises(ValidationError) as caught:
        load_image(big)
    assert "million pixels" in _bad_field(caught)[1]
    assert not (tmp_path / "inputs").exists()


@pytest.mark.parametrize("side", [10_000, 20_000])  # PIL warns past ~89 M pixels, refuses past ~179 M
def test_a_decompression_bomb_is_a_validation_error_not_a_warning(tmp_path: Path, side: int) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(ValidationError) as caught:
            normalize_image(_big_png(side, side), media_dir=tmp_path)
    assert [w.message for w in seen] == []
    field, message = _bad_field(caught)
    assert field == "image_url" and "too large to open safely" in message and "million pixels" in message


def test_a_data_uri_that_is_not_an_image_is_a_validation_error(tmp_path: Path) -> None:
    uri = "data:text/plain;base64,aGVsbG8="
    with pytest.raises(ValidationError) as caught:
        normalize_image(uri, media_dir=tmp_path, field="first_frame")
    field, message = _bad_field(caught)
    assert field == "first_frame" and "could not be read as an image" in message
    with pytest.raises(ValidationError) as loaded:
        load_image(uri, field="first_frame")
    assert loaded.value.fields == ["first_frame"]


def test_check_remote_url_names_the_field() -> None:
    assert check_remote_url("  https://cdn.example/a.png ", "image_url") == "https://cdn.example/a.png"
    for value, words in (("http://", "has no host"), ("https:///a.png", "has no host"),
                         ("file:///etc/passwd", "file: URLs are not accepted"),
                         ("/tmp/a.png", "expected an http(s) URL")):
        with pytest.raises(ValidationError) as caught:
            check_remote_url(value, "tail_image_url")
        field, message = _bad_field(caught)
        assert field == "tail_image_url" and words in message, value


def test_load_image_refuses_a_url_without_a_host() -> None:
    with pytest.raises(ValidationError) as caught:
        load_image("http://", field="reference")
    assert _bad_field(caught) == ("reference", "the URL 'http://' has no host")


def test_sniff_video_names_mp4_and_webm_only() -> None:
    assert sniff_video(b"\x00\x00\x00\x18ftypmp42") == "mp4"
    assert sniff_video(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81") == "webm"
    for other in (b"<!doctype html>", _image_bytes("PNG"), b"", b"\x00" * 16):
        assert sniff_video(other) is None


def test_errors_can_name_another_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        normalize_image(b"nope", media_dir=tmp_path, field="end_image_url")
    assert caught.value.fields == ["end_image_url"]


# --- classify_image and NormalizedImage: one decision per input ------------------------------


def test_classify_image_says_what_each_input_is_without_reading_it(tmp_path: Path) -> None:
    missing = tmp_path / "not-yet.png"  # classifying reads nothing, so a missing file is still a path
    uri = "data:image/png;base64," + base64.b64encode(_image_bytes("PNG")).decode()
    image = Image.new("RGB", (3, 2))
    cases: list[tuple[object, str, bool, str | None, Path | None]] = [
        (str(missing), "path", False, None, missing),
        (missing, "path", False, None, missing),
        ("~/cat.png", "path", False, None, Path("~/cat.png").expanduser()),
        (f" {uri} ", "data_uri", False, uri, None),
        (_image_bytes("PNG"), "bytes", False, None, None),
        (bytearray(b"not decoded yet"), "bytes", False, None, None),
        (image, "pil", False, None, None),
        ("  HTTPS://cdn.example/cat.png?sig=1 ", "url", True, "HTTPS://cdn.example/cat.png?sig=1", None),
    ]
    for value, kind, remote, url, path in cases:
        source = classify_image(value)
        assert (source.kind, source.is_remote, source.url, source.path) == (kind, remote, url, path), value
    assert classify_image(image).given is image
    assert not missing.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("value,words", [
    ("file:///etc/passwd", "file: URLs are not accepted"),
    ("FILE://localhost/etc/passwd", "file: URLs are not accepted"),
    ("javascript:alert(1)", "javascript: URLs are not accepted"),
    ("https:///no-host.png", "has no host"),
    (3.5, "got float"),
])
def test_classify_image_refuses_other_schemes_naming_the_field(value: object, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        classify_image(value, field="end_image_url")
    field, message = _bad_field(caught)
    assert field == "end_image_url" and words in message


def test_a_normalized_image_answers_every_question(tmp_path: Path) -> None:
    png = _image_bytes("PNG", (12, 8))
    (tmp_path / "a.png").write_bytes(png)
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    remote = normalize_image(" https://cdn.example/a.png ", media_dir=tmp_path)
    assert (remote.kind, remote.is_remote, remote.url, remote.local_path) == (
        "url", True, "https://cdn.example/a.png", None)
    assert (remote.content_type, remote.size, remote.sha256) == (None, None, None)
    for value, kind, url in ((tmp_path / "a.png", "path", None), (png, "bytes", None),
                             (Image.open(io.BytesIO(png)), "pil", None), (uri, "data_uri", uri)):
        local = normalize_image(value, media_dir=tmp_path / "media")
        assert (local.kind, local.is_remote, local.url) == (kind, False, url)
        assert (local.content_type, local.size) == ("image/png", (12, 8))
        assert local.local_path is not None and local.local_path.parent == tmp_path / "media" / "inputs"
        assert local.value == (url or str(local.local_path))


def test_a_normalized_image_is_handed_on_without_being_read_again(tmp_path: Path) -> None:
    image = normalize_image(_image_bytes("JPEG", (6, 4)), media_dir=tmp_path / "first")
    assert isinstance(image, NormalizedImage) and image.local_path is not None
    assert normalize_image(image, media_dir=tmp_path / "second", field="other") is image
    assert not (tmp_path / "second").exists()
    assert load_image(image).size == (6, 4)  # from its stored copy
    image.local_path.unlink()
    assert normalize_image(image, media_dir=tmp_path / "first") is image  # not classified nor read again
    source = classify_image(_image_bytes("PNG", (5, 5)))  # classified once, then stored from that
    assert normalize_image(source, media_dir=tmp_path / "third").size == (5, 5)
    assert load_image(source).size == (5, 5)


def test_limit_problems_takes_a_known_image_size_without_opening_the_file(tmp_path: Path) -> None:
    not_an_image = tmp_path / "stored.png"
    not_an_image.write_bytes(b"x" * 10)
    limits = {"min_width": 100, "max_aspect_ratio": 1.5}
    assert limit_problems(limits, not_an_image, size=(80, 40)) == [
        "has width 80 px, below the minimum 100 px", "has aspect ratio 2.00, above the maximum 1.5"]


# --- load_image -----------------------------------------------------------------------------


def test_load_image_opens_every_kind_as_rgb(tmp_path: Path, http_root: tuple[str, Path, list[str]]) -> None:
    base, root, _ = http_root
    data = _image_bytes("PNG", (6, 4))
    (root / "a.png").write_bytes(data)
    (tmp_path / "a.png").write_bytes(data)
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    for value in (data, str(tmp_path / "a.png"), uri, f"{base}/a.png", Image.open(io.BytesIO(data))):
        image = load_image(value)
        assert (image.mode, image.size, image.getpixel((0, 0))) == ("RGB", (6, 4), (200, 30, 90))


def test_load_image_from_an_unreachable_url_is_a_download_error() -> None:
    with pytest.raises(GenerationError) as caught:
        load_image("http://127.0.0.1:9/cat.png", timeout=2)
    assert caught.value.kind == "download" and "127.0.0.1:9/cat.png" in str(caught.value)


# --- download -------------------------------------------------------------------------------


def test_download_over_http_is_atomic_and_skips_a_complete_copy(
        tmp_path: Path, http_root: tuple[str, Path, list[str]]) -> None:
    base, root, asked = http_root
    payload = bytes(range(256)) * 5000
    (root / "clip.mp4").write_bytes(payload)
    dest = download(f"{base}/clip.mp4", tmp_path / "videos", name="1-clip.mp4")
    assert dest.read_bytes() == payload and [p.name for p in dest.parent.iterdir()] == ["1-clip.mp4"]
    inode = dest.stat().st_ino
    assert download(f"{base}/clip.mp4", tmp_path / "videos", name="1-clip.mp4").stat().st_ino == inode
    count = len(asked)
    download(f"{base}/clip.mp4", tmp_path / "videos", name="1-clip.mp4", size=len(payload))
    assert len(asked) == count  # known size already on disk: not even asked


def test_download_errors_are_generation_errors(tmp_path: Path, http_root: tuple[str, Path, list[str]]) -> None:
    base, root, _ = http_root
    (root / "short.mp4").write_bytes(b"x" * 100)
    cases = [(f"{base}/missing.mp4", {}, "404"), (f"{base}/short.mp4", {"size": 500}, "100 of 500"),
             ("http://127.0.0.1:9/clip.mp4", {}, "failed"), ("ftp://example.com/a.mp4", {}, "uses ftp:"),
             (str(tmp_path / "nowhere.mp4"), {}, "is a local path")]
    for url, options, words in cases:
        with pytest.raises(GenerationError) as caught:
            download(url, tmp_path / "videos", name="clip.mp4", **options)  # type: ignore[arg-type]
        assert caught.value.kind == "download" and words in str(caught.value), url
    assert not (tmp_path / "videos").exists() or not list((tmp_path / "videos").iterdir())


def test_download_through_a_transport_reports_the_status_code(tmp_path: Path) -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(503, text="busy"))
    with pytest.raises(GenerationError) as caught:
        download("https://cdn.example/v.mp4", tmp_path, name="v.mp4", transport=transport)
    assert caught.value.status_code == 503


def test_https_downloads_trust_the_ca_in_ssl_cert_file(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    root = tmp_path / "served"
    root.mkdir()
    (root / "v.mp4").write_bytes(b"tls video")
    server, base = _serve(root, [], tls)
    try:
        with pytest.raises(GenerationError):  # an unknown CA is refused
            download(f"{base}/v.mp4", tmp_path / "a", name="v.mp4", timeout=5)
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
        assert download(f"{base}/v.mp4", tmp_path / "b", name="v.mp4").read_bytes() == b"tls video"
    finally:
        server.shutdown()
        server.server_close()


def test_link_or_copy_keeps_a_local_file_atomically(tmp_path: Path) -> None:
    source = tmp_path / "render.mp4"
    source.write_bytes(b"video bytes")
    kept = link_or_copy(source, tmp_path / "a" / "one.mp4")
    assert kept == tmp_path / "a" / "one.mp4" and kept.read_bytes() == b"video bytes"
    assert [p.name for p in kept.parent.iterdir()] == ["one.mp4"]  # no .part left behind
    assert link_or_copy(source, kept) == kept  # already there
    with pytest.raises(GenerationError) as caught:
        link_or_copy(tmp_path / "missing.mp4", tmp_path / "a" / "two.mp4")
    assert caught.value.kind == "download" and "no such file" in str(caught.value)


def test_download_refuses_local_files_and_file_urls(tmp_path: Path) -> None:
    source = tmp_path / "render.mp4"
    source.write_bytes(b"video bytes")
    for url in (source, str(source), source.as_uri(), "file://localhost" + str(source)):
        with pytest.raises(GenerationError) as caught:
            download(url, tmp_path / "a", name="one.mp4")
        assert caught.value.kind == "download" and "refused" in str(caught.value), url
    assert not (tmp_path / "a").exists()


def test_download_refuses_names_that_are_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        download("https://cdn.example/v.mp4", tmp_path, name="../v.mp4")


# --- probing and thumbnails -----------------------------------------------------------------


def test_probe_video_reads_the_stream(tmp_path: Path) -> None:
    info = probe_video(_write_video(tmp_path / "v.mp4", frames=32, fps=16, size=(64, 48)))
    assert (info.duration_s, info.fps, info.frames) == (2.0, 16.0, 32)
    assert (info.width, info.height, info.codec, info.pix_fmt) == (64, 48, "h264", "yuv420p")


def test_probe_of_a_non_video_is_a_media_error(tmp_path: Path) -> None:
    (tmp_path / "fake.mp4").write_bytes(b"not a video at all")
    for path in (tmp_path / "fake.mp4", tmp_path / "missing.mp4"):
        with pytest.raises(GenerationError) as caught:
            probe_video(path)
        assert caught.value.kind == "media"


def test_thumbnail_is_the_first_frame(tmp_path: Path) -> None:
    video = _write_video(tmp_path / "v.mp4")
    for name, fmt in (("t.jpg", "JPEG"), ("t.png", "PNG")):
        with Image.open(thumbnail_of(video, tmp_path / name)) as thumb:
            assert (thumb.format, thumb.size) == (fmt, (64, 48))
            assert max(thumb.convert("L").getextrema()) < 20  # frame 0 is black
    with pytest.raises(ValueError):
        thumbnail_of(video, tmp_path / "t.gif")


def test_a_compressed_transfer_is_saved_decompressed(tmp_path: Path) -> None:
    body = b"frame data " * 1000
    transport = httpx.MockTransport(lambda request: httpx.Response(
        200, content=gzip.compress(body), headers={"content-encoding": "gzip"}))
    dest = download("https://cdn.example/v.mp4", tmp_path, name="v.mp4", transport=transport)
    assert dest.read_bytes() == body


def test_contact_sheet_lays_tiles_in_rows() -> None:
    tiles = [Image.new("RGB", (20, 10), (n * 20, 0, 0)) for n in range(7)]
    sheet = contact_sheet(tiles, columns=5)
    assert sheet.size == (100, 20)
    assert sheet.getpixel((25, 5)) == (20, 0, 0) and sheet.getpixel((25, 15)) == (120, 0, 0)


def test_an_unreadable_image_file_is_a_validation_error_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:  # a regular file every read of fails, even as root
        normalize_image("/proc/self/mem", media_dir=tmp_path, field="image_url")
    assert caught.value.fields == ["image_url"] and "could not be read" in str(caught.value)


def test_a_media_folder_that_cannot_be_written_is_a_media_error(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the media folder should be")
    with pytest.raises(GenerationError) as caught:
        normalize_image(_image_bytes("PNG"), media_dir=blocked)
    assert caught.value.kind == "media" and "could not be kept" in str(caught.value)
