"""The panel as a user sees it in JupyterLab, checked in Debian's Chromium and kept as screenshots.

One notebook with `sw.Panel()` runs in JupyterLab (no key: the offline preview). Two videos are
generated (the prompt holds dollar amounts), then the checks are made on the page's DOM:
controls left of the result on a wide page (1400 px) and above it on a narrow one (700 px); the
card's poster is an image (a `data:image/` URI that decodes), not the Lab page; no "$" became
math; no label, help line or button is cut; the History tab is a gallery of posters whose
click opens the run's card; and, saved and reopened without the kernel, the summary shows with
no "Error displaying widget" above it. Screenshots: artifacts/panel-wide.png, panel-narrow.png,
card.png, history.png, panel-reopened.png. The set-up (JupyterLab on 127.0.0.1, Chromium) is
test_browser's.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat
import pytest
from test_browser import (
    ARTIFACTS,
    VIDEO_MS,
    Lab,
    _chromium_page,
    _jupyterlab,
    _panel,
    _run_menu,
    _shut_down_kernels,
)

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

NOTEBOOK = "panel.ipynb"
PROMPTS = ("A slow zoom out over green hills at sunrise, a $5 kite and a $6 balloon drift by",
           "Waves roll onto a beach at dusk, the camera pans right")
WIDE, NARROW = 1400, 700
MATH = ".MathJax, .katex, mjx-container, .MathJax_Display"  # what typeset math leaves


def _math(page: Page) -> tuple[int, int]:
    """(math in the markdown control cell, math anywhere else): MathJax runs, but not on us."""
    counts: list[int] = page.evaluate(f"""() => {{
        const all = [...document.querySelectorAll({MATH!r})];
        const control = all.filter(m => m.closest('.jp-MarkdownCell'));
        return [control.length, all.length - control.length];
    }}""")
    return counts[0], counts[1]

# elements cut by their box: text wider than the space it was given (ellipsis, clipping)
CUT = """(root, selector) => [...root.querySelectorAll(selector)]
  .filter(e => e.offsetParent !== null && e.scrollWidth > e.clientWidth + 1)
  .map(e => `${e.className}: ${e.textContent.trim().slice(0, 60)} (${e.scrollWidth} > ${e.clientWidth})`)"""
# what a label, help line or button shows must fit: the selectors of each kind of text
TEXTS = (".sora-field-label, .sora-field-label .widget-html-content, .sora-field-help, "
         ".sora-field-help .widget-html-content, button, .sora-summary, .sora-tile-head, "
         ".sora-grid-colhead, .sora-grid-rowhead")


@pytest.fixture(scope="module")
def panel_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """JupyterLab (no key) serving notebooks/ plus a notebook that shows a Panel."""
    with _jupyterlab(tmp_path_factory.mktemp("panel-lab"), {}) as lab:
        nb = nbformat.v4.new_notebook()
        nb.cells.append(nbformat.v4.new_markdown_cell("A control: MathJax typesets $x^2$ here."))
        nb.cells.append(nbformat.v4.new_code_cell("import sora_widgets as sw\n\npanel = sw.Panel()\npanel"))
        nbformat.write(nb, lab.root / NOTEBOOK)
        yield lab


def _open(page: Page, lab: Lab) -> None:
    """Open the notebook with the file browser folded away (the notebook gets the width)."""
    page.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
    current = page.locator(".jp-SideBar.jp-mod-left .lm-TabBar-tab.lm-mod-current")
    if current.count():
        current.first.click()
        page.locator("#jp-left-stack").wait_for(state="hidden")


def _screenshot(page: Page, element: Locator, name: str, width: int) -> None:
    """A screenshot of `element` alone, the page made tall enough to hold all of it, once
    Chromium's loading spinner over a new video has faded (it lingers a moment after load)."""
    height = max(1000, int(_box(element)["height"]) + 400)
    page.set_viewport_size({"width": width, "height": height})
    page.wait_for_timeout(3000)
    element.scroll_into_view_if_needed()
    element.screenshot(path=str(ARTIFACTS / name))


def _generate(page: Page, panel: Locator, generate: Locator, prompt: str, runs: int) -> Locator:
    """Fill in the prompt (the image stays), click Generate, and return the new card once done."""
    panel.locator("textarea").first.fill(prompt)
    image = panel.get_by_placeholder("https://... or a path on this machine")
    if not image.input_value():
        image.fill("example.png")
    page.wait_for_function("b => !b.disabled", arg=generate.element_handle())
    generate.click()
    cards = panel.locator(".sora-card")
    page.wait_for_function("([el, n]) => el.querySelectorAll('.sora-card').length >= n",
                           arg=[panel.element_handle(), runs])
    card = cards.first
    card.locator(".sora-summary", has_text="completed").wait_for(timeout=VIDEO_MS)
    video = card.locator("video").first
    video.wait_for(state="attached")
    page.wait_for_function("v => v.readyState >= 1", arg=video.element_handle(), timeout=VIDEO_MS)
    return card


