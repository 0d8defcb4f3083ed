"""Controls built from schema fields: one small `control_for_<kind>(field)` function per kind.

Every control is a `FieldControl`: a label above its input (`label_for`: the schema's title or
the field's name, acronyms spelled right, marked * when required), the editing widget, the
field's description as wrapped help text, and a message line for problems. Its `value` trait
holds the field's value, and None means "not set" (the field is left out of the request).
Nothing here knows any endpoint: all of it comes from the `Field`. Widths are relative, so a
control fits the panel's form column however wide the notebook is.

One rule picks the editor of a choice (an enum, or a boolean without a default): toggle
buttons when every option fits on one short row (`fits_toggle_buttons`), else a dropdown.
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import traitlets

from .._home import run_home
from ..schema.documents import Field

__all__ = ["FieldControl", "ImageInput", "OptionalValue", "control_for", "control_for_any",
           "control_for_boolean", "control_for_enum", "control_for_image", "control_for_integer",
           "control_for_list", "control_for_number", "control_for_object", "control_for_text",
           "fits_toggle_buttons", "is_advanced", "label_for"]

NOT_SET = "not set"
PROMPT_LENGTH = 200  # text fields allowing more characters than this get a Textarea
TOGGLE_OPTIONS = 7  # a choice becomes toggle buttons with at most this many options,
TOGGLE_OPTION_CHARS = 12  # none longer than this,
TOGGLE_TOTAL_CHARS = 40  # and this many characters in all (counting "not set"): one short row
THUMBNAIL_PX = 160
_URL = re.compile(r"^(https?:|data:)", re.IGNORECASE)
#: words spelled as acronyms in labels, by their lower-case form
ACRONYMS = {word.lower(): word for word in (
    "2D", "3D", "4K", "8K", "AI", "API", "CFG", "FPS", "GIF", "HD", "HDR", "ID", "IDs", "IP", "JSON",
    "LoRA", "MP3", "MP4", "NSFW", "RGB", "SDXL", "TTS", "UI", "URI", "URL", "URLs", "UUID", "VAE")}
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_WIDE = "100%"  # text, image and list editors fill the form column


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


def is_advanced(field: Field) -> bool:
    """Rarely changed fields go under "Advanced": optional switches (booleans) and optional lists
    with no default (such as ids referring to other resources); never fal's `ui.important` ones."""
    if field.required or field.important:
        return False
    return field.kind == "boolean" or (field.kind == "list" and not field.has_default)


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
        """What the editor shows for `value`; TraitError for a value it cannot show as it is."""
        try:
            return self._write(value)
        except (ValueError, TypeError, traitlets.TraitError) as exc:
            raise traitlets.TraitError(f"{self.field.name}: cannot show {value!r} "
                                       f"({self.field.allowed()}): {exc}") from exc

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
            try:
                shown = self._shown(change.new)  # traitlets does not validate None: check here
            except traitlets.TraitError:
                self.value = change.old
                raise
            self.editor.value = shown
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


class ImageInput(widgets.VBox):
    """An image field's editor: a URL or path box, a file upload and a thumbnail of the image."""

    value = traitlets.Unicode("", help="The URL, data URI or local path of the image; '' when "
                                       "none is chosen.")

    def __init__(self, *, media_dir: Path | None = None) -> None:
        self.media_dir = media_dir
        self.text = widgets.Text(placeholder="https://... or a path on this machine",
                                 layout=widgets.Layout(flex="1 1 auto", width="auto"))
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload",
                                         layout=widgets.Layout(width="auto", flex="0 0 auto"))
        self.thumbnail = widgets.Image(layout=widgets.Layout(max_width=f"{THUMBNAIL_PX}px",
                                                             display="none"))
        super().__init__([widgets.HBox([self.text, self.upload]), self.thumbnail],
                         layout=widgets.Layout(width=_WIDE))
        traitlets.link((self.text, "value"), (self, "value"))
        self.upload.observe(self._handle_upload, "value")

    def _handle_upload(self, change: traitlets.Bunch) -> None:
        """Keep the uploaded image under media/inputs (by content hash) and point at that file."""
        if not change.new:
            return
        from ..media.inputs import normalize_image

        item = change.new[0]
        folder = self.media_dir or run_home() / "media"
        image = normalize_image(bytes(item["content"]), media_dir=folder)
        self.value = image.value
        self.upload.value = ()  # the bytes are on disk now; keep them out of the widget state

    @traitlets.observe("value")
    def _handle_value(self, change: traitlets.Bunch) -> None:
        self.thumbnail.value, self.thumbnail.format = _thumbnail(change.new)
        self.thumbnail.layout.display = None if self.thumbnail.value else "none"

    def missing_file(self) -> str:
        """A sentence when the value names a local file that is not there, else ''."""
        value = self.value.strip()
        if not value or _URL.match(value) or Path(value).expanduser().is_file():
            return ""
        return f"no image file at {value} (looked in {Path(value).expanduser().resolve().parent})"


