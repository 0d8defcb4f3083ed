"""Every failure talking to fal becomes a GenerationError here, and only here.

`translate(exc, ctx)` maps fal_client's errors (`FalClientHTTPError` from status, result, cancel
and upload; its timeouts; `MissingCredentialsError`), httpx errors (our submit and status stream:
transport failures, `HTTPStatusError`, undecodable answers), timeouts (`TimeoutError`: our
per-call bound on fal_client calls), raw `OSError`s such as an `ssl.SSLError` httpcore lets
through, and answers that cannot be read (`KeyError`, `ValueError`) to a `GenerationError` whose
`kind` says what happened; callers catch `LOWER_LEVEL_ERRORS` and `raise translate(exc, ctx) from
exc`. `http_answer(exc)` reads fal's answer (status, headers, body) out of either HTTP error type,
for the retry policy and for `translate`. Messages name the key's variable, never its value.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import httpx
from fal_client.auth import MissingCredentialsError
from fal_client.client import FalClientError, FalClientHTTPError

from .._errors import CredentialsError, ErrorKind, GenerationError
from .._secrets import scrub_text

#: names of fal error types / categories that mean "blocked as intellectual property" (unverified:
#: fal documents only content_policy_violation; Sora's `detect_and_block_ip` may use either)
_IP_MARKERS = ("intellectual_property", "ip_blocked", "ip_violation", "copyright", "intellectual property")
#: an answer that says the application itself does not exist (fal's wording is unverified)
_GONE = re.compile(r"(?i)\b(application|app|endpoint|model)\b[^.]{0,80}\b(not found|does not exist|"
                   r"doesn't exist|no longer (available|exists)|has been (retired|removed|deprecated))")
TIMEOUT_TYPES = {"request_timeout", "startup_timeout", "generation_timeout"}

#: what the backend meets below it (TimeoutError, ssl.SSLError and the socket errors are OSErrors)
LOWER_LEVEL_ERRORS = (httpx.HTTPError, FalClientError, MissingCredentialsError, OSError, KeyError, ValueError)

MISSING_KEY = ("No fal key: set FAL_KEY (or FAL_KEY_ID and FAL_KEY_SECRET), or pass key= to "
               "FalBackend; without a key use the offline preview backend.")


@dataclasses.dataclass(frozen=True)
class Context:
    """Where a failure happened: which call, which job, where the key came from, and a key given
    in code (`secrets`, never shown) to scrub from what fal echoes back."""

    action: str  # "submit" | "status" | "stream" | "result" | "cancel" | "upload"
    endpoint_id: str
    key_source: str
    request_id: str | None = None
    secrets: tuple[str, ...] = dataclasses.field(default=(), repr=False)


def translate(exc: BaseException, ctx: Context) -> GenerationError:
    """The GenerationError that explains `exc` to a notebook user."""
    if isinstance(exc, MissingCredentialsError):
        return _error(ctx, "credentials", MISSING_KEY, cls=CredentialsError)
    answer = http_answer(exc)
    if answer is not None:
        return _from_response(*answer, ctx)
    if isinstance(exc, TimeoutError):
        if ctx.action == "submit":
            return _lost_answer(ctx, "no answer in time")
        return _error(ctx, "timeout", f"fal did not answer the {ctx.action} request in time (fal_client's "
                      "own retries included).")
    if isinstance(exc, (httpx.DecodingError, httpx.TooManyRedirects, KeyError, ValueError)):
        return _unreadable(exc, ctx)
    if isinstance(exc, (httpx.RequestError, OSError)):
        return _from_transport(exc, ctx)
    if isinstance(exc, FalClientError):
        return _error(ctx, "server", f"fal_client reported a failure during {ctx.action}: {_reason(exc)}")
    return _error(ctx, "error", f"fal {ctx.action} failed: {_reason(exc)}")


def http_answer(exc: BaseException) -> tuple[int, Any, httpx.Headers] | None:
    """(status, body, headers) of fal's error answer, or None when fal did not answer."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code, _json(exc.response), exc.response.headers
    if isinstance(exc, FalClientHTTPError):  # `message` is the body's "detail", or the raw text
        body = {"detail": exc.message, "error_type": exc.error_type}
        return exc.status_code, body, httpx.Headers(exc.response_headers)
    return None


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _from_transport(exc: httpx.RequestError | OSError, ctx: Context) -> GenerationError:
    """A request that got no answer: never sent (connect errors), or cut off on the way."""
    reason = _reason(exc)
    unsent = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout))
    if ctx.action == "submit" and not unsent:
        return _lost_answer(ctx, reason)
    if unsent:
        return _error(ctx, "network", f"Could not reach fal for {ctx.action} ({reason}); check the "
                      "network connection.")
    if isinstance(exc, httpx.TimeoutException):
        return _error(ctx, "timeout", f"fal did not answer the {ctx.action} request in time ({reason}).")
    return _error(ctx, "network", f"The connection to fal broke during {ctx.action} ({reason}).")


def _unreadable(exc: BaseException, ctx: Context) -> GenerationError:
    """fal answered, but not with anything usable (not JSON, no request id, endless redirects)."""
    if ctx.action == "submit":
        return _lost_answer(ctx, f"an answer that could not be read: {_reason(exc)}")
    return _error(ctx, "server", f"fal's answer to the {ctx.action} request could not be read "
                  f"({_reason(exc)}).")


