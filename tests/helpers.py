"""Small makers of test media shared by several test modules."""

from __future__ import annotations

import io
import time
from collections.abc import Callable

from PIL import Image


def png_bytes(color: tuple[int, int, int] = (200, 80, 40), size: tuple[int, int] = (64, 48)) -> bytes:
    """A plain-coloured PNG: enough for the preview to render and for hashes to differ by colour."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail the test, naming `what`, after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not met in {timeout} s"
        time.sleep(0.02)