def _thumbnail(value: str) -> tuple[bytes, str]:
    """Bytes and format for an Image widget: URLs load in the browser, local files shrink here."""
    value = value.strip()
    if _URL.match(value):
        return value.encode(), "url"
    path = Path(value).expanduser() if value else None
    if path is None or not path.is_file():
        return b"", "png"
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
            out = io.BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=80)
    except (UnidentifiedImageError, OSError):
        return b"", "png"
    return out.getvalue(), "jpeg"


# --- one function per kind of field ----------------------------------------------------------


def _options(field: Field, values: Iterable[Any]) -> list[tuple[str, Any]]:
    """(label, value) pairs, with a leading "not set" when the field has no default."""
    pairs = [(str(v), v) for v in values]
    return pairs if field.has_default else [(NOT_SET, None), *pairs]


def fits_toggle_buttons(labels: list[str]) -> bool:
    """The one rule for choices: toggle buttons when the options fit on one short row (at most
    7 of at most 12 characters, 40 in all, "not set" included), a dropdown otherwise. So Sora's
    durations 4 to 20 are buttons like their neighbours, its model snapshots a dropdown."""
    return (len(labels) <= TOGGLE_OPTIONS and all(len(label) <= TOGGLE_OPTION_CHARS for label in labels)
            and sum(len(label) for label in labels) <= TOGGLE_TOTAL_CHARS)


def _choice(field: Field, pairs: list[tuple[str, Any]]) -> FieldControl:
    """Toggle buttons or a dropdown (`fits_toggle_buttons`) over labels, mapped to and from the
    values they stand for."""
    labels = [label for label, _ in pairs]
    by_label = dict(pairs)

    def write(value: Any) -> str:
        for label, option in pairs:
            if option == value and isinstance(option, bool) == isinstance(value, bool):
                return label
        raise ValueError(f"not one of {', '.join(labels)}")

    initial = write(field.default if field.has_default else None)
    if fits_toggle_buttons(labels):
        editor: widgets.Widget = widgets.ToggleButtons(options=labels, value=initial,
                                                      style={"button_width": "auto"})
    else:
        editor = widgets.Dropdown(options=labels, value=initial,
                                  layout=widgets.Layout(width=_WIDE, max_width="360px"))
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
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _bounds(field: Field) -> tuple[float | None, float | None]:
    low = field.minimum if field.minimum is not None else field.exclusive_minimum
    high = field.maximum if field.maximum is not None else field.exclusive_maximum
    return low, high


def control_for_number(field: Field) -> FieldControl:
    """A slider when both bounds are known, else a number box; "set" tick box when no default."""
    integer = field.type == "integer"
    low, high = _bounds(field)
    start = field.default if field.has_default else (low if low is not None else 0)
    slider = low is not None and high is not None
    if low is not None and high is not None:
        cls = widgets.IntSlider if integer else widgets.FloatSlider
        step = 1 if integer else (high - low) / 100
        inner: widgets.Widget = cls(value=start, min=low, max=high, step=step,
                                    layout=widgets.Layout(width=_WIDE, max_width="420px"))
    else:
        inner = (widgets.IntText if integer else widgets.FloatText)(value=start,
                                                                     layout=widgets.Layout(width="160px"))

    def write(value: Any) -> Any:
        """Refuse what the widget would silently change: text, fractions, values off the slider."""
        if value is None and not field.has_default:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"expected a number, got {value!r}")
        if integer and value != int(value):
            raise ValueError(f"expected a whole number, got {value!r}")
        if low is not None and high is not None and slider and not low <= value <= high:
            raise ValueError(f"outside the slider's range {low:g} to {high:g}")
        return value

    return FieldControl(field, inner if field.has_default else OptionalValue(inner), write=write)


