"""Sweep results in a real browser: the HTML report opened from disk, and the comparison grid in
JupyterLab, both in Debian's headless Chromium (helpers shared with test_browser.py).

The sweeps use the offline preview at a quarter of the size, so they take seconds and need no
network: the report is opened with file:// and nothing else is served.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from nbformat import v4
from test_browser import (
    ARTIFACTS,
    ROOT,
    VIDEO_MS,
    Lab,
    _chromium_page,
    _jupyterlab,
    _require_chromium,
    _run_menu,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page

    import sora_widgets as sw

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

MODELS = ["sora-2-2025-10-06", "sora-2-2025-12-08"]
DURATIONS = [4, 8]
PROMPT = "<b>Hills</b> & a <script>window.owned=1</script> breeze"
SYNC_S = 0.3  # how close the grid keeps its videos after a seek
SEEK_S = 2.5  # where the grid's slider is moved: inside every video (4 s and 8 s)


def _sweep(log: sw.History) -> sw.Sweep:
    """2 models x 2 durations of the offline preview, small and finished."""
    import sora_widgets as sw
    from sora_widgets.backends.preview import PreviewBackend

    backend = PreviewBackend(media_dir=log.media_dir, queue_s=0.05, scale=0.25)
    return sw.sweep(prompt=PROMPT, image_url=ROOT / "notebooks" / "example.png", model=MODELS,
                    duration=DURATIONS, backend=backend, history=log, wait=True)


def _play_all(page: Page, videos: str) -> list[dict[str, Any]]:
    """Wait until every `<video>` matched by `videos` can play, play each, and wait for its clock
    to move; return each video's state."""
    page.wait_for_function(f"() => [...document.querySelectorAll({videos!r})]"
                           ".every(v => v.readyState >= 2)", timeout=VIDEO_MS)
    page.evaluate(f"() => document.querySelectorAll({videos!r}).forEach(v => v.play())")
    page.wait_for_function(f"() => [...document.querySelectorAll({videos!r})]"
                           ".every(v => v.currentTime > 0.5)", timeout=VIDEO_MS)
    return page.evaluate(
        f"() => [...document.querySelectorAll({videos!r})].map(v => ({{duration: v.duration, "
        "width: v.videoWidth, paused: v.paused, error: v.error && v.error.code}))")


def test_the_sweep_report_plays_every_video_offline(tmp_path: Path) -> None:
    """sweep.report() opened from disk (file://, no server): one playing video per cell, and the
    prompt shown as text, not markup."""
    import sora_widgets as sw

    _require_chromium()
    run = _sweep(sw.History(tmp_path / "runs" / "history.sqlite"))
    assert run.status == {"completed": len(MODELS) * len(DURATIONS)}
    path = run.report(tmp_path / "report.html")
    with _chromium_page("report") as page:
        page.route("http*://**", lambda route: route.abort())  # offline: nothing may be fetched
        page.goto(path.as_uri())
        states = _play_all(page, "video")
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        grid_text = page.locator("table").first.inner_text()
        body_text = page.locator("body").inner_text()
        injected = page.evaluate("() => [document.querySelectorAll('table b').length, "
                                 "window.owned === undefined]")

    assert len(states) == len(run.plan.cells) == 4
    assert all(s["error"] is None and s["width"] > 0 and not s["paused"] for s in states), states
    assert sorted(round(s["duration"]) for s in states) == [4, 4, 8, 8], states
    # the report's table of jobs shows the prompt as typed; nothing in it became markup or ran
    assert PROMPT in body_text and injected == [0, True]
    assert all(model in grid_text for model in MODELS)




GRID_CELLS = [
    "import sora_widgets as sw\nfrom sora_widgets.backends.preview import PreviewBackend",
    ("log = sw.History()\n"
     f"run = sw.sweep(prompt={PROMPT!r}, image_url='example.png', model={MODELS!r},\n"
     f"               duration={DURATIONS!r}, history=log, wait=True,\n"
     "               backend=PreviewBackend(media_dir=log.media_dir, queue_s=0.05, scale=0.25))"),
    "grid = run.grid(rows='duration', cols='model')",
]
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
    each video's source and error code."""
    page.goto(f"{lab.url}/lab/tree/grid.ipynb?token={lab.token}")
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
    _run_menu(page, "Run All Cells")
    page.locator(".sora-grid").first.wait_for()
    page.wait_for_function(f"() => {{ const vs = {GRID_VIDEOS}; return vs.some(v => v.error) || "
                           "(vs.length === 4 && vs.every(v => v.readyState >= 2)); }",
                           timeout=VIDEO_MS)
    return page.evaluate(f"() => {GRID_VIDEOS}.map(v => ({{src: v.currentSrc, "
                         "error: v.error && v.error.code}))")


def test_the_comparison_grid_loads_its_videos_in_jupyterlab(tmp_path: Path) -> None:
    """As a user writes it: run.grid() in a notebook beside its sora_runs folder. The videos come
    over the widget's comm as bytes played from Blob URLs; no page URL points at a file."""
    with _grid_lab(tmp_path, [*GRID_CELLS, "grid"]) as lab, _chromium_page("grid-src") as page:
        loaded = _run_grid(page, lab)
    assert len(loaded) == 4, loaded
    assert all(v["error"] is None and v["src"].startswith("blob:") for v in loaded), loaded


def _times(page: Page) -> list[float]:
    return page.evaluate(f"() => {GRID_VIDEOS}.map(v => v.currentTime)")


def test_the_comparison_grid_plays_and_seeks_all_cells_together(tmp_path: Path) -> None:
    """In JupyterLab, "Play all" starts every cell of run.grid(), and seeking one video brings
    the others to that time within SYNC_S (the grid's videos have no controls of their own:
    its slider seeks them all)."""
    with _grid_lab(tmp_path, [*GRID_CELLS, "grid"]) as lab, _chromium_page("grid") as page:
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
        page.screenshot(path=str(ARTIFACTS / "grid.png"))

    assert len(playing) == 4 and all(t > 1 for t in playing), playing
    assert max(after_seek) - min(after_seek) <= SYNC_S, after_seek
    assert all(SEEK_S <= t <= SEEK_S + 2 * SYNC_S for t in after_seek), after_seek
