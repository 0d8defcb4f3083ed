"""One bounded HTTP call for fal's documents and Platform API: a size cap and an overall deadline.

A server that sends an endless trickle or a huge body would otherwise hold a notebook (and its
memory) for as long as it likes; here the body is read in chunks and the call gives up past
`max_bytes` or `deadline_s`, whatever the server does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

__all__ = ["Answer", "TooMuch", "bounded_request"]


class TooMuch(Exception):
    """The answer was larger, or slower, than the call allows."""


@dataclass(frozen=True)
class Answer:
    """What came back: the status, the content type and the body's bytes."""

    status: int
    content_type: str
    body: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not (an HTML page, say)."""
        import json

        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def bounded_request(method: str, url: str, *, params: Any = None, json_body: Any = None,
                    headers: dict[str, str] | None = None, timeout_s: float = 10.0,
                    max_bytes: int = 20 << 20, deadline_s: float = 30.0) -> Answer:
    """Send one request (following redirects) and read at most `max_bytes` within `deadline_s`.

    Raises httpx's errors for transport failures and TooMuch past either bound.
    """
    import httpx

    deadline = time.monotonic() + deadline_s
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
    with httpx.Client(timeout=timeout, follow_redirects=True) as client, client.stream(
            method, url, params=params, json=json_body, headers=headers) as response:
        chunks, size = [], 0
        for chunk in response.iter_bytes():  # as it arrives: a fixed size would wait to fill it
            size += len(chunk)
            if size > max_bytes:
                raise TooMuch(f"{url} sent more than {max_bytes >> 20} MB")
            if time.monotonic() > deadline:
                raise TooMuch(f"{url} took longer than {deadline_s:g} s to answer")
            chunks.append(chunk)
        return Answer(response.status_code, response.headers.get("content-type", ""), b"".join(chunks))
