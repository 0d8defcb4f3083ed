"""FalBackend: Sora 2 on fal.ai's queue, followed by its status stream, with careful retries.

One `fal_client.AsyncClient(key=...)` per event loop makes the status polls, the result fetch,
the cancel and the uploads. Two things cannot go through its calls, so we send them ourselves on
the httpx client it holds (one connection pool, so no second TLS handshake), with its headers
and queue URL:
- the submit POST: fal_client 1.0.3 sends a submit again after a dropped connection. Measured
  with tests/fakefal.py's `Fault.drop_after()` on submit (fal processes the POST, then the
  connection closes unanswered): `SyncClient.submit` made 2 POSTs and 2 jobs ran (pinned by
  tests/test_fakefal.py::test_fal_client_resubmits_after_a_dropped_connection);
- the status stream, which fal_client 1.0.3 does not expose (see `_fal_stream.py`).
fal_client retries transport errors, timeouts, 408/409/429 and nginx 5xx pages itself, with
its own backoff (it does not honour Retry-After); our policy (`_fal_retry.py`) adds backoff
with jitter, a deadline and a per-call time bound for what it raises. Local inputs are uploaded
by `_fal_uploads.py`, failures explained by `_fal_errors.py`. fal_client and httpx load on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any, TypeVar

from .._errors import CredentialsError
from .._secrets import fal_key, key_source
from ..records import JobEvent
from ._fal_uploads import Uploader, Uploads

if TYPE_CHECKING:
    import fal_client
    import httpx

    from ._fal_errors import Context
    from ._fal_retry import RetryPolicy
    from ._fal_stream import Tracker

T = TypeVar("T")


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
        self._uploads = Uploads(self._send_upload, upload_cache)
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
        #: read timeout of our submit and stream; for a fal_client call, the bound on the whole call
        self.read_timeout_s = read_timeout_s
        self._clients: tuple[httpx.AsyncClient, fal_client.AsyncClient] | None = None
        self._clients_for: tuple[object, str] | None = None  # (event loop, key fingerprint)
        self._seen_done: set[str] = set()  # request ids whose events() saw COMPLETED

    # -- identity ------------------------------------------------------------------------------

    @property
    def key_source(self) -> str | None:
        """Where the key comes from ("FAL_KEY", "FAL_KEY_ID + FAL_KEY_SECRET", ...), or None."""
        return "the key= argument" if self._key is not None else key_source()

    def describe(self) -> str:
        source = self.key_source
        return f"fal.ai (key from {source})" if source else "fal.ai (no key found: set FAL_KEY)"

    def __repr__(self) -> str:
        return f"FalBackend({self.key_source or 'no key'})"

    def secret_values(self) -> tuple[str, ...]:
        """A key given in code (key=), for the job layer to scrub from server text like the
        environment's keys; never shown."""
        return (self._key,) if self._key else ()

    def _credentials(self) -> tuple[str, str]:
        """(key, where it came from); raises CredentialsError before anything is sent."""
        from ._fal_errors import MISSING_KEY

        source = self.key_source
        if source is None:
            raise CredentialsError(MISSING_KEY, kind="credentials")
        return (self._key if self._key is not None else fal_key() or ""), source

    def _ctx(self, action: str, endpoint_id: str, request_id: str | None = None) -> Context:
        from ._fal_errors import Context

        return Context(action, endpoint_id, self.key_source or "no key", request_id, self.secret_values())

    async def _clients_here(self) -> tuple[httpx.AsyncClient, fal_client.AsyncClient]:
        """This loop's (httpx client for submit and stream, fal_client client for the rest).

        The httpx client is the one fal_client's request handles carry (`AsyncRequestHandle.client`,
        a public field; `get_handle` only builds URLs), so both share one connection pool. Should a
        fal_client release not expose it, we build our own the way fal_client does (a second pool).
        Connections are bound to the loop that made them: a new loop (or key) gets a new pair.
        """
        import fal_client
        import httpx

        key, _ = self._credentials()
        owner = (asyncio.get_running_loop(), hashlib.sha256(key.encode()).hexdigest())
        if self._clients is None or self._clients_for != owner:
            client = fal_client.AsyncClient(key=key)
            http = getattr(await client.get_handle("fal-ai/any", "none"), "client", None)
            if not isinstance(http, httpx.AsyncClient):
                from fal_client.auth import AuthCredentials
                from fal_client.client import USER_AGENT, AsyncBackupDomainTransport

                http = httpx.AsyncClient(transport=AsyncBackupDomainTransport(), headers={
                    "Authorization": AuthCredentials("Key", key).header_value, "User-Agent": USER_AGENT})
            self._clients, self._clients_for = (http, client), owner
        return self._clients

    def _timeout(self) -> httpx.Timeout:
        """The bound on our submit and stream requests (fal_client's client defaults to 120 s)."""
        import httpx

        return httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s)

    async def aclose(self) -> None:
        """Close the HTTP connections (call from the loop that used them); the next call makes new ones.

        fal_client.AsyncClient has no close method; this closes the httpx client it shares with us.
        """
        if self._clients is not None:
            await self._clients[0].aclose()
            self._clients, self._clients_for = None, None

    # -- inputs --------------------------------------------------------------------------------

    async def prepare(self, endpoint_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """Upload local files named in `*_url` / `*_urls` fields (once per content) and use their URLs.

        The HTTP clients are made here, before the job is marked as being sent, so the window in
        which a killed process leaves an `unknown` row is the POST itself."""
        if self.key_source is not None:
            await self._clients_here()
        return await self._uploads.as_urls(endpoint_id, arguments)

    async def _send_upload(self, endpoint_id: str, data: bytes, content_type: str, file_name: str) -> str:
        """The injected uploader, or fal_client's `upload` (which retries by itself)."""
        if self._uploader is not None:
            url = self._uploader(data, content_type, file_name)
            return await url if inspect.isawaitable(url) else url
        from ._fal_errors import LOWER_LEVEL_ERRORS, translate

        _, client = await self._clients_here()
        try:
            return await client.upload(data, content_type, file_name)
        except LOWER_LEVEL_ERRORS as exc:
            raise translate(exc, self._ctx("upload", endpoint_id)) from exc

    # -- the queue -----------------------------------------------------------------------------

    async def submit(self, endpoint_id: str, arguments: dict[str, Any]) -> str:
        """POST once with our client; sent again only when nothing reached fal (connect errors) or
        fal declined it (429, 503). A lost or unreadable answer raises
        GenerationError(kind="lost_answer"): fal may have taken the job.

        Not `fal_client.AsyncClient.submit`: that one sends the POST again after a dropped
        connection or a read timeout, when fal may already have accepted (and will bill) the job.
        Otherwise the request is the one fal_client sends: same URL, headers and app-context hooks.
        """
        # fal_client's own header hooks, which its client module imports from a private module
        from fal_client.client import (  # type: ignore[attr-defined]
            QUEUE_URL_FORMAT,
            add_fal_app_context_headers,
            handle_response_headers,
        )

        http, _ = await self._clients_here()
        headers: dict[str, str] = {}
        add_fal_app_context_headers(headers)

        async def post(_: float) -> str:
            response = await http.post(QUEUE_URL_FORMAT + endpoint_id, json=arguments, headers=headers,
                                       timeout=self._timeout())
            response.raise_for_status()
            handle_response_headers(response.headers)
            return str(response.json()["request_id"])

        return await self._retry_policy().run(self._ctx("submit", endpoint_id), post)

    async def result(self, endpoint_id: str, request_id: str) -> dict[str, Any]:
        """The output, via fal_client's `AsyncRequestHandle.get`; fal's failures become GenerationErrors.

        `get` checks the status before the GET (fal_client has no one-shot fetch), unless our
        `events()` already saw this job COMPLETED: then a `FinishedHandle` skips that request.
        The handle's `interval=` keeps a not-yet-finished job from being polled every 0.1 s.
        """
        from ._fal_stream import FinishedHandle

        async def fetch(client: fal_client.AsyncClient) -> dict[str, Any]:
            handle = await client.get_handle(endpoint_id, request_id)
            if request_id in self._seen_done:
                handle = FinishedHandle.of(handle)
            output = await handle.get(interval=self.poll_max_s)
            if not isinstance(output, dict):
                raise ValueError(f"the result is {type(output).__name__}, not a JSON object")
            return dict(output)

        try:
            return await self._via_fal_client(self._ctx("result", endpoint_id, request_id), fetch)
        finally:
            self._seen_done.discard(request_id)

    async def cancel(self, endpoint_id: str, request_id: str) -> None:
        """fal_client's cancel (PUT). A finished job raises GenerationError(kind="already_completed")."""
        await self._via_fal_client(self._ctx("cancel", endpoint_id, request_id),
                                   lambda client: client.cancel(endpoint_id, request_id))

    async def events(self, endpoint_id: str, request_id: str) -> AsyncIterator[JobEvent]:
        """Follow a job (new or resumed) through fal's status stream, polling only if it fails.

        The polls are fal_client's `status(with_logs=True)`, at an interval that starts at
        `poll_min_s`, grows while nothing changes and resets when the phase does.
        """
        import httpx

        from ._fal_errors import translate
        from ._fal_stream import Tracker, read_status_stream, status_dict

        http, client = await self._clients_here()
        status_url = (await client.get_handle(endpoint_id, request_id)).status_url
        tracker = Tracker()
        opens = 1 + self.stream_reopens if self.use_stream else 0
        while opens > 0 and not tracker.done:
            opens -= 1
            delivered = 0
            try:
                async with aclosing(read_status_stream(http, status_url, self._timeout())) as stream:
                    async for status in stream:
                        delivered += 1
                        for event in self._track(tracker, request_id, status):
                            yield event
            except httpx.HTTPStatusError as exc:
                raise translate(exc, self._ctx("stream", endpoint_id, request_id)) from exc
            if delivered == 0:
                break
        interval = self.poll_min_s
        ctx = self._ctx("status", endpoint_id, request_id)

        async def poll(client: fal_client.AsyncClient) -> dict[str, Any]:
            return status_dict(await client.status(endpoint_id, request_id, with_logs=True))

        while not tracker.done:
            polled = await self._via_fal_client(ctx, poll)
            phase = tracker.phase
            for event in self._track(tracker, request_id, polled):
                yield event
            if tracker.done:
                break
            interval = (self.poll_min_s if tracker.phase != phase
                        else min(interval * self.poll_growth, self.poll_max_s))
            await asyncio.sleep(interval)

    def _track(self, tracker: Tracker, request_id: str, status: dict[str, Any]) -> list[JobEvent]:
        """The tracker's events for `status`; a COMPLETED job is noted, so result() need not ask again."""
        events = tracker.update(status)
        if tracker.phase == "COMPLETED":
            self._seen_done.add(request_id)
        return events

    # -- retries -------------------------------------------------------------------------------

    async def _via_fal_client(self, ctx: Context, use: Callable[[fal_client.AsyncClient], Awaitable[T]]) -> T:
        """A fal_client call under our retry policy, each attempt bounded in time.

        fal_client's queue calls wait up to 120 s per request and retry by themselves up to 10
        times, so one attempt is cut at `read_timeout_s` (or the deadline, if sooner).
        """
        _, client = await self._clients_here()

        async def attempt(remaining_s: float) -> T:
            return await asyncio.wait_for(use(client), min(self.read_timeout_s, remaining_s))

        return await self._retry_policy().run(ctx, attempt)

    def _retry_policy(self) -> RetryPolicy:
        """The retry policy from this backend's settings as they are now (tests change them)."""
        from ._fal_retry import RetryPolicy

        return RetryPolicy(self.retry_deadline_s, self.max_attempts, self.backoff_s, self.max_backoff_s)