def _save(page: Page, path: Path) -> dict[str, Any]:
    """Save the open notebook as a user does (Ctrl+S) and return the file read from disk."""
    before = path.stat().st_mtime_ns
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})  # focus, command mode
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if path.stat().st_mtime_ns != before:
            try:  # the server may still be writing it
                saved: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
                return saved
            except json.JSONDecodeError:
                pass
        time.sleep(0.2)
    raise AssertionError("the notebook was not saved")


def _poster(page: Page, video: Locator) -> dict[str, Any]:
    """The video's poster attribute and what it decodes to (an image, or an error)."""
    state: dict[str, Any] = video.evaluate("""async v => {
        const poster = v.getAttribute('poster') || '';
        const img = new Image();
        img.src = poster;
        try { await img.decode(); } catch (e) { return {poster, error: String(e)}; }
        return {poster, width: img.naturalWidth, height: img.naturalHeight};
    }""")
    return state


def _box(locator: Locator) -> dict[str, float]:
    box = locator.bounding_box()
    assert box is not None, "not on the page"
    return box


def _cut(root: Locator) -> list[str]:
    found: list[str] = root.evaluate(CUT, TEXTS)
    return found


def _open_section(card: Locator, title: str) -> None:
    """Unfold a card's accordion section."""
    card.locator(".lm-AccordionPanel-title, .jupyter-widget-Collapse-header, .p-Collapse-header",
                 has_text=title).first.click()


