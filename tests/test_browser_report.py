"""The sweep report in a real browser: opened from disk in Debian's headless Chromium (helpers
shared with test_browser.py; the grid in JupyterLab is test_browser_grid.py).

The sweep uses the offline preview at a quarter of the size, so it takes seconds and needs no
network: the report is opened with file:// and nothing else is served. Screenshot:
artifacts/report.png.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_browser import ARTIFACTS, ROOT, VIDEO_MS, _chromium_page, _require_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Page

    import sora_widgets as sw

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

MODELS = ["sora-2-2025-10-06", "sora-2-2025-12-08"]
DURATIONS = [4, 8]
PROMPT = "<b>Hills</b> & a $5 kite, a $10 <script>window.owned=1</script> breeze"


def _sweep(log: sw.History) -> sw.Sweep:
    """2 models x 2 durations of the offline preview, small and finished."""
    import sora_widgets as sw
    from sora_widgets.backends.preview import PreviewBackend

    backend = PreviewBackend(media_dir=log.media_dir, queue_s=0.05, scale=0.25)
    return sw.sweep(prompt=PROMPT, image_url=ROOT / "notebooks" / "example.png", model=MODELS,
                    duration=DURATIONS, backend=backend, history=log, wait=True, budget_usd=2)


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


def test_the_sweep_report_plays_every_video_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sweep.report() opened from disk (file://, no server): one playing video per cell, the
    prompt shown as text, not markup, dollar amounts as typed, tables left-aligned, and the
    Reproduce code naming the input image relative to the working folder."""
    import sora_widgets as sw

    _require_chromium()
    monkeypatch.chdir(tmp_path)  # the notebook's folder, beside its run folder
    run = _sweep(sw.History(tmp_path / "runs" / "history.sqlite"))
    assert run.status == {"completed": len(MODELS) * len(DURATIONS)}
    path = run.report(tmp_path / "report.html")
    with _chromium_page("report") as page:
        page.route("http*://**", lambda route: route.abort())  # offline: nothing may be fetched
        page.goto(path.as_uri())
        states = _play_all(page, "video")
        page.evaluate("() => document.querySelectorAll('video').forEach(v => { v.pause(); "
                      "v.currentTime = 1; })")
        page.wait_for_timeout(500)
        page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        grid_text = page.locator("table").first.inner_text()
        body_text = page.locator("body").inner_text()
        code = page.locator("pre code").inner_text()
        injected = page.evaluate("() => [document.querySelectorAll('table b').length, "
                                 "window.owned === undefined]")
        math = page.locator("mjx-container, .MathJax, .katex").count()
        aligned = page.evaluate("() => [...document.querySelectorAll('td, th')]"
                                ".map(c => getComputedStyle(c).textAlign)")

    assert len(states) == len(run.plan.cells) == 4
    assert all(s["error"] is None and s["width"] > 0 and not s["paused"] for s in states), states
    assert sorted(round(s["duration"]) for s in states) == [4, 4, 8, 8], states
    # the report's table of jobs shows the prompt as typed; nothing in it became markup or ran
    assert PROMPT in body_text and injected == [0, True]
    assert all(model in grid_text for model in MODELS)
    assert math == 0 and "free (on fal: $2.40), budget $2.00" in body_text
    assert set(aligned) == {"left"}, set(aligned)
    assert "image_url='runs/media/inputs/" in code and str(tmp_path) not in body_text, code
