"""Values by meaning and the phrases that describe them: durations, ratios and resolutions as
fal spells them, bounds and near misses in messages. Shared by the schema, validation, mapping,
pricing and metrics, and imports nothing of theirs."""

from __future__ import annotations

import difflib
import json
import re
from typing import Any

__all__ = ["did_you_mean", "literal", "to_lines", "to_ratio", "to_seconds"]


def to_seconds(value: Any) -> float | None:
    """A duration as fal's endpoints spell it (8, 8.0, "8", "8s", "8 seconds") in seconds, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?)?\s*", value.lower())
        return float(match.group(1)) if match else None
    return None


def to_ratio(value: Any) -> float | None:
    """An aspect ratio as fal spells it ("16:9", "16x9") as width / height; None for "auto"."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[:x/]\s*(\d+(?:\.\d+)?)\s*", str(value or ""))
    if not match or float(match.group(2)) == 0:
        return None
    return float(match.group(1)) / float(match.group(2))


def to_lines(value: Any) -> int | None:
    """A resolution as fal spells it ("720p", "1080P") as its lines; None for "auto", "4k" ..."""
    match = re.fullmatch(r"\s*(\d{3,4})\s*p\s*", str(value or "").lower())
    return int(match.group(1)) if match else None


def literal(value: Any) -> str:
    """A value as messages quote it: text in JSON quotes, anything else as Python prints it."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def did_you_mean(name: str, candidates: list[str]) -> str:
    """' (did you mean "x"?)' for a near miss, else an empty string."""
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""
