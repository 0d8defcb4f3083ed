"""Where a run folder lives: `$SORA_WIDGETS_HOME` when set and not empty, else `./sora_runs`.

Read at each call, so a notebook that sets the variable after import is honoured. Paths in it are
shown relative to the working folder (`sora_runs/history.sqlite`) by `shown_path`.
"""

from __future__ import annotations

import os
from pathlib import Path


def run_home() -> Path:
    """The run folder (history, media, caches) for this process, as the environment says now."""
    return Path(os.environ.get("SORA_WIDGETS_HOME") or "sora_runs")


def media_dir() -> Path:
    """The run folder's media: videos, thumbnails and input images (by content hash)."""
    return run_home() / "media"


def cache_dir() -> Path:
    """The folder for cached documents from fal (schemas, endpoint status, prices, model lists)."""
    return run_home() / "cache"


def in_working_folder(path: Path) -> str | None:
    """`path` relative to the working folder (as a notebook beside it names it), or None when it
    is outside it (or that folder is gone)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):
        return None


def shown_path(path: Path) -> str:
    """`path` as shown to a person: relative to the working folder when inside it, else as it is."""
    return in_working_folder(path) or str(path)
