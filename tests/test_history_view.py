"""The History tab: a page at a time, filters by text, model and status, selection and loading."""

from __future__ import annotations

from pathlib import Path

import pytest

import sora_widgets as sw
from sora_widgets.history import History
from sora_widgets.records import JobStatus
from sora_widgets.widgets import history_view
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


def test_clicking_a_thumbnail_opens_the_runs_card_and_loads_it(history):
    ids = fill(history, 9)
    loaded = []
    view = HistoryView(history, on_load=lambda arguments, endpoint: loaded.append((arguments, endpoint)))
    view.refresh()
    assert view.load_button.disabled and view.card.details.layout.display == "none"
    view.rows.value = ids[0]  # what a click on its tile sends
    card = view.card
    assert view.selected_id == ids[0] and card.run_id == ids[0]
    assert card.video_html.startswith("<video src='https://e.x/0.mp4'")
    assert card.video.outputs[0]["data"]["text/html"] == card.video_html == view.detail_html
    assert "completed" in card.summary.value and "scene 0 of a fox" in card.summary.value
    assert card.details.selected_index is None  # parameters, logs and actions folded
    view.load_button.click()
    arguments, endpoint = loaded[0]
    assert arguments["prompt"] == "scene 0 of a fox" and arguments["model"] == "sora-2"
    assert endpoint == history.get(ids[0])["endpoint_id"]
    view.rows.value = ids[2]
    assert view.card is card and "<video" not in view.detail_html and card.video.outputs == ()
    assert "Refused by the content filter: the prompt was flagged" in card.error.value


def test_rating_in_the_opened_card_is_kept(history):
    ids = fill(history, 2)
    view = HistoryView(history)
    view.refresh()
    view.rows.value = ids[0]
    view.card.rating.value = 4
    view.card.notes.value = "nice light"
    view.rows.value = ids[1]  # showing another run writes nothing to it
    assert view.card.rating.value is None and history.get(ids[1])["rating"] is None
    view.rows.value = ids[0]
    assert (view.card.rating.value, view.card.notes.value) == (4, "nice light")
    assert (history.get(ids[0])["rating"], history.get(ids[0])["notes"]) == (4, "nice light")


def test_gallery_tiles_carry_posters_as_data_uris(history, tmp_path):
    from PIL import Image

    thumb = tmp_path / "thumb.jpg"
    Image.new("RGB", (1280, 720), (30, 90, 160)).save(thumb, quality=90)
    run = history.start(ENDPOINT, "preview", {"prompt": "poster $5 and $6", "duration": 8})
    history.finish(run, status=JobStatus.COMPLETED, video_url="https://e.x/v.mp4",
                   thumbnail_path=str(thumb))
    view = HistoryView(history)
    view.refresh()
    (item,) = view.gallery.items
    assert item["poster"].startswith("data:image/jpeg;base64,") and len(item["poster"]) < 12_000
    assert item["head"] == f"#{run} · sora-2 · 8 s" and item["caption"] == "poster $5 and $6"
    html = record_html(history.get(run))
    assert "poster='data:image/jpeg;base64," in html
    assert "$" not in html.replace("<span>$</span>", "")  # no "$5 ... $6" typeset as math


def test_paging_and_opening_runs_make_no_new_widgets(history):
    from ipywidgets.widgets.widget import _instances as instances

    ids = fill(history, 30)
    view = HistoryView(history, page_size=12)
    view.refresh()
    view.rows.value = ids[-1]
    view.card.code_button.click()
    before = len(instances)
    for _ in range(2):
        view.next_button.click()
        view.rows.value = view.rows.options[0][1]
    view.prev_button.click()
    view.rows.value = ids[3]
    assert len(instances) == before


def test_prompts_are_escaped(history):
    ids = fill(history, 8)
    view = HistoryView(history)
    view.refresh()
    view.rows.value = ids[7]
    assert "&lt;script&gt;x&lt;/script&gt;" in view.card.summary.value
    assert "<script>" not in view.card.summary.value + view.card.facts.value
    assert "<script>" not in record_html(history.get(ids[7]))
    assert row_label(history.get(ids[7])).startswith("#8 · completed · sora-2 · sora-2-2025-12-08 · 4")
    # tiles hold plain text, which the gallery's script sets as text, never as HTML
    assert view.gallery.items[0]["caption"] == "<script>x</script> scene 7"
    script = (Path(history_view.__file__).parent / "gallery.js").read_text()
    assert "textContent" in script and "innerHTML" not in script


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
