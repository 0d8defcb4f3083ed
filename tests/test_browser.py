"""End to end in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

The quickstart notebook is opened and run, a prompt and an image are typed into the panel,
Generate is clicked, and the test waits until the panel's `<video>` really plays in Chromium.
Two backends: the offline preview (no key; artifacts/quickstart.png) and fal through the
session's fake fal server (tests/fakefal.py, a dummy key; artifacts/quickstart-fal.png), so the
kernel's real fal_client submits, follows and fetches over HTTPS. Nothing is downloaded: the
browser is /usr/bin/chromium (`apt-get install chromium`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from fakefal import FakeFal
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
KERNEL_AND_RENDER_MS = 180_000
VIDEO_MS = 120_000
PROMPT = "A slow zoom out over green hills at sunrise"
ENDPOINT = "fal-ai/sora-2/image-to-video"
FAKE_KEY = "fake-key-id:" + "7e57" * 8  # a dummy key, shaped like fal's "id:secret"
FAKE_LOGS = ("Fake fal: starting generation", "Fake fal: encoding video")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]

# Lab settings for a quiet, deterministic page: the kernel starts without asking, every cell is
# attached to the DOM, no news is fetched.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {
        "windowingMode": "none", "autoStartDefaultKernel": True},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False},
}


def _require_chromium() -> None:
    """A missing browser is a failure, never a skip: `./scripts/test` installs Debian's chromium."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: run ./scripts/test, or apt-get install chromium.")
    if importlib.util.find_spec("playwright") is None:
        pytest.fail("The playwright Python package is missing: pip install -e '.[test]'.")


def _user_environment(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's environment: no key, no SORA_WIDGETS_HOME (runs go beside the notebook), quiet
    Lab settings, Jupyter's folders under `tmp_path`."""
    settings = tmp_path / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if k != "SORA_WIDGETS_HOME" and not k.startswith("FAL_KEY")}
    env.update(JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"), **extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Lab:
    """A running JupyterLab: where to reach it and where its notebooks are."""

    url: str
    token: str
    root: Path
    log: Path


def _wait_until_up(proc: subprocess.Popen[bytes], lab: Lab, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"JupyterLab exited ({proc.returncode}):\n"
                                 f"{lab.log.read_text(errors='replace')[-3000:]}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status?token={lab.token}", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer within {timeout_s:.0f} s:\n"
                         f"{lab.log.read_text(errors='replace')[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM lets the server shut its kernels down; its process group is killed if it hangs."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@contextmanager
def _jupyterlab(tmp_path: Path, extra_env: dict[str, str]) -> Iterator[Lab]:
    """JupyterLab on a free port of 127.0.0.1 serving a temporary copy of notebooks/.

    Its kernels inherit its environment: no key unless `extra_env` gives one."""
    _require_chromium()
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", root,
                    ignore=shutil.ignore_patterns("sora_runs", ".ipynb_checkpoints", "*.html"))
    env = _user_environment(tmp_path, **extra_env)
    port, token = _free_port(), secrets.token_hex(16)
    log = tmp_path / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser",
               f"--IdentityProvider.token={token}", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # CI containers often run as root
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=root,
                                start_new_session=True)
    server = Lab(url=f"http://127.0.0.1:{port}", token=token, root=root, log=log)
    try:
        _wait_until_up(proc, server, timeout_s=120)
        yield server
    finally:
        _stop(proc)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab without a fal key: the panel uses the offline preview."""
    with _jupyterlab(tmp_path, {}) as server:
        yield server


@pytest.fixture
def fal_lab(tmp_path: Path, fakefal: FakeFal) -> Iterator[Lab]:
    """JupyterLab whose kernels have a dummy FAL_KEY and reach the session's fake fal server
    (FAL_RUN_HOST, FAL_QUEUE_RUN_HOST and SSL_CERT_FILE, as conftest set them)."""
    with _jupyterlab(tmp_path, {"FAL_KEY": FAKE_KEY, **fakefal.environment()}) as server:
        yield server


@contextmanager
def _chromium_page(name: str, *, trust_any_certificate: bool = False) -> Iterator[Page]:
    """A page in headless Chromium; when the block fails, its screenshot and console log are kept
    as artifacts/<name>-failure.png and <name>-console.txt."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                     headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      ignore_https_errors=trust_any_certificate)
        page = context.new_page()
        page.set_default_timeout(KERNEL_AND_RENDER_MS)
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        passed = False
        try:
            yield page
            passed = True
        finally:
            if not passed:
                page.screenshot(path=str(ARTIFACTS / f"{name}-failure.png"))
                (ARTIFACTS / f"{name}-console.txt").write_text("\n".join(console),
                                                               encoding="utf-8")
            browser.close()


