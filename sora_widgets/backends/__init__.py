"""Backends run generations: `fal` through fal_client's queue, `preview` offline on this machine.

`resolve_backend(None)` picks fal when a key is set (FAL_KEY, or FAL_KEY_ID with FAL_KEY_SECRET)
and the offline preview otherwise, so a new user's first run always succeeds. May import the
foundations, `schema` and `media`; the history only as a type (the fal upload cache is handed in).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._secrets import key_source
from .base import Backend

if TYPE_CHECKING:
    from ..history.store import History

__all__ = ["Backend", "FalBackend", "PreviewBackend", "key_source", "resolve_backend"]

_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    """FalBackend and PreviewBackend, imported on first use (fal's module loads httpx)."""
    if name == "FalBackend":
        from .fal import FalBackend

        return FalBackend
    if name == "PreviewBackend":
        from .preview import PreviewBackend

        return PreviewBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve_backend(spec: str | Backend | None, *, history: History,
                    cache: dict[tuple[str, str], Backend] | None = None) -> Backend:
    """A backend instance for "fal", "preview", None (fal with a key, else preview) or an instance.

    Instances are reused per kind and run folder in `cache` (a JobRunner's `backends`; without
    one, each call makes a new instance); fal's uploads are remembered in the history file and
    the preview renders into its media folder, so both survive restarts.
    """
    if spec is not None and not isinstance(spec, str):
        return spec
    name = spec or ("fal" if key_source() else "preview")
    if name not in ("fal", "preview"):
        from .._errors import ValidationError

        raise ValidationError([("backend", f'must be "fal", "preview", None or a backend instance '
                                           f"(got {name!r})")])
    if cache is None:
        return _build(name, history)
    cache_key = (name, str(Path(history.path).resolve()))
    with _lock:
        if cache_key not in cache:
            cache[cache_key] = _build(name, history)
        return cache[cache_key]


def _build(name: str, history: History) -> Backend:
    if name == "fal":
        from .fal import FalBackend

        return FalBackend(upload_cache=history.uploads)
    from .preview import PreviewBackend

    return PreviewBackend(media_dir=history.media_dir)
