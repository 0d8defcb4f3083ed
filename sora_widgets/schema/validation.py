"""Local validation of request arguments against an EndpointSchema.

Every problem is collected (not only the first) so one round of edits fixes them all, and each
message names the allowed values or bounds. A silently ignored typo is a paid mistake, so
unknown fields are errors with a did-you-mean.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._errors import ValidationError
from .._values import did_you_mean, literal, to_seconds
from .fields import bounds_phrase

if TYPE_CHECKING:
    from .documents import EndpointSchema
    from .fields import Field

_INT_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")
_NUMBER_TEXT = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")


class _Problem(Exception):
    """One field's problem, raised inside the checks and collected by `validate`."""


def validate(schema: EndpointSchema, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Return `arguments` normalised (defaults filled, numeric text made numbers) or raise
    ValidationError with every (field, message) problem."""
    if not isinstance(arguments, Mapping):
        raise ValidationError([("arguments", f"must be a mapping of field names to values, "
                                             f"got {type(arguments).__name__}")],
                              endpoint_id=schema.endpoint_id)
    errors: list[tuple[str, str]] = []
    for name in arguments:
        if name not in schema:
            errors.append((str(name), f"is not a field of {schema.endpoint_id}"
                                      f"{did_you_mean(str(name), schema.names)}; "
                                      f"fields: {', '.join(schema.names)}"))
    result: dict[str, Any] = {}
    for f in schema.fields:
        value = arguments.get(f.name)
        if value is None:
            if f.required:
                errors.append((f.name, f"is required ({f.allowed()})"))
            elif f.has_default:
                result[f.name] = f.default
            continue
        try:
            result[f.name] = check_value(f, value)
        except _Problem as problem:
            errors.append((f.name, str(problem)))
    if errors:
        raise ValidationError(errors, endpoint_id=schema.endpoint_id)
    return result


def problem_with(f: Field, value: Any) -> str:
    """What is wrong with `value` for field `f`, or "" when the field takes it."""
    try:
        check_value(f, value)
    except _Problem as problem:
        return str(problem)
    return ""


def check_value(f: Field, value: Any) -> Any:
    """The normalised value of one field, or _Problem saying what is wrong and what is allowed."""
    allowed = f"must be one of {', '.join(literal(v) for v in f.enum)}" if f.enum is not None else ""
    try:
        value = _coerce(f.type, _spelled_as_enum(f, value))
    except _Problem:
        if not allowed or f.type != "string":  # "must be a whole number" says more there
            raise
        raise _Problem(f"{allowed} (got {literal(value)})") from None
    if f.enum is not None and value not in f.enum:
        raise _Problem(f"{allowed} (got {literal(value)})")
    if f.type in ("integer", "number"):
        _check_bounds(f, value)
    elif f.type == "string":
        _check_text(f, value)
    elif f.type == "array":
        value = _check_items(f, value)
    return value


def _spelled_as_enum(f: Field, value: Any) -> Any:
    """A number for a text enum of lengths ("5", "10" or "4s", "8s") becomes the option that means
    it, as "8" becomes 8 for an integer field; anything else is returned as it is."""
    if f.enum is None or f.type != "string" or isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    return next((option for option in f.enum if to_seconds(option) == value), value)


def _coerce(type_: str, value: Any) -> Any:
    if type_ == "boolean":
        if not isinstance(value, bool):
            raise _Problem(f"must be true or false (got {value!r})")
        return value
    if type_ == "integer":
        return _to_int(value)
    if type_ == "number":
        return _to_number(value)
    if type_ == "string":
        if not isinstance(value, str):
            raise _Problem(f"must be text (got {type(value).__name__} {value!r})")
        return value
    if type_ == "array":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _Problem(f"must be a list (got {type(value).__name__} {value!r})")
        return list(value)
    if type_ == "object" and not isinstance(value, Mapping):
        raise _Problem(f"must be an object (got {type(value).__name__})")
    return value


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise _Problem(f"must be a whole number (got {value!r})")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT_TEXT.match(value):
        return int(value)
    raise _Problem(f"must be a whole number (got {value!r})")


def _to_number(value: Any) -> float | int:
    if isinstance(value, bool):
        raise _Problem(f"must be a number (got {value!r})")
    if isinstance(value, (int, float)) and math.isfinite(value):
        return value
    if isinstance(value, str) and _NUMBER_TEXT.match(value):
        return float(value)
    raise _Problem(f"must be a finite number (got {value!r})")


def _check_bounds(f: Field, value: float) -> None:
    low_ok = (f.minimum is None or value >= f.minimum) and (
        f.exclusive_minimum is None or value > f.exclusive_minimum)
    high_ok = (f.maximum is None or value <= f.maximum) and (
        f.exclusive_maximum is None or value < f.exclusive_maximum)
    if not (low_ok and high_ok):
        raise _Problem(f"must be {bounds_phrase(f)} (got {value})")


def _check_text(f: Field, value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # e.g. a lone surrogate from a bad copy-paste or JSON
        raise _Problem(f"holds a character that cannot be stored or sent ({value[exc.start]!r} at "
                       f"position {exc.start}, a lone UTF-16 surrogate); remove it") from None
    if f.required and not value.strip():
        raise _Problem("must not be empty or only whitespace")
    if f.min_length is not None and len(value) < f.min_length:
        raise _Problem(f"must be at least {f.min_length} characters (got {len(value)})")
    if f.max_length is not None and len(value) > f.max_length:
        raise _Problem(f"must be at most {f.max_length} characters (got {len(value)})")


def _check_items(f: Field, value: list[Any]) -> list[Any]:
    if f.max_items is not None and len(value) > f.max_items:
        raise _Problem(f"must have at most {f.max_items} items (got {len(value)})")
    if f.min_items is not None and len(value) < f.min_items:
        raise _Problem(f"must have at least {f.min_items} items (got {len(value)})")
    items = []
    for i, item in enumerate(value):
        try:
            item = _coerce(f.item_type or "any", item)
        except _Problem as problem:
            raise _Problem(f"item {i} {problem}") from None
        if f.item_enum is not None and item not in f.item_enum:
            raise _Problem(f"item {i} must be one of {', '.join(literal(v) for v in f.item_enum)} "
                           f"(got {literal(item)})")
        items.append(item)
    return items
