"""fal's Platform API (model search, unit prices, cost estimates), cached in the run folder.

`PlatformAPI()` reads the key and the base URL when it is made (`SORA_WIDGETS_FAL_API_URL`
moves it from `https://api.fal.ai/v1`, e.g. to a test server). Answers are cached as JSON under
`<run folder>/cache/` with the time they were read, and reused for a day. Every failure becomes
an `OfflineError` (no answer) or a `PlatformError` (fal answered with an error), with the key
scrubbed from any text that came back.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .._errors import OfflineError, PlatformError
from .._home import cache_dir
from .._http import TooMuch, bounded_request
from .._secrets import fal_key, scrub, secret_values

DEFAULT_API_URL = "https://api.fal.ai/v1"
CACHE_TTL_S = 24 * 3600.0
MAX_ANSWER_BYTES = 20 << 20  # a model list with every page is far smaller

__all__ = ["CACHE_TTL_S", "PlatformAPI"]


class PlatformAPI:
    """A small client of fal's Platform API with a per-run-folder cache; made per use."""

    def __init__(self, *, base_url: str | None = None, key: str | None = None,
                 cache: Path | None = None, timeout_s: float = 8.0, ttl_s: float = CACHE_TTL_S) -> None:
        self.base_url = (base_url or os.environ.get("SORA_WIDGETS_FAL_API_URL")
                         or DEFAULT_API_URL).rstrip("/")
        self._key = key if key is not None else fal_key()
        self.cache = cache if cache is not None else cache_dir()
        self.timeout_s = timeout_s
        self.ttl_s = ttl_s

    @property
    def has_key(self) -> bool:
        return bool(self._key)

    def __repr__(self) -> str:
        return f"PlatformAPI({self.base_url!r}, key={'set' if self._key else 'none'})"

    # --- the three calls --------------------------------------------------------------------

    def models(self, *, endpoint_ids: Iterable[str] = (), search: str | None = None,
               category: str | None = None, limit: int = 100, max_pages: int = 5) -> dict[str, Any]:
        """`GET /models`: fal's models (find by id, or search by text and category), all pages up
        to `max_pages`, as `{"models": [...], "read_at": ISO time}` (cached for a day)."""
        params: list[tuple[str, str]] = [("endpoint_id", e) for e in endpoint_ids]
        if search:
            params.append(("q", search))
        if category:
            params.append(("category", category))
        params.append(("limit", str(limit)))

        def fetch() -> dict[str, Any]:
            found: list[Any] = []
            cursor = None
            for _ in range(max_pages):
                page = self._request("GET", "/models",
                                     params=params + ([("cursor", cursor)] if cursor else []))
                found += [m for m in page.get("models", []) if isinstance(m, Mapping)]
                cursor = page.get("next_cursor")
                if not page.get("has_more") or not cursor:
                    break
            return {"models": found}

        return self._cached("models", params, fetch)

    def prices(self, endpoint_ids: Iterable[str]) -> dict[str, Any]:
        """`GET /models/pricing`: `{"prices": [{endpoint_id, unit_price, unit, currency}], "read_at"}`."""
        params = [("endpoint_id", e) for e in sorted(set(endpoint_ids))]
        return self._cached("prices", params, lambda: {"prices": self._request(
            "GET", "/models/pricing", params=params).get("prices", [])})

    def estimate(self, unit_quantities: Mapping[str, float]) -> float:
        """`POST /models/pricing/estimate` (unit_price): fal's total in USD for these billing units
        per endpoint; not cached (fal may apply the account's own prices)."""
        body = {"estimate_type": "unit_price",
                "endpoints": {e: {"unit_quantity": q} for e, q in unit_quantities.items()}}
        answer = self._request("POST", "/models/pricing/estimate", json_body=body)
        total = answer.get("total_cost")
        if isinstance(total, bool) or not isinstance(total, (int, float)):
            raise PlatformError(f"fal's estimate answer has no total_cost: {str(answer)[:200]}")
        return float(total)

    # --- plumbing ---------------------------------------------------------------------------

    def _cached(self, name: str, params: list[tuple[str, str]], fetch: Any) -> dict[str, Any]:
        """A cached answer younger than the TTL, else a fresh one (written with its read time)."""
        digest = hashlib.sha256(json.dumps([self.base_url, params]).encode()).hexdigest()[:16]
        path = self.cache / f"{name}-{digest}.json"
        try:
            if time.time() - path.stat().st_mtime < self.ttl_s:
                return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass
        answer = {**fetch(), "read_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(answer), encoding="utf-8")
        except OSError:
            pass  # a read-only run folder: answer without caching
        return answer

    def _request(self, method: str, path: str, *, params: list[tuple[str, str]] | None = None,
                 json_body: Any = None) -> dict[str, Any]:
        import httpx

        headers = {"Authorization": f"Key {self._key}"} if self._key else {}
        url = self.base_url + path
        try:
            answer = bounded_request(method, url, params=params, json_body=json_body, headers=headers,
                                     timeout_s=self.timeout_s, max_bytes=MAX_ANSWER_BYTES,
                                     deadline_s=4 * self.timeout_s)
        except httpx.HTTPError as exc:
            raise OfflineError(f"Could not reach fal's Platform API at {url} "
                               f"({type(exc).__name__}).") from exc
        except TooMuch as exc:
            raise PlatformError(f"fal's Platform API answer for {path} was refused: {exc}.") from exc
        secrets = secret_values() + ([self._key] if self._key else [])
        try:
            data = answer.json()
        except ValueError:
            data = None
        if answer.status >= 400:
            error = data.get("error") if isinstance(data, dict) else None
            text = (f"{error.get('type', 'error')}: {error.get('message', '')}" if isinstance(error, dict)
                    else " ".join(answer.text[:200].split()))
            raise PlatformError(f"fal's Platform API answered {answer.status} for {path}: "
                                f"{scrub(text, secrets)}", status_code=answer.status)
        if not isinstance(data, dict):
            raise PlatformError(f"fal's Platform API sent something that is not a JSON object for "
                                f"{path} ({answer.content_type or 'no content type'}).",
                                status_code=answer.status)
        return dict(scrub(data, secrets))
