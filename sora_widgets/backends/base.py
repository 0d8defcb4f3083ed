"""What every backend offers the job layer: submit, follow, fetch the result, cancel.

All methods are coroutines run on a JobRunner's job loop (see `jobs/runner.py`). Errors are raised
as `GenerationError` (with `kind=`) so the job layer never sees a backend's own exceptions.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol, runtime_checkable

from ..records import JobEvent


@runtime_checkable
class Backend(Protocol):
    """A place where generations run: fal.ai's queue, or the offline preview renderer."""

    #: short name stored in the history's `backend` column ("fal", "preview")
    name: str

    def describe(self) -> str:
        """One plain sentence for banners: which backend, and where its key came from (never the key)."""
        ...

    async def prepare(self, endpoint_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Turn validated arguments into what is sent (e.g. upload local images, return URLs).

        An image field may arrive as a `media.NormalizedImage` (checked and stored once when the
        job was made): send its `.url` when set, else its `.local_path`'s content. What is
        returned must be plain JSON values; a NormalizedImage left in it is sent as its `.value`."""
        ...

    async def submit(self, endpoint_id: str, arguments: dict[str, Any]) -> str:
        """Send the request once and return its request id; never retried after it may have landed."""
        ...

    def events(self, endpoint_id: str, request_id: str) -> AsyncIterator[JobEvent]:
        """Yield queued/running events until the job is done; the last event is `completed`."""
        ...

    async def result(self, endpoint_id: str, request_id: str) -> dict[str, Any]:
        """The endpoint's output JSON; raises GenerationError for a job that failed."""
        ...

    async def cancel(self, endpoint_id: str, request_id: str) -> None:
        """Ask the backend to stop the job."""
        ...
