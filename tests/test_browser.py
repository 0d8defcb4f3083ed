"""End to end in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by Playwright.

The quickstart notebook is opened and run, a prompt and an image are typed into the panel,
Generate is clicked, and the test waits until the panel's `<video>` really plays in Chromium.
A screenshot is kept at artifacts/quickstart.png. Nothing is downloaded: the browser is
/usr/bin/chromium (`apt-get install chromium`), the backend the offline preview.
"""

from __future__ import annotations

import importlib.util
import json
import os
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
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
KERNEL_AND_RENDER_MS = 180_000
VIDEO_MS = 120_000
PROMPT = "A slow zoom out over green hills at sunrise"

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
    """In CI a missing browser is a failure, never a skip; locally it may be skipped."""
    problem = None
    if not CHROMIUM.is_file():
        problem = f"{CHROMIUM} is missing: apt-get install chromium"
    elif importlib.util.find_spec("playwright") is None:
        problem = "the playwright Python package is missing: pip install -e '.[test]'"
    if problem is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"The browser test cannot run in CI: {problem}.")
    pytest.skip(problem)


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


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """JupyterLab on a free port of 127.0.0.1 serving a temporary copy of notebooks/."""
    _require_chromium()
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", root,
                    ignore=shutil.ignore_patterns("sora_runs", ".ipynb_checkpoints", "*.html"))
    settings = tmp_path / "lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    # no SORA_WIDGETS_HOME: runs go beside the notebook, as for a user; no key: offline preview
    env = {k: v for k, v in os.environ.items()
           if k != "SORA_WIDGETS_HOME" and not k.startswith("FAL_KEY")}
    env.update(JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab-workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter-runtime"))
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


def test_quickstart_panel_generates_a_video_that_plays(lab: Lab) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                     headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(KERNEL_AND_RENDER_MS)
        console: list[str] = []
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        try:
            page.goto(f"{lab.url}/lab/tree/quickstart.ipynb?token={lab.token}")
            page.locator(".jp-Notebook .jp-Cell").first.wait_for()
            # the status bar names the kernel once it is connected; before that, a "Run All"
            # can be lost while the kernel starts
            page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()

            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

            # the last cell's DataFrame means every cell ran; then the panel is ready for input
            page.locator(".jp-OutputArea-output table.dataframe").first.wait_for()
            generate = page.locator(".jp-OutputArea-output button", has_text="Generate").first
            generate.wait_for()
            panel = page.locator(".jp-Cell").filter(has=generate)
            panel.scroll_into_view_if_needed()
            assert panel.get_by_text("Click to show javascript error").count() == 0, \
                "a control of the panel failed to render"
            panel.locator("textarea").first.fill(PROMPT)
            panel.get_by_placeholder("https://... or a path on this machine").fill("example.png")
            page.wait_for_function("b => !b.disabled", arg=generate.element_handle())
            generate.click()

            video = panel.locator("video").first
            video.wait_for(state="attached", timeout=VIDEO_MS)
            handle = video.element_handle()
            page.wait_for_function("v => v.readyState >= 2", arg=handle, timeout=VIDEO_MS)
            handle.evaluate("v => v.play()")
            page.wait_for_function("v => v.currentTime > 1", arg=handle, timeout=VIDEO_MS)
            state = handle.evaluate("v => ({duration: v.duration, width: v.videoWidth, "
                                    "error: v.error && v.error.code})")
            handle.evaluate("v => { v.pause(); v.scrollIntoView({block: 'center'}); }")
            page.wait_for_timeout(500)  # let the paused frame paint before the screenshot
            page.screenshot(path=str(ARTIFACTS / "quickstart.png"))
        except Exception:  # keep what the browser showed and logged, then report the failure
            page.screenshot(path=str(ARTIFACTS / "quickstart-failure.png"))
            (ARTIFACTS / "quickstart-console.txt").write_text("\n".join(console), encoding="utf-8")
            raise
        finally:
            browser.close()

    assert state["error"] is None and state["width"] > 0
    assert abs(state["duration"] - 4) < 0.5, state  # the requested duration (the default, 4 s)
    assert (lab.root / "sora_runs" / "history.sqlite").is_file()  # runs land beside the notebook
