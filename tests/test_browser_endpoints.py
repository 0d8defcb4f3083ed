"""The panel's Endpoint picker in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium.

The quickstart is run, its panel (Sora 2, retired) is switched to Kling v2.1 in the "Endpoint"
menu, the controls are rebuilt in place (Kling's own durations, the prompt kept), and the
offline preview's video of the new endpoint plays (artifacts/endpoints-sora-retired.png, endpoints-switched.png, endpoints-kling.png).
"""

from __future__ import annotations

from test_browser import (  # noqa: F401  (lab is a fixture)
    ARTIFACTS,
    PROMPT,
    Lab,
    _chromium_page,
    _open_quickstart,
    _panel,
    _play_video,
    _run_menu,
    lab,
    pytestmark,
)

KLING = "fal-ai/kling-video/v2.1/standard/image-to-video"


def test_switching_the_panels_endpoint_then_generating_plays_the_video(lab: Lab) -> None:
    """Sora 2's panel says it was retired; picking Kling rebuilds the controls, keeps the prompt
    and image, says "active", and Generate makes a 5 s video (Kling's default) that plays."""
    with _chromium_page("endpoints") as page:
        _open_quickstart(page, lab)
        _run_menu(page, "Run All Cells")
        page.locator(".jp-OutputArea-output table.dataframe").first.wait_for()
        panel, generate = _panel(page)
        panel.get_by_text("was retired").first.wait_for()
        retired_text = panel.get_by_text("was retired").first.inner_text()
        widget = panel.locator(".sora-panel").first
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(ARTIFACTS / "endpoints-sora-retired.png"))

        # the quickstart leaves the panel empty: type a prompt and an image before switching
        panel.locator("textarea").first.fill(PROMPT)
        image = panel.get_by_placeholder("https://... or a path on this machine")
        image.fill("example.png")
        image.press("Enter")

        picker = panel.locator(".widget-dropdown").filter(has_text="Endpoint").locator("select")
        assert picker.count() == 1
        picker.select_option(value=KLING)

        panel.get_by_text("Endpoint status: active").first.wait_for()
        durations = panel.locator(".widget-toggle-buttons").filter(
            has=page.get_by_role("button", name="10", exact=True))
        durations.get_by_role("button", name="5", exact=True).wait_for()
        selected = durations.locator("button.mod-active").inner_text().strip()
        page.wait_for_function("b => !b.disabled", arg=generate.element_handle())
        prompt_kept = panel.locator("textarea").first.input_value()
        image_kept = panel.get_by_placeholder("https://... or a path on this machine").input_value()
        retired_after = panel.get_by_text("was retired").count()
        picked = picker.input_value()
        widget.scroll_into_view_if_needed()
        widget.screenshot(path=str(ARTIFACTS / "endpoints-switched.png"))

        if not image_kept:
            panel.get_by_placeholder("https://... or a path on this machine").fill("example.png")
            page.wait_for_function("b => !b.disabled", arg=generate.element_handle())
        generate.click()
        state = _play_video(page, panel, ARTIFACTS / "endpoints-kling.png")
        card_text = panel.inner_text()
        errors = page.locator("[data-mime-type='application/vnd.jupyter.error']").count()

    assert "fal-ai/sora-2/image-to-video was retired on 2026-09-24" in retired_text, retired_text
    assert picked == KLING, picked
    assert retired_after == 0, "the retired banner stayed after the switch"
    assert selected == "5", selected  # Kling's default duration
    assert prompt_kept == PROMPT, prompt_kept
    assert image_kept == "example.png", image_kept
    assert errors == 0, "a notebook cell raised"
    assert state["error"] is None and state["width"] > 0, state
    assert abs(state["duration"] - 5) < 0.5, state
    assert KLING in card_text, card_text
