"""Sweep reports: one self-contained, escaped HTML file, and a notebook that reproduces the sweep."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import nbformat
import pytest

import sora_widgets as sw
from sora_widgets.backends.preview import PreviewBackend
from sora_widgets.report import reproduce_code

EVIL = "<script>alert('owned')</script> a fox & a hen"
MODELS = ["sora-2-2025-10-06", "sora-2-2025-12-08"]




@pytest.fixture
def finished(log: sw.History, image: Path) -> sw.Sweep:
    backend = PreviewBackend(media_dir=log.media_dir, queue_s=0.05, fps=8, scale=0.1)
    return sw.sweep(prompt=[EVIL, "zoom in"], image_url=image, model=MODELS, backend=backend,
                    history=log, wait=True)


def test_the_report_is_one_offline_file_with_every_video_embedded(
        finished: sw.Sweep, tmp_path: Path) -> None:
    path = finished.report(tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    videos = re.findall(r"<video class='sync' src='data:video/mp4;base64,([^']+)'", text)
    assert len(videos) == 4
    assert all(base64.b64decode(payload)[4:8] == b"ftyp" for payload in videos)
    assert not re.search(r"""(src|href)=['"](?!data:)""", text)  # nothing to fetch from elsewhere
    for needle in ("Parameters", "Jobs and metrics", "motion", "Summary per model", "data:image/png;base64,",
                   "sw.sweep(", finished.sweep_id):
        assert needle in text


def test_all_text_in_the_report_is_escaped(finished: sw.Sweep, tmp_path: Path) -> None:
    text = finished.report(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in text and "</script> a fox" not in text
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt; a fox &amp; a hen" in text  # grid, code
    assert "&lt;script&gt;alert('owned')&lt;/script&gt; a fox &amp; a hen" in text  # table cells
    assert text.count("<script>") == 1  # only the report's own playback script


def test_the_report_shows_failed_and_unfinished_cells(
        log: sw.History, image: Path, tmp_path: Path) -> None:
    run = sw.sweep(prompt="p", image_url=image, model=MODELS, backend="preview", history=log,
                   confirm=lambda plan: False)
    text = run.report(tmp_path / "planned.html").read_text(encoding="utf-8")
    assert text.count("<b>waiting</b>") == 2 and "<video" not in text


def test_the_notebook_is_valid_and_reproduces_the_sweep(finished: sw.Sweep, tmp_path: Path) -> None:
    path = finished.to_notebook(tmp_path / "sweep.ipynb")
    notebook = nbformat.read(str(path), as_version=4)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    assert code[0] == "import sora_widgets as sw"
    assert code[1] == reproduce_code(finished.plan)
    assert "sw.sweep(" in code[1] and f"model={MODELS!r},  # axis" in code[1]
    assert f"prompt={[EVIL, 'zoom in']!r},  # axis" in code[1] and "backend='preview'" in code[1]
    assert code[2] == "sweep.grid(rows='prompt', cols='model')"
    assert "sweep.to_dataframe()" in code and "sweep.summary(by='model')" in code
    assert finished.sweep_id in notebook.cells[0].source


def test_the_reproducing_code_runs_the_same_sweep(
        finished: sw.Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(finished.history.path.parent))  # same run folder
    scope: dict[str, object] = {}
    exec("import sora_widgets as sw\n" + reproduce_code(finished.plan), scope)
    again = scope["sweep"]
    assert isinstance(again, sw.Sweep) and again.sweep_id != finished.sweep_id
    assert again.plan.axes == finished.plan.axes and again.plan.fields == finished.plan.fields
    assert again.status == {"completed": 4}
