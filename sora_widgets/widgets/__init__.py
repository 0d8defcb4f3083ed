"""Notebook widgets: schema-built controls, the Panel, job cards and the history view.

Controls: `controls.control_for` picks a `control_<family>.py` function (choice, number, text,
list, image), all built on `control_base.FieldControl`. The Panel (panel.py) lays them out, with
its endpoint picker (endpoint_picker.py) and saved-notebook summary (panel_summary.py). A run
is written as HTML in runs.py, shown by card.py and history_view.py; grid.py compares a sweep.

Importing this package imports ipywidgets; `import sora_widgets` does not (the Panel is served
lazily as `sw.Panel`). Views may import every layer below them (schema, media, history,
backends, jobs), never `research` or `cli`.
"""

from __future__ import annotations

from .controls import FieldControl, control_for, is_advanced
from .panel import Panel

__all__ = ["FieldControl", "Panel", "control_for", "is_advanced"]
