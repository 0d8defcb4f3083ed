"""What a generation costs: fal's live unit prices with a key, a dated bundled table offline.

With a key, `GET /v1/models/pricing` answers (cached for a day in the run folder, with the time
it was read); without one, or offline, the bundled table below answers, dated `PRICES_AS_OF`.
`set_price` replaces an entry in the process's `PriceTable` (or make your own and pass it as
`prices=`). An estimate is `None` (shown as "unknown", never as $0) when the price, its unit or
the length of the video is not known.

Sources of the bundled table (read 2026-11-25 for Sora 2, 2026-12-01 for the others): fal's
llms.txt and API reference pages for each endpoint, e.g.
https://fal.ai/models/fal-ai/sora-2/image-to-video/llms.txt ("$0.1/s for Sora 2") and
https://fal.ai/models/fal-ai/sora-2/text-to-video/pro/llms.txt ("$0.30/s for 720p and $0.50/s
for 1080p"); the other endpoints' sources are in `known_endpoints.json`.

Assumptions, where fal states nothing:
- Pro at resolution `auto` is charged the 720p rate.
- Pro at `true_1080p` (1920x1080) has no price from fal, so it has none here (estimate `None`);
  `set_price(endpoint_id, rate, resolution="true_1080p")` adds one.
- Pixverse v5, Luma Ray 2 and Seedance 1.0 Pro (priced in video tokens) have no per-second or
  per-video price from fal here: their estimate is unknown offline.
- Remix is charged the Sora 2 rate per second of the remixed video, which is assumed to be as long
  as its source; the arguments do not say how long that is, so the caller passes
  `source_duration_s` or gets `None`.
"""

from __future__ import annotations

import copy
import datetime
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import OfflineError, PlatformError, SchemaError, ValidationError
from ._values import to_seconds
from .schema.documents import EndpointSchema, load_schema
from .schema.fields import DURATION_FIELDS

PRICES_AS_OF = "2026-11-25"  # when the Sora 2 prices were read; the others say their own date
_READ_ON = {endpoint: "2026-12-01" for endpoint in (
    "fal-ai/veo3.1/image-to-video", "fal-ai/kling-video/v2.6/pro/image-to-video",
    "fal-ai/kling-video/v2.1/standard/image-to-video",
    "fal-ai/minimax/hailuo-02/standard/image-to-video", "fal-ai/wan/v2.2-a14b/image-to-video/turbo")}
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
    # Read 2026-12-01 from each endpoint's llms.txt on fal (sources in known_endpoints.json).
    # Veo 3.1 and Kling 2.6 Pro: the rate with audio, their default (without audio is cheaper).
    "fal-ai/veo3.1/image-to-video": {"720p": 0.40, "1080p": 0.40, "4k": 0.60},
    "fal-ai/kling-video/v2.6/pro/image-to-video": {ANY_RESOLUTION: 0.14},
    # Kling 2.1 Standard: $0.28 for 5 s and $0.056 per further second, i.e. $0.056 a second.
    "fal-ai/kling-video/v2.1/standard/image-to-video": {ANY_RESOLUTION: 0.056},
    "fal-ai/minimax/hailuo-02/standard/image-to-video": {"768P": 0.045, "512P": 0.017},
}

# endpoint id -> resolution (or ANY_RESOLUTION) -> USD per generated video, whatever its length.
_PUBLISHED_PER_VIDEO: dict[str, dict[str, float]] = {
    "fal-ai/wan/v2.2-a14b/image-to-video/turbo": {"720p": 0.10, "580p": 0.075, "480p": 0.05},
}

