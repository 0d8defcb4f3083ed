"""List controls: a multi-select for enumerated items, else tags (text, whole numbers or
numbers) capped at the field's maxItems. Empty means not set unless the field has a default.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets
import traitlets

from ..schema.fields import Field
from .control_base import WIDE, FieldControl

__all__ = ["control_for_list"]


def control_for_list(field: Field) -> FieldControl:
    """A multi-select for enumerated items, else tags capped at maxItems; empty means not set
    unless the field has a default."""
    if field.item_enum is not None:
        editor: widgets.Widget = widgets.SelectMultiple(options=list(field.item_enum),
                                                        rows=min(len(field.item_enum), 6))
    else:
        cls = {"integer": widgets.IntsInput, "number": widgets.FloatsInput}.get(
            field.item_type or "", widgets.TagsInput)
        editor = cls(value=[], allow_duplicates=False, layout=widgets.Layout(width=WIDE))
        if field.max_items is not None:
            editor.placeholder = f"up to {field.max_items}"
            editor.observe(_cap(field.max_items), "value")
    if field.has_default and isinstance(field.default, list):
        editor.value = tuple(field.default) if isinstance(editor, widgets.SelectMultiple) else field.default

    def read(items: Any) -> list[Any] | None:
        return list(items) if items or field.has_default else None

    def write(value: Any) -> Any:
        if value is not None and not isinstance(value, Iterable):
            raise TypeError(f"must be a list, got {value!r}")
        items = list(value) if value is not None else []
        if field.item_enum is not None and any(item not in field.item_enum for item in items):
            raise ValueError(f"must be a list of {', '.join(map(str, field.item_enum))}, got {value!r}")
        return tuple(items) if isinstance(editor, widgets.SelectMultiple) else items

    return FieldControl(field, editor, read=read, write=write)


def _cap(limit: int) -> Callable[[traitlets.Bunch], None]:
    """An observer that keeps a tags input to its first `limit` items."""
    def handle(change: traitlets.Bunch) -> None:
        if len(change.new) > limit:
            change.owner.value = list(change.new)[:limit]
    return handle
