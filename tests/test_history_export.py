"""History as tables: the typed DataFrame, exports read back equal, and the notebook view."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sora_widgets._errors import HistoryError
from sora_widgets.history import History

ROOT = Path(__file__).resolve().parents[1]
I2V = "fal-ai/sora-2/image-to-video"


@pytest.fixture
def log(tmp_path: Path) -> History:
    log = History(tmp_path / "history.sqlite")
    first = log.start(I2V, "fal", {"prompt": "A kite", "image_url": "https://e/a.png", "duration": 8,
                                   "model": "sora-2", "resolution": "720p", "aspect_ratio": "16:9",
                                   "delete_video": False, "character_ids": ["c1"]},
                      sweep_id="s1", cost_usd=0.8)
    log.update(first, status="queued", request_id="r1")
    log.update(first, status="running", logs=["50%"])
    log.finish(first, status="completed", result={"video": {"url": "https://v/1.mp4"}, "video_id": "v1"})
    log.annotate(first, rating=4, tags=["kite"], notes="good")
    second = log.start(I2V, "preview", {"prompt": "Ünï <b>bold</b>", "duration": 4, "model": "sora-2-2025-10-06",
                                        "video_id": "remix-source"})
    log.finish(second, status="failed", error_type="ValidationError", error_message="bad")
    log.start(I2V + "/pro", "fal", {"prompt": "still pending", "resolution": "1080p"})
    return log


def test_dataframe_is_typed_and_newest_first(log: History) -> None:
    df = log.to_dataframe()
    assert list(df["id"]) == [3, 2, 1]
    assert list(df.columns[:5]) == ["id", "created_at", "status", "endpoint_id", "backend"]
    for name in ("created_at", "submitted_at", "started_at", "completed_at"):
        assert isinstance(df[name].dtype, pd.DatetimeTZDtype) and str(df[name].dt.tz) == "UTC"
    for name in ("queued_s", "running_s", "total_s", "cost_usd"):
        assert pd.api.types.is_float_dtype(df[name])
    assert str(df["rating"].dtype) == "Int64" and str(df["duration"].dtype) == "Int64"
    assert str(df["delete_video"].dtype) == "boolean"
    for name in ("status", "model", "backend", "endpoint_id", "resolution", "aspect_ratio"):
        assert isinstance(df[name].dtype, pd.CategoricalDtype), name
    assert list(df["status"].cat.categories) == ["pending", "submitting", "queued", "running",
                                                 "completed", "failed", "cancelled", "unknown"]
    row = df.set_index("id").loc[1]
    assert (row["prompt"], row["duration"], row["character_ids"], row["logs"], row["tags"]) == \
        ("A kite", 8, ["c1"], ["50%"], ["kite"])
    assert row["result"] == {"video": {"url": "https://v/1.mp4"}, "video_id": "v1"}
    # an argument named like a record column keeps its prefix
    assert df.set_index("id").loc[2, "arg_video_id"] == "remix-source"
    assert pd.isna(df.set_index("id").loc[2, "video_id"])


def test_dataframe_filters_and_an_empty_history(log: History, tmp_path: Path) -> None:
    assert list(log.to_dataframe(status="completed")["id"]) == [1]
    assert list(log.to_dataframe(limit=1)["id"]) == [3]
    empty = History(tmp_path / "empty.sqlite").to_dataframe()
    assert len(empty) == 0 and {"id", "created_at", "status", "logs", "result"} <= set(empty.columns)


def _read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_jsonl_export_reads_back_equal(log: History, tmp_path: Path) -> None:
    out = log.export(tmp_path / "out" / "runs.jsonl")
    assert out == tmp_path / "out" / "runs.jsonl"
    expected = json.loads(json.dumps(log.records(), default=lambda v: v.isoformat()))
    assert _read_jsonl(out) == expected
    assert not list(out.parent.glob(".*partial"))


def test_parquet_export_reads_back_equal(log: History, tmp_path: Path) -> None:
    out = log.export(tmp_path / "runs.parquet")
    back = pd.read_parquet(out)
    from sora_widgets.history.export import flat

    pd.testing.assert_frame_equal(back, flat(log.to_dataframe()), check_dtype=False, check_categorical=False)
    assert isinstance(back["status"].dtype, pd.CategoricalDtype)
    assert isinstance(back["created_at"].dtype, pd.DatetimeTZDtype)


def test_csv_export_reads_back_equal(log: History, tmp_path: Path) -> None:
    out = log.export(tmp_path / "runs.csv")
    back = pd.read_csv(out)
    df = log.to_dataframe()
    assert list(back["id"]) == list(df["id"])
    assert list(back["prompt"]) == list(df["prompt"])
    assert list(back["status"]) == list(df["status"].astype(str))
    assert list(pd.to_datetime(back["created_at"], utc=True, format="ISO8601")) == list(df["created_at"])
    assert back["cost_usd"].equals(df["cost_usd"])
    assert [json.loads(v) for v in back["logs"]] == list(df["logs"])
    assert json.loads(back.loc[2, "character_ids"]) == ["c1"]


def test_csv_export_quotes_formula_text_and_nothing_else(tmp_path: Path) -> None:
    log = History(tmp_path / "h.sqlite")
    prompt = '=HYPERLINK("http://evil","x")'
    run = log.start(I2V, "fal", {"prompt": prompt, "seed": -7, "model": "-cmd", "=field": "\tx"},
                    cost_usd=-0.5)
    log.annotate(run, notes="@SUM(1)", tags=["+1"])
    with log.export(tmp_path / "runs.csv").open(newline="", encoding="utf-8") as file:
        [row] = list(csv.DictReader(file))
    assert (row["prompt"], row["notes"], row["model"], row["'=field"]) == \
        ("'" + prompt, "'@SUM(1)", "'-cmd", "'\tx")
    assert json.loads(row["tags"]) == ["+1"]  # JSON text starts with a bracket: inert already
    assert (row["seed"], row["cost_usd"]) == ("-7", "-0.5")  # numbers are not text
    [record] = _read_jsonl(log.export(tmp_path / "runs.jsonl"))
    assert (record["arguments"]["prompt"], record["notes"], record["tags"]) == (prompt, "@SUM(1)", ["+1"])
    assert pd.read_parquet(log.export(tmp_path / "runs.parquet")).loc[0, "prompt"] == prompt
    assert log.to_dataframe().loc[0, "prompt"] == prompt


def test_export_refuses_unknown_suffixes(log: History, tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match=r"\.csv, \.jsonl or \.parquet"):
        log.export(tmp_path / "runs.xlsx")
    assert not (tmp_path / "runs.xlsx").exists()


def test_parquet_without_an_engine_names_the_package(log: History, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    with pytest.raises(HistoryError, match="pyarrow or fastparquet"):
        log.export(tmp_path / "runs.parquet")
    assert list(tmp_path.glob("*parquet*")) == []
    log.export(tmp_path / "runs.jsonl")  # the other formats still work


def test_export_scrubs_nothing_back_in(log: History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "key-id:" + "s" * 40)
    log.start(I2V, "fal", {"prompt": "s" * 40, "api_key": "k" * 20})
    for suffix in ("csv", "jsonl", "parquet"):
        data = log.export(tmp_path / f"runs.{suffix}").read_bytes()
        assert b"s" * 40 not in data and b"k" * 20 not in data


def test_pandas_is_not_imported_by_the_write_side(tmp_path: Path) -> None:
    code = ("import sys; from sora_widgets.history import History; log = History(sys.argv[1]); "
            "run = log.start('e', 'preview', {'prompt': 'p'}); log.finish(run, status='completed'); "
            "log.records(); repr(log); log.export(sys.argv[1] + '.jsonl'); "
            "assert 'pandas' not in sys.modules and 'fal_client' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "h.sqlite")], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})


# ---- notebook view ----------------------------------------------------------------------------

def test_html_escapes_everything(tmp_path: Path) -> None:
    log = History(tmp_path / "h.sqlite")
    run = log.start(I2V, "fal", {"prompt": "<script>alert('x')</script>", "model": "<b>m</b>",
                                 "duration": "<i>4</i>"})
    log.finish(run, status="completed", thumbnail_url="https://t/x.png?a=1&b='2'", cost_usd=0.4)
    page = log._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<b>m</b>" not in page and "<i>4</i>" not in page
    assert "src='https://t/x.png?a=1&amp;b=&#x27;2&#x27;'" in page
    assert "<span>$</span>0.40" in page and "completed" in page and "1 run" in page


def test_html_keeps_dollars_as_text_and_cells_left_aligned(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """JupyterLab typesets `$...$` in HTML outputs as math, and `&#36;` is a `$` again once
    parsed: each `$` sits alone in a span. Its tables are right-aligned unless a cell says not."""
    monkeypatch.chdir(tmp_path)
    log = History(tmp_path / "runs")
    for prompt in ("a $5 bill", "a $10 bill"):
        run = log.start(I2V, "fal", {"prompt": prompt, "duration": 4})
        log.finish(run, status="completed", cost_usd=1.2)
    page = log._repr_html_()
    assert "$" not in page.replace("<span>$</span>", "")
    assert "a <span>$</span>5 bill" in page and "<span>$</span>1.20" in page
    cells = re.findall(r"<t[hd]\b[^>]*>", page)
    assert len(cells) == 3 * 8 and all("text-align:left" in c for c in cells)
    assert "<code>runs/history.sqlite</code>" in page and str(tmp_path) not in page


def test_html_prefers_a_local_thumbnail_and_drops_unsafe_urls(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    log = History(tmp_path / "runs")
    (log.media_dir / "t1.webp").write_bytes(b"RIFF")
    local = log.start(I2V, "fal", {"prompt": "local"})
    log.update(local, thumbnail_path="media/t1.webp", thumbnail_url="https://t/remote.webp")
    unsafe = log.start(I2V, "fal", {"prompt": "unsafe"})
    log.update(unsafe, thumbnail_url="javascript:alert(1)")
    page = log._repr_html_()
    assert "src='runs/media/t1.webp'" in page and "remote.webp" not in page
    assert "javascript" not in page


def test_html_shows_the_newest_twenty_and_long_prompts_shortened(tmp_path: Path) -> None:
    log = History(tmp_path / "h.sqlite")
    for i in range(25):
        log.start(I2V, "fal", {"prompt": f"run-{i:02d} " + "long " * 40})
    page = log._repr_html_()
    assert page.count("<tr>") == 21 and "25 runs, newest 20 shown" in page
    assert "run-24" in page and "run-05" in page and "run-04" not in page
    prompt = "run-24 " + "long " * 40
    assert f"title='{prompt}'" in page and f">{prompt[:77]}...</td>" in page


def test_html_of_an_empty_history(tmp_path: Path) -> None:
    assert "No runs yet" in History(tmp_path / "h.sqlite")._repr_html_()
