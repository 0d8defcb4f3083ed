"""The comparison grid in JupyterLab, in Debian's headless Chromium (helpers from test_browser.py).

A notebook beside its sora_runs folder runs an offline preview sweep whose prompt has dollar
signs, shows the sweep's summary, the grid and the history table, and one cell's video is
swapped for a large one. The prompt is a one-value axis, so each grid cell's label shows it. Checked as a user sees it: one summary, no `$` typeset as math (while
MathJax does typeset a control cell), posters that are small data:image JPEGs, every video
loaded from a Blob URL, the large one sent in chunks (no websocket message near Jupyter's 10 MB
cap) and playing; then Play all and the slider move every cell together. Screenshots:
artifacts/grid.png, grid-summary.png, grid-history.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from nbformat import v4
from test_browser import ARTIFACTS, VIDEO_MS, Lab, _chromium_page, _jupyterlab, _run_menu
from test_browser_copy import write_video

from sora_widgets.widgets.grid import CHUNK_BYTES

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

MODELS = ["sora-2-2025-10-06", "sora-2-2025-12-08"]
DURATIONS = [4, 8]
PROMPT = "<b>Hills</b> & a $5 kite, a $10 <script>window.owned=1</script> breeze"
SYNC_S = 0.3  # how close the grid keeps its videos after a seek
SEEK_S = 2.5  # where the grid's slider is moved: inside every video (4 s and 8 s)
BIG = "big.mp4"  # a 4 s 720p video of several chunks, put in place of the first cell's video
MATH = "mjx-container, .MathJax, .katex"

SWEEP_CELLS = [
    "import shutil\nimport sora_widgets as sw\nfrom sora_widgets.backends.preview import PreviewBackend",
    ("log = sw.History()\n"
     f"run = sw.sweep(prompt={[PROMPT]!r}, image_url='example.png', model={MODELS!r},\n"
     f"               duration={DURATIONS!r}, history=log, wait=True, budget_usd=2,\n"
     "               backend=PreviewBackend(media_dir=log.media_dir, queue_s=0.05, scale=0.25))\n"
     "run"),
]
BIG_CELL = "shutil.copyfile('big.mp4', run.records()[0][1]['video_path'])"
GRID_CELL = "grid = run.grid(rows='duration', cols='model')\ngrid"
CONTROL_CELL = ("from IPython.display import HTML\n"
                "HTML(\"<div class='math-control'>MathJax is on here: $x^2$</div>\")")
GRID_VIDEOS = "[...document.querySelectorAll('.sora-grid video')]"


@contextmanager
def _grid_lab(tmp_path: Path, cells: list[str]) -> Iterator[Lab]:
    """JupyterLab (no key) whose folder holds grid.ipynb made of `cells`."""
    with _jupyterlab(tmp_path, {}) as server:
        notebook = v4.new_notebook(cells=[v4.new_code_cell(code) for code in cells],
                                   metadata={"kernelspec": {"name": "python3",
                                                            "display_name": "Python 3",
                                                            "language": "python"}})
        nbformat.write(notebook, str(server.root / "grid.ipynb"))
        yield server


def _run_grid(page: Page, lab: Lab) -> list[dict[str, Any]]:
    """Run grid.ipynb and wait until its four videos have loaded, or one has failed; return
    each video's source, error code and poster."""
    page.goto(f"{lab.url}/lab/tree/grid.ipynb?token={lab.token}")
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
    _run_menu(page, "Run All Cells")
    page.locator(".sora-grid").first.wait_for()
    page.wait_for_function(f"() => {{ const vs = {GRID_VIDEOS}; return vs.some(v => v.error) || "
                           "(vs.length === 4 && vs.every(v => v.readyState >= 2)); }",
                           timeout=VIDEO_MS)
    return page.evaluate(f"() => {GRID_VIDEOS}.map(v => ({{src: v.currentSrc, poster: v.poster, "
                         "error: v.error && v.error.code, width: v.videoWidth, ready: v.readyState}))")


def _output_of(page: Page, code: str) -> Any:
    """The output area of the code cell whose source contains `code`."""
    cell = page.locator(".jp-CodeCell").filter(has_text=code).first
    return cell.locator(".jp-Cell-outputArea")


def _shot(locator: Any, name: str) -> None:
    locator.scroll_into_view_if_needed()
    locator.screenshot(path=str(ARTIFACTS / name))


