"""An endpoint's fields as values: `Field` (type, default, bounds, fal's UI hints) and `UNSET`.

Everything that builds or checks a control reads these; `openapi` makes them from a document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._values import literal, to_seconds


class _Unset:
    """Marks a field with no default, which is different from a default of None."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()


@dataclass(frozen=True)
class Field:
    """One input or output field of an endpoint, with everything needed to build and check it."""

    name: str
    type: str  # string | integer | number | boolean | array | object | any
    required: bool = False
    default: Any = UNSET
    enum: tuple[Any, ...] | None = None
    description: str = ""
    title: str = ""
    examples: tuple[Any, ...] = ()
    nullable: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    item_type: str | None = None
    item_enum: tuple[Any, ...] | None = None
    format: str | None = None
    #: fal's `ui.field` hint ("image", "video", "audio", "file"), or None
    ui_field: str | None = None
    #: fal's `ui.hidden`: the field gets no control (its default is sent)
    hidden: bool = False
    #: fal's `ui.important`: the field stays out of "Advanced"
    important: bool = False
    #: fal's `x-fal` media limits (max_file_size, min_width, max_height, max_aspect_ratio, ...)
    limits: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    #: for outputs: "video", "image" or "file" when the field holds fal File objects (or a list)
    media: str | None = None

    @property
    def has_default(self) -> bool:
        return self.default is not UNSET

    @property
    def kind(self) -> str:
        """What sort of control fits this field: enum, boolean, integer, number, text, image,
        list, object or any."""
        if self.enum is not None:
            return "enum"
        if self.ui_field == "image" or (self.type == "string" and looks_like_image(self.name)):
            return "image"
        if self.type == "string":
            return "text"
        if self.type == "array":
            return "list"
        return self.type

    @property
    def label(self) -> str:
        return self.title or self.name.replace("_", " ").capitalize()

    @property
    def seconds(self) -> tuple[float, ...] | None:
        """For a duration-like enum, each allowed value in seconds (4, "4s", "5" ...), else None."""
        if self.enum is None:
            return None
        values = tuple(to_seconds(v) for v in self.enum)
        return None if any(v is None for v in values) else values  # type: ignore[return-value]

    def allowed(self) -> str:
        """A short phrase naming what values this field accepts, for messages and help text."""
        if self.enum is not None:
            return "one of " + ", ".join(literal(v) for v in self.enum)
        bounds = bounds_phrase(self)
        return f"{self.type}{' ' + bounds if bounds else ''}"


def looks_like_image(name: str) -> bool:
    """Image inputs by fal's naming habits: image_url, start_image_url, first_frame_url ..."""
    return name in ("image_url", "image") or name.endswith(("image_url", "frame_url"))


#: the names endpoints give the length of the video they are asked for
DURATION_FIELDS = ("duration", "duration_seconds", "num_seconds")


#: a Field's bound attributes and how a message words each, in the order they are said
_BOUNDS = (("minimum", ">= {:g}"), ("exclusive_minimum", "> {:g}"), ("maximum", "<= {:g}"),
           ("exclusive_maximum", "< {:g}"), ("max_length", "at most {} characters"),
           ("max_items", "at most {} items"))


def bounds_phrase(f: Field) -> str:
    """A field's numeric and length bounds in words (">= 1, <= 20"), or '' when it has none."""
    return ", ".join(words.format(value) for name, words in _BOUNDS
                     if (value := getattr(f, name)) is not None)
