"""Sweep reports: one self-contained, escaped HTML file, and a notebook that reproduces the sweep."""

from __future__ import annotations

import base64
import re
import sys
from pathlib import Path

import nbformat
import pytest

import sora_widgets as sw
from sora_widgets.backends.preview import PreviewBackend
from sora_widgets.research.report import reproduce_code

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
    escaped = "&lt;script&gt;alert(&#x27;owned&#x27;)&lt;/script&gt; a fox &amp; a hen"
    assert text.count(escaped) == 5  # grid row, two jobs, parameters, code
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
    intro = notebook.cells[0].source  # "free (on fal: $1.60)": escaped, or markdown makes it math
    assert "(on fal: \\$1.60)" in intro and not re.search(r"(?<!\\)\$", intro)


def test_the_reproducing_code_runs_the_same_sweep(
        finished: sw.Sweep, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(finished.history.path.parent))  # same run folder
    scope: dict[str, object] = {}
    exec("import sora_widgets as sw\n" + reproduce_code(finished.plan), scope)
    again = scope["sweep"]
    assert isinstance(again, sw.Sweep) and again.sweep_id != finished.sweep_id
    assert again.plan.axes == finished.plan.axes and again.plan.fields == finished.plan.fields
    assert again.status == {"completed": 4}


def test_the_report_names_local_files_relative_to_the_working_folder(
        finished: sw.Sweep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Reproduce code and the parameters read `runs/media/inputs/...`, not a temporary path."""
    monkeypatch.chdir(tmp_path)  # the notebook's folder, which holds the run folder
    text = finished.report(tmp_path / "report.html").read_text(encoding="utf-8")
    code = text[text.index("<h2>Reproduce</h2>"):]
    assert "image_url=&#x27;runs/media/inputs/" in code
    assert str(tmp_path) not in text
    assert "image_url='runs/media/inputs/" in reproduce_code(finished.plan)


def test_dollars_stay_text_and_tables_are_left_aligned(
        log: sw.History, image: Path, tmp_path: Path) -> None:
    backend = PreviewBackend(media_dir=log.media_dir, queue_s=0.05, fps=8, scale=0.1)
    run = sw.sweep(prompt=["a $5 bill", "a $10 bill"], image_url=image, model=MODELS,
                   budget_usd=3, backend=backend, history=log, wait=True)
    text = run.report(tmp_path / "report.html").read_text(encoding="utf-8")
    assert "$" not in text.replace("<span>$</span>", "")  # MathJax never pairs a lone `$`
    assert "budget <span>$</span>3.00" in text and "a <span>$</span>5 bill" in text
    assert "text-align: right" not in text and "th, td {" in text and "text-align: left" in text


def _without_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # `import` raises ImportError


def test_without_matplotlib_the_chart_says_what_to_install_and_the_report_still_writes(
        finished: sw.Sweep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _without_matplotlib(monkeypatch)
    with pytest.raises(ImportError, match=re.escape("pip install 'sora-widgets[charts]'")):
        finished.chart()
    with pytest.warns(UserWarning, match="no chart"):
        path = finished.report(tmp_path / "report.html")
    text = path.read_text(encoding="utf-8")
    assert "data:image/png" not in text and "Summary per model" in text
    assert "No chart: Charts need matplotlib" in text and "sora-widgets[charts]" in text
    assert text.count("<video class='sync'") == 4
