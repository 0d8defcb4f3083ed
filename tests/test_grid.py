"""The comparison grid, through its Python state and messages: layout, live status, ratings,
escaping, posters, and local videos sent to the page as message bytes in chunks."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import sora_widgets as sw
from sora_widgets._html import poster_src
from sora_widgets.backends.preview import PreviewBackend
from sora_widgets.widgets.grid import CHUNK_BYTES, CompareGrid, safe_src

PROMPTS = ["zoom in on the fox", "<script>alert('x')</script> & pan left"]
MODELS = ["sora-2-2025-10-06", "sora-2-2025-12-08"]


@pytest.fixture
def finished(log: sw.History, image: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> sw.Sweep:
    monkeypatch.chdir(tmp_path)  # the notebook's folder: videos are served relative to it
    backend = PreviewBackend(media_dir=log.media_dir, queue_s=0.05, fps=8, scale=0.1)
    return sw.sweep(prompt=PROMPTS, image_url=image, model=MODELS, duration=[4, 8],
                    backend=backend, history=log, wait=True)


def deliver(grid: CompareGrid, content: Any) -> None:
    """Deliver a custom message from the page as the kernel's comm does, through ipywidgets."""
    grid._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def replies(grid: CompareGrid, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, list[bytes]]]:
    """The custom messages the grid sends to the page, as (content, buffers)."""
    sent: list[tuple[Any, list[bytes]]] = []
    monkeypatch.setattr(grid, "send", lambda content, buffers=None: sent.append((content, buffers or [])))
    return sent


def test_a_finished_sweep_fills_the_grid_by_two_axes(finished: sw.Sweep) -> None:
    grid = finished.grid()
    assert (grid.row_axis, grid.col_axis) == ("prompt", "model")
    assert grid.rows == PROMPTS and grid.cols == MODELS
    assert len(grid.cells) == 8
    assert {(c["row"], c["col"]) for c in grid.cells} == {(r, c) for r in (0, 1) for c in (0, 1)}
    for cell in grid.cells:
        assert cell["status"] == "completed" and cell["error"] is None
        assert cell["label"] in ("duration=4", "duration=8")
        assert cell["local"] is True and cell["src"] is None  # the page asks the kernel for it
    assert set(grid.keys) >= {"cells", "rows", "cols", "row_axis", "col_axis", "_esm", "_css"}


def test_axes_can_be_chosen_and_unknown_axes_are_named(finished: sw.Sweep) -> None:
    grid = finished.grid(rows="duration", cols="prompt")
    assert grid.rows == ["4", "8"] and grid.cols == PROMPTS
    assert {c["label"] for c in grid.cells} == {f"model={m}" for m in MODELS}
    with pytest.raises(sw.ValidationError, match="'aspect_ratio' is not an axis") as caught:
        finished.grid(rows="aspect_ratio")
    assert caught.value.fields == ["rows"]


def test_a_rating_from_the_page_is_stored_in_the_history(finished: sw.Sweep, log: sw.History) -> None:
    grid = finished.grid()
    target = grid.cells[3]["history_id"]
    deliver(grid, {"type": "rate", "history_id": target, "rating": 4})
    assert log.get(target)["rating"] == 4
    assert next(c for c in grid.cells if c["history_id"] == target)["rating"] == 4
    assert grid.notice == ""
    deliver(grid, {"type": "rate", "history_id": target, "rating": None})
    assert log.get(target)["rating"] is None


@pytest.mark.parametrize("content, problem", [
    ({"type": "rate", "history_id": 999, "rating": 3}, "not a video of this grid"),
    ({"type": "rate", "history_id": "1", "rating": 3}, "not a video of this grid"),
    ({"type": "rate", "history_id": 1, "rating": 9}, "1 to 5 stars"),
    ({"type": "rate", "history_id": 1, "rating": True}, "1 to 5 stars"),
])
def test_a_bad_rating_message_is_refused_without_writing(
        finished: sw.Sweep, log: sw.History, content: dict[str, Any], problem: str) -> None:
    grid = finished.grid()
    deliver(grid, content)
    assert problem in grid.notice
    assert all(r["rating"] is None for r in log.records())


