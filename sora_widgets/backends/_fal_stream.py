"""fal's job status as JobEvents: the status stream reader, and the tracker that dedupes statuses.

The stream (`GET {status_url}/stream`, server-sent events until COMPLETED) is read here with
httpx-sse because fal_client 1.0.3 has no call for it. Polled statuses arrive as fal_client's
`Queued` / `InProgress` / `Completed` objects; `status_dict` gives both sources one shape.
`FinishedHandle` lets fal_client fetch the result of a job already known to be complete.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from fal_client.client import AsyncRequestHandle

from ..records import JobEvent

if TYPE_CHECKING:
    import httpx
    from fal_client.client import Status


async def read_status_stream(client: httpx.AsyncClient, status_url: str,
                             timeout: httpx.Timeout) -> AsyncGenerator[dict[str, Any], None]:
    """Status objects from `{status_url}/stream`; ends quietly when the stream is refused or breaks.

    A refused key (401/403) raises `httpx.HTTPStatusError` for the caller to translate; any other
    failure (a broken or undecodable body, a raw `ssl.SSLError`) just ends the stream, and the
    caller falls back to polling through fal_client.
    """
    import httpx
    from httpx_sse import SSEError, aconnect_sse

    try:
        async with aconnect_sse(client, "GET", status_url + "/stream", params={"logs": "1"},
                                timeout=timeout) as source:
            if source.response.status_code in (401, 403):
                await source.response.aread()
                source.response.raise_for_status()
            if source.response.status_code >= 400:
                return
            async for sse in source.aiter_sse():
                if sse.data:
                    yield sse.json()
    except (httpx.RequestError, OSError, SSEError, ValueError):
        return


class FinishedHandle(AsyncRequestHandle):
    """fal_client's request handle for a job whose stream (or poll) already said COMPLETED.

    `get()` waits on `iter_events()` and then sends the result GET; here there is nothing left
    to wait for, so the GET goes out at once, saving the status request `get()` would send first.
    """

    @classmethod
    def of(cls, handle: AsyncRequestHandle) -> FinishedHandle:
        return cls(**{f.name: getattr(handle, f.name) for f in fields(handle)})

    async def iter_events(self, **_: Any) -> AsyncIterator[Status]:
        finished: tuple[Status, ...] = ()  # nothing left to wait for
        for status in finished:
            yield status


def status_dict(status: Status) -> dict[str, Any]:
    """fal_client's parsed status back in the queue's JSON shape, which the stream also uses."""
    from fal_client.client import Completed, InProgress, Queued

    if isinstance(status, Queued):
        return {"status": "IN_QUEUE", "queue_position": status.position}
    if isinstance(status, InProgress):
        return {"status": "IN_PROGRESS", "logs": status.logs}
    if isinstance(status, Completed):
        return {"status": "COMPLETED", "logs": status.logs, "metrics": status.metrics, "error": status.error,
                "error_type": status.error_type}
    raise ValueError(f"unknown fal_client status {status!r}")


class Tracker:
    """Turns a sequence of fal status objects into JobEvents: changes and new log lines only."""

    def __init__(self) -> None:
        self.phase: str | None = None
        self.done = False
        self._position: int | None = None
        self._running_since: float | None = None
        self._seen: Counter[tuple[str, str]] = Counter()

    def update(self, status: dict[str, Any]) -> list[JobEvent]:
        state = str(status.get("status", "")).upper()
        previous, self.phase = self.phase, state
        if state == "IN_QUEUE":
            position = status.get("queue_position")
            if previous == state and position == self._position:
                return []
            self._position = position
            return [JobEvent("queued", position=position)]
        new = self._new_lines(status.get("logs") or [])
        if state == "IN_PROGRESS":
            if self._running_since is None:
                self._running_since = time.monotonic()
            if previous == state and not new:
                return []
            return [JobEvent("running", elapsed_s=self._elapsed(), logs=new)]
        if state in ("CANCELED", "CANCELLED"):
            self.done = True
            return [JobEvent("cancelled", elapsed_s=self._elapsed(), logs=new)]
        if state in ("COMPLETED", "FAILED"):
            self.done = True
            message = status.get("error")
            return [JobEvent("completed", elapsed_s=self._elapsed(), logs=new,
                             message=str(message) if message else None)]
        return []

    def _elapsed(self) -> float | None:
        return None if self._running_since is None else round(time.monotonic() - self._running_since, 3)

    def _new_lines(self, logs: list[Any]) -> tuple[str, ...]:
        """Lines not reported yet, whether fal sends all lines each time or only new ones."""
        counts: Counter[tuple[str, str]] = Counter()
        new = []
        for entry in logs:
            message = str(entry.get("message", "")) if isinstance(entry, dict) else str(entry)
            key = (str(entry.get("timestamp", "")) if isinstance(entry, dict) else "", message)
            counts[key] += 1
            if counts[key] > self._seen[key]:
                new.append(message)
        for key, count in counts.items():
            self._seen[key] = max(self._seen[key], count)
        return tuple(new)
