"""scripts/demo and scripts/_setup.sh, run by bash in a copy of the repository's scripts; the
extras and the licence pyproject.toml promises.

The copy has a stand-in .venv: its `python` records how it was called (so set-up is checked
without installing anything) and its `sora-widgets` runs the package under test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import sora_widgets as sw

ROOT = Path(__file__).resolve().parent.parent

RECORDING_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$(dirname "$0")/../calls.txt"
"""
SORA_WIDGETS = f"""#!/usr/bin/env bash
PYTHONPATH={Path(sw.__file__).parents[1]} exec {sys.executable} -m sora_widgets.cli "$@"
"""


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """scripts/ and pyproject.toml beside a stand-in .venv."""
    shutil.copytree(ROOT / "scripts", tmp_path / "scripts")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    _executable(tmp_path / ".venv" / "bin" / "python", RECORDING_PYTHON)
    _executable(tmp_path / ".venv" / "bin" / "sora-widgets", SORA_WIDGETS)
    return tmp_path


def _bash(repo: Path, script: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_CONFIG_PATH"}
    return subprocess.run(["bash", str(repo / script), *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd="/")


def _calls(repo: Path) -> list[str]:
    path = repo / ".venv" / "calls.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_setup_installs_the_extra_once_per_change_of_pyproject(repo: Path) -> None:
    run = 'source scripts/_setup.sh && setup_venv lab'
    subprocess.run(["bash", "-c", run], cwd=repo, check=True, capture_output=True)
    assert _calls(repo) == ["-m pip install -q --upgrade pip", "-m pip install -q -e .[lab]"]
    subprocess.run(["bash", "-c", run], cwd=repo, check=True, capture_output=True)
    assert len(_calls(repo)) == 2  # the stamp says it is installed
    with (repo / "pyproject.toml").open("a") as pyproject:
        pyproject.write("\n# changed\n")
    subprocess.run(["bash", "-c", run], cwd=repo, check=True, capture_output=True)
    assert len(_calls(repo)) == 4


def test_demo_is_sora_widgets_lab(repo: Path) -> None:
    """The demo sets up .venv, then runs `sora-widgets lab` with its arguments: the same command
    (root flag, the quickstart's own page as the default URL, the pre-save hook's config)."""
    args = ("--dry-run", "--no-browser", "--port", "9999")
    demo = _bash(repo, "scripts/demo", *args)
    assert demo.returncode == 0, demo.stderr
    lab = subprocess.run([str(repo / ".venv" / "bin" / "sora-widgets"), "lab", *args],
                         capture_output=True, text=True, timeout=120)
    assert demo.stdout == lab.stdout and demo.stdout.strip()
    line = demo.stdout.strip()
    assert "-m jupyterlab " in line and line.endswith("--no-browser --port 9999")
    assert "--LabApp.default_url=/lab/tree/quickstart.ipynb" in line
    assert ("--allow-root" in line.split()) == (os.geteuid() == 0)
    assert line.startswith("JUPYTER_CONFIG_PATH=") and "jupyter_config" in line.split()[0]


def test_demo_passes_a_notebook_on(repo: Path) -> None:
    demo = _bash(repo, "scripts/demo", "--dry-run", "--notebook",
                 str(ROOT / "notebooks" / "teaching.ipynb"))
    assert demo.returncode == 0, demo.stderr
    assert "--LabApp.default_url=/lab/tree/teaching.ipynb" in demo.stdout


def test_the_extras_bring_what_the_notebooks_and_front_ends_need() -> None:
    import tomllib  # Python >= 3.11, as CI runs
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {name: {Requirement(req).name for req in reqs}
              for name, reqs in project["optional-dependencies"].items()}
    assert {"jupyterlab", "notebook", "ipykernel", "matplotlib"} <= extras["lab"]
    assert {"voila", "ipykernel"} <= extras["app"]
    assert extras["lab"] | extras["app"] | extras["parquet"] | extras["charts"] <= extras["test"]
    assert project["license"] == "MIT"
    license_text = (ROOT / "LICENSE").read_text()
    assert license_text.startswith("MIT License") and "2026 sora-widgets authors" in license_text