def test_other_messages_are_ignored(finished: sw.Sweep) -> None:
    grid = finished.grid()
    before = list(grid.cells)
    deliver(grid, {"type": "play"})
    deliver(grid, "rate")
    assert grid.cells == before and grid.notice == ""


def test_text_reaches_the_page_as_data_and_the_page_never_parses_it(finished: sw.Sweep) -> None:
    grid = finished.grid()
    assert PROMPTS[1] in grid.rows  # raw text in the trait; grid.js shows it with textContent
    js = (Path(sw.__file__).parent / "widgets" / "grid.js").read_text()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "textContent" in js


@pytest.mark.parametrize("src, expected", [
    ("sora_runs/media/videos/1.mp4", None),  # the page would resolve it against its own URL
    ("/files/sora_runs/media/videos/1.mp4", None),
    ("https://v3.fal.media/files/x.mp4", "https://v3.fal.media/files/x.mp4"),
    ("data:video/mp4;base64,AAAA", "data:video/mp4;base64,AAAA"),
    ("blob:http://127.0.0.1/x", None),
    ("javascript:alert(1)", None),
    (" JavaScript:alert(1)", None),
    ("file:///etc/passwd", None),
    (None, None),
])
def test_only_safe_video_sources_reach_the_page(src: str | None, expected: str | None) -> None:
    assert safe_src(src) == expected


class _Source:
    """A tiny stand-in for a sweep whose one job moves from queued to failed."""

    def __init__(self) -> None:
        self.status, self.error, self.src = "queued", None, None
        self.listeners: list[Any] = []
        self.rated: list[tuple[int, int | None]] = []

    def grid_cells(self, rows: str | None, cols: str | None) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        return [""], ["m"], [{"row": 0, "col": 0, "status": self.status, "src": self.src, "label": "",
                              "history_id": 7, "error": self.error, "rating": None}]

    def rate(self, history_id: int, rating: int | None) -> None:
        self.rated.append((history_id, rating))

    def on_change(self, callback: Any) -> None:
        self.listeners.append(callback)


def test_cells_follow_job_events() -> None:
    source = _Source()
    grid = CompareGrid(source, cols="model")
    assert grid.cells[0]["status"] == "queued"
    source.status, source.error = "failed", "Prompt refused <b>"
    for callback in source.listeners:
        callback()
    assert grid.cells[0]["status"] == "failed" and grid.cells[0]["error"] == "Prompt refused <b>"
    deliver(grid, {"type": "rate", "history_id": 7, "rating": 2})
    assert source.rated == [(7, 2)]


