"""Small makers of test media shared by several test modules."""

from __future__ import annotations

import io

from PIL import Image


def png_bytes(color: tuple[int, int, int] = (200, 80, 40), size: tuple[int, int] = (64, 48)) -> bytes:
    """A plain-coloured PNG: enough for the preview to render and for hashes to differ by colour."""
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()
