"""Choice controls: enums and booleans. One rule picks the editor of a choice (an enum, or a
boolean without a default): toggle buttons when every option fits one short row, else a dropdown.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import ipywidgets as widgets

from ..schema.fields import Field
from .control_base import NOT_SET, WIDE, FieldControl, show_value

__all__ = ["control_for_boolean", "control_for_enum", "fits_toggle_buttons"]

TOGGLE_OPTIONS = 7  # a choice becomes toggle buttons with at most this many options,
TOGGLE_OPTION_CHARS = 12  # none longer than this,
TOGGLE_TOTAL_CHARS = 40  # and this many characters in all (counting "not set"): one short row


def fits_toggle_buttons(labels: list[str]) -> bool:
    """The one rule for choices: toggle buttons when the options fit on one short row (at most
    7 of at most 12 characters, 40 in all, "not set" included), a dropdown otherwise. So Sora's
    durations 4 to 20 are buttons like their neighbours, its model snapshots a dropdown."""
    return (len(labels) <= TOGGLE_OPTIONS and all(len(label) <= TOGGLE_OPTION_CHARS for label in labels)
            and sum(len(label) for label in labels) <= TOGGLE_TOTAL_CHARS)


def _options(field: Field, values: Iterable[Any]) -> list[tuple[str, Any]]:
    """(label, value) pairs, with a leading "not set" when the field has no default."""
    pairs = [(str(v), v) for v in values]
    return pairs if field.has_default else [(NOT_SET, None), *pairs]


def _choice(field: Field, pairs: list[tuple[str, Any]]) -> FieldControl:
    """Toggle buttons or a dropdown (`fits_toggle_buttons`) over labels, mapped to and from the
    values they stand for."""
    labels = [label for label, _ in pairs]
    by_label = dict(pairs)

    def write(value: Any) -> str:
        for label, option in pairs:
            if option == value and isinstance(option, bool) == isinstance(value, bool):
                return label
        raise ValueError(f"must be one of {', '.join(labels)}, got {value!r}")

    initial = show_value(field, write, field.default if field.has_default else None)
    if fits_toggle_buttons(labels):
        editor: widgets.Widget = widgets.ToggleButtons(options=labels, value=initial,
                                                      style={"button_width": "auto"})
    else:
        editor = widgets.Dropdown(options=labels, value=initial,
                                  layout=widgets.Layout(width=WIDE, max_width="360px"))
    return FieldControl(field, editor, read=by_label.__getitem__, write=write)


def control_for_enum(field: Field) -> FieldControl:
    """Toggle buttons for a few short options, else a dropdown; "not set" when no default."""
    return _choice(field, _options(field, field.enum or ()))


def control_for_boolean(field: Field) -> FieldControl:
    """A checkbox; a three-way not set / true / false choice when the field has no default."""
    if not field.has_default:
        return _choice(field, _options(field, (True, False)))
    editor = widgets.Checkbox(bool(field.default), indent=False)
    return FieldControl(field, editor, write=_checked)


def _checked(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, got {value!r}")
    return value
