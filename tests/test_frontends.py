"""Front ends besides JupyterLab, in a real browser, and the servers `sora-widgets` starts.

Notebook 7 and Voila each run the quickstart's panel in Debian's Chromium: a prompt and an
image are typed in, Generate is clicked (no key: the offline preview) and the video plays.
`sora-widgets app` serves the teaching notebook as a page without code. `sora-widgets lab`
prints the quickstart's own URL, which answers; a notebook run and saved in that JupyterLab is
written back without volatile metadata, and an example notebook of a checkout without outputs,
so the checkout stays clean. The Chromium set-up is test_browser's; screenshots go to
artifacts/ (notebook7.png, voila-quickstart.png, voila-teaching.png, lab-saved.png).
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_browser import (
    ARTIFACTS,
    PROMPT,
    ROOT,
    VIDEO_MS,
    _chromium_page,
    _free_port,
    _generate,
    _panel,
    _play_video,
    _require_chromium,
    _run_menu,
    _stop,
    _user_environment,
)
from test_browser_panel import _cut, _open_section, _screenshot

import sora_widgets
from sora_widgets.cli.jupyter import (
    CONFIG_DIR,
    EXAMPLE_NOTEBOOKS,
    clean_notebook,
    pre_save_hook,
    server_command,
)

NOTEBOOKS = ROOT / "notebooks"
SERVER_START_S = 120


@dataclass
class Server:
    """A Jupyter server this test started: the URL it printed, its notebooks, its log."""

    url: str
    root: Path
    log: Path


def _copy_notebooks(target: Path) -> Path:
    shutil.copytree(NOTEBOOKS, target, ignore=shutil.ignore_patterns(
        "sora_runs", ".ipynb_checkpoints", "*.html"))
    return target


def _checkout(tmp_path: Path) -> Path:
    """A copy of this checkout's package and notebooks: a server importing it (PYTHONPATH) takes
    its notebooks/ for the examples, so a save there never touches the real working tree."""
    checkout = tmp_path / "checkout"
    shutil.copytree(Path(sora_widgets.__file__).parent, checkout / "sora_widgets",
                    ignore=shutil.ignore_patterns("__pycache__"))
    _copy_notebooks(checkout / "notebooks")
    return checkout


@contextmanager
def _serve(argv: list[str], *, root: Path, env: dict[str, str], url: str,
           log: Path) -> Iterator[Server]:
    """Run `argv` in `root` until the URL matching the regex `url` shows in its output."""
    _require_chromium()
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while not (found := re.search(url, log.read_text(errors="replace"))):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{argv[:4]} printed no {url!r} (exit {proc.poll()}):\n"
                                     f"{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield Server(url=found.group(0), root=root, log=log)
    finally:
        _stop(proc)


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:
        return int(response.status)


# --- Notebook 7 ---------------------------------------------------------------------------------


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_notebook7_runs_the_quickstart_panel_and_plays_its_video(tmp_path: Path) -> None:
    """`jupyter notebook` (Notebook 7): every quickstart cell runs, the panel's video plays."""
    root = _copy_notebooks(tmp_path / "notebooks")
    port, token = _free_port(), secrets.token_hex(16)
    argv = [sys.executable, "-m", "notebook", "--no-browser", f"--IdentityProvider.token={token}",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={root}"]
    if os.geteuid() == 0:
        argv.append("--allow-root")
    started = time.monotonic()
    with _serve(argv, root=root, env=_user_environment(tmp_path), log=tmp_path / "notebook.log",
                url=rf"http://127\.0\.0\.1:{port}/tree") as server, \
            _chromium_page("notebook7") as page:
        page.goto(f"http://127.0.0.1:{port}/notebooks/quickstart.ipynb?token={token}")
        page.locator(".jp-Notebook .jp-Cell").first.wait_for()
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
        _run_all(page)
        page.locator(".jp-OutputArea-output table.dataframe").first.wait_for()
        panel, generate = _panel(page)
        _generate(page, panel, generate, "example.png")
        state = _play_video(page, panel, ARTIFACTS / "notebook7.png")
        looked = _card_and_history(page, panel.locator(".sora-panel").first)
        errors = page.locator("[data-mime-type='application/vnd.jupyter.error']").count()
        grid = _compare_grid(page, f"http://127.0.0.1:{port}/notebooks/compare_snapshots.ipynb?token={token}")
    took = time.monotonic() - started

    assert errors == 0, "a quickstart cell raised in Notebook 7"
    assert looked["card_cut"] == [] and looked["history_cut"] == [], looked
    assert looked["tiles"] >= 1 and all(width > 0 for width in looked["tile_images"]), looked
    assert "completed" in looked["opened"], looked
    assert grid["errors"] == 0 and grid["cut"] == [], grid
    assert grid["videos"] and all(v["error"] is None and v["width"] > 0 for v in grid["videos"]), grid
    assert all(v["poster"].startswith("data:image/") for v in grid["videos"]), grid
    assert state["error"] is None and state["width"] > 0, state
    assert abs(state["duration"] - 4) < 0.5, state
    assert state["src"].startswith(server.url.split("/tree")[0]), state  # served by Jupyter
    assert (root / "sora_runs" / "history.sqlite").is_file()
    print(f"Notebook 7: {took:.1f} s")


def _card_and_history(page: Any, widget: Any) -> dict[str, Any]:
    """As a user in Notebook 7: unfold the newest card's actions, then open the History tab and a
    run from its gallery; screenshot both (artifacts/notebook7-card.png, notebook7-history.png)
    and return what was cut, how many tiles there were, their posters' widths and the opened run."""
    card = widget.locator(".sora-results .sora-run-view").first
    _open_section(card, "Actions, parameters and log")
    card.locator(".sora-rating button").first.wait_for()
    card_cut = _cut(card)
    _screenshot(page, card, "notebook7-card.png", 1400)
    widget.locator(".lm-TabBar-tab, .p-TabBar-tab", has_text="History").first.click()
    tiles = widget.locator(".sora-tile")
    tiles.first.wait_for()
    tile_images = widget.locator(".sora-tile img").evaluate_all(
        "imgs => Promise.all(imgs.map(i => i.decode().then(() => i.naturalWidth, () => 0)))")
    tiles.first.click()
    history = widget.locator(".sora-history-view")
    opened = history.locator(".sora-run-view .sora-summary", has_text="completed")
    opened.wait_for()
    history_cut = _cut(history)
    _screenshot(page, history, "notebook7-history.png", 1400)
    return {"card_cut": card_cut, "history_cut": history_cut, "tiles": tiles.count(),
            "tile_images": tile_images, "opened": opened.inner_text()}


def _compare_grid(page: Any, url: str) -> dict[str, Any]:
    """Run the compare notebook in Notebook 7 until its first grid's videos load; screenshot the
    grid (artifacts/notebook7-grid.png) and return its videos, cut texts and error outputs."""
    page.goto(url)
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    _run_all(page)
    grid = page.locator(".sora-grid").first
    grid.wait_for(timeout=VIDEO_MS)
    videos = "el => [...el.querySelectorAll('video')]"
    page.wait_for_function(f"el => {{ const vs = ({videos})(el); return vs.length > 0 && "
                           "vs.every(v => v.error || v.readyState >= 2); }",
                           arg=grid.element_handle(), timeout=VIDEO_MS)
    grid.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    grid.screenshot(path=str(ARTIFACTS / "notebook7-grid.png"))
    return {"videos": grid.evaluate(f"el => ({videos})(el).map(v => ({{poster: v.poster, "
                                    "error: v.error && v.error.code, width: v.videoWidth}))"),
            "cut": _cut(grid),
            "errors": page.locator("[data-mime-type='application/vnd.jupyter.error']").count()}


def _run_all(page: Any, tries: int = 3) -> None:
    """Run > Run All Cells until a cell shows it ran or runs: on a loaded machine Notebook 7 (and
    JupyterLab) can take the first click while still swapping in the notebook's shared document,
    and drop it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    ran = "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]" \
          ".some(p => /\\[[0-9*]+\\]/.test(p.innerText))"
    for _ in range(tries):
        _run_menu(page, "Run All Cells")
        try:
            page.wait_for_function(ran, timeout=20_000)
            return
        except PlaywrightTimeout:
            continue
    raise AssertionError(f"Run All Cells ran nothing, {tries} times")


# --- Voila: `sora-widgets app` --------------------------------------------------------------------


def _app(tmp_path: Path, *options: str) -> tuple[list[str], Path, dict[str, str]]:
    """`sora-widgets app` as a user runs it in a checkout (a copy: see `_checkout`), on a free
    port: (its command, the checkout, its environment)."""
    checkout = _checkout(tmp_path)
    argv = [sys.executable, "-m", "sora_widgets.cli", "app", *options, "--no-browser",
            f"--port={_free_port()}", "--Voila.port_retries=0", "--Voila.ip=127.0.0.1"]
    return argv, checkout, _user_environment(tmp_path, PYTHONPATH=str(checkout))


VOILA_URL = r"http://127\.0\.0\.1:\d+/"


def _no_code(page: Any) -> tuple[int, int, str]:
    """(code cells, code cells showing their input, the page's text)."""
    cells = page.locator(".jp-CodeCell")
    shown = page.locator(".jp-CodeCell:not(.jp-mod-noInput), .jp-CodeCell .jp-InputArea, "
                         ".cm-editor, .CodeMirror")
    return cells.count(), shown.count(), page.locator("body").inner_text()


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_app_serves_the_teaching_notebook_without_code_and_its_video_plays(
        tmp_path: Path) -> None:
    """`sora-widgets app`: the teaching notebook as a page, outputs and no code; its live run's
    preview video plays from the run folder (served through Voila's file allow-list)."""
    argv, root, env = _app(tmp_path)
    started = time.monotonic()
    with _serve(argv, root=root, env=env, log=tmp_path / "voila.log",
                url=VOILA_URL) as server, _chromium_page("voila-teaching") as page:
        page.goto(server.url)
        state = _play_video(page, page.locator("body"), ARTIFACTS / "voila-teaching.png")
        cells, shown, text = _no_code(page)
        with urllib.request.urlopen(state["src"], timeout=30) as response:  # via /voila/files/
            served = response.geturl(), response.headers["Content-Type"]
    took = time.monotonic() - started

    assert cells >= 10 and shown == 0, (cells, shown)
    assert "def dry_run" not in text and "import sora_widgets" not in text
    assert '"duration": 12' in text and "Refused before sending" in text  # the dry runs' outputs
    assert state["error"] is None and abs(state["duration"] - 4) < 0.5, state
    assert "/sora_runs/media/" in state["src"], state
    assert "/voila/files/sora_runs/media/" in served[0] and served[1] == "video/mp4", served
    assert (root / "notebooks" / "sora_runs" / "history.sqlite").is_file()  # beside the notebook
    print(f"Voila (teaching): {took:.1f} s")


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_app_runs_the_quickstart_panel_and_plays_its_video(tmp_path: Path) -> None:
    """`sora-widgets app --notebook quickstart.ipynb`: the panel works in Voila, no code shows."""
    argv, root, env = _app(tmp_path, "--notebook", "notebooks/quickstart.ipynb")
    started = time.monotonic()
    with _serve(argv, root=root, env=env, log=tmp_path / "voila.log",
                url=VOILA_URL) as server, _chromium_page("voila-quickstart") as page:
        page.goto(server.url)
        panel, generate = _panel(page)
        _generate(page, panel, generate, "example.png")
        state = _play_video(page, panel, ARTIFACTS / "voila-quickstart.png")
        _, shown, text = _no_code(page)
    took = time.monotonic() - started

    assert shown == 0 and "panel = sw.Panel()" not in text and "import sora_widgets" not in text
    assert state["error"] is None and state["width"] > 0, state
    assert abs(state["duration"] - 4) < 0.5, state
    assert PROMPT in text
    assert (root / "notebooks" / "sora_runs" / "history.sqlite").is_file()
    print(f"Voila (quickstart panel): {took:.1f} s")


# --- `sora-widgets lab` and the pre-save hook ---------------------------------------------------


@contextmanager
def _lab(tmp_path: Path) -> Iterator[Server]:
    """`sora-widgets lab --no-browser`, in a copy of the checkout, as a user starts it."""
    checkout = _checkout(tmp_path)
    env = _user_environment(tmp_path, PYTHONPATH=str(checkout))
    argv = [sys.executable, "-m", "sora_widgets.cli", "lab", "--no-browser",
            f"--port={_free_port()}", "--ServerApp.port_retries=0"]
    url = r"http://127\.0\.0\.1:\d+/lab/tree/quickstart\.ipynb\?token=\w+"
    with _serve(argv, root=checkout, env=env, url=url, log=tmp_path / "lab.log") as server:
        yield server


def _save(page: Any, path: Path) -> bool:
    """Ctrl+S in JupyterLab; whether `path` was written within 30 s."""
    before = path.stat().st_mtime_ns
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    return path.stat().st_mtime_ns != before


def _put(server: Server, path: str, notebook: dict[str, Any]) -> None:
    """Save `notebook` at `path` through the server's contents API, as a front end does."""
    base, token = server.url.split("/lab/tree/")[0], server.url.split("token=")[1]
    request = urllib.request.Request(
        f"{base}/api/contents/{path}", method="PUT",
        data=json.dumps({"type": "notebook", "format": "json", "content": notebook}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201)


def _as_saved_by_a_front_end(notebook: dict[str, Any]) -> dict[str, Any]:
    """`notebook` as JupyterLab, Notebook 7 or VS Code save it after a run."""
    saved = copy.deepcopy(notebook)
    saved["metadata"].update(
        language_info={"codemirror_mode": {"name": "ipython", "version": 3},
                       "file_extension": ".py", "mimetype": "text/x-python", "name": "python",
                       "nbconvert_exporter": "python", "pygments_lexer": "ipython3",
                       "version": "3.11.2"},
        widgets={"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                               "version_minor": 0}},
        vscode={"interpreter": {"hash": "0" * 64}})
    for number, cell in enumerate(saved["cells"], 1):
        cell["metadata"].update(trusted=True, scrolled=True, execution={
            "iopub.execute_input": "2026-12-02T10:00:00.000Z",
            "shell.execute_reply": "2026-12-02T10:00:01.000Z"})
        if cell["cell_type"] == "code":
            cell["metadata"]["collapsed"] = False
            cell["execution_count"] = number
            cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "ran\n"}]
    return saved


@pytest.mark.browser
@pytest.mark.timeout(600)
def test_lab_prints_the_quickstarts_url_and_saves_leave_the_checkout_clean(
        tmp_path: Path) -> None:
    """`sora-widgets lab --no-browser` prints the quickstart's own URL, which answers 200; the
    quickstart run in that JupyterLab and saved (Ctrl+S) is byte for byte the committed file;
    a user's notebook saved there keeps its outputs but loses the volatile metadata."""
    with _lab(tmp_path) as server:
        assert _status(server.url) == 200
        quickstart = server.root / "notebooks" / "quickstart.ipynb"
        committed = quickstart.read_bytes()
        with _chromium_page("lab-saved") as page:
            page.goto(server.url)
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
            _run_all(page)
            page.locator(".jp-OutputArea-output table.dataframe").first.wait_for()
            page.screenshot(path=str(ARTIFACTS / "lab-saved.png"))
            page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})
            # twice: the file on disk (no outputs) differs from the page's notebook after the
            # first save; the second must not ask whether to overwrite a changed file
            saved = [_save(page, quickstart), _save(page, quickstart)]
            dialogs = page.locator(".jp-Dialog").count()

        mine = _as_saved_by_a_front_end(json.loads(committed))
        _put(server, "mine.ipynb", mine)
        written = json.loads((server.root / "notebooks" / "mine.ipynb").read_text("utf-8"))

    assert saved == [True, True], "JupyterLab did not save the quickstart"
    assert dialogs == 0, "JupyterLab asked about the saved file"
    assert quickstart.read_bytes() == committed, "the saved quickstart differs from the commit"
    assert written["metadata"]["language_info"] == {"name": "python"}
    assert "vscode" not in written["metadata"]
    assert "widgets" in written["metadata"]  # a user's saved widget state is theirs to keep
    code = [cell for cell in written["cells"] if cell["cell_type"] == "code"]
    assert all(cell["outputs"] and cell["execution_count"] for cell in code)
    assert all(not {"trusted", "scrolled", "execution"} & set(cell["metadata"])
               for cell in written["cells"])


