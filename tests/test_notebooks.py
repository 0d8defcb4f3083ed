"""Every notebook in notebooks/ runs top to bottom offline (no key: the preview backend).

Each is executed with nbclient in a temporary copy of notebooks/, so reports and exports never
land in the working tree; a notebook added to the folder is tested without changing this file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 300
TEST_KERNEL = "sora-widgets-tests"

pytestmark = pytest.mark.notebook


def _runs_this_interpreter(argv0: str) -> bool:
    """jupyter_client starts `python` (and pythonX, pythonX.Y) with its own interpreter."""
    major, minor = sys.version_info[:2]
    if argv0 in ("python", f"python{major}", f"python{major}.{minor}"):
        return True
    return Path(argv0).resolve() == Path(sys.executable).resolve()


@pytest.fixture(scope="session")
def kernel_name() -> str:
    """A kernelspec that runs this interpreter (so the kernel imports the package under test)."""
    manager = KernelSpecManager()
    try:
        if _runs_this_interpreter(manager.get_kernel_spec("python3").argv[0]):
            return "python3"
    except NoSuchKernel:
        pass
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--sys-prefix",
                    "--name", TEST_KERNEL], check=True, capture_output=True)
    return TEST_KERNEL


def execute(notebook: Path, workdir: Path, kernel: str) -> nbformat.NotebookNode:
    """Run every cell in `workdir` (the kernel's cwd); a failing cell raises CellExecutionError."""
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, kernel_name=kernel, timeout=CELL_TIMEOUT_S,
                   resources={"metadata": {"path": str(workdir)}}).execute()
    return nb