def control_for_text(field: Field) -> FieldControl:
    """A Textarea with a live "n / max" count for long (prompt-like) text, else a Text box.

    Empty text means not set."""
    long_text = (field.max_length or 0) > PROMPT_LENGTH or "prompt" in field.name
    start = field.default if field.has_default and isinstance(field.default, str) else ""
    placeholder = str(field.examples[0])[:120] if field.examples else NOT_SET
    if not long_text:
        editor = widgets.Text(start, placeholder=placeholder, layout=widgets.Layout(width=_WIDE))
        return FieldControl(field, editor, read=_text_value, write=_text_shown)
    editor = widgets.Textarea(start, placeholder=placeholder, rows=4,
                              layout=widgets.Layout(width=_WIDE))
    counter = widgets.HTML(layout=widgets.Layout(flex="0 0 auto"))

    def count(text: str) -> None:
        limit = field.max_length
        over = limit is not None and len(text) > limit
        shown = f"{len(text)} / {limit}" if limit is not None else f"{len(text)}"
        counter.value = f"<small style='color:{'#b00' if over else '#666'}'>{shown}</small>"

    editor.observe(lambda change: count(change.new), "value")
    count(start)
    control = FieldControl(field, editor, read=_text_value, write=_text_shown, extra=[counter])
    control.counter = counter
    return control


def _text_value(text: str) -> str | None:
    return text or None


def _text_shown(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def control_for_image(field: Field, *, media_dir: Path | None = None) -> FieldControl:
    """A URL/path box, a file upload (kept under media/inputs) and a thumbnail of the image."""
    editor = ImageInput(media_dir=media_dir)
    control = FieldControl(field, editor, read=_text_value, write=_text_shown)

    def check(change: Any = None) -> None:
        control.problem = editor.missing_file()

    editor.observe(check, "value")
    return control


def control_for_list(field: Field) -> FieldControl:
    """A multi-select for enumerated items, else tags capped at maxItems; empty means not set
    unless the field has a default."""
    if field.item_enum is not None:
        editor: widgets.Widget = widgets.SelectMultiple(options=list(field.item_enum),
                                                        rows=min(len(field.item_enum), 6))
    else:
        cls = {"integer": widgets.IntsInput, "number": widgets.FloatsInput}.get(
            field.item_type or "", widgets.TagsInput)
        editor = cls(value=[], allow_duplicates=False, layout=widgets.Layout(width=_WIDE))
        if field.max_items is not None:
            editor.placeholder = f"up to {field.max_items}"
            editor.observe(_cap(field.max_items), "value")
    if field.has_default and isinstance(field.default, list):
        editor.value = tuple(field.default) if isinstance(editor, widgets.SelectMultiple) else field.default

    def read(items: Any) -> list[Any] | None:
        return list(items) if items or field.has_default else None

    def write(value: Any) -> Any:
        items = list(value) if value is not None else []
        return tuple(items) if isinstance(editor, widgets.SelectMultiple) else items

    return FieldControl(field, editor, read=read, write=write)


def _cap(limit: int) -> Callable[[traitlets.Bunch], None]:
    """An observer that keeps a tags input to its first `limit` items."""
    def handle(change: traitlets.Bunch) -> None:
        if len(change.new) > limit:
            change.owner.value = list(change.new)[:limit]
    return handle


def control_for_object(field: Field) -> FieldControl:
    """JSON text for objects and values of any type; text that is not JSON is a problem."""
    start = json.dumps(field.default) if field.has_default else ""
    editor = widgets.Textarea(start, placeholder="JSON", rows=3, layout=widgets.Layout(width=_WIDE))
    control = FieldControl(field, editor, read=_json_value,
                           write=lambda value: "" if value is None else json.dumps(value))

    def check(change: Any = None) -> None:
        control.problem = _json_problem(editor.value)

    editor.observe(check, "value")
    return control


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
    """The control for `field`, chosen by `field.kind`."""
    if field.kind == "image":
        return control_for_image(field, media_dir=media_dir)
    return _BY_KIND.get(field.kind, control_for_object)(field)
