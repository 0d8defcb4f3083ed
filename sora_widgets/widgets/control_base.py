"""The frame every control shares: `FieldControl` (label, editor, help, message line), the label
rule `label_for`, and `ControlValueError`, raised for a value a control cannot hold.

A `FieldControl`'s `value` trait holds the field's value, and None means "not set" (the field is
left out of the request). Each kind of control passes two small functions: `read` (the editor's
value to the field's) and `write` (back, raising ValueError or TypeError with a "must be ..."
phrase for a value the editor cannot show as it is). Nothing here knows any endpoint.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as widgets
import traitlets

from .._errors import ValidationError
from ..schema.fields import Field

__all__ = ["NOT_SET", "WIDE", "ControlValueError", "FieldControl", "label_for", "show_value"]

NOT_SET = "not set"
WIDE = "100%"  # text, image and list editors fill the form column, however wide the notebook is
#: words spelled as acronyms in labels, by their lower-case form
ACRONYMS = {word.lower(): word for word in (
    "2D", "3D", "4K", "8K", "AI", "API", "CFG", "FPS", "GIF", "HD", "HDR", "ID", "IDs", "IP", "JSON",
    "LoRA", "MP3", "MP4", "NSFW", "RGB", "SDXL", "TTS", "UI", "URI", "URL", "URLs", "UUID", "VAE")}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class ControlValueError(ValidationError, traitlets.TraitError):
    """A value a field's control cannot hold: a ValidationError naming the field and what it
    allows, and a TraitError, so traitlets rolls back a change made while notifications are held."""


def label_for(field: Field) -> str:
    """What a person reads for `field`: its schema `title`, else its name, with acronyms spelled
    right. Titles that only repeat the name (fal's "Image Url", "Detect And Block Ip") are put in
    sentence case: "Image URL", "Detect and block IP"; a title of its own keeps its words."""
    name_words = _CAMEL.sub(" ", field.name).replace("_", " ").replace("-", " ").split()
    title_words = field.title.split()
    generated = not title_words or [w.lower() for w in title_words] == [w.lower() for w in name_words]
    if not generated:
        return " ".join(ACRONYMS.get(w.lower(), w) for w in title_words)
    words = [ACRONYMS.get(w.lower(), w.lower()) for w in name_words] or [field.name]
    if words[0].islower():
        words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words)


def show_value(field: Field, write: Callable[[Any], Any], value: Any) -> Any:
    """What the editor of `field` shows for `value` (`write(value)`); ControlValueError naming
    the field when the editor cannot show it as it is."""
    try:
        return write(value)
    except (ValueError, TypeError) as exc:
        raise ControlValueError([(field.name, str(exc))]) from exc


class FieldControl(widgets.VBox):
    """One field's editor: its label above the input, wrapped help text, and a message line."""

    value = traitlets.Any(None, allow_none=True,
                          help="The field's value; None when not set (left out of the request).")
    message = traitlets.Unicode("", help="The problem with the current value, shown under the "
                                         "input; empty when there is none.")
    problem = traitlets.Unicode("", help="A problem the control finds itself before the schema "
                                         "is asked (a missing file, text that is not JSON).")

    def __init__(self, field: Field, editor: widgets.Widget, *,
                 read: Callable[[Any], Any] = lambda v: v,
                 write: Callable[[Any], Any] = lambda v: v,
                 extra: Iterable[widgets.Widget] = ()) -> None:
        self.field = field
        self.label = label_for(field)
        self.editor = editor
        self._read, self._write = read, write
        self._syncing = False
        mark = " <b style='color:#b00'>*</b>" if field.required else ""
        tip = html.escape(field.description or field.allowed(), quote=True)
        self.label_widget = widgets.HTML(
            f"<label title='{tip}' style='font-weight:600;line-height:1.4'>"
            f"{html.escape(self.label)}{mark}</label>", layout=widgets.Layout(flex="1 1 auto"))
        self.label_widget.add_class("sora-field-label")
        if field.description and not isinstance(editor, widgets.Box):
            editor.tooltip = field.description  # a Box's view fails to render with a tooltip (8.1)
        self.help = widgets.HTML(_help_html(field))
        self.help.add_class("sora-field-help")
        self._message = widgets.HTML("", layout=widgets.Layout(display="none"))
        extra = list(extra)  # beside the label, e.g. a character count
        head = (widgets.HBox([self.label_widget, *extra], layout=widgets.Layout(align_items="baseline"))
                if extra else self.label_widget)
        super().__init__([head, editor, self.help, self._message],
                         layout=widgets.Layout(margin="0 0 8px 0"))
        self.add_class("sora-field")
        self.value = read(editor.value)
        editor.observe(self._handle_editor, "value")

    def _shown(self, value: Any) -> Any:
        """What the editor shows for `value`; ControlValueError for a value it cannot show."""
        return show_value(self.field, self._write, value)

    @traitlets.validate("value")
    def _validate_value(self, proposal: traitlets.Bunch) -> Any:
        self._shown(proposal.value)
        return proposal.value

    @traitlets.observe("value")
    def _handle_value(self, change: traitlets.Bunch) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.editor.value = self._shown(change.new)  # traitlets does not validate None
        except traitlets.TraitError as exc:
            self.value = change.old  # the editor kept its value: so does the control
            if isinstance(exc, ControlValueError):
                raise
            raise ControlValueError([(self.field.name, f"must be {self.field.allowed()} ({exc})")]
                                    ) from exc
        finally:
            self._syncing = False

    def _handle_editor(self, change: traitlets.Bunch) -> None:
        if self._syncing:
            return
        self._syncing = True
        try:
            self.value = self._read(self.editor.value)  # an observer may have amended change.new
        finally:
            self._syncing = False

    @traitlets.observe("message", "problem")
    def _handle_message(self, change: traitlets.Bunch) -> None:
        text = self.problem or self.message
        self._message.value = (f"<span style='color:#b00' class='sora-problem'>"
                               f"{html.escape(text)}</span>" if text else "")
        self._message.layout.display = None if text else "none"

    def __repr__(self) -> str:
        return f"FieldControl({self.field.name!r}, value={self.value!r})"


def _help_html(field: Field) -> str:
    """The field's description (else what it accepts) in full, wrapped at word boundaries."""
    words = field.description.strip() or field.allowed()
    return (f"<div style='color:#666;font-size:12px;line-height:1.35;white-space:normal;"
            f"overflow-wrap:break-word'>{html.escape(words)}</div>")