def output_text(nb: nbformat.NotebookNode, snippet: str) -> str:
    """Everything shown by the first code cell whose source contains `snippet`: text and HTML."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and snippet in c.source)
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        for mime in ("text/html", "text/plain", "application/vnd.jupyter.widget-view+json"):
            if mime in out.get("data", {}):
                parts.append(str(out.data[mime]))
    return "\n".join(parts)


def has_image(nb: nbformat.NotebookNode, snippet: str) -> bool:
    cell = next(c for c in nb.cells if c.cell_type == "code" and snippet in c.source)
    return any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


# --- what each notebook must show, beyond running without errors ----------------------------------


def check_quickstart(nb: nbformat.NotebookNode, workdir: Path) -> None:
    assert "<table" in output_text(nb, "sw.load_schema(")
    assert "problem" in output_text(nb, "schema.validate(")
    panel = output_text(nb, "sw.Panel()")
    assert "model_id" in panel and "sora-widgets panel" in panel  # live widget + saved summary
    first = output_text(nb, "sw.generate(")
    assert "<video" in first and "completed" in first and "preview" in first
    assert "completed" in output_text(nb, "to_dataframe()")
    saved = workdir / "executed.ipynb"
    nbformat.write(nb, saved)  # with nbclient's stored widget state, as a saved notebook would be
    assert saved.stat().st_size < 500_000
    outputs = sum(len(json.dumps(c.get("outputs", []))) for c in nb.cells)
    assert outputs < 50_000, "videos are linked, never embedded (issue 6)"


def check_compare_snapshots(nb: nbformat.NotebookNode, workdir: Path) -> None:
    plan = output_text(nb, "endpoint=MODELS")
    assert "fal-ai/veo3.1/image-to-video" in plan and "~ duration: 5 -> '6s'" in plan
    assert "'duration': '6s'" in output_text(nb, "arguments_for(")
    table = output_text(nb, "table = run.to_dataframe()")
    for endpoint in ("kling-video/v2.1", "veo3.1", "pixverse/v5"):
        assert endpoint in table
    assert output_text(nb, "sw.endpoint_status(endpoint)").count(": active.") == 3
    snapshots = output_text(nb, "snapshots.to_dataframe()")
    for model in ("sora-2-2025-10-06", "sora-2-2025-12-08", "sora-2"):
        assert model in snapshots
    assert "model_id" in output_text(nb, ".grid(")
    assert has_image(nb, ".chart(")
    report = workdir / "compare_report.html"
    assert report.is_file() and report.read_text(encoding="utf-8").count("<video") >= 3


def check_teaching(nb: nbformat.NotebookNode, workdir: Path) -> None:
    text = "\n".join(output_text(nb, c.source) for c in nb.cells
                     if c.cell_type == "code" and "dry_run(" in c.source)
    assert '"duration": 12' in text and "$1.20" in text
    assert '"aspect_ratio": "9:16"' in text and "must be one of" in text
    assert "<video" in output_text(nb, "sw.generate(")


def check_history_analysis(nb: nbformat.NotebookNode, workdir: Path) -> None:
    runs = Path(os.environ["SORA_WIDGETS_HOME"])  # exports are written beside the history
    assert (runs / "runs.csv").is_file() and (runs / "runs.jsonl").is_file()
    assert "favourite" in output_text(nb, "to_dataframe(")


CHECKS: dict[str, Callable[[nbformat.NotebookNode, Path], None]] = {
    "quickstart": check_quickstart,
    "compare_snapshots": check_compare_snapshots,
    "teaching": check_teaching,
    "history_analysis": check_history_analysis,
}


def test_the_four_notebooks_exist() -> None:
    assert {p.stem for p in NOTEBOOKS} >= set(CHECKS)
    assert (NOTEBOOK_DIR / "example.png").stat().st_size < 60_000


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.timeout(CELL_TIMEOUT_S * 4)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_offline(notebook: Path, tmp_path: Path, kernel_name: str) -> None:
    workdir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, workdir, ignore=shutil.ignore_patterns(
        "sora_runs", ".ipynb_checkpoints", "*.html"))
    nb = execute(workdir / notebook.name, workdir, kernel_name)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error"
            assert "Traceback" not in out.get("text", ""), out.get("text")
    CHECKS.get(notebook.stem, lambda *_: None)(nb, workdir)


@pytest.fixture
def fal_with_media(fakefal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """The fake fal server answering with a real MP4 and thumbnail, and FAL_KEY set.

    fal_client uploads local files to fal's CDN, which no environment variable redirects; the
    run folder's upload cache is seeded with example.png's URL on the fake instead, so the
    notebooks' `image_url="example.png"` is sent as that URL, as after a real earlier upload.
    """
    import hashlib

    from sora_widgets import History
    from sora_widgets.backends._render import render_preview

    example = (NOTEBOOK_DIR / "example.png").read_bytes()
    out = render_preview({"prompt": "fake fal", "image_url": str(NOTEBOOK_DIR / "example.png"),
                          "duration": 4}, "fal-ai/sora-2/image-to-video", tmp_path, "fal",
                         scale=0.25)
    fakefal.media.update({"video.mp4": (tmp_path / "fal.mp4").read_bytes(),
                          "thumbnail.webp": (tmp_path / "fal.jpg").read_bytes(),
                          "spritesheet.webp": (tmp_path / "fal.jpg").read_bytes(),
                          "example.png": example})
    assert out["video"]["url"].endswith("fal.mp4")
    fakefal.configure(queue_s=0.1, run_s=0.3, logs=["Starting", "Rendering"])
    monkeypatch.setenv("FAL_KEY", "notebook-test-key-SENTINEL")
    History().uploads[hashlib.sha256(example).hexdigest()] = fakefal.media_url("example.png")
    return fakefal


@pytest.mark.timeout(CELL_TIMEOUT_S * 4)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_a_key_against_the_fake_fal_server(
        notebook: Path, tmp_path: Path, kernel_name: str, fal_with_media) -> None:  # type: ignore[no-untyped-def]
    from sora_widgets import History

    workdir = tmp_path / "notebooks"
    shutil.copytree(NOTEBOOK_DIR, workdir, ignore=shutil.ignore_patterns(
        "sora_runs", ".ipynb_checkpoints", "*.html"))
    nb = execute(workdir / notebook.name, workdir, kernel_name)
    page = json.dumps([cell.get("outputs", []) for cell in nb.cells])
    assert '"output_type": "error"' not in page
    assert "notebook-test-key-SENTINEL" not in page
    rows = History().records()
    assert rows and {row["status"] for row in rows} == {"completed"}
    fal_rows = [row for row in rows if row["backend"] == "fal"]
    assert len(fal_rows) == fal_with_media.count("submit")
    assert bool(fal_rows) == (notebook.stem not in PREVIEW_ON_PURPOSE)
    sent = {request.json["image_url"] for request in fal_with_media.of_kind("submit")}
    assert sent <= {fal_with_media.media_url("example.png")}


#: notebooks that ask for the offline preview even when a key is set: to stay free, or because
#: their live run is on Sora 2, which fal no longer runs (teaching)
PREVIEW_ON_PURPOSE = {"history_analysis", "teaching"}
