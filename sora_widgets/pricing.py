"""What a Sora 2 generation costs: fal's published per-second prices, dated and overridable.

Prices change, so the table says when it was read (`PRICES_AS_OF`) and `set_price` replaces an
entry for this process. An estimate is `None`, never a guess, when the price or the length of
the video is not known.

Sources (read 2026-11-25): fal's llms.txt and API reference pages for each endpoint, e.g.
https://fal.ai/models/fal-ai/sora-2/image-to-video/llms.txt ("$0.1/s for Sora 2") and
https://fal.ai/models/fal-ai/sora-2/text-to-video/pro/llms.txt ("$0.30/s for 720p and $0.50/s
for 1080p").

Assumptions, where fal states nothing:
- Pro at resolution `auto` is charged the 720p rate.
- Pro at `true_1080p` (1920x1080) has no price from fal, so it has none here (estimate `None`);
  `set_price(endpoint_id, rate, resolution="true_1080p")` adds one.
- Remix is charged the Sora 2 rate per second of the remixed video, which is assumed to be as long
  as its source; the arguments do not say how long that is, so the caller passes
  `source_duration_s` or gets `None`.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from ._errors import SchemaError, ValidationError
from .schema import load_schema

PRICES_AS_OF = "2026-11-25"
DEFAULT_DURATION_S = 4
ANY_RESOLUTION = "*"
REMIX_ENDPOINT = "fal-ai/sora-2/video-to-video/remix"

# endpoint id -> resolution (or ANY_RESOLUTION) -> USD per second of generated video.
_PUBLISHED: dict[str, dict[str, float]] = {
    "fal-ai/sora-2/image-to-video": {ANY_RESOLUTION: 0.10},
    "fal-ai/sora-2/text-to-video": {ANY_RESOLUTION: 0.10},
    "fal-ai/sora-2/image-to-video/pro": {"auto": 0.30, "720p": 0.30, "1080p": 0.50},
    "fal-ai/sora-2/text-to-video/pro": {"720p": 0.30, "1080p": 0.50},
    REMIX_ENDPOINT: {ANY_RESOLUTION: 0.10},
}

_prices: dict[str, dict[str, float]] = copy.deepcopy(_PUBLISHED)


def price_per_second(endpoint_id: str, resolution: str | None = None) -> float | None:
    """USD per second of video for `endpoint_id` at `resolution` (its default when None), or None
    when no price is known."""
    rates = _prices.get(endpoint_id)
    if rates is None:
        return None
    if resolution is None:
        resolution = _default_resolution(endpoint_id)
    if resolution is not None and resolution in rates:
        return rates[resolution]
    return rates.get(ANY_RESOLUTION)


def estimate_cost(endpoint_id: str, arguments: Mapping[str, Any], *,
                  source_duration_s: float | None = None) -> float | None:
    """Estimated USD for one request with `arguments`, or None when the price or the video's
    length is unknown (an unknown endpoint, resolution, or a remix without `source_duration_s`)."""
    rate = price_per_second(endpoint_id, arguments.get("resolution"))
    if endpoint_id == REMIX_ENDPOINT:
        seconds = source_duration_s
    else:
        seconds = _seconds(arguments.get("duration", DEFAULT_DURATION_S))
    if rate is None or seconds is None:
        return None
    return round(rate * seconds, 6)


def set_price(endpoint_id: str, usd_per_second: float, resolution: str | None = None) -> None:
    """Override a price for this process: one resolution's (other resolutions keep theirs), or
    with `resolution=None` the endpoint's price at every resolution. `reset_prices()` undoes it."""
    is_number = isinstance(usd_per_second, (int, float)) and not isinstance(usd_per_second, bool)
    if not (is_number and math.isfinite(usd_per_second) and usd_per_second >= 0):
        problem = f"must be a finite number >= 0, got {usd_per_second!r}"
        raise ValidationError([("usd_per_second", problem)])
    if resolution is None:
        _prices[endpoint_id] = {ANY_RESOLUTION: float(usd_per_second)}
    else:
        _prices.setdefault(endpoint_id, {})[resolution] = float(usd_per_second)


def reset_prices() -> None:
    """Forget every `set_price` override and go back to the published table."""
    _prices.clear()
    _prices.update(copy.deepcopy(_PUBLISHED))


def format_usd(amount: float | None) -> str:
    """`$0.40` for an amount, `unknown` for None, as shown in panels and reports."""
    return "unknown" if amount is None else f"${amount:,.2f}"


def _seconds(value: Any) -> float | None:
    """A duration argument as seconds: an int, a float or a numeric string such as "8"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _default_resolution(endpoint_id: str) -> str | None:
    """The endpoint's default resolution, read from its schema, for arguments that omit it."""
    try:
        schema = load_schema(endpoint_id)
    except SchemaError:
        return None
    if "resolution" not in schema or not schema["resolution"].has_default:
        return None
    return str(schema["resolution"].default)
