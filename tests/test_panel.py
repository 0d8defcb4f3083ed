"""The Panel in Python: controls from schemas, arguments both ways, validation, cost, jobs, cards."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import ipywidgets as widgets
import pytest
from PIL import Image

import sora_widgets as sw
from sora_widgets.backends.preview import PreviewBackend
from sora_widgets.history import History
from sora_widgets.widgets.panel import OFFLINE, Panel

SENTINEL = "fal-key-SENTINEL-0123456789abcdef"

UNSEEN = {
    "openapi": "3.0.4",
    "info": {"title": "Wobble", "x-fal-metadata": {"endpointId": "acme/wobble/v2"}},
    "paths": {"/acme/wobble/v2": {"post": {"requestBody": {"content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/WobbleInput"}}}}}}},
    "components": {"schemas": {"WobbleInput": {
        "type": "object",
        "x-fal-order-properties": ["text", "reference_image_url", "steps", "strength", "style",
                                   "loop", "palette"],
        "required": ["text", "reference_image_url"],
        "properties": {
            "text": {"type": "string", "maxLength": 800, "description": "What wobbles"},
            "reference_image_url": {"type": "string", "description": "Start frame"},
            "steps": {"type": "integer", "minimum": 1, "maximum": 64, "default": 16},
            "strength": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.5},
            "style": {"enum": ["calm", "jelly", "earthquake", "cartoon", "noir"], "type": "string",
                      "default": "jelly"},
            "loop": {"type": "boolean", "default": False},
            "palette": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 2},
        },
    }}},
}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "first.png"
    Image.new("RGB", (64, 48), (200, 40, 40)).save(path)
    return path


def make_panel(tmp_path: Path, **kwargs) -> Panel:
    return sw.Panel(backend="preview", history=History(tmp_path / "runs"), **kwargs)


def test_controls_follow_the_bundled_schema(tmp_path):
    panel = make_panel(tmp_path)
    schema = sw.load_schema()
    assert list(panel.controls) == schema.names
    fold = next(w for w in panel.fields_box.children if isinstance(w, widgets.Accordion))
    assert fold.titles == ("Advanced",)
    assert [c.field.name for c in fold.children[0].children] == [
        "delete_video", "detect_and_block_ip", "character_ids"]
    assert panel.arguments == schema.defaults()


def test_setting_controls_sets_arguments(tmp_path, image):
    panel = make_panel(tmp_path)
    panel.controls["prompt"].value = "a slow pan"
    panel.controls["image_url"].value = str(image)
    panel.controls["duration"].editor.value = "8"
    panel.controls["character_ids"].editor.value = ["alice"]
    args = panel.arguments
    assert args["prompt"] == "a slow pan" and args["image_url"] == str(image)
    assert args["duration"] == 8 and args["character_ids"] == ["alice"]
    assert panel.valid and not panel.generate_button.disabled


def test_setting_arguments_sets_controls(tmp_path):
    panel = make_panel(tmp_path)
    panel.arguments = {"prompt": "waves", "image_url": "https://example.com/x.png",
                       "model": "sora-2-2025-10-06", "delete_video": False}
    assert panel.controls["model"].editor.value == "sora-2-2025-10-06"
    assert panel.controls["delete_video"].editor.value is False
    assert panel.controls["duration"].value == 4  # unnamed fields go back to their default
    assert panel.controls["character_ids"].value is None
    assert "sora-2-2025-10-06" in panel.banner.value
    with pytest.raises(sw.ValidationError, match="did you mean"):
        panel.arguments = {"promt": "x"}
    with pytest.raises(sw.ValidationError, match="duration"):
        panel.arguments = {"duration": 7}


def test_arguments_a_control_cannot_hold_are_named_by_field(tmp_path):
    panel = make_panel(tmp_path, schema=sw.EndpointSchema.from_openapi(UNSEEN))
    with pytest.raises(sw.ValidationError) as caught:
        panel.arguments = {"text": "x", "steps": "many", "strength": 5}
    assert caught.value.errors == [("steps", "must be a number, got 'many'"),
                                   ("strength", "must be within the slider's range 0 to 1, got 5")]
    assert caught.value.endpoint_id == "acme/wobble/v2"


def test_an_endpoint_whose_default_its_control_cannot_hold_is_refused_and_the_panel_stays(tmp_path):
    import copy

    document = copy.deepcopy(UNSEEN)
    document["components"]["schemas"]["WobbleInput"]["properties"]["style"]["default"] = "wobbly"
    broken = sw.EndpointSchema.from_openapi(document)
    with pytest.raises(sw.ValidationError, match="style: must be one of calm") as caught:
        make_panel(tmp_path, schema=broken)
    assert caught.value.endpoint_id == "acme/wobble/v2" and caught.value.fields == ["style"]
    panel = make_panel(tmp_path)
    with pytest.raises(sw.ValidationError, match="style"):
        panel.endpoint = broken
    assert panel.endpoint == "fal-ai/sora-2/image-to-video" and "prompt" in panel.controls
    assert panel.picker.value == "fal-ai/sora-2/image-to-video"


def test_unseen_endpoint_builds_matching_controls(tmp_path):
    schema = sw.EndpointSchema.from_openapi(UNSEEN)
    panel = make_panel(tmp_path, schema=schema)
    c = panel.controls
    assert list(c) == ["text", "reference_image_url", "steps", "strength", "style", "loop", "palette"]
    assert isinstance(c["text"].editor, widgets.Textarea)
    assert type(c["reference_image_url"].editor).__name__ == "ImageInput"
    assert (c["steps"].editor.min, c["steps"].editor.max, c["steps"].value) == (1, 64, 16)
    assert isinstance(c["strength"].editor, widgets.FloatSlider)
    assert c["style"].editor.options == ("calm", "jelly", "earthquake", "cartoon", "noir")
    assert isinstance(c["palette"].editor, widgets.SelectMultiple)
    panel.arguments = {"text": "jelly cube", "reference_image_url": "https://example.com/a.png",
                       "palette": ["red"]}
    assert panel.valid
    assert "unknown" in panel.cost.value  # no published price for an endpoint it has never seen
    c["palette"].value = ["red", "green", "blue"]
    assert panel.generate_button.disabled and "at most 2" in c["palette"].message


def test_invalid_input_disables_generate_and_shows_the_message_by_the_field(tmp_path, image):
    panel = make_panel(tmp_path)
    assert panel.generate_button.disabled
    assert panel.controls["prompt"].message == ""  # untouched and empty: no red yet
    assert "Prompt" in panel.status_line.value
    panel.arguments = {"prompt": "x" * 5001, "image_url": str(image)}
    assert panel.generate_button.disabled and not panel.valid
    assert "at most 5000 characters" in panel.controls["prompt"].message
    assert "at most 5000" in panel.controls["prompt"]._message.value
    panel.controls["prompt"].value = "fine"
    assert not panel.generate_button.disabled and panel.controls["prompt"].message == ""
    panel.controls["image_url"].value = str(image.with_name("gone.png"))
    assert panel.generate_button.disabled
    assert "no image file" in panel.controls["image_url"]._message.value


def no_bare_dollar(text: str) -> bool:
    """Every "$" in its own element: MathJax pairs dollars within one run of text only (`&#36;`
    is a "$" again once parsed, so it does not stop it)."""
    return "$" not in text.replace("<span>$</span>", "")


def test_cost_follows_duration(tmp_path):
    panel = make_panel(tmp_path)
    assert "<span>$</span>0.40" in panel.cost.value and no_bare_dollar(panel.cost.value)
    assert panel.cost_usd == pytest.approx(0.4)
    panel.controls["duration"].value = 12
    assert "<span>$</span>1.20" in panel.cost.value and panel.cost_usd == pytest.approx(1.2)


def test_a_price_set_in_this_process_is_not_called_fals(tmp_path):
    from sora_widgets.pricing import reset_prices, set_price

    assert "fal's price (bundled table, as of" in make_panel(tmp_path).cost.value
    set_price("fal-ai/sora-2/image-to-video", 0.25)
    try:
        cost = make_panel(tmp_path).cost.value
    finally:
        reset_prices()
    assert "your price (set_price, as of 20" in cost and "fal's price" not in cost


def test_banner_says_offline_in_plain_words(tmp_path):
    panel = sw.Panel(history=History(tmp_path / "runs"))
    assert OFFLINE in panel.banner.value
    assert "fal-ai/sora-2/image-to-video" in panel.banner.value and "sora-2" in panel.banner.value


def test_generate_with_preview_ends_with_a_playable_video(tmp_path, image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    panel = sw.Panel(backend="preview", history=History(tmp_path))
    panel.arguments = {"prompt": "a red box drifts", "image_url": str(image)}
    panel.generate_button.click()
    assert len(panel.jobs) == 1 and panel.cards_box.children == (panel.cards[0],)
    job = panel.jobs[0]
    gen = job.result(timeout=60)
    card = panel.cards[0]
    assert gen.ok and card.status == "completed" and card.bar.status == "completed"
    assert "<video" in card.video_html
    src = card.video_html.split("<video src='", 1)[1].split("'", 1)[0]
    assert not Path(src).is_absolute() and Path(src).is_file()
    assert card.video.outputs[0]["data"]["text/html"] == card.video_html
    assert "video/mp4;base64" not in card.video_html  # linked, not embedded
    # the poster is a few-kB image in the page: Lab would not resolve a relative one
    poster = card.video_html.split(" poster='", 1)[1].split("'", 1)[0]
    assert poster.startswith("data:image/jpeg;base64,") and len(poster) < 12_000
    assert card.live.layout.display == "none"  # the live part (bar, Cancel) gives way
    assert f" poster='{poster}'" in gen.html()  # the same poster where a Generation shows itself
    assert "request id" in card.facts.value and "cost" in card.facts.value


def test_embed_videos_puts_the_bytes_in(tmp_path, image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    panel = sw.Panel(backend="preview", history=History(tmp_path), embed_videos=True)
    panel.arguments = {"prompt": "embedded", "image_url": str(image)}
    panel.generate().result(timeout=60)
    assert "src='data:video/mp4;base64," in panel.cards[0].video_html


def test_several_jobs_run_at_once(tmp_path, image):
    panel = make_panel(tmp_path)
    panel.arguments = {"prompt": "one", "image_url": str(image)}
    first = panel.generate()
    panel.controls["prompt"].value = "two"
    second = panel.generate()
    assert first.result(timeout=60).ok and second.result(timeout=60).ok
    assert [c.job for c in panel.cards] == [second, first]


def test_cancel_button_cancels_the_job(tmp_path, image):
    backend = PreviewBackend(media_dir=tmp_path / "runs" / "media", queue_s=30)
    panel = sw.Panel(backend=backend, history=History(tmp_path / "runs"))
    panel.arguments = {"prompt": "never made", "image_url": str(image)}
    job = panel.generate()
    card = panel.cards[0]
    card._cancel()  # what the Cancel button runs on its helper thread
    with pytest.raises(sw.GenerationError):
        job.result(timeout=30)
    assert card.status == "cancelled" and "Cancelled" in card.error.value
    assert panel.history.get(job.history_id)["status"].value == "cancelled"


def test_failed_request_is_explained_on_the_status_line(tmp_path):
    panel = make_panel(tmp_path)
    panel.generate_button.click()  # invalid: nothing is sent, no card
    assert panel.jobs == [] and "prompt" in panel.status_line.value


def test_card_actions_load_rate_and_note(tmp_path, image):
    panel = make_panel(tmp_path)
    panel.arguments = {"prompt": "<b>bold</b> move", "image_url": str(image), "duration": 8}
    job = panel.generate()
    job.result(timeout=60)
    card = panel.cards[0]
    panel.arguments = {"prompt": "something else", "image_url": str(image)}
    assert card.actions.children[0] is card.load_button
    card.load_button.click()
    assert panel.controls["prompt"].value == "<b>bold</b> move" and panel.controls["duration"].value == 8
    card.rating.value = 5
    card.notes.value = "keeper"
    row = panel.history.get(job.history_id)
    assert row["rating"] == 5 and row["notes"] == "keeper"
    card.code_button.click()
    assert card.code_box.layout.display is None and len(card.code_box.children) == 4


def test_copy_as_code_reproduces_the_request(tmp_path, image):
    panel = make_panel(tmp_path)
    panel.arguments = {"prompt": "code me", "image_url": "https://example.com/a.png", "duration": 8}
    panel.generate().result(timeout=60)
    code = panel.cards[0].code
    compile(code["sora_widgets"], "sw", "exec")
    compile(code["fal_client"], "fal", "exec")
    assert "sw.generate(" in code["sora_widgets"] and "'duration': 8" in code["sora_widgets"]
    assert "fal_client.subscribe(" in code["fal_client"]
    assert "'fal-ai/sora-2/image-to-video'" in code["fal_client"]


def test_no_key_anywhere(tmp_path, image, monkeypatch):
    monkeypatch.setenv("FAL_KEY", SENTINEL)
    monkeypatch.chdir(tmp_path)
    auto = sw.Panel(history=History(tmp_path))
    assert "fal.ai — key from FAL_KEY" in auto.banner.value
    panel = sw.Panel(backend="preview", history=History(tmp_path))
    assert "your fal key is not used" in panel.banner.value
    panel.arguments = {"prompt": "secret?", "image_url": str(image)}
    panel.generate().result(timeout=60)
    card = panel.cards[0]
    card.code_button.click()
    texts = [repr(panel), repr(auto), repr(card), auto.banner.value, panel.banner.value,
             str(panel._repr_mimebundle_()), str(auto._repr_mimebundle_()), card.static_html(),
             card.facts.value, card.video_html, *card.code.values(),
             *(getattr(w, "value", "") for w in card.code_box.children),
             *(getattr(w, "text", "") for w in card.code_box.children)]
    assert all(SENTINEL not in str(text) for text in texts)


def test_saved_notebook_summary_escapes_the_latest_prompt(tmp_path, image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    panel = sw.Panel(backend="preview", history=History(tmp_path))
    assert "No runs yet" in panel.summary_html()
    panel.arguments = {"prompt": "<script>alert('x')</script> waves", "image_url": str(image)}
    panel.generate().result(timeout=60)
    page = panel.summary_html()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; waves" in page
    assert "<script>" not in page and "<video src='media/videos/" in page
    assert "poster='data:image/jpeg;base64," in page
    assert len(page) < 16_000  # the poster is most of it
    reopened = sw.Panel(backend="preview", history=History(tmp_path))  # a fresh panel: from history
    assert "&lt;script&gt;" in reopened.summary_html()


def test_display_shows_the_view_then_a_summary_that_follows_every_job(tmp_path, image,
                                                                      monkeypatch):
    """The summary is its own output under the live view: a job's start and end update it (by
    display id, from the job loop's thread too), and the view itself is never sent again."""
    from sora_widgets.widgets import panel_summary

    shown: list[tuple[dict, dict]] = []
    monkeypatch.setattr(panel_summary, "display", lambda obj, **kw: shown.append((obj, kw)))
    monkeypatch.chdir(tmp_path)
    panel = sw.Panel(backend="preview", history=History(tmp_path))
    panel._ipython_display_()
    view, summary = shown
    assert set(view[0]) == {"application/vnd.jupyter.widget-view+json", "text/plain"}
    assert view[0]["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    assert "No runs yet" in summary[0]["text/html"]
    assert summary[1] == {"raw": True, "display_id": f"sora-panel-{panel.model_id}"}
    assert f"sora-panel-{panel.model_id}" in panel._dom_classes  # what the summary's CSS keys on

    panel.arguments = {"prompt": "hills at dawn", "image_url": str(image)}
    panel.generate().result(timeout=60)
    deadline = time.monotonic() + 10
    while "completed" not in shown[-1][0]["text/html"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the final update comes from the job loop's thread
    updates = shown[2:]
    assert all(kw == {**summary[1], "update": True} for _, kw in updates)
    assert "hills at dawn" in updates[0][0]["text/html"]  # on submit
    assert "completed" in updates[-1][0]["text/html"] and "<video" in updates[-1][0]["text/html"]
    assert not any("application/vnd.jupyter.widget-view+json" in obj for obj, _ in updates)


def test_summary_updates_are_sent_as_replies_to_the_cell_that_showed_the_panel(tmp_path,
                                                                              monkeypatch):
    """ipykernel parents a message from another thread to the latest request; each update is
    parented to the displaying cell's request instead (set_thread_parent), then reset."""
    from types import SimpleNamespace

    from sora_widgets.widgets import panel_summary

    calls: list[tuple[str, object]] = []

    class Publisher:
        def __init__(self):
            self.parent_header = {"msg_id": "cell-1", "msg_type": "execute_request"}

        def set_thread_parent(self, parent):
            calls.append(("set", parent["msg_id"]))
            return "token"

        def reset_thread_parent(self, token):
            calls.append(("reset", token))

    shell = SimpleNamespace(display_pub=Publisher())
    monkeypatch.setattr(panel_summary, "get_ipython", lambda: shell)
    monkeypatch.setattr(panel_summary, "display",
                        lambda obj, **kw: calls.append(("display", kw.get("update", False))))
    panel = sw.Panel(backend="preview", history=History(tmp_path))
    panel._ipython_display_()
    shell.display_pub.parent_header = {"msg_id": "cell-9", "msg_type": "execute_request"}
    calls.clear()
    panel._update_summary()
    assert calls == [("set", "cell-1"), ("display", True), ("reset", "token")]


def test_summary_css_hides_it_only_beside_its_own_live_view(tmp_path):
    panel = sw.Panel(backend="preview", history=History(tmp_path))
    page = panel.summary_html()
    live, key = f"sora-panel-{panel.model_id}", f"sora-panel-summary-{panel.model_id}"
    assert f"<div class='sora-panel-summary {key}'><style>body:has(.{live}) .{key}, " in page


def test_import_stays_light_and_heavy_parts_load_on_first_use():
    """Speed itself is measured in bench/; this checks what makes it fast: lazy imports."""
    code = ("import sys, sora_widgets as sw; "
            "heavy = ['ipywidgets', 'pandas', 'av', 'numpy', 'PIL', 'fal_client', 'httpx']; "
            "print(sorted(m for m in heavy if m in sys.modules)); sw.Panel(); "
            "print('ipywidgets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"]


def test_loading_a_past_run_switches_the_panel_to_the_endpoint_it_ran_on(tmp_path, image):
    kling = "fal-ai/kling-video/v2.1/standard/image-to-video"
    panel = make_panel(tmp_path)
    past = sw.generate(endpoint=kling, prompt="hills", image_url=image, duration=10,
                       backend="preview", history=panel.history, timeout=120)
    panel.tabs.selected_index = 1
    view = panel.history_view
    assert "kling-video/v2.1/standard" in dict((v, k) for k, v in view.rows.options)[past.history_id]
    view.rows.value = past.history_id
    view.load_button.click()
    assert panel.endpoint == kling and panel.picker.value == kling
    assert panel.controls["duration"].value == "10" and panel.controls["prompt"].value == "hills"


def test_the_picker_and_the_endpoint_setter_rebuild_the_controls_keeping_shared_values(tmp_path):
    import json

    from test_any_endpoint import ENDPOINT as UNSEEN
    from test_any_endpoint import unseen_document

    panel = make_panel(tmp_path)
    panel.arguments = {"prompt": "hills at dawn", "image_url": "https://e.com/a.png", "duration": 12}
    kling = "fal-ai/kling-video/v2.1/standard/image-to-video"
    assert kling in [value for _, value in panel.picker.options]
    panel.picker.value = kling  # as a click in the menu does
    assert panel.endpoint == kling and "model" not in panel.controls
    assert panel.arguments["prompt"] == "hills at dawn" and panel.arguments["image_url"] == "https://e.com/a.png"
    assert panel.arguments["duration"] == "5"  # 12 is not Kling's: its own default stays
    assert "Endpoint status: <b>active</b>" in panel.status_banner.value and panel.valid
    document = tmp_path / "unseen.json"
    document.write_text(json.dumps(unseen_document()))
    panel.endpoint = document  # a path to a document, as the "Load" box takes
    assert panel.endpoint == UNSEEN and panel.picker.value == UNSEEN
    assert panel.controls["start_image_url"].value == "https://e.com/a.png"  # by its alias
    panel.endpoint = sw.load_schema()  # an EndpointSchema
    assert panel.endpoint == "fal-ai/sora-2/image-to-video" and "was retired" in panel.status_banner.value
    panel.other_endpoint.value = "acme/typo-endpoint"
    panel.other_button.click()  # not bundled, and fal (the fake) has no document: said, not raised
    assert panel.endpoint == "fal-ai/sora-2/image-to-video" and "No bundled schema" in panel.status_line.value


def test_generate_tab_puts_the_form_left_of_the_results_and_wraps(tmp_path):
    """Side by side on a wide cell, stacked on a narrow one: flex wrapping, no width in Python."""
    panel = make_panel(tmp_path)
    workspace = panel.tabs.children[0]
    form, results = workspace.children
    assert workspace.layout.flex_flow == "row wrap"
    assert "sora-form" in form._dom_classes and "sora-results" in results._dom_classes
    assert form.children[0] is panel.fields_box and panel.cards_box in results.children
    assert form.layout.min_width and results.layout.min_width and form.layout.flex.startswith("1 1")
    assert panel.no_results.layout.display is None


def test_card_leads_with_the_video_and_a_one_line_summary(tmp_path, image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    panel = sw.Panel(backend="preview", history=History(tmp_path))
    panel.arguments = {"prompt": "a red box drifts", "image_url": str(image), "duration": 8}
    panel.generate().result(timeout=60)
    card = panel.cards[0]
    shown = [c for c in card.children if c.layout.display != "none"]
    assert shown[:3] == [card.video, card.summary, card.error] and shown[3] is card.details
    summary = card.summary.value
    for part in ("#1", "completed", "sora-2", "8 s video", "took ", "<span>$</span>0.00",
                 "a red box drifts"):
        assert part in summary, part
    assert card.details.titles == ("Actions, parameters and log",)
    assert card.details.selected_index is None  # folded
    assert [card.actions, card.code_box, card.facts, card.log_lines] == list(card.details.children[0].children)
    assert "Log (" in card.log_lines.value and "Preview render" in card.log_lines.value
    assert card.load_button in card.actions.children and card.rating in card.actions.children
    assert card.rating.style.button_width == "36px"  # wide enough for its digit ("1‥" before)
    assert panel.no_results.layout.display == "none"
    for text in (card.summary.value, card.facts.value, card.static_html(), panel.summary_html(),
                 panel.jobs[0].generation.html()):
        assert no_bare_dollar(text)
    assert "text-align:left" in card.facts.value


def test_saved_summary_hides_the_widget_error_when_the_live_view_is_gone(tmp_path):
    """Reopened without a kernel, the widget's output says "Error displaying widget: model not
    found"; the summary's CSS hides that output (the one just before it) until the view is back."""
    panel = sw.Panel(backend="preview", history=History(tmp_path))
    page = panel.summary_html()
    live, key = f"sora-panel-{panel.model_id}", f"sora-panel-summary-{panel.model_id}"
    assert (f"body:not(:has(.{live})) .jp-OutputArea-child:has(+ .jp-OutputArea-child .{key}) "
            "{display: none}") in page


def test_copy_as_code_names_local_files_relative_to_the_working_folder(tmp_path, image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    panel = sw.Panel(backend="preview", history=History(tmp_path / "sora_runs"))
    panel.arguments = {"prompt": "code me", "image_url": str(image)}
    panel.generate().result(timeout=60)
    code = panel.cards[0].code
    assert str(tmp_path) not in code["sora_widgets"] + code["fal_client"]
    assert "'image_url': 'sora_runs/media/inputs/" in code["sora_widgets"]  # the kept copy
    assert "image_url = fal_client.upload_file('sora_runs/media/inputs/" in code["fal_client"]
    assert str(tmp_path) not in panel.cards[0].facts.value


def test_labels_read_as_words_with_acronyms(tmp_path):
    panel = make_panel(tmp_path)
    assert panel.controls["image_url"].label == "Image URL"
    assert panel.controls["detect_and_block_ip"].label == "Detect and block IP"
    assert "Image URL" in panel.status_line.value  # what is still to fill in, by its label


def test_the_previews_label_sits_at_the_top_of_the_frame(tmp_path):
    """The browser draws its video controls over the bottom of a paused frame: the "PREVIEW"
    stamp goes at the top, where it stays visible."""
    import numpy as np
    from PIL import Image

    from sora_widgets.backends._render import render_preview

    source = tmp_path / "white.png"
    Image.new("RGB", (320, 180), (255, 255, 255)).save(source)
    out = render_preview({"prompt": "still", "image_url": str(source), "duration": 1},
                         "fal-ai/sora-2/image-to-video", tmp_path, "stamp", fps=4, scale=0.5)
    frame = np.asarray(Image.open(tmp_path / out["thumbnail"]["file_name"]).convert("L"), float)
    top, bottom = frame[: frame.shape[0] // 8], frame[-frame.shape[0] // 8:]
    assert top.mean() < bottom.mean() - 20  # the dark label is in the top eighth
    assert bottom.min() > 200  # and nothing of it at the bottom