# --- the hook alone -----------------------------------------------------------------------------


class _Contents:
    """What the hook reads of Jupyter's contents manager."""

    def __init__(self, root_dir: Path) -> None:
        self.root_dir = str(root_dir)


def test_the_example_notebooks_are_listed_and_committed_clean() -> None:
    """Every notebook in notebooks/ is an example (saved without outputs), and is committed as
    the hook would save it: no outputs, no volatile metadata, in nbformat's own layout."""
    assert sorted(EXAMPLE_NOTEBOOKS) == sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    for name in EXAMPLE_NOTEBOOKS:
        text = (NOTEBOOKS / name).read_text(encoding="utf-8")
        notebook = json.loads(text)
        assert clean_notebook(copy.deepcopy(notebook), outputs=True) == notebook, name
        assert nbformat.writes(nbformat.from_dict(notebook)) + "\n" == text, name


@pytest.mark.parametrize("name", EXAMPLE_NOTEBOOKS)
def test_an_example_saved_after_a_run_is_the_committed_file(name: str) -> None:
    committed = json.loads((NOTEBOOKS / name).read_text(encoding="utf-8"))
    model = {"type": "notebook", "content": _as_saved_by_a_front_end(committed)}
    pre_save_hook(model, f"/{name}", _Contents(NOTEBOOKS))
    assert model["content"] == committed