class PriceTable:
    """The offline prices one process uses: the published table plus its `set` overrides, and
    when fal's pricing API last failed (so a dead Platform API does not stall every keystroke).

    `default_prices()` is the process's table (what `set_price` changes); a test or a notebook
    comparing price assumptions makes its own and passes it as `prices=`."""

    def __init__(self) -> None:
        self.per_second: dict[str, dict[str, float]] = copy.deepcopy(_PUBLISHED)
        self.per_video: dict[str, dict[str, float]] = copy.deepcopy(_PUBLISHED_PER_VIDEO)
        #: endpoint -> the day `set` replaced its price (the live price yields to it)
        self.overridden: dict[str, str] = {}
        self.unreachable: dict[str, float] = {}  # Platform API base URL -> when it last failed (monotonic)

    def __repr__(self) -> str:
        endpoints = len(self.per_second) + len(self.per_video)
        return f"PriceTable({endpoints} endpoints, {len(self.overridden)} set)"

    def reset(self) -> None:
        """Forget every `set` and every remembered failure: the published table again."""
        self.per_second = copy.deepcopy(_PUBLISHED)
        self.per_video = copy.deepcopy(_PUBLISHED_PER_VIDEO)
        self.overridden.clear()
        self.unreachable.clear()

    def set(self, endpoint_id: str, usd_per_second: float, resolution: str | None = None) -> None:
        """Override a price: one resolution's (other resolutions keep theirs), or with
        `resolution=None` the endpoint's price at every resolution."""
        is_number = isinstance(usd_per_second, (int, float)) and not isinstance(usd_per_second, bool)
        if not (is_number and math.isfinite(usd_per_second) and usd_per_second >= 0):
            problem = f"must be a finite number >= 0, got {usd_per_second!r}"
            raise ValidationError([("usd_per_second", problem)])
        self.overridden[endpoint_id] = datetime.date.today().isoformat()
        self.per_video.pop(endpoint_id, None)
        if resolution is None:
            self.per_second[endpoint_id] = {ANY_RESOLUTION: float(usd_per_second)}
        else:
            self.per_second.setdefault(endpoint_id, {})[resolution] = float(usd_per_second)


_default = PriceTable()


def default_prices() -> PriceTable:
    """The process's price table: the one `set_price` changes and estimates use by default."""
    return _default


def price_per_second(endpoint_id: str, resolution: str | None = None, *,
                     prices: PriceTable | None = None) -> float | None:
    """USD per second of video for `endpoint_id` at `resolution` (its default when None), or None
    when no price is known."""
    rates = (prices or _default).per_second.get(endpoint_id)
    if rates is None:
        return None
    if resolution is None:
        resolution = _default_resolution(endpoint_id)
    if resolution is not None and resolution in rates:
        return rates[resolution]
    return rates.get(ANY_RESOLUTION)


@dataclass(frozen=True)
class Price:
    """One endpoint's price for a request: USD per `unit` ("second" of video, or one "video"),
    where it came from and when it was read."""

    usd: float
    unit: str
    as_of: str
    source: str


#: fal's unit names that mean one second of generated video, and one whole output
_PER_SECOND = {"second", "seconds", "video_second", "video_seconds", "s", "sec"}
_PER_OUTPUT = {"video", "videos", "request", "requests", "generation", "generations", "call", "image"}


def price_for(endpoint: EndpointSchema | str, arguments: Mapping[str, Any] | None = None, *,
              online: bool | None = None, prices: PriceTable | None = None) -> Price | None:
    """The price of `endpoint` for these arguments: fal's live unit price when a key is set
    (unless `online=False`), else the bundled table (`prices`, else the process's); None when
    neither knows it."""
    table = prices or _default
    endpoint_id = endpoint if isinstance(endpoint, str) else endpoint.endpoint_id
    resolution = (arguments or {}).get("resolution")
    if online is not False and endpoint_id not in table.overridden:
        live = _live_price(endpoint_id, online=online, table=table)
        if live is not None:
            return live
    per_video = table.per_video.get(endpoint_id)
    if per_video is not None:
        resolution = resolution if resolution is not None else _default_resolution(endpoint_id)
        rate = per_video.get(str(resolution)) if resolution is not None else None
        rate = rate if rate is not None else per_video.get(ANY_RESOLUTION)
        if rate is not None:
            return Price(rate, "video", _READ_ON.get(endpoint_id, PRICES_AS_OF), "bundled table")
    rate = price_per_second(endpoint_id, resolution, prices=table)
    if rate is None:
        return None
    if endpoint_id in table.overridden:
        return Price(rate, "second", table.overridden[endpoint_id], "set_price")
    return Price(rate, "second", _READ_ON.get(endpoint_id, PRICES_AS_OF), "bundled table")


