"""Copy as code: a `sora_widgets` call and a plain `fal_client` call that reproduce a request.

Neither snippet holds a key: both read it from the environment (FAL_KEY) when run. Local files
are named relative to the working folder (`sora_runs/media/inputs/...`), as a notebook beside
them would open them, never by an absolute (often temporary) path.
"""

from __future__ import annotations

import pprint
from collections.abc import Mapping
from typing import Any

from .._errors import ValidationError
from .._html import shown_value
from ..media import classify_image

__all__ = ["fal_client_code", "sora_widgets_code"]


def _shown(arguments: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments with local files' paths relative to the working folder."""
    return {name: shown_value(value) for name, value in arguments.items()}


def _literal(arguments: Mapping[str, Any], indent: int) -> str:
    """The arguments as a Python dict literal, continuation lines indented by `indent` spaces."""
    text = pprint.pformat(dict(arguments), sort_dicts=False, width=88 - indent)
    return text.replace("\n", "\n" + " " * indent)


def _local_files(arguments: Mapping[str, Any]) -> list[str]:
    """Names of string arguments that point at files on this machine (to upload for fal)."""
    return [name for name, value in arguments.items()
            if isinstance(value, str) and len(value) < 4096 and "\n" not in value and _is_local_file(value)]


def _is_local_file(value: str) -> bool:
    """Whether `value` names a file on this machine (not a URL or data URI)."""
    try:
        path = classify_image(value).path
    except ValidationError:  # another URL scheme: not a file here
        return False
    return path is not None and path.is_file()


def sora_widgets_code(endpoint_id: str, arguments: Mapping[str, Any]) -> str:
    """Python that runs the same request with sora_widgets (local image paths are uploaded by it)."""
    return (
        "import sora_widgets as sw  # uses FAL_KEY from the environment, else the offline preview\n"
        "\n"
        "gen = sw.generate(\n"
        f"    endpoint={endpoint_id!r},\n"
        f"    arguments={_literal(_shown(arguments), 14)},\n"
        ")\n"
        "gen\n"
    )


def fal_client_code(endpoint_id: str, arguments: Mapping[str, Any]) -> str:
    """Python that sends the same request with fal_client alone; local files are uploaded first."""
    arguments = _shown(arguments)
    uploads = _local_files(arguments)
    sent = {name: f"<{name}>" if name in uploads else value for name, value in arguments.items()}
    body = _literal(sent, 14)
    for name in uploads:  # placeholders become the variables holding the uploaded URLs
        body = body.replace(repr(f"<{name}>"), name)
    lines = ["import fal_client  # reads the key from the FAL_KEY environment variable", ""]
    lines += [f"{name} = fal_client.upload_file({arguments[name]!r})" for name in uploads]
    lines += [
        *([""] if uploads else []),
        "result = fal_client.subscribe(",
        f"    {endpoint_id!r},",
        f"    arguments={body},",
        "    with_logs=True,",
        ")",
        'print(result["video"]["url"])',
    ]
    return "\n".join(lines) + "\n"