def test_the_grid_shows_posters_plays_a_chunked_video_and_no_dollar_becomes_math(
        tmp_path: Path) -> None:
    cells = [*SWEEP_CELLS, BIG_CELL, GRID_CELL, "log  # the history", CONTROL_CELL]
    with _grid_lab(tmp_path, cells) as lab, _chromium_page("grid-media") as page:
        big = write_video(lab.root / BIG, bitrate=12_000_000)
        frames: list[int] = []  # sizes of the websocket messages the page receives
        page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(len(data))))
        loaded = _run_grid(page, lab)
        page.locator(".math-control mjx-container").first.wait_for()  # MathJax runs on this page
        grid = page.locator(".sora-grid").first
        posters = page.evaluate(
            f"() => Promise.all({GRID_VIDEOS}.map(v => {{ const i = new Image(); i.src = v.poster; "
            "return i.decode().then(() => i.naturalWidth, () => 0); }))")
        # the first cell (row 4 s, first model) holds the large video: it plays from its Blob
        first = grid.locator("video").first
        first.evaluate("v => v.play()")
        page.wait_for_function("v => v.currentTime > 1", arg=first.element_handle(), timeout=VIDEO_MS)
        blob_size = first.evaluate("v => fetch(v.currentSrc).then(r => r.blob()).then(b => b.size)")
        first.evaluate("v => { v.pause(); v.currentTime = 0.5; }")
        page.wait_for_timeout(500)
        _shot(_output_of(page, "run.grid("), "grid.png")
        summary = _output_of(page, "run = sw.sweep(")
        history = _output_of(page, "# the history")
        _shot(summary, "grid-summary.png")
        _shot(history, "grid-history.png")
        summary_text, history_text = summary.inner_text(), history.inner_text()
        grid_text = grid.inner_text()
        math = page.evaluate(f"() => [...document.querySelectorAll({MATH!r})]"
                             ".filter(m => !m.closest('.math-control')).length")
        aligned = page.evaluate("() => [...document.querySelectorAll('.jp-OutputArea-output td, "
                                ".jp-OutputArea-output th')].filter(c => c.closest('.sora-sweep, .sora-history'))"
                                ".map(c => getComputedStyle(c).textAlign)")
        owned = page.evaluate("() => window.owned === undefined")

    assert len(loaded) == 4 and all(v["error"] is None and v["src"].startswith("blob:") for v in loaded), loaded
    assert all(v["poster"].startswith("data:image/jpeg;base64,") for v in loaded), [v["poster"][:40] for v in loaded]
    assert all(width == 320 for width in posters), posters
    assert loaded[0]["width"] == 1280 and blob_size == big.stat().st_size > 2 * CHUNK_BYTES
    assert max(frames) < CHUNK_BYTES + 64_000, max(frames)  # no message near the 10 MB cap
    assert sum(size > CHUNK_BYTES // 2 for size in frames) >= 3, sorted(frames)[-5:]
    # dollars shown as typed, nowhere typeset; one summary of the sweep
    assert math == 0
    assert "free (on fal: $2.40), budget $2.00" in summary_text, summary_text
    assert summary_text.count("Sweep ") == 1 and "Status: 4 completed." in summary_text, summary_text
    assert "$5 kite, a $10" in summary_text and "$5 kite, a $10" in history_text
    assert "$0.00" in history_text, history_text  # the preview is free
    assert all(model in grid_text for model in MODELS) and owned
    assert grid_text.count("$5 kite, a $10") == 4, grid_text  # each cell's label: prompt=...
    assert aligned and set(aligned) == {"left"}, aligned


def _times(page: Page) -> list[float]:
    return page.evaluate(f"() => {GRID_VIDEOS}.map(v => v.currentTime)")


def test_the_comparison_grid_plays_and_seeks_all_cells_together(tmp_path: Path) -> None:
    """In JupyterLab, "Play all" starts every cell of run.grid(), and seeking one video brings
    the others to that time within SYNC_S (the grid's videos have no controls of their own:
    its slider seeks them all)."""
    with _grid_lab(tmp_path, [*SWEEP_CELLS, GRID_CELL]) as lab, _chromium_page("grid") as page:
        loaded = _run_grid(page, lab)
        assert all(v["error"] is None for v in loaded), f"grid videos failed to load: {loaded}"
        grid = page.locator(".sora-grid").first
        grid.scroll_into_view_if_needed()
        grid.locator(".sora-grid-play").click()
        page.wait_for_function(f"() => {GRID_VIDEOS}.every(v => !v.paused && v.currentTime > 1)",
                               timeout=VIDEO_MS)
        playing = _times(page)
        grid.locator(".sora-grid-seek").fill(str(SEEK_S))  # as dragging it does: input events
        page.wait_for_timeout(int(SYNC_S * 1000))
        after_seek = _times(page)
        _shot(grid, "grid-playing.png")

    assert len(playing) == 4 and all(t > 1 for t in playing), playing
    assert max(after_seek) - min(after_seek) <= SYNC_S, after_seek
    assert all(SEEK_S <= t <= SEEK_S + 2 * SYNC_S for t in after_seek), after_seek
