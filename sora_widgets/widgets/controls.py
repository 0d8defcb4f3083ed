"""Controls built from schema fields: `control_for(field)` picks the `control_for_<kind>`
function of the field's kind; the families live in `control_<family>.py` beside this one.

Every control is a `FieldControl` (control_base.py): a label above its input, the editing
widget, the field's description as wrapped help text, and a message line for problems. Nothing
here knows any endpoint: all of it comes from the `Field`. Widths are relative, so a control
fits the panel's form column however wide the notebook is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..schema.fields import Field
from .control_base import NOT_SET, ControlValueError, FieldControl, label_for
from .control_choice import control_for_boolean, control_for_enum, fits_toggle_buttons
from .control_image import ImageInput, control_for_image
from .control_list import control_for_list
from .control_number import OptionalValue, control_for_number
from .control_text import control_for_object, control_for_text

__all__ = ["NOT_SET", "ControlValueError", "FieldControl", "ImageInput", "OptionalValue", "control_for",
           "control_for_any", "control_for_boolean", "control_for_enum", "control_for_image",
           "control_for_integer", "control_for_list", "control_for_number", "control_for_object",
           "control_for_text", "fits_toggle_buttons", "is_advanced", "label_for"]

control_for_integer = control_for_number
control_for_any = control_for_object

_BY_KIND: dict[str, Callable[[Field], FieldControl]] = {
    "enum": control_for_enum,
    "boolean": control_for_boolean,
    "integer": control_for_integer,
    "number": control_for_number,
    "text": control_for_text,
    "image": control_for_image,
    "list": control_for_list,
    "object": control_for_object,
    "any": control_for_any,
}


def control_for(field: Field, *, media_dir: Path | None = None) -> FieldControl:
    """The control for `field`, chosen by `field.kind`; ControlValueError (a ValidationError)
    when the field's own default is a value its control cannot hold."""
    if field.kind == "image":
        return control_for_image(field, media_dir=media_dir)
    return _BY_KIND.get(field.kind, control_for_object)(field)


def is_advanced(field: Field) -> bool:
    """Rarely changed fields go under "Advanced": optional switches (booleans) and optional lists
    with no default (such as ids referring to other resources); never fal's `ui.important` ones."""
    if field.required or field.important:
        return False
    return field.kind == "boolean" or (field.kind == "list" and not field.has_default)
