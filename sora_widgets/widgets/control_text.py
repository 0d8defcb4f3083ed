"""Text controls: a Text box, or a Textarea with a live "n / max" count for long (prompt-like)
text; and JSON text for objects and values of any type. Empty text means not set.
"""

from __future__ import annotations

import json
from typing import Any

import ipywidgets as widgets

from ..schema.fields import Field
from .control_base import NOT_SET, WIDE, FieldControl, show_value

__all__ = ["control_for_object", "control_for_text", "text_shown", "text_value"]

PROMPT_LENGTH = 200  # text fields allowing more characters than this get a Textarea


def text_value(text: str) -> str | None:
    """A text editor's value as the field's: empty text is not set."""
    return text or None


def text_shown(value: Any) -> str:
    """What a text editor shows for the field's `value`: '' when not set."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"must be text, got {type(value).__name__}")
    return value


def control_for_text(field: Field) -> FieldControl:
    """A Textarea with a live "n / max" count for long (prompt-like) text, else a Text box.

    Empty text means not set."""
    long_text = (field.max_length or 0) > PROMPT_LENGTH or "prompt" in field.name
    start = field.default if field.has_default and isinstance(field.default, str) else ""
    placeholder = str(field.examples[0])[:120] if field.examples else NOT_SET
    if not long_text:
        editor = widgets.Text(start, placeholder=placeholder, layout=widgets.Layout(width=WIDE))
        return FieldControl(field, editor, read=text_value, write=text_shown)
    editor = widgets.Textarea(start, placeholder=placeholder, rows=4,
                              layout=widgets.Layout(width=WIDE))
    counter = widgets.HTML(layout=widgets.Layout(flex="0 0 auto"))

    def count(text: str) -> None:
        limit = field.max_length
        over = limit is not None and len(text) > limit
        shown = f"{len(text)} / {limit}" if limit is not None else f"{len(text)}"
        counter.value = f"<small style='color:{'#b00' if over else '#666'}'>{shown}</small>"

    editor.observe(lambda change: count(change.new), "value")
    count(start)
    control = FieldControl(field, editor, read=text_value, write=text_shown, extra=[counter])
    control.counter = counter
    return control


def control_for_object(field: Field) -> FieldControl:
    """JSON text for objects and values of any type; text that is not JSON is a problem."""
    start = show_value(field, _json_shown, field.default) if field.has_default else ""
    editor = widgets.Textarea(start, placeholder="JSON", rows=3, layout=widgets.Layout(width=WIDE))
    control = FieldControl(field, editor, read=_json_value, write=_json_shown)

    def check(change: Any = None) -> None:
        control.problem = _json_problem(editor.value)

    editor.observe(check, "value")
    return control


def _json_shown(value: Any) -> str:
    if value is None:
        return ""
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"must be JSON data (text, numbers, true/false, lists and objects), "
                        f"got {type(value).__name__}") from exc


def _json_value(text: str) -> Any:
    return None if _json_problem(text) or not text.strip() else json.loads(text)


def _json_problem(text: str) -> str:
    if not text.strip():
        return ""
    try:
        json.loads(text)
    except ValueError as exc:
        return f"is not valid JSON: {exc}"
    return ""
