"""Serving the notebooks: how `sora-widgets lab` and `sora-widgets app` start Jupyter, and the
hook that keeps saved notebooks free of what changes on every run.

`./scripts/demo` runs `sora-widgets lab`, so both start JupyterLab one way: on the notebook's
folder, with the notebook's own URL as the one printed and opened (not the Launcher's),
`--allow-root` when run as root, and the caller's extra arguments passed on. Both servers get
`CONFIG_DIR` on `JUPYTER_CONFIG_PATH`: its `jupyter_server_config.py` installs `pre_save_hook`,
its `voila.json` lets Voila serve the videos and posters beside a notebook.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

__all__ = ["CONFIG_DIR", "EXAMPLE_NOTEBOOKS", "WORKING_COPY", "ServerCommand", "clean_notebook",
           "example_notebook", "pre_save_hook", "server_command", "server_environment"]

PACKAGE = Path(__file__).resolve().parent.parent  # the installed sora_widgets folder
#: the folder put first on JUPYTER_CONFIG_PATH for the servers `sora-widgets` starts
CONFIG_DIR = PACKAGE / "jupyter_config"
#: the notebooks this project ships; in its own folders they are saved without outputs
EXAMPLE_NOTEBOOKS = ("compare_snapshots.ipynb", "history_analysis.ipynb", "quickstart.ipynb",
                     "teaching.ipynb")
#: where an installed package's notebooks are copied to be opened (never served from site-packages)
WORKING_COPY = "sora-widgets-notebooks"

Frontend = Literal["lab", "app"]
Notebook = MutableMapping[str, Any]
#: notebook metadata that only records the machine or the last run
_VOLATILE_NOTEBOOK = ("vscode", "colab", "accelerator", "gpuClass")
#: cell metadata that only records the last run or how the page was last scrolled
_VOLATILE_CELL = ("execution", "ExecuteTime", "trusted", "scrolled")
#: cell metadata about outputs, dropped with them
_OUTPUT_CELL = ("collapsed",)


def clean_notebook(notebook: Notebook, *, outputs: bool) -> Notebook:
    """Drop from `notebook` (in place; returned) what changes on every run: execution timing,
    trust, scroll state, the kernel's version and editor leftovers; with `outputs`, also every
    output, execution count and the saved widget state."""
    metadata = notebook.setdefault("metadata", {})
    for key in _VOLATILE_NOTEBOOK:
        metadata.pop(key, None)
    language = metadata.get("language_info")
    if isinstance(language, dict) and "name" in language:
        metadata["language_info"] = {"name": language["name"]}
    if outputs:
        metadata.pop("widgets", None)
    for cell in notebook.get("cells", ()):
        cell_metadata = cell.setdefault("metadata", {})
        for key in _VOLATILE_CELL + (_OUTPUT_CELL if outputs else ()):
            cell_metadata.pop(key, None)
        jupyter = cell_metadata.get("jupyter")
        if outputs and isinstance(jupyter, dict):
            jupyter.pop("outputs_hidden", None)
            if not jupyter:
                del cell_metadata["jupyter"]
        if outputs and cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return notebook


def pre_save_hook(model: dict[str, Any], path: str, contents_manager: Any = None,
                  **_kwargs: Any) -> None:
    """Jupyter server's pre-save hook: every notebook is saved through `clean_notebook`; the
    example notebooks in this project's own folders also lose their outputs, so running them
    (as `./scripts/demo` does) leaves a git checkout clean."""
    content = model.get("content")
    if model.get("type") != "notebook" or not isinstance(content, dict):
        return
    clean_notebook(content, outputs=_is_example(contents_manager, path))


def _is_example(contents_manager: Any, path: str) -> bool:
    """Whether `path` (relative to the server's root) is one of the shipped example notebooks in
    the source checkout's notebooks/ or the installed package's copy."""
    root = getattr(contents_manager, "root_dir", None)
    if not root:
        return False
    where = Path(root, path.strip("/")).resolve()
    return where.name in EXAMPLE_NOTEBOOKS and where.parent in _example_folders()


def _example_folders() -> list[Path]:
    return [folder.resolve() for folder in (PACKAGE.parent / "notebooks", PACKAGE / "notebooks")
            if (folder / "quickstart.ipynb").is_file()]


def example_notebook(name: str, *, copy_to: Path | None = None, package: Path = PACKAGE) -> Path | None:
    """The shipped notebook `name`: in the source checkout; else in ./notebooks; else the
    installed `package`'s copy, first copied with its images to `copy_to` (default
    ./sora-widgets-notebooks) so that runs and saves never land in site-packages."""
    checkout = package.parent / "notebooks" / name
    local = Path("notebooks") / name
    bundled = package / "notebooks" / name
    if checkout.is_file():
        return checkout
    if local.is_file():
        return local
    if not bundled.is_file():
        return None
    target = copy_to or Path.cwd() / WORKING_COPY
    if not (target / name).is_file():
        shutil.copytree(bundled.parent, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("sora_runs", ".ipynb_checkpoints"))
        print(f"Copied the example notebooks to {target}", file=sys.stderr)
    return target / name


@dataclass(frozen=True)
class ServerCommand:
    """A command that starts Jupyter on one notebook, the URL path it opens and its environment
    (left out of the repr: it holds the caller's environment, keys included)."""

    argv: list[str]
    url_path: str
    env: dict[str, str] = field(repr=False)

    def shell(self) -> str:
        """The command as one shell line, with the environment variable it sets."""
        return shlex.join([f"JUPYTER_CONFIG_PATH={self.env['JUPYTER_CONFIG_PATH']}", *self.argv])


def server_command(frontend: Frontend, notebook: Path, extra: Sequence[str] = (), *,
                   as_root: bool | None = None) -> ServerCommand:
    """The command for `frontend` ("lab": JupyterLab, "app": Voila) on `notebook`.

    JupyterLab serves the notebook's folder and makes the notebook's own page its default URL,
    so that is the URL it prints and opens; as root it gets `--allow-root` (Voila needs none).
    `extra` comes last, so the caller's options win."""
    notebook = notebook.resolve()
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    if frontend == "lab":
        url_path = "/lab/tree/" + quote(notebook.name)
        argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={notebook.parent}",
                f"--LabApp.default_url={url_path}"]
        if as_root and "--allow-root" not in extra:
            argv.append("--allow-root")
    else:
        url_path = "/"
        argv = [sys.executable, "-m", "voila", str(notebook)]
    return ServerCommand([*argv, *extra], url_path, server_environment())


def server_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with CONFIG_DIR first on JUPYTER_CONFIG_PATH."""
    env = dict(os.environ if base is None else base)
    paths = [str(CONFIG_DIR), *filter(None, env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep))]
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env
