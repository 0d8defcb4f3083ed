"""FalBackend: Sora 2 on fal.ai's queue, followed by its status stream, with careful retries.

fal_client supplies the queue layout (`QUEUE_URL_FORMAT`, `AsyncRequestHandle.from_request_id`),
the `Authorization: Key ...` header (`AuthCredentials`), its backup-domain transport and the
default uploader. The queue calls themselves go through one httpx client because fal_client 1.0.3
re-sends a submit after a dropped connection, ignores Retry-After, has no one-shot result and
does not expose the status stream. fal_client and httpx are imported on first use only.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import mimetypes
import os
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import aclosing
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .._errors import CredentialsError, ValidationError
from ..records import JobEvent

if TYPE_CHECKING:
    import httpx

    from ._fal_errors import Context

#: uploader(data, content_type, file_name) -> URL, sync or async
Uploader = Callable[[bytes, str, str], Union[str, Awaitable[str]]]

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+):")
_PASS_THROUGH = ("http://", "https://", "data:")
_RETRY_STATUS = {502, 503, 504}
_TIMEOUT_TYPES = {"request_timeout", "startup_timeout"}


class FalBackend:
    """Runs generations on fal.ai: upload, submit once, follow cheaply, fetch, cancel, resume."""

    name = "fal"

    def __init__(
        self,
        *,
        key: str | None = None,
        uploader: Uploader | None = None,
        upload_cache: MutableMapping[str, str] | None = None,
        retry_deadline_s: float = 60.0,
        max_attempts: int = 8,
        backoff_s: float = 0.25,
        max_backoff_s: float = 8.0,
        poll_min_s: float = 0.25,
        poll_max_s: float = 3.0,
        poll_growth: float = 1.5,
        use_stream: bool = True,
        stream_reopens: int = 2,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        self._key = key
        self._uploader = uploader
        self._uploads: MutableMapping[str, str] = {} if upload_cache is None else upload_cache
        self._inflight: dict[str, asyncio.Task[str]] = {}
        self.retry_deadline_s = retry_deadline_s
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_min_s = poll_min_s
        self.poll_max_s = poll_max_s
        self.poll_growth = poll_growth
        self.use_stream = use_stream
        self.stream_reopens = stream_reopens
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self._client: httpx.AsyncClient | None = None
        self._client_for: tuple[object, str] | None = None  # (event loop, key fingerprint)

    # -- identity ------------------------------------------------------------------------------

    @property
    def key_source(self) -> str | None:
        """Where the key comes from ("FAL_KEY", "FAL_KEY_ID and FAL_KEY_SECRET", ...), or None."""
        if self._key is not None:
            return "the key= argument"
        if os.environ.get("FAL_KEY"):
            return "FAL_KEY"
        if os.environ.get("FAL_KEY_ID") and os.environ.get("FAL_KEY_SECRET"):
            return "FAL_KEY_ID and FAL_KEY_SECRET"
        return None

    def describe(self) -> str:
        source = self.key_source
        return f"fal.ai (key from {source})" if source else "fal.ai (no key found: set FAL_KEY)"

    def __repr__(self) -> str:
        return f"FalBackend({self.key_source or 'no key'})"

    def _credentials(self) -> tuple[str, str]:
        """(key, where it came from); raises CredentialsError before anything is sent."""
        from ._fal_errors import MISSING_KEY

        source = self.key_source
        if source is None:
            raise CredentialsError(MISSING_KEY, kind="credentials")
        if self._key is not None:
            return self._key, source
        if source == "FAL_KEY":
            return os.environ["FAL_KEY"], source
        return f"{os.environ['FAL_KEY_ID']}:{os.environ['FAL_KEY_SECRET']}", source

    def _ctx(self, action: str, endpoint_id: str, request_id: str | None = None) -> Context:
        from ._fal_errors import Context

        return Context(action, endpoint_id, self.key_source or "no key", request_id)

    async def _http(self) -> httpx.AsyncClient:
        """One httpx client per event loop and key, built the way fal_client builds its own."""
        import httpx
        from fal_client.auth import AuthCredentials
        from fal_client.client import USER_AGENT, AsyncBackupDomainTransport

        key, _ = self._credentials()
        owner = (asyncio.get_running_loop(), hashlib.sha256(key.encode()).hexdigest())
        if self._client is None or self._client_for != owner:
            self._client = httpx.AsyncClient(
                transport=AsyncBackupDomainTransport(),
                headers={**AuthCredentials("Key", key).as_headers(), "User-Agent": USER_AGENT},
                timeout=httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s),
            )
            self._client_for = owner
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP connections (call from the loop that used them)."""
        if self._client is not None:
            await self._client.aclose()
            self._client, self._client_for = None, None

    # -- inputs --------------------------------------------------------------------------------

    async def prepare(self, endpoint_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Upload local files named in `*_url` / `*_urls` fields (once per content) and use their URLs."""
        out = dict(arguments)
        for name, value in arguments.items():
            if name.endswith("_url"):
                out[name] = await self._as_url(endpoint_id, name, value)
            elif name.endswith("_urls") and isinstance(value, (list, tuple)):
                out[name] = [await self._as_url(endpoint_id, name, item) for item in value]
        return out

    async def _as_url(self, endpoint_id: str, name: str, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(_PASS_THROUGH):
            return value
        if isinstance(value, bytes):
            return await self._upload(endpoint_id, value, "application/octet-stream", "upload.bin")
        if isinstance(value, str) and (match := _SCHEME.match(value)):
            raise ValidationError([(name, f"{match.group(1)}: URLs are not allowed; use http(s), data: or a file path")],
                                  endpoint_id=endpoint_id)
        if not isinstance(value, (str, os.PathLike)):
            return value
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValidationError([(name, f"file not found: {path}")], endpoint_id=endpoint_id)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return await self._upload(endpoint_id, path.read_bytes(), content_type, path.name)

    async def _upload(self, endpoint_id: str, data: bytes, content_type: str, file_name: str) -> str:
        """Upload once per sha256; concurrent uploads of the same bytes share one request."""
        digest = hashlib.sha256(data).hexdigest()
        if digest in self._uploads:
            return self._uploads[digest]
        task = self._inflight.get(digest)
        if task is None:
            task = asyncio.ensure_future(self._call_uploader(endpoint_id, data, content_type, file_name))
            self._inflight[digest] = task
        try:
            url = await asyncio.shield(task)  # one caller giving up does not cancel the others' upload
        finally:
            self._inflight.pop(digest, None)
        self._uploads[digest] = url
        return url

    async def _call_uploader(self, endpoint_id: str, data: bytes, content_type: str, file_name: str) -> str:
        if self._uploader is not None:
            url = self._uploader(data, content_type, file_name)
            return await url if inspect.isawaitable(url) else url
        import fal_client
        import httpx
        from fal_client.client import FalClientHTTPError

        from ._fal_errors import translate

        key, _ = self._credentials()
        try:
            return await fal_client.AsyncClient(key=key).upload(data, content_type, file_name)
        except (httpx.HTTPError, FalClientHTTPError) as exc:
            raise translate(exc, self._ctx("upload", endpoint_id)) from exc

    # -- the queue -----------------------------------------------------------------------------

    async def submit(self, endpoint_id: str, arguments: dict[str, Any]) -> str:
        """POST once; retried only when nothing reached fal (connect errors) or fal said 429."""
        from fal_client.client import QUEUE_URL_FORMAT

        response = await self._send("POST", QUEUE_URL_FORMAT + endpoint_id, self._ctx("submit", endpoint_id),
                                    json=arguments)
        return str(response.json()["request_id"])

    async def result(self, endpoint_id: str, request_id: str) -> dict[str, Any]:
        """One GET of the output; fal's failures (422 lists, moderation, ...) become GenerationErrors."""
        handle = await self._handle(endpoint_id, request_id)
        response = await self._send("GET", handle.response_url, self._ctx("result", endpoint_id, request_id))
        return dict(response.json())

    async def cancel(self, endpoint_id: str, request_id: str) -> None:
        """PUT cancel. A job that already finished raises GenerationError(kind="already_completed")."""
        handle = await self._handle(endpoint_id, request_id)
        await self._send("PUT", handle.cancel_url, self._ctx("cancel", endpoint_id, request_id))

    async def events(self, endpoint_id: str, request_id: str) -> AsyncIterator[JobEvent]:
        """Follow a job (new or resumed) through fal's status stream, polling only if it fails."""
        handle = await self._handle(endpoint_id, request_id)
        tracker = _Tracker()
        opens = 1 + self.stream_reopens if self.use_stream else 0
        while opens > 0 and not tracker.done:
            opens -= 1
            delivered = 0
            stream = self._stream(handle.status_url, self._ctx("stream", endpoint_id, request_id))
            async with aclosing(stream):
                async for status in stream:
                    delivered += 1
                    for event in tracker.update(status):
                        yield event
            if delivered == 0:
                break
        interval = self.poll_min_s
        ctx = self._ctx("status", endpoint_id, request_id)
        while not tracker.done:
            response = await self._send("GET", handle.status_url, ctx, params={"logs": "1"})
            phase = tracker.phase
            for event in tracker.update(response.json()):
                yield event
            if tracker.done:
                break
            interval = self.poll_min_s if tracker.phase != phase else min(interval * self.poll_growth, self.poll_max_s)
            await asyncio.sleep(interval)

    async def _handle(self, endpoint_id: str, request_id: str) -> Any:
        """fal_client's URLs for a stored request id (what makes resume possible)."""
        from fal_client.client import AsyncRequestHandle

        return AsyncRequestHandle.from_request_id(await self._http(), endpoint_id, request_id)

    async def _stream(self, status_url: str, ctx: Context) -> AsyncIterator[dict[str, Any]]:
        """Status objects from `{status_url}/stream`; ends quietly when the stream fails."""
        import httpx
        from httpx_sse import SSEError, aconnect_sse

        from ._fal_errors import translate

        client = await self._http()
        try:
            async with aconnect_sse(client, "GET", status_url + "/stream", params={"logs": "1"}) as source:
                if source.response.status_code in (401, 403):
                    await source.response.aread()
                    source.response.raise_for_status()
                if source.response.status_code >= 400:
                    return
                async for sse in source.aiter_sse():
                    if sse.data:
                        yield sse.json()
        except httpx.HTTPStatusError as exc:
            raise translate(exc, ctx) from exc
        except (httpx.TransportError, SSEError, ValueError):
            return

    async def _send(self, method: str, url: str, ctx: Context, **kwargs: Any) -> httpx.Response:
        """One request with retries on transient failures, within `retry_deadline_s`.

        A submit (non-idempotent) is retried only after connect errors and 429s: anything else
        may have reached fal, and sending it again could start (and bill) a second job.
        """
        import httpx

        from ._fal_errors import translate

        client = await self._http()
        idempotent = ctx.action != "submit"
        deadline = time.monotonic() + self.retry_deadline_s
        attempt = 0
        while True:
            attempt += 1
            try:
                response = await client.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
                delay = self._backoff(attempt) if (unsent or idempotent) else None
                if delay is None or not self._may_retry(attempt, delay, deadline):
                    raise translate(exc, ctx) from exc
            else:
                if response.status_code < 400:
                    return response
                delay = self._retry_delay(response, attempt, idempotent)
                if delay is None or not self._may_retry(attempt, delay, deadline):
                    try:
                        response.raise_for_status()
                    except httpx.HTTPStatusError as exc:
                        raise translate(exc, ctx) from exc
            await asyncio.sleep(delay)

    def _may_retry(self, attempt: int, delay: float, deadline: float) -> bool:
        return attempt < self.max_attempts and time.monotonic() + delay < deadline

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: base * 2^(n-1), capped, times 0.5-1.0."""
        return min(self.max_backoff_s, self.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)

    def _retry_delay(self, response: httpx.Response, attempt: int, idempotent: bool) -> float | None:
        """Seconds to wait before retrying this answer, or None when it must not be retried."""
        headers = response.headers
        if response.status_code == 429:
            return _retry_after(headers.get("retry-after")) or self._backoff(attempt)
        if not idempotent or response.status_code not in _RETRY_STATUS:
            return None
        if (headers.get("x-fal-retryable", "").lower() == "false" or "x-fal-request-timeout-type" in headers
                or headers.get("x-fal-error-type") in _TIMEOUT_TYPES):
            return None  # fal says retrying cannot help (e.g. the job itself timed out)
        return self._backoff(attempt)


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (delta or HTTP date), or None."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class _Tracker:
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
