"""FalBackend's retry policy: which failures are tried again, after how long, within what deadline.

Kept in one place because one rule matters above the others: a submit is sent again only when
nothing reached fal (connect errors) or fal declined it (429, 503); anything else may have started
(and billed) a job. What still fails after the retries is translated by `_fal_errors.translate`.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import TypeVar

import httpx

from ._fal_errors import LOWER_LEVEL_ERRORS, TIMEOUT_TYPES, Context, http_answer, translate

T = TypeVar("T")

_RETRY_STATUS = {502, 503, 504}


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, at most `max_attempts` tries within `deadline_s`."""

    deadline_s: float
    max_attempts: int
    backoff_s: float
    max_backoff_s: float

    async def run(self, ctx: Context, attempt: Callable[[float], Awaitable[T]]) -> T:
        """`attempt(seconds_left)` with retries on transient failures; the last one is translated.

        Retried: transport errors, timeouts, 502/503/504, and 429 and 503 after their Retry-After.
        A submit (non-idempotent) is retried only after connect errors, 429 and 503, where fal
        declined it: anything else (502, 504, a timeout, a connection dropped after sending) may
        have reached fal, and sending it again could start (and bill) a second job.
        """
        deadline = time.monotonic() + self.deadline_s
        tries = 0
        while True:
            tries += 1
            try:
                return await attempt(max(0.0, deadline - time.monotonic()))
            except LOWER_LEVEL_ERRORS as exc:
                delay = self.delay(exc, tries, idempotent=ctx.action != "submit")
                if delay is None or not (tries < self.max_attempts and time.monotonic() + delay < deadline):
                    raise translate(exc, ctx) from exc
            await asyncio.sleep(delay)

    def backoff(self, attempt: int) -> float:
        """base * 2^(n-1), capped, times 0.5-1.0."""
        return min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1)) * random.uniform(0.5, 1.0)

    def delay(self, exc: Exception, attempt: int, *, idempotent: bool) -> float | None:
        """Seconds to wait before retrying after `exc`, or None when it must not be retried."""
        answer = http_answer(exc)
        if answer is None:
            if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
                return self.backoff(attempt)  # nothing was sent
            if isinstance(exc, (httpx.TransportError, OSError)) and idempotent:
                return self.backoff(attempt)  # incl. our time bound (TimeoutError) and a raw SSLError
            return None  # an answer we cannot read (KeyError, ValueError) will not improve
        status, _, headers = answer
        if status in (429, 503) and (status == 429 or not _timed_out(headers)):
            # the server declined the request (nothing was taken), so even a submit is sent again
            return _retry_after(headers.get("retry-after")) or self.backoff(attempt)
        if not idempotent or status not in _RETRY_STATUS or _timed_out(headers):
            return None
        return self.backoff(attempt)


def _timed_out(headers: httpx.Headers) -> bool:
    """fal says retrying cannot help: the job itself timed out, or fal marked it not retryable."""
    return (headers.get("x-fal-retryable", "").lower() == "false" or "x-fal-request-timeout-type" in headers
            or headers.get("x-fal-error-type") in TIMEOUT_TYPES)


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