def test_other_notebooks_keep_outputs_and_widget_state(tmp_path: Path) -> None:
    saved = _as_saved_by_a_front_end(json.loads((NOTEBOOKS / "quickstart.ipynb").read_text()))
    for root, path in ((tmp_path, "quickstart.ipynb"), (NOTEBOOKS, "copy of quickstart.ipynb"),
                       (NOTEBOOKS.parent, "quickstart.ipynb")):
        model = {"type": "notebook", "content": copy.deepcopy(saved)}
        pre_save_hook(model, path, _Contents(root))
        content = model["content"]
        assert content["cells"][1]["outputs"] and content["cells"][1]["execution_count"] == 2
        assert "widgets" in content["metadata"] and "vscode" not in content["metadata"]
        assert content["metadata"]["language_info"] == {"name": "python"}
        assert content["cells"][1]["metadata"] == {"collapsed": False}


def test_the_hook_leaves_files_and_unknown_managers_alone() -> None:
    text = {"type": "file", "format": "text", "content": "x"}
    pre_save_hook(text, "a.txt", _Contents(NOTEBOOKS))
    assert text == {"type": "file", "format": "text", "content": "x"}
    notebook = {"type": "notebook", "content": {"metadata": {}, "cells": [
        {"cell_type": "code", "metadata": {"trusted": True}, "outputs": [{}],
         "execution_count": 1, "source": ""}]}}
    pre_save_hook(notebook, "quickstart.ipynb", object())  # a manager with no root_dir
    assert notebook["content"]["cells"][0] == {"cell_type": "code", "metadata": {},
                                               "outputs": [{}], "execution_count": 1,
                                               "source": ""}