def _open_quickstart(page: Page, lab: Lab) -> None:
    """Open the quickstart and wait until its kernel is connected and idle."""
    page.goto(f"{lab.url}/lab/tree/quickstart.ipynb?token={lab.token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for()
    # the status bar names the kernel once it is connected; before that, a run can be lost
    # while the kernel starts
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()


def _run_menu(page: Page, item: str) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def _panel(page: Page) -> tuple[Locator, Locator]:
    """(the panel's cell, its Generate button), once the panel has rendered without errors."""
    generate = page.locator(".jp-OutputArea-output button", has_text="Generate").first
    generate.wait_for()
    panel = page.locator(".jp-Cell").filter(has=generate)
    panel.scroll_into_view_if_needed()
    assert panel.get_by_text("Click to show javascript error").count() == 0, \
        "a control of the panel failed to render"
    return panel, generate


def _generate(page: Page, panel: Locator, generate: Locator, image: str) -> None:
    """Type the prompt and the image into the panel and click Generate once it is enabled."""
    panel.locator("textarea").first.fill(PROMPT)
    panel.get_by_placeholder("https://... or a path on this machine").fill(image)
    page.wait_for_function("b => !b.disabled", arg=generate.element_handle())
    generate.click()


def _play_video(page: Page, panel: Locator, screenshot: Path) -> dict[str, Any]:
    """Wait for the card's `<video>`, play it past 1 s, screenshot it paused; return its state."""
    video = panel.locator("video").first
    video.wait_for(state="attached", timeout=VIDEO_MS)
    handle = video.element_handle()
    page.wait_for_function("v => v.readyState >= 2", arg=handle, timeout=VIDEO_MS)
    handle.evaluate("v => v.play()")
    page.wait_for_function("v => v.currentTime > 1", arg=handle, timeout=VIDEO_MS)
    state: dict[str, Any] = handle.evaluate(
        "v => ({duration: v.duration, width: v.videoWidth, src: v.currentSrc, "
        "error: v.error && v.error.code})")
    handle.evaluate("v => { v.pause(); v.scrollIntoView({block: 'center'}); }")
    page.wait_for_timeout(500)  # let the paused frame paint before the screenshot
    page.screenshot(path=str(screenshot))
    return state


def _save_and_read(page: Page, lab: Lab) -> dict[str, Any]:
    """Save the open notebook as a user does (Ctrl+S) and return the file read from disk."""
    path = lab.root / "quickstart.ipynb"
    before = path.stat().st_mtime_ns
    page.locator(".jp-Notebook").first.click(position={"x": 5, "y": 5})  # focus, command mode
    page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while path.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert path.stat().st_mtime_ns != before, "the notebook was not saved"
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


def _shut_down_kernels(lab: Lab) -> None:
    """End every session (and its kernel) through Jupyter's REST API, as closing the tab does."""
    headers = {"Authorization": f"token {lab.token}"}
    with urllib.request.urlopen(urllib.request.Request(f"{lab.url}/api/sessions",
                                                       headers=headers), timeout=10) as r:
        sessions = json.load(r)
    for session in sessions:
        request = urllib.request.Request(f"{lab.url}/api/sessions/{session['id']}",
                                         headers=headers, method="DELETE")
        urllib.request.urlopen(request, timeout=30).close()


def _panel_outputs(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    cell = next(c for c in notebook["cells"]
                if c["cell_type"] == "code" and "sw.Panel()" in "".join(c["source"]))
    outputs: list[dict[str, Any]] = cell["outputs"]
    return outputs


def test_quickstart_panel_generates_a_video_that_plays(lab: Lab) -> None:
    """No key: every cell of the quickstart runs, and the panel's preview video plays. Saved,
    the panel's cell holds a summary of that run (sent after the cell had finished); reopened
    without the kernel, the summary shows and the widget's "model not found" is hidden."""
    with _chromium_page("quickstart") as page:
        _open_quickstart(page, lab)
        _run_menu(page, "Run All Cells")
        # the last cell's DataFrame means every cell ran; then the panel is ready for input
        page.locator(".jp-OutputArea-output table.dataframe").first.wait_for()
        panel, generate = _panel(page)
        _generate(page, panel, generate, "example.png")
        state = _play_video(page, panel, ARTIFACTS / "quickstart.png")
        # the summary under the live view follows the run, hidden while the view is there
        summary = panel.locator(".sora-panel-summary")
        summary.filter(has_text="completed").wait_for(state="attached")
        live_summary_visible = summary.first.is_visible()
        saved = _panel_outputs(_save_and_read(page, lab))

        _shut_down_kernels(lab)
        reopened = page.context.new_page()
        reopened.goto(f"{lab.url}/lab/tree/quickstart.ipynb?token={lab.token}")
        cell = reopened.locator(".jp-Cell").filter(has=reopened.locator(".sora-panel-summary"))
        cell.locator(".sora-panel-summary").filter(has_text=PROMPT).wait_for()  # visible
        # the new kernel has no model for the saved view: the renderer settles on its error
        reopened.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
        cell.get_by_text("Loading widget...").wait_for(state="detached")
        cell.scroll_into_view_if_needed()
        reopened.screenshot(path=str(ARTIFACTS / "quickstart-reopened.png"))
        reopened_text = cell.inner_text()

    assert state["error"] is None and state["width"] > 0
    assert abs(state["duration"] - 4) < 0.5, state  # the requested duration (the default, 4 s)
    assert (lab.root / "sora_runs" / "history.sqlite").is_file()  # runs land beside the notebook
    assert not live_summary_visible, "the summary showed under the live panel"
    kinds = [next(iter(o.get("data", {})), o["output_type"]) for o in saved]
    assert kinds == ["application/vnd.jupyter.widget-view+json", "text/html"], kinds
    html = "".join(saved[1]["data"]["text/html"])
    assert PROMPT in html and "completed" in html and "<video src='sora_runs/media/" in html
    assert PROMPT in reopened_text and "completed" in reopened_text, reopened_text
    assert "Error displaying widget" not in reopened_text, "the summary's CSS hides the widget's error"


@pytest.fixture
def fake_sora(fakefal: FakeFal, tmp_path: Path) -> FakeFal:
    """The fake fal server as Sora for this test: it accepts only FAKE_KEY, serves a real 4 s H.264
    MP4 with a JPEG thumbnail after a short queue and run with two log lines, and serves
    notebooks/example.png as input.png (the panel's image must be a URL: a local file would be
    uploaded to fal's CDN, which no environment variable redirects)."""
    from sora_widgets.backends._render import render_preview

    rendered = render_preview({"prompt": PROMPT, "duration": 4,
                               "image_url": str(ROOT / "notebooks" / "example.png")},
                              ENDPOINT, tmp_path / "fake-media", "fake", scale=0.25)
    result: dict[str, Any] = {"video_id": "video_fake"}
    for key, name in (("video", "video.mp4"), ("thumbnail", "thumbnail.jpg"),
                      ("spritesheet", "spritesheet.jpg")):
        local = Path(rendered[key]["file_name"])
        fakefal.media[name] = (tmp_path / "fake-media" / local).read_bytes()
        result[key] = {**rendered[key], "url": fakefal.media_url(name), "file_name": name}
    fakefal.media["input.png"] = (ROOT / "notebooks" / "example.png").read_bytes()
    fakefal.accepted_keys = {FAKE_KEY}
    fakefal.configure(queue_s=1.0, run_s=2.0, logs=FAKE_LOGS, result=result)
    return fakefal


def test_quickstart_panel_on_fal_plays_the_fake_servers_video(fal_lab: Lab,
                                                              fake_sora: FakeFal) -> None:
    """A dummy key: the whole quickstart runs through the kernel's real fal_client against the
    fake fal server; sw.generate's video and the panel's video both play from local copies.

    sw.generate(image_url="example.png") would upload the file to fal's real CDN (no environment
    variable redirects uploads), so the run folder's upload cache is seeded first, as a past
    upload would have left it: the file is sent as the fake's URL."""
    from sora_widgets.history import History

    image_url = fake_sora.media_url("input.png")
    example = (fal_lab.root / "example.png").read_bytes()
    History(fal_lab.root / "sora_runs").uploads[hashlib.sha256(example).hexdigest()] = image_url
    # Chromium does not know the fake's test CA: let it show the image field's thumbnail,
    # loaded from the fake as it would be from fal's CDN (the video must not need this, below)
    with _chromium_page("quickstart-fal", trust_any_certificate=True) as page:
        _open_quickstart(page, fal_lab)
        _run_menu(page, "Run All Cells")
        page.locator(".jp-OutputArea-output table.dataframe").first.wait_for()
        code_gen = page.locator(".jp-CodeCell").filter(has_text="gen = sw.generate(")
        code_state = _play_video(page, code_gen, ARTIFACTS / "quickstart-fal-generate.png")
        panel, generate = _panel(page)
        banner = panel.get_by_text("key from FAL_KEY").first
        banner_text = banner.inner_text()
        _generate(page, panel, generate, image_url)
        panel.locator(f"img[src='{image_url}']").first.wait_for()
        state = _play_video(page, panel, ARTIFACTS / "quickstart-fal.png")
        card = panel.locator(".sora-card").first
        card.get_by_text("Actions, parameters and log").click()  # the card's one fold
        card.locator("details summary", has_text="Log (").click()
        log_text = card.locator("details pre").first.inner_text()
        card_text = card.inner_text()
        errors = page.locator("[data-mime-type='application/vnd.jupyter.error']").count()
        html = page.content()

    assert banner_text.startswith("fal.ai") and "Offline" not in banner_text, banner_text
    assert errors == 0, "a notebook cell raised"
    assert state["error"] is None and state["width"] > 0, state
    assert abs(state["duration"] - 4) < 0.5, state
    assert code_state["error"] is None and abs(code_state["duration"] - 4) < 0.5, code_state
    # the card shows the copy the kernel downloaded beside the notebook, served by Jupyter
    assert state["src"].startswith(fal_lab.url) and "/sora_runs/media/" in state["src"], state
    assert re.search(r"backend\s+fal", card_text), card_text
    assert all(line in log_text for line in FAKE_LOGS), log_text
    submits = fake_sora.of_kind("submit")  # sw.generate's (on Kling, a model fal runs), the panel's
    assert len(submits) == 2, [r.path for r in submits]
    assert [r.path for r in submits] == ["/fal-ai/kling-video/v2.1/standard/image-to-video",
                                         f"/{ENDPOINT}"]
    assert all(r.headers["authorization"] == f"Key {FAKE_KEY}" for r in submits)
    assert all(r.json["image_url"] == image_url for r in submits)
    assert submits[1].json["prompt"] == PROMPT
    assert FAKE_KEY not in html and FAKE_KEY.split(":")[1] not in html
