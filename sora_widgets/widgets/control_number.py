"""Number controls: a slider when both bounds are known, else a number box, behind a "set" tick
box when the field has no default. Values the widget would silently change are refused.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import traitlets

from ..schema.fields import Field
from .control_base import WIDE, FieldControl, show_value

__all__ = ["OptionalValue", "control_for_number"]


class OptionalValue(widgets.HBox):
    """A "set" checkbox in front of a widget that cannot itself be empty (a slider, a number box)."""

    value = traitlets.Any(None, allow_none=True,
                          help="The inner widget's value while 'set' is ticked, else None.")

    def __init__(self, inner: widgets.Widget) -> None:
        self.inner = inner
        self.toggle = widgets.Checkbox(False, description="set", indent=False,
                                       layout=widgets.Layout(width="4em"))
        inner.disabled = True
        super().__init__([self.toggle, inner])
        self.toggle.observe(self._handle_inner, "value")
        inner.observe(self._handle_inner, "value")

    def _handle_inner(self, change: traitlets.Bunch) -> None:
        self.inner.disabled = not self.toggle.value
        self.value = self.inner.value if self.toggle.value else None

    @traitlets.observe("value")
    def _handle_value(self, change: traitlets.Bunch) -> None:
        if change.new is not None:
            self.inner.value = change.new
        self.toggle.value = change.new is not None


def _bounds(field: Field) -> tuple[float | None, float | None]:
    low = field.minimum if field.minimum is not None else field.exclusive_minimum
    high = field.maximum if field.maximum is not None else field.exclusive_maximum
    return low, high


def _number(value: Any) -> int | float:
    """`value` when it is a number (True and False are not); TypeError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"must be a number, got {value!r}")
    return value


def control_for_number(field: Field) -> FieldControl:
    """A slider when both bounds are known, else a number box; "set" tick box when no default."""
    integer = field.type == "integer"
    low, high = _bounds(field)
    start = (show_value(field, _number, field.default) if field.has_default
             else low if low is not None else 0)
    slider = low is not None and high is not None
    if low is not None and high is not None:
        cls = widgets.IntSlider if integer else widgets.FloatSlider
        step = 1 if integer else (high - low) / 100
        inner: widgets.Widget = cls(value=start, min=low, max=high, step=step,
                                    layout=widgets.Layout(width=WIDE, max_width="420px"))
    else:
        inner = (widgets.IntText if integer else widgets.FloatText)(value=start,
                                                                     layout=widgets.Layout(width="160px"))

    def write(value: Any) -> Any:
        """Refuse what the widget would silently change: text, fractions, values off the slider."""
        if value is None and not field.has_default:
            return None
        _number(value)
        if integer and value != int(value):
            raise ValueError(f"must be a whole number, got {value!r}")
        if low is not None and high is not None and slider and not low <= value <= high:
            raise ValueError(f"must be within the slider's range {low:g} to {high:g}, got {value!r}")
        return value

    return FieldControl(field, inner if field.has_default else OptionalValue(inner), write=write)