def _lost_answer(ctx: Context, reason: str) -> GenerationError:
    """A submit whose answer never came back: fal may have taken (and will bill) the job."""
    return _error(ctx, "lost_answer", f"The answer to the submission was lost ({reason}). fal may "
                  "have accepted the job, which may still run (and be billed); it was not sent again, "
                  "and the run is recorded as unknown. Check your fal dashboard (requests of "
                  f"{ctx.endpoint_id}) before generating the same request again.")


def _from_response(status: int, body: Any, headers: httpx.Headers, ctx: Context) -> GenerationError:
    detail = body.get("detail") if isinstance(body, dict) else None
    error_type = ((body.get("error_type") if isinstance(body, dict) else None)
                  or headers.get("x-fal-error-type"))
    if status in (401, 403):
        return _error(ctx, "credentials", f"fal refused the key from {ctx.key_source} (HTTP {status}). "
                      f"Check that {ctx.key_source} holds a valid, active fal key.",
                      status=status, cls=CredentialsError)
    text = _short(detail if detail is not None else body)
    if ctx.action == "submit" and (status in (404, 410) or _GONE.search(text)):
        return _error(ctx, "endpoint_unavailable", f"fal has no endpoint {ctx.endpoint_id} to run this "
                      f"request (HTTP {status}: {text}). It may have been retired: OpenAI shut the Sora 2 "
                      "API down on 2026-09-24, and fal's Sora 2 endpoints with it. Nothing was sent again. "
                      "Pick another model (sw.find_endpoints() lists fal's video models; the panel's "
                      "endpoint picker too); your past runs stay in the history.", status=status)
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        return _from_detail_list(status, detail, ctx)
    if ctx.action == "submit" and status in (502, 504) and "x-fal-request-timeout-type" not in headers:
        return _lost_answer(ctx, f"HTTP {status} from a gateway: {text}")
    if ctx.action == "submit" and status == 503:
        return _error(ctx, "server", f"fal declined the submission (HTTP 503) through every retry, so "
                      f"nothing was taken; try again later: {text}", status=status)
    if ctx.action == "cancel" and status == 400:
        return _error(ctx, "already_completed", "The job had already finished, so it could not be "
                      "cancelled; its result can still be fetched.", status=status)
    if error_type == "client_cancelled" or (status == 400 and "cancel" in text.lower()):
        return _error(ctx, "cancelled", "The job was cancelled.", status=status)
    if status == 429:
        return _error(ctx, "rate_limited", "fal is rate limiting this key (HTTP 429) and kept doing so "
                      "through the retries; wait a little or run fewer jobs at once.", status=status)
    if status == 504 or error_type in TIMEOUT_TYPES:
        return _error(ctx, "timeout", f"The job timed out on fal's side (HTTP {status}): {text}",
                      status=status)
    if status == 404:
        return _error(ctx, "not_found", f"fal does not know this request (HTTP 404); it may have "
                      f"expired or belong to another endpoint: {text}", status=status)
    if status >= 500:
        return _error(ctx, "server", f"fal had a server error during {ctx.action} (HTTP {status}) and it "
                      f"persisted through the retries: {text}", status=status)
    return _error(ctx, "rejected", f"fal rejected the {ctx.action} request (HTTP {status}): {text}",
                  status=status)


def _from_detail_list(status: int, detail: list[Any], ctx: Context) -> GenerationError:
    """fal's typed errors: `{"detail": [{"loc": [...], "msg": ..., "type": ...}]}`."""
    items = [item for item in detail if isinstance(item, dict)]
    first = items[0]
    field = _field(first)
    types = [str(item.get("type", "")) for item in items]
    if any("content_policy" in t or _is_ip(item) for t, item in zip(types, items)):
        said = _short("; ".join(str(item["msg"]) for item in items if item.get("msg")))
        fal_says = f" fal said: {said}" if said else ""
        if any(_is_ip(item) for item in items):
            return _error(ctx, "ip_blocked", f"fal blocked the {field or 'input'} by its content policy "
                          "because it appears to show protected intellectual property (a known character, "
                          f"brand or person). Change the prompt or image.{fal_says}",
                          status=status, field=field)
        return _error(ctx, "content_policy", f"fal's content policy checker refused the {field or 'input'}. "
                      "Rephrase the prompt or use another image; sending it again will fail the same "
                      f"way.{fal_says}", status=status, field=field)
    parts = [f"{_field(item) or 'input'}: {item.get('msg', item.get('type', 'invalid'))}" for item in items]
    return _error(ctx, "validation", "fal rejected the arguments: " + "; ".join(parts),
                  status=status, field=field)


def _is_ip(item: dict[str, Any]) -> bool:
    text = " ".join(str(x) for x in (item.get("type"), item.get("msg"), item.get("categories"))).lower()
    return any(marker in text for marker in _IP_MARKERS)


def _field(item: dict[str, Any]) -> str | None:
    loc = [part for part in item.get("loc") or [] if isinstance(part, str) and part != "body"]
    return loc[-1] if loc else None


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(ctx: Context, kind: ErrorKind, message: str, *, status: int | None = None,
           field: str | None = None, cls: type[GenerationError] = GenerationError) -> GenerationError:
    return cls(scrub_text(message, ctx.secrets), kind=kind, endpoint_id=ctx.endpoint_id,
               request_id=ctx.request_id, field=scrub_text(field, ctx.secrets) if field else field,
               status_code=status)
