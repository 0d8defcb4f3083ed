"""The key never leaves: which values are secrets, and how any text or JSON is scrubbed of them.

Every text that comes from a server (logs, errors, results) and everything written to the history
passes through `scrub` with `secret_values()` (plus a key given in code, where there is one).
"""

from __future__ import annotations

import os
import re
from typing import Any

__all__ = ["SECRET_ENV", "fal_key", "is_secret_name", "key_source", "scrub", "scrub_text", "secret_values"]

SECRET_ENV = ("FAL_KEY", "FAL_KEY_SECRET")
_MIN_SECRET = 8  # shorter values are too likely to occur in ordinary text to be scrubbed
_SECRET_NAME = re.compile(
    r"(?:^|[^a-z])(?:api_?key|key|secret|token|authorization|password|passwd|credentials?)(?:$|[^a-z])")
# Credentials written out in text ("Authorization: Key ...", "api_key=..."), even when the key
# did not come from the environment; plain words such as "secret" in a prompt are left alone.
_SECRET_TEXT = re.compile(
    r"(?i)\b(authorization|x-fal-key|api[_-]?key|access[_-]?token|fal_key(?:_secret)?)"
    r"(\"?'?\s*[:=]\s*\"?'?)(?:(?:key|bearer|basic|token)\s+)?[^\s\"',;]+")


def secret_values() -> list[str]:
    """The current key values from the environment (and the secret half of FAL_KEY), longest first."""
    values = set()
    for variable in SECRET_ENV:
        value = os.environ.get(variable, "").strip()
        if value:
            values.update({value, value.partition(":")[2]})
    return sorted((v for v in values if len(v) >= _MIN_SECRET), key=len, reverse=True)


def is_secret_name(name: str) -> bool:
    """True for keys named like a credential: key, api_key, apiKey, access_token, Authorization..."""
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()
    return _SECRET_NAME.search(snake) is not None


def scrub(value: Any, secrets: list[str]) -> Any:
    """`value` with key values and credential-named entries replaced by "***", at any depth."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return _SECRET_TEXT.sub(lambda m: f"{m[1]}{m[2]}***", value)
    if isinstance(value, dict):  # a server may echo the key as a field name, too
        return {scrub(key, secrets): "***" if isinstance(key, str) and is_secret_name(key)
                and value[key] is not None else scrub(value[key], secrets) for key in value}
    if isinstance(value, (list, tuple)):
        return [scrub(item, secrets) for item in value]
    return value


def scrub_text(text: str, extra: tuple[str, ...] | list[str] = ()) -> str:
    """`text` with the environment's keys and `extra` (e.g. a key= argument) replaced by "***"."""
    secrets = sorted({*secret_values(), *(s for s in extra if s and len(s) >= _MIN_SECRET)},
                     key=len, reverse=True)
    return str(scrub(text, secrets))


def key_source() -> str | None:
    """The name of the environment variable(s) fal's key comes from, or None; never the key."""
    if os.environ.get("FAL_KEY"):
        return "FAL_KEY"
    if os.environ.get("FAL_KEY_ID") and os.environ.get("FAL_KEY_SECRET"):
        return "FAL_KEY_ID + FAL_KEY_SECRET"
    return None


def fal_key() -> str | None:
    """The key from the environment as fal expects it (FAL_KEY, or FAL_KEY_ID:FAL_KEY_SECRET)."""
    source = key_source()
    if source == "FAL_KEY":
        return os.environ["FAL_KEY"]
    if source is not None:
        return f"{os.environ['FAL_KEY_ID']}:{os.environ['FAL_KEY_SECRET']}"
    return None
