"""Image controls: a URL or path box, a file upload kept under media/inputs (by content hash),
and a thumbnail of the image; a path to no file is the control's own problem.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import traitlets

from .._errors import SoraWidgetsError, ValidationError
from .._home import media_dir as default_media_dir
from ..media import classify_image, normalize_image
from ..schema.fields import Field
from .control_base import WIDE, FieldControl
from .control_text import text_shown, text_value

__all__ = ["ImageInput", "control_for_image"]

THUMBNAIL_PX = 160


class ImageInput(widgets.VBox):
    """An image field's editor: a URL or path box, a file upload and a thumbnail of the image."""

    value = traitlets.Unicode("", help="The URL, data URI or local path of the image; '' when "
                                       "none is chosen.")
    upload_problem = traitlets.Unicode("", help="Why the last uploaded file could not be used; '' "
                                                "when it was.")

    def __init__(self, *, media_dir: Path | None = None) -> None:
        self.media_dir = media_dir
        self.text = widgets.Text(placeholder="https://... or a path on this machine",
                                 layout=widgets.Layout(flex="1 1 auto", width="auto"))
        self.upload = widgets.FileUpload(accept="image/*", multiple=False, description="Upload",
                                         layout=widgets.Layout(width="auto", flex="0 0 auto"))
        self.thumbnail = widgets.Image(layout=widgets.Layout(max_width=f"{THUMBNAIL_PX}px",
                                                             display="none"))
        super().__init__([widgets.HBox([self.text, self.upload]), self.thumbnail],
                         layout=widgets.Layout(width=WIDE))
        traitlets.link((self.text, "value"), (self, "value"))
        self.upload.observe(self._handle_upload, "value")

    def _handle_upload(self, change: traitlets.Bunch) -> None:
        """Keep the uploaded image under media/inputs (by content hash) and point at that file."""
        if not change.new:
            return
        item = change.new[0]
        self.upload.value = ()  # the bytes are on disk, or refused: keep them out of the widget state
        try:
            image = normalize_image(bytes(item["content"]), media_dir=self.media_dir or default_media_dir())
        except SoraWidgetsError as exc:  # not an image, too large, a folder that cannot be written
            errors = getattr(exc, "errors", None)
            self.upload_problem = f"{item.get('name', 'the upload')}: {errors[0][1] if errors else exc}"
            return
        self.upload_problem = ""
        self.value = image.value

    @traitlets.observe("value")
    def _handle_value(self, change: traitlets.Bunch) -> None:
        self.thumbnail.value, self.thumbnail.format = _thumbnail(change.new)
        self.thumbnail.layout.display = None if self.thumbnail.value else "none"

    def missing_file(self) -> str:
        """A sentence when the value names a local file that is not there, else ''."""
        value = self.value.strip()
        if not value:
            return ""
        try:
            path = classify_image(value).path
        except ValidationError as exc:  # file:, javascript: ..., or an http(s) URL without a host
            return exc.errors[0][1]
        if path is None or path.is_file():
            return ""
        return f"no image file at {value} (looked in {path.resolve().parent})"


def _thumbnail(value: str) -> tuple[bytes, str]:
    """Bytes and format for an Image widget: URLs load in the browser, local files shrink here."""
    try:
        source = classify_image(value.strip()) if value.strip() else None
    except ValidationError:
        return b"", "png"
    if source is not None and source.url is not None:
        return source.url.encode(), "url"
    path = source.path if source is not None else None
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


def control_for_image(field: Field, *, media_dir: Path | None = None) -> FieldControl:
    """A URL/path box, a file upload (kept under media/inputs) and a thumbnail of the image."""
    editor = ImageInput(media_dir=media_dir)
    control = FieldControl(field, editor, read=text_value, write=text_shown)

    def check(change: Any = None) -> None:
        control.problem = editor.upload_problem or editor.missing_file()

    editor.observe(check, ["value", "upload_problem"])
    return control