def test_a_grid_made_while_the_sweep_runs_ends_with_every_video(
        log: sw.History, image: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    backend = PreviewBackend(media_dir=log.media_dir, queue_s=0.3, fps=8, scale=0.1)
    run = sw.sweep(prompt="p", image_url=image, model=MODELS, backend=backend, history=log)
    grid = run.grid()
    assert {c["status"] for c in grid.cells} <= {"waiting", "pending", "submitting", "queued", "running",
                                                   "completed"}
    run.wait(timeout=60)
    assert [c["status"] for c in grid.cells] == ["completed", "completed"]
    assert all(c["local"] for c in grid.cells)


def test_the_page_asks_for_a_cells_video_and_gets_its_bytes(
        finished: sw.Sweep, log: sw.History, monkeypatch: pytest.MonkeyPatch) -> None:
    grid = finished.grid()
    sent = replies(grid, monkeypatch)
    target = grid.cells[5]["history_id"]
    deliver(grid, {"type": "video", "history_id": target, "request": "r1"})
    assert sent == [({"type": "video", "history_id": target, "request": "r1", "mime": "video/mp4",
                      "index": 0, "count": 1},
                     [Path(log.get(target)["video_path"]).read_bytes()])]
    assert sent[0][1][0][4:8] == b"ftyp" and grid.notice == ""


def test_a_large_video_goes_in_chunks_of_at_most_two_megabytes(
        finished: sw.Sweep, log: sw.History, monkeypatch: pytest.MonkeyPatch) -> None:
    """Jupyter servers refuse a websocket message over 10 MB: no message carries more than
    CHUNK_BYTES, and the pieces in order are the file."""
    grid = finished.grid()
    target = grid.cells[2]["history_id"]
    path = Path(log.get(target)["video_path"])
    big = path.read_bytes() + bytes(range(256)) * (2 * CHUNK_BYTES // 256 + 3)  # just over 4 MB
    path.write_bytes(big)
    sent = replies(grid, monkeypatch)
    deliver(grid, {"type": "video", "history_id": target, "request": "r2"})
    assert CHUNK_BYTES <= 2 * 1024 * 1024
    assert [c["index"] for c, _ in sent] == [0, 1, 2] and {c["count"] for c, _ in sent} == {3}
    assert {c["request"] for c, _ in sent} == {"r2"}
    assert all(len(b) == 1 and len(b[0]) <= CHUNK_BYTES for _, b in sent)
    assert b"".join(b[0] for _, b in sent) == big


def test_each_cell_has_a_small_jpeg_poster_of_its_first_frame(finished: sw.Sweep) -> None:
    grid = finished.grid()
    for cell in grid.cells:
        assert cell["poster"].startswith("data:image/jpeg;base64,")
        image = Image.open(io.BytesIO(base64.b64decode(cell["poster"].split(",", 1)[1])))
        assert image.format == "JPEG" and image.width <= 320
    assert all(len(c["poster"]) < 8_000 for c in grid.cells)  # the preview here is tiny


def test_a_poster_is_320_pixels_wide_and_a_few_kilobytes(tmp_path: Path) -> None:
    from sora_widgets.backends._render import render_preview

    rendered = render_preview({"prompt": "hills", "duration": 4}, "fal-ai/sora-2/image-to-video",
                              tmp_path, "poster", scale=1.0)
    uri = poster_src(None, None, str(tmp_path / rendered["video"]["file_name"]))
    assert uri is not None and uri.startswith("data:image/jpeg;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert image.width == 320 and 150 <= image.height <= 200  # 16:9 kept
    assert len(uri) < 30_000
    assert poster_src(None, None, str(tmp_path / "missing.mp4")) is None


def test_no_video_bytes_are_in_the_synced_state(finished: sw.Sweep) -> None:
    """The notebook saves the widget's state: it holds no video and no path on the kernel's disk,
    only the small posters."""
    grid = finished.grid()
    state = grid.get_state()
    data = json.dumps({k: v for k, v in state.items() if k not in ("_esm", "_css")}, default=str)
    posters = sum(len(c["poster"]) for c in grid.cells)
    assert len(json.dumps(state, default=str)) - posters < 25_000
    assert "sora_runs" not in data and "video_path" not in data and "data:video" not in data
    assert data.count("base64") == len(grid.cells)  # one poster each


@pytest.mark.parametrize("content, problem", [
    ({"type": "video", "history_id": 999}, "999 is not a video of this grid"),
    ({"type": "video", "history_id": "1"}, "'1' is not a history id"),
    ({"type": "video", "history_id": True}, "True is not a history id"),
    ({"type": "video"}, "None is not a history id"),
])
def test_a_bad_video_request_sets_the_notice_and_sends_nothing(
        finished: sw.Sweep, monkeypatch: pytest.MonkeyPatch, content: dict[str, Any], problem: str) -> None:
    grid = finished.grid()
    sent = replies(grid, monkeypatch)
    deliver(grid, content)
    assert problem in grid.notice and sent == []


def test_a_video_gone_from_disk_sets_the_notice(
        finished: sw.Sweep, log: sw.History, monkeypatch: pytest.MonkeyPatch) -> None:
    grid = finished.grid()
    sent = replies(grid, monkeypatch)
    target = grid.cells[0]["history_id"]
    path = Path(log.get(target)["video_path"])
    path.unlink()
    deliver(grid, {"type": "video", "history_id": target})
    assert f"{path.name} could not be read" in grid.notice and sent == []


def test_a_cell_without_a_local_file_keeps_its_remote_url(monkeypatch: pytest.MonkeyPatch) -> None:
    source = _Source()
    source.status, source.src = "completed", "https://v3.fal.media/files/x.mp4"
    grid = CompareGrid(source, cols="model")
    sent = replies(grid, monkeypatch)
    assert (grid.cells[0]["src"], grid.cells[0]["local"]) == (source.src, False)
    deliver(grid, {"type": "video", "history_id": 7})
    assert "7 is not a video of this grid" in grid.notice and sent == []
