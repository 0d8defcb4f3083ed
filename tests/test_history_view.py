"""The History tab: a page at a time, filters by text, model and status, selection and loading."""

from __future__ import annotations

import pytest

import sora_widgets as sw
from sora_widgets.history import History
from sora_widgets.records import JobStatus
from sora_widgets.widgets.history_view import HistoryView, record_html, row_label

ENDPOINT = "fal-ai/sora-2/image-to-video"
MODELS = ("sora-2", "sora-2-2025-12-08", "sora-2-2025-10-06")


def fill(history: History, n: int) -> list[int]:
    """`n` runs: models in turn, every third failed, prompts numbered (the 7th has markup)."""
    ids = []
    for i in range(n):
        prompt = f"<script>x</script> scene {i}" if i == 7 else f"scene {i} of a fox"
        run = history.start(ENDPOINT, "preview", {"prompt": prompt, "image_url": "https://e.x/a.png",
                                                  "duration": 4, "model": MODELS[i % 3]})
        if i % 3 == 2:
            history.finish(run, status=JobStatus.FAILED, error_type="content_policy",
                           error_message="the prompt was flagged")
        else:
            history.finish(run, status=JobStatus.COMPLETED, video_url=f"https://e.x/{i}.mp4")
        ids.append(run)
    return ids


@pytest.fixture
def history(tmp_path) -> History:
    return History(tmp_path)


def test_pages_read_only_one_page(history, monkeypatch):
    fill(history, 45)
    calls = []
    find = history.find
    monkeypatch.setattr(history, "find", lambda **kw: calls.append(kw) or find(**kw))
    view = HistoryView(history, models=MODELS, page_size=10)
    view.refresh()
    assert view.total == 45 and view.pages == 5 and calls[-1]["limit"] == 10
    assert len(view.rows.options) == 10 and view.rows.options[0][1] == 45  # newest first
    assert "page 1 of 5" in view.page_label.value and view.prev_button.disabled
    view.next_button.click()
    assert view.page == 1 and view.rows.options[0][1] == 35 and calls[-1]["offset"] == 10
    for _ in range(6):
        view.next_button.click()
    assert view.page == 4 and len(view.rows.options) == 5 and view.next_button.disabled
    view.prev_button.click()
    assert view.page == 3


def test_filters_by_text_model_and_status(history):
    fill(history, 30)
    view = HistoryView(history, models=MODELS, page_size=50)
    view.refresh()
    view.status.value = "failed"
    assert view.total == 10
    assert all("failed" in label for label, _ in view.rows.options)
    view.status.value = "any"
    view.model.value = "sora-2-2025-10-06"
    assert view.total == 10
    view.text.value = "scene 11"
    assert view.total == 1 and view.rows.options[0][1] == 12
    view.model.value = ""
    view.text.value = "fox"
    assert view.total == 29  # the run with markup has no fox


def test_filter_change_goes_back_to_the_first_page(history):
    fill(history, 25)
    view = HistoryView(history, page_size=10)
    view.refresh()
    view.next_button.click()
    view.text.value = "fox"
    assert view.page == 0


def test_selecting_a_row_shows_its_video_and_loads_it(history):
    ids = fill(history, 9)
    loaded = []
    view = HistoryView(history, on_load=lambda arguments, endpoint: loaded.append((arguments, endpoint)))
    view.refresh()
    assert view.load_button.disabled
    view.rows.value = ids[0]
    assert "<video src='https://e.x/0.mp4'" in view.detail_html
    assert view.detail.outputs[0]["data"]["text/html"] == view.detail_html
    view.load_button.click()
    arguments, endpoint = loaded[0]
    assert arguments["prompt"] == "scene 0 of a fox" and arguments["model"] == "sora-2"
    assert endpoint == history.get(ids[0])["endpoint_id"]
    view.rows.value = ids[2]
    assert "<video" not in view.detail_html
    assert "Refused by the content filter: the prompt was flagged" in view.detail_html


def test_prompts_are_escaped(history):
    ids = fill(history, 8)
    view = HistoryView(history)
    view.refresh()
    view.rows.value = ids[7]
    assert "&lt;script&gt;x&lt;/script&gt;" in view.detail_html and "<script>" not in view.detail_html
    assert "<script>" not in record_html(history.get(ids[7]))
    assert row_label(history.get(ids[7])).startswith("#8 · completed · sora-2 · sora-2-2025-12-08 · 4")


def test_panel_history_tab_loads_into_controls(tmp_path):
    history = History(tmp_path)
    ids = fill(history, 3)
    panel = sw.Panel(backend="preview", history=history)
    assert panel._history_view is None  # built on first use
    panel.tabs.selected_index = 1
    view = panel.history_view
    assert panel._history_box.children == (view,) and view.total == 3
    view.rows.value = ids[1]
    view.load_button.click()
    assert panel.tabs.selected_index == 0
    assert panel.controls["prompt"].value == "scene 1 of a fox"
    assert panel.controls["model"].value == "sora-2-2025-12-08"
