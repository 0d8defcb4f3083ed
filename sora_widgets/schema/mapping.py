"""One canonical request mapped onto each endpoint's own fields, for cross-model comparisons.

A field keeps its name where the endpoint has it, else takes a well-known alias (`image_url` is
`start_image_url` or `first_frame_url` elsewhere, `duration` may be `duration_seconds`). A value
the endpoint does not allow becomes its nearest allowed value by meaning (duration 8 becomes
"8", "8s", or 10 where 8 is not offered; "16:9" the nearest ratio), and a field the endpoint
lacks is dropped. Every change is recorded as a `Mapped` note, so the plan can show it;
`strict=True` refuses any change of value and any dropped field instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._errors import ValidationError
from .._values import to_lines, to_ratio, to_seconds
from .documents import EndpointSchema
from .fields import DURATION_FIELDS, Field

__all__ = ["ALIASES", "Mapped", "map_request", "target_field"]

#: canonical field -> the names endpoints give it, in the order they are tried
ALIASES: dict[str, tuple[str, ...]] = {
    "prompt": ("prompt",),
    "image_url": ("image_url", "start_image_url", "first_frame_url", "first_frame_image_url",
                  "input_image_url", "image"),
    "end_image_url": ("end_image_url", "last_frame_url", "tail_image_url"),
    "duration": DURATION_FIELDS,
    "aspect_ratio": ("aspect_ratio",),
    "resolution": ("resolution",),
    "negative_prompt": ("negative_prompt",),
    "seed": ("seed",),
}

How = Literal["same", "renamed", "nearest", "dropped"]


@dataclass(frozen=True)
class Mapped:
    """What became of one canonical field on one endpoint."""

    field: str  # the canonical name, as given to the sweep
    target: str | None  # the endpoint's field, None when dropped
    given: Any
    sent: Any
    how: How
    why: str = ""

    @property
    def changed(self) -> bool:
        """True when the endpoint gets another name, spelling or value than was given."""
        return self.how != "same" or self.sent != self.given

    def __str__(self) -> str:
        given, sent = _short(self.given), _short(self.sent)
        if self.how == "dropped":
            return f"{self.field}={given} dropped ({self.why})"
        name = self.target if self.target == self.field else f"{self.field} -> {self.target}"
        if self.sent != self.given:
            return f"{name}: {given} -> {sent} ({self.why})"
        return f"{name}={sent}"


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


def target_field(schema: EndpointSchema, name: str) -> str | None:
    """The endpoint's field for canonical `name`: itself, else the first alias it has."""
    if name in schema:
        return name
    for names in ALIASES.values():
        if name in names:
            return next((n for n in names if n in schema), None)
    return None


def _measure(name: str, field: Field) -> Any:
    """How to read a value of this field as a number, for "nearest": seconds, ratio or lines."""
    if name == "duration" or field.name in ALIASES["duration"]:
        return to_seconds
    if "aspect" in field.name:
        return to_ratio
    if field.name == "resolution":
        return to_lines
    return None


def _nearest(name: str, field: Field, value: Any) -> tuple[Any, str, bool] | None:
    """The allowed value closest in meaning to `value`, why, and whether it means the same;
    None when there is none."""
    options = field.enum or ()
    measure = _measure(name, field)
    if measure is not None and (wanted := measure(value)) is not None:
        scored = [(abs(m - wanted), -m, option) for option in options
                  if (m := measure(option)) is not None]
        if scored:
            distance, _, best = min(scored, key=lambda s: (s[0], s[1]))
            if distance == 0:
                return best, "the same value as the endpoint spells it", True
            return best, f"{value!r} is not offered; nearest of {', '.join(map(str, options))}", False
    if isinstance(value, str):
        for option in options:
            if isinstance(option, str) and option.lower() == value.lower():
                return option, "the same value as the endpoint spells it", True
    return None


def _clamp(field: Field, value: Any) -> tuple[Any, str] | None:
    """A number pulled inside the field's bounds, or None when it already fits (or is no number)."""
    number = to_seconds(value) if field.type in ("integer", "number") else None
    if number is None:
        return None
    low = field.minimum if field.minimum is not None else field.exclusive_minimum
    high = field.maximum if field.maximum is not None else field.exclusive_maximum
    clamped = min(max(number, low if low is not None else number), high if high is not None else number)
    clamped_value: Any = int(clamped) if field.type == "integer" else clamped
    if clamped == number:
        return (clamped_value, "as a number") if not isinstance(value, (int, float)) else None
    return clamped_value, f"outside {field.allowed()}; nearest allowed"


def map_request(schema: EndpointSchema, request: Mapping[str, Any], *, strict: bool = False
                ) -> tuple[dict[str, Any], list[Mapped]]:
    """`request` (canonical field names and values) as `schema`'s endpoint takes it, and a note per
    field. With `strict`, a value that would change or a field that would be dropped raises
    ValidationError naming the endpoint and field."""
    arguments: dict[str, Any] = {}
    notes: list[Mapped] = []
    for name, value in request.items():
        target = target_field(schema, name)
        if target is None:
            notes.append(Mapped(name, None, value, None, "dropped",
                                f"{schema.endpoint_id} has no such field"))
            continue
        field = schema[target]
        how: How = "same" if target == name else "renamed"
        sent, why = value, ""
        if value is not None and field.enum is not None and value not in field.enum:
            found = _nearest(name, field, value)
            if found is None:
                notes.append(Mapped(name, target, value, None, "dropped",
                                    f"not one of {', '.join(map(str, field.enum))}; the endpoint's "
                                    "default is used"))
                continue
            sent, why, same = found
            how = how if same else "nearest"
        elif value is not None and field.enum is None and (fitted := _clamp(field, value)) is not None:
            sent, why = fitted
            how = "nearest"
        arguments[target] = sent
        notes.append(Mapped(name, target, value, sent, how, why))
    if strict:
        refused = [(n.field, f"{n}; strict=True refuses mapped or dropped values")
                   for n in notes if n.how in ("nearest", "dropped")]
        if refused:
            raise ValidationError(refused, endpoint_id=schema.endpoint_id)
    return arguments, notes
