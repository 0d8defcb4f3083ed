"""Notebook widgets: schema-built controls, the Panel, job cards and the history view.

Importing this package imports ipywidgets; `import sora_widgets` does not (the Panel is served
lazily as `sw.Panel`). Views may import every layer below them (schema, media, history,
backends, jobs), never `research` or `cli`.
"""

from __future__ import annotations

from .controls import FieldControl, control_for, is_advanced
from .panel import Panel

__all__ = ["FieldControl", "Panel", "control_for", "is_advanced"]