def _live_price(endpoint_id: str, *, online: bool | None, table: PriceTable) -> Price | None:
    """fal's unit price from the Platform API (cached a day); None without a key or an answer."""
    from .schema.platform import PlatformAPI

    api = PlatformAPI()
    if not (online or api.has_key) or time.monotonic() - table.unreachable.get(api.base_url, -1e9) < 300:
        return None
    try:
        answer = api.prices([endpoint_id])
    except (OfflineError, PlatformError):
        table.unreachable[api.base_url] = time.monotonic()  # do not stall every keystroke on it
        return None
    for entry in answer.get("prices", []):
        unit = str(entry.get("unit", "")).lower()
        usd = entry.get("unit_price")
        if (entry.get("endpoint_id") != endpoint_id or isinstance(usd, bool)
                or not isinstance(usd, (int, float))):
            continue
        if unit in _PER_SECOND or unit in _PER_OUTPUT:
            return Price(float(usd), "second" if unit in _PER_SECOND else "video",
                         str(answer.get("read_at", ""))[:10], "fal's pricing API")
    return None


def estimate_cost(endpoint: EndpointSchema | str, arguments: Mapping[str, Any], *,
                  source_duration_s: float | None = None, online: bool | None = None,
                  prices: PriceTable | None = None) -> float | None:
    """Estimated USD for one request with `arguments`, or None when the price or the video's
    length is unknown (an unknown endpoint or resolution, a per-second price for an endpoint
    whose length cannot be told, or a remix without `source_duration_s`)."""
    endpoint_id = endpoint if isinstance(endpoint, str) else endpoint.endpoint_id
    price = price_for(endpoint, arguments, online=online, prices=prices)
    if price is None:
        return None
    if price.unit == "video":
        return round(price.usd, 6)
    seconds = source_duration_s if endpoint_id == REMIX_ENDPOINT else requested_seconds(endpoint, arguments)
    return None if seconds is None else round(price.usd * seconds, 6)


def requested_seconds(endpoint: EndpointSchema | str, arguments: Mapping[str, Any]) -> float | None:
    """How many seconds of video the arguments ask for (8, "8", "8s" alike), the schema's default
    when they do not say, or None when the endpoint has no duration field it can be read from."""
    schema = endpoint if isinstance(endpoint, EndpointSchema) else _schema_or_none(endpoint)
    for name in DURATION_FIELDS:
        if name in arguments:
            return to_seconds(arguments[name])
        if schema is not None and name in schema and schema[name].has_default:
            return to_seconds(schema[name].default)
    return float(DEFAULT_DURATION_S) if schema is None else None


def _schema_or_none(endpoint_id: str) -> EndpointSchema | None:
    try:
        return load_schema(endpoint_id)
    except SchemaError:
        return None


def set_price(endpoint_id: str, usd_per_second: float, resolution: str | None = None) -> None:
    """Override a price for this process (`PriceTable.set` on `default_prices()`);
    `reset_prices()` undoes it."""
    _default.set(endpoint_id, usd_per_second, resolution)


def reset_prices() -> None:
    """Forget every `set_price` override and go back to the published table."""
    _default.reset()


def format_usd(amount: float | None) -> str:
    """`$0.40` for an amount, `unknown` for None, as shown in panels and reports."""
    return "unknown" if amount is None else f"${amount:,.2f}"


def _default_resolution(endpoint_id: str) -> str | None:
    """The endpoint's default resolution, read from its schema, for arguments that omit it."""
    try:
        schema = load_schema(endpoint_id)
    except SchemaError:
        return None
    if "resolution" not in schema or not schema["resolution"].has_default:
        return None
    return str(schema["resolution"].default)
