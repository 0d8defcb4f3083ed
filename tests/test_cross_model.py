"""One canonical request across endpoints: the mapping, the plan, and a sweep over three."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from IPython.lib.pretty import pretty
from test_any_endpoint import ENDPOINT as UNSEEN
from test_any_endpoint import unseen_document

import sora_widgets as sw
from sora_widgets.history import History
from sora_widgets.schema.mapping import map_request

SORA = "fal-ai/sora-2/image-to-video"
SORA_T2V = "fal-ai/sora-2/text-to-video"


def test_a_request_keeps_names_takes_aliases_nearest_values_and_drops_the_rest() -> None:
    schema = sw.EndpointSchema.from_openapi(unseen_document())
    sent, notes = map_request(schema, {"prompt": "x", "image_url": "https://e.com/a.png",
                                       "duration": 8, "aspect_ratio": "16:9", "seed": 3})
    assert sent == {"prompt": "x", "start_image_url": "https://e.com/a.png", "duration": "10",
                    "aspect_ratio": "16:9"}
    by_field = {n.field: n for n in notes}
    assert (by_field["image_url"].how, by_field["image_url"].target) == ("renamed", "start_image_url")
    assert (by_field["duration"].how, by_field["duration"].sent) == ("nearest", "10")
    assert by_field["seed"].how == "dropped" and by_field["seed"].target is None
    assert by_field["prompt"].how == "same" and not by_field["prompt"].changed


def test_the_same_length_spelt_another_way_is_not_a_change_of_value() -> None:
    schema = sw.EndpointSchema.from_openapi(unseen_document())
    sent, notes = map_request(schema, {"prompt": "x", "duration": 5}, strict=True)
    assert sent["duration"] == "5" and notes[1].how == "same"


def test_strict_refuses_every_mapped_or_dropped_value() -> None:
    schema = sw.load_schema(SORA)
    with pytest.raises(sw.ValidationError) as caught:
        map_request(schema, {"prompt": "x", "duration": 5, "seed": 1}, strict=True)
    assert caught.value.fields == ["duration", "seed"]


def test_a_sweep_over_three_endpoints_maps_plans_and_runs_them(tmp_path: Path, image: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    document = tmp_path / "unseen.json"
    document.write_text(json.dumps(unseen_document()))
    log = History(tmp_path / "runs")
    run = sw.sweep(endpoint=[SORA, SORA_T2V, document], prompt="A paper boat drifts",
                   image_url=image, duration=8, aspect_ratio="16:9", seed=11,
                   backend="preview", history=log, wait=True)
    plan = run.plan
    assert plan.axes["endpoint"] == [SORA, SORA_T2V, UNSEEN] and plan.n_jobs == 3
    stored = log.media_dir / "inputs"
    sora = plan.arguments_for(SORA)
    assert sora["duration"] == 8 and sora["aspect_ratio"] == "16:9" and "seed" not in sora
    assert Path(sora["image_url"]).parent == stored
    t2v = plan.arguments_for(SORA_T2V)
    assert "image_url" not in t2v and t2v["duration"] == 8 and t2v["aspect_ratio"] == "16:9"
    unseen = plan.arguments_for(UNSEEN)
    assert unseen["duration"] == "10" and unseen["start_image_url"] == sora["image_url"]
    assert "image_url" not in unseen and unseen["aspect_ratio"] == "16:9"
    assert capsys.readouterr().out == ""  # a library call prints nothing: the run shows itself
    printed = pretty(run)
    assert printed.startswith(plan.line())
    assert f"  {UNSEEN}" in printed and "~ image_url -> start_image_url" in printed
    assert "~ duration: 8 -> '10'" in printed and "x seed=11 dropped" in printed
    frame = run.to_dataframe()
    assert list(frame["endpoint"]) == [SORA, SORA_T2V, UNSEEN]
    assert set(frame["status"]) == {"completed"}
    assert frame.set_index("endpoint").loc[UNSEEN, "requested_duration_s"] == 8
    assert frame.set_index("endpoint").loc[UNSEEN, "duration_s"] == pytest.approx(10, abs=0.1)
    _, cols, _ = run.grid_cells(*run.grid_axes(None, None))
    assert cols == [SORA, SORA_T2V, UNSEEN]
    reopened = sw.Sweep.open(plan.sweep_id, log)  # the unseen document travels with the plan
    assert reopened.plan.arguments_for(UNSEEN) == unseen and reopened.wait().done
    assert len(log) == 3  # reopening a finished sweep sent nothing


def test_a_budgeted_sweep_with_an_unknown_price_refuses_unless_allowed(tmp_path: Path) -> None:
    document = tmp_path / "unseen.json"
    document.write_text(json.dumps(unseen_document()))
    log = History(tmp_path / "runs")
    with pytest.raises(sw.BudgetError, match="no known price"):
        sw.sweep(endpoint=[SORA, document], prompt="x", image_url="https://e.com/a.png",
                 backend="fal", history=log, budget_usd=10)
    assert len(log) == 0
    run = sw.sweep(endpoint=[SORA, document], prompt="x", image_url="https://e.com/a.png",
                   backend="fal", history=log, budget_usd=10, allow_unknown_cost=True,
                   confirm=lambda plan: False)
    assert run.plan.unpriced == 1 and "of unknown price" in run.plan.line() and len(log) == 0