def test_panel_layout_card_gallery_and_reopen_as_a_user_sees_them(panel_lab: Lab) -> None:
    lab = panel_lab
    with _chromium_page("panel") as page:
        page.set_viewport_size({"width": WIDE, "height": 1000})
        _open(page, lab)
        _run_menu(page, "Run All Cells")
        panel, generate = _panel(page)
        widget = panel.locator(".sora-panel").first
        labels = widget.locator(".sora-field-label").all_inner_texts()
        help_lines = widget.locator(".sora-field-help").all_inner_texts()
        _generate(page, widget, generate, PROMPTS[1], runs=1)
        card = _generate(page, widget, generate, PROMPTS[0], runs=2)

        # wide: the form on the left, the newest result on the right, top-aligned
        form, results = _box(widget.locator(".sora-form")), _box(widget.locator(".sora-results"))
        wide_cut = _cut(widget)
        card_box = _box(card)
        _screenshot(page, widget, "panel-wide.png", WIDE)
        video = card.locator("video").first
        poster = _poster(page, video)
        summary = card.locator(".sora-summary").inner_text()
        prompt = card.locator(".sora-prompt").inner_text()
        live_summary = panel.locator(".sora-panel-summary")
        live_summary.filter(has_text="completed").first.wait_for(state="attached")
        summaries, live_summary_visible = live_summary.count(), live_summary.first.is_visible()
        page.locator(".jp-MarkdownCell mjx-container").first.wait_for()
        math_live = _math(page)

        # the finished card, its actions unfolded: rating buttons whole
        _open_section(card, "Actions, parameters and log")
        card.locator(".sora-rating button").first.wait_for()
        rating_cut = _cut(card)
        rating_widths = card.locator(".sora-rating button").evaluate_all(
            "bs => bs.map(b => [b.textContent, b.scrollWidth, b.clientWidth])")
        _screenshot(page, card, "card.png", WIDE)

        # narrow: the same panel reflows, the result under the form
        page.set_viewport_size({"width": NARROW, "height": 1000})
        page.wait_for_timeout(800)
        narrow_form, narrow_results = (_box(widget.locator(".sora-form")),
                                       _box(widget.locator(".sora-results")))
        narrow_cut = _cut(widget)
        _screenshot(page, widget, "panel-narrow.png", NARROW)
        page.set_viewport_size({"width": WIDE, "height": 1000})
        page.wait_for_timeout(500)

        # the History tab: a gallery of posters; a click opens the run's card
        widget.locator(".lm-TabBar-tab, .p-TabBar-tab", has_text="History").first.click()
        tiles = widget.locator(".sora-tile")
        tiles.nth(1).wait_for()
        tile_count = tiles.count()
        tile_images = widget.locator(".sora-tile img").evaluate_all(
            "imgs => Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth, () => 0)))")
        tiles.nth(1).click()  # the older run
        history = widget.locator(".sora-history-view")
        opened = history.locator(".sora-run-view .sora-summary", has_text="completed")
        opened.wait_for()
        opened_text = opened.inner_text()
        history_video = history.locator(".sora-run-view video").first
        page.wait_for_function("v => v.readyState >= 1 && v.networkState !== v.NETWORK_LOADING",
                               arg=history_video.element_handle())
        history_poster = _poster(page, history_video)
        gallery_cut = _cut(history)
        _screenshot(page, history, "history.png", WIDE)

        # saved, the kernel gone, reopened: the summary, and no widget error above it
        saved = _save(page, lab.root / NOTEBOOK)
        _shut_down_kernels(lab)
        reopened = page.context.new_page()
        reopened.set_viewport_size({"width": WIDE, "height": 1000})
        reopened.goto(f"{lab.url}/lab/tree/{NOTEBOOK}?token={lab.token}")
        cell = reopened.locator(".jp-Cell").filter(has=reopened.locator(".sora-panel-summary"))
        summary_view = cell.locator(".sora-panel-summary")
        summary_view.filter(has_text=PROMPTS[0][:20]).wait_for()  # visible
        reopened.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
        cell.get_by_text("Loading widget...").wait_for(state="detached")
        reopened.wait_for_timeout(500)
        errors_visible = [e.is_visible() for e in cell.get_by_text("Error displaying widget").all()]
        errors_attached = cell.get_by_text("Error displaying widget").count()
        reopened_summaries = summary_view.count()
        reopened_poster = _poster(reopened, summary_view.locator("video").first)
        reopened.locator(".jp-MarkdownCell mjx-container").first.wait_for()
        math_reopened = _math(reopened)
        _screenshot(reopened, cell, "panel-reopened.png", WIDE)

    # layout: side by side when wide, stacked when narrow
    assert form["x"] + form["width"] <= results["x"] + 1, (form, results)
    assert abs(form["y"] - results["y"]) < 40, (form, results)
    assert card_box["x"] >= results["x"] - 1
    assert narrow_results["y"] >= narrow_form["y"] + narrow_form["height"] - 1, (narrow_form, narrow_results)
    assert abs(narrow_results["x"] - narrow_form["x"]) < 20
    # labels as words, help text whole
    assert "Image URL *" in labels and "Detect and block IP" in labels, labels
    assert all(not h.rstrip().endswith(("...", "…")) for h in help_lines), help_lines
    assert not wide_cut and not narrow_cut and not rating_cut and not gallery_cut, \
        (wide_cut, narrow_cut, rating_cut, gallery_cut)
    assert [text for text, _, _ in rating_widths] == ["1", "2", "3", "4", "5"], rating_widths
    # the card: the poster is an image, the summary one line of facts, no "$" as math
    assert poster["poster"].startswith("data:image/") and poster.get("width", 0) > 0, poster
    for part in ("completed", "sora-2", "4 s video", "took", "$0.00"):
        assert part in summary, summary
    assert "$5 kite and a $6 balloon" in prompt, prompt
    assert math_live[0] > 0 and math_reopened[0] > 0, "MathJax did not run: the check means nothing"
    assert math_live[1] == 0 and math_reopened[1] == 0, "a dollar amount was typeset as math"
    assert summaries == 1 and not live_summary_visible, "one summary, hidden under the live view"
    # the gallery
    assert tile_count == 2 and len(tile_images) == 2 and all(w > 0 for w in tile_images), tile_images
    assert PROMPTS[1][:20] in opened_text or "#1" in opened_text, opened_text
    assert history_poster["poster"].startswith("data:image/") and history_poster.get("width", 0) > 0
    # reopened without the kernel
    kinds = [next(iter(o.get("data", {})), o["output_type"]) for o in _panel_cell(saved)["outputs"]]
    assert kinds == ["application/vnd.jupyter.widget-view+json", "text/html"], kinds
    assert errors_attached >= 1 and not any(errors_visible), \
        "the widget's error should be on the page (no kernel) but hidden by the summary's CSS"
    assert reopened_summaries == 1
    assert reopened_poster["poster"].startswith("data:image/") and reopened_poster.get("width", 0) > 0


def _panel_cell(notebook: dict[str, Any]) -> dict[str, Any]:
    cell: dict[str, Any] = next(c for c in notebook["cells"]
                                if c["cell_type"] == "code" and "sw.Panel()" in "".join(c["source"]))
    return cell
