"""Sweep results in a real browser: the HTML report opened from disk, and the comparison grid in
JupyterLab, both in Debian's headless Chromium (helpers shared with test_browser.py).

The sweeps use the offline preview at a quarter of the size, so they take seconds and need no
network: the report is opened with file:// and nothing else is served.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from nbformat import v4
from test_browser import ARTIFACTS, ROOT, VIDEO_MS, Lab, _chromium_page, _jupyterlab, \
    _require_chromium, _run_menu

if TYPE_CHECKING:
    from playwright.sync_api import Page

    import sora_widgets as sw

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

MODELS = ["sora-2-2025-10-06", "sora-2-2025-12-08"]
DURATIONS = [4, 8]
PROMPT = "<b>Hills</b> & a <script>window.owned=1</script> breeze"
SYNC_S = 0.3  # how close the grid keeps its videos after a seek


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