def test_the_config_installs_the_hook_and_lets_voila_serve_media() -> None:
    config: Any = type("Config", (), {})()
    config.ContentsManager = type("Section", (), {})()
    exec((CONFIG_DIR / "jupyter_server_config.py").read_text(), {"get_config": lambda: config})
    assert config.ContentsManager.pre_save_hook == "sora_widgets.cli.jupyter.pre_save_hook"
    [allowed] = json.loads((CONFIG_DIR / "voila.json").read_text())["VoilaConfiguration"][
        "file_allowlist"]
    for name in ("sora_runs/media/videos/1.video.mp4", "a/b.webm", "x.JPG", "example.png"):
        assert re.fullmatch(allowed, name, re.IGNORECASE), name
    for name in ("sora_runs/history.sqlite", "quickstart.ipynb", "secret.env", "a.py"):
        assert not re.fullmatch(allowed, name, re.IGNORECASE), name


# --- the commands -------------------------------------------------------------------------------


@pytest.mark.parametrize("as_root", [True, False])
def test_lab_command_opens_the_notebooks_own_page(tmp_path: Path, as_root: bool,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", "key-id:never-in-a-repr")
    notebook = tmp_path / "my runs" / "a b.ipynb"
    command = server_command("lab", notebook, ["--port", "9999"], as_root=as_root)
    assert command.argv == [sys.executable, "-m", "jupyterlab",
                            f"--ServerApp.root_dir={notebook.parent}",
                            "--LabApp.default_url=/lab/tree/a%20b.ipynb",
                            *(["--allow-root"] if as_root else []), "--port", "9999"]
    assert command.env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(CONFIG_DIR)
    assert command.env["FAL_KEY"] == "key-id:never-in-a-repr"  # the server's kernels need it
    assert "never-in-a-repr" not in repr(command)
    again = server_command("lab", notebook, ["--allow-root"], as_root=True)
    assert again.argv.count("--allow-root") == 1


def test_app_command_runs_voila_on_the_notebook(tmp_path: Path) -> None:
    notebook = tmp_path / "teaching.ipynb"
    command = server_command("app", notebook, ["--port=8867"], as_root=True)
    assert command.argv == [sys.executable, "-m", "voila", str(notebook), "--port=8867"]


def test_extra_arguments_reach_the_server_and_others_are_refused(
        capsys: pytest.CaptureFixture[str]) -> None:
    from sora_widgets.cli.commands import main

    assert main(["lab", "--dry-run", "--no-browser", "--port", "9999", "--",
                 "--ServerApp.ip=0.0.0.0"]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("--no-browser --port 9999 --ServerApp.ip=0.0.0.0"), out
    assert "--LabApp.default_url=/lab/tree/quickstart.ipynb" in out
    assert main(["app", "--dry-run"]) == 0
    assert str(NOTEBOOKS / "teaching.ipynb") in capsys.readouterr().out
    assert main(["app", "--dry-run", str(NOTEBOOKS / "quickstart.ipynb"), "--port=1"]) == 0
    assert capsys.readouterr().out.rstrip().endswith(
        f"-m voila {NOTEBOOKS / 'quickstart.ipynb'} --port=1")
    assert main(["history", "--port", "1"]) == 2
    assert "unrecognized arguments: --port 1" in capsys.readouterr().err


def test_an_installed_package_opens_a_copy_of_its_notebooks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed from a wheel (no checkout beside it), the notebooks are copied to a working
    folder once, so runs and saves never land in site-packages."""
    from sora_widgets.cli import jupyter as _jupyter

    package = tmp_path / "site-packages" / "sora_widgets"
    shutil.copytree(NOTEBOOKS, package / "notebooks",
                    ignore=shutil.ignore_patterns("sora_runs", ".ipynb_checkpoints"))
    (package / "notebooks" / "sora_runs").mkdir()
    monkeypatch.chdir(tmp_path)
    opened = _jupyter.example_notebook("teaching.ipynb", package=package)
    assert opened == tmp_path / _jupyter.WORKING_COPY / "teaching.ipynb"
    assert (opened.parent / "example.png").is_file()
    assert not (opened.parent / "sora_runs").exists()
    opened.write_text("edited")
    assert _jupyter.example_notebook("teaching.ipynb", package=package) == opened
    assert opened.read_text() == "edited"
