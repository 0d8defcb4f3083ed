"""Cost estimates: the published table by endpoint, resolution and duration; overrides."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sora_widgets import ValidationError
from sora_widgets.pricing import (
    PRICES_AS_OF,
    PriceTable,
    default_prices,
    estimate_cost,
    format_usd,
    price_for,
    price_per_second,
    reset_prices,
    set_price,
)

I2V = "fal-ai/sora-2/image-to-video"
I2V_PRO = "fal-ai/sora-2/image-to-video/pro"
T2V = "fal-ai/sora-2/text-to-video"
T2V_PRO = "fal-ai/sora-2/text-to-video/pro"
REMIX = "fal-ai/sora-2/video-to-video/remix"


@pytest.fixture(autouse=True)
def _published_prices() -> Iterator[None]:
    """Every test starts from, and leaves behind, the published table."""
    reset_prices()
    yield
    reset_prices()


@pytest.mark.parametrize(("endpoint", "arguments", "expected"), [
    # Sora 2: $0.10 per second whatever the resolution.
    (I2V, {"duration": 4}, 0.40),
    (I2V, {"duration": 8, "resolution": "720p"}, 0.80),
    (I2V, {"duration": 20, "resolution": "auto"}, 2.00),
    (T2V, {"duration": 12, "resolution": "720p"}, 1.20),
    (T2V, {"duration": 16}, 1.60),
    # Sora 2 Pro: $0.30/s at 720p (and auto), $0.50/s at 1080p.
    (I2V_PRO, {"duration": 4, "resolution": "720p"}, 1.20),
    (I2V_PRO, {"duration": 8, "resolution": "auto"}, 2.40),
    (I2V_PRO, {"duration": 12, "resolution": "1080p"}, 6.00),
    (T2V_PRO, {"duration": 20, "resolution": "720p"}, 6.00),
    (T2V_PRO, {"duration": 4, "resolution": "1080p"}, 2.00),
    # A missing duration is 4 s; a missing resolution is the endpoint's default.
    (I2V, {}, 0.40),
    (I2V_PRO, {"duration": 8}, 2.40),    # default auto -> 720p rate
    (T2V_PRO, {"duration": 8}, 4.00),    # default 1080p
    (T2V_PRO, {}, 2.00),
    # A duration not yet normalised by validation still counts.
    (I2V, {"duration": "8"}, 0.80),
])
def test_estimate_from_the_published_table(endpoint: str, arguments: dict[str, Any],
                                           expected: float) -> None:
    assert estimate_cost(endpoint, arguments) == pytest.approx(expected)


@pytest.mark.parametrize(("endpoint", "arguments"), [
    ("fal-ai/some-other/model", {"duration": 4}),
    (I2V_PRO, {"duration": 4, "resolution": "true_1080p"}),  # fal states no price for it
    (T2V_PRO, {"duration": 4, "resolution": "4k"}),
    (I2V, {"duration": "long"}),
    (I2V, {"duration": True}),
    (REMIX, {"video_id": "video_123", "prompt": "purple cat"}),  # source length unknown
])
def test_unknown_price_or_length_gives_none(endpoint: str, arguments: dict[str, Any]) -> None:
    assert estimate_cost(endpoint, arguments) is None


def test_remix_is_priced_per_second_of_its_source() -> None:
    arguments = {"video_id": "video_123", "prompt": "purple cat"}
    assert estimate_cost(REMIX, arguments, source_duration_s=8) == pytest.approx(0.80)


def test_price_per_second_reads_the_table() -> None:
    assert price_per_second(I2V) == pytest.approx(0.10)
    assert price_per_second(T2V_PRO, "720p") == pytest.approx(0.30)
    assert price_per_second(T2V_PRO) == pytest.approx(0.50)
    assert price_per_second("fal-ai/unknown") is None


def test_override_one_resolution_keeps_the_others() -> None:
    set_price(I2V_PRO, 0.70, resolution="true_1080p")
    true_1080p = {"duration": 4, "resolution": "true_1080p"}
    assert estimate_cost(I2V_PRO, true_1080p) == pytest.approx(2.80)
    assert estimate_cost(I2V_PRO, {"duration": 4, "resolution": "1080p"}) == pytest.approx(2.00)


def test_override_without_resolution_covers_every_resolution() -> None:
    set_price(T2V_PRO, 1.0)
    assert estimate_cost(T2V_PRO, {"duration": 4, "resolution": "720p"}) == pytest.approx(4.0)
    assert estimate_cost(T2V_PRO, {"duration": 4, "resolution": "1080p"}) == pytest.approx(4.0)


def test_override_prices_a_new_endpoint() -> None:
    set_price("fal-ai/some-other/model", 0.25)
    assert estimate_cost("fal-ai/some-other/model", {"duration": 8}) == pytest.approx(2.0)


def test_reset_restores_the_published_table() -> None:
    set_price(I2V, 9.0)
    set_price(I2V_PRO, 9.0, resolution="720p")
    reset_prices()
    assert estimate_cost(I2V, {"duration": 4}) == pytest.approx(0.40)
    assert estimate_cost(I2V_PRO, {"duration": 4, "resolution": "720p"}) == pytest.approx(1.20)


def test_a_table_of_ones_own_changes_nothing_else() -> None:
    mine = PriceTable()
    mine.set(I2V, 1.0)
    assert estimate_cost(I2V, {"duration": 4}, prices=mine) == pytest.approx(4.0)
    assert estimate_cost(I2V, {"duration": 4}) == pytest.approx(0.40)  # the process's table
    assert price_for(I2V, prices=mine, online=False).source == "set_price"
    assert price_for(I2V, online=False).source == "bundled table"
    assert default_prices() is not mine and I2V not in default_prices().overridden


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), True, "0.1"])
def test_set_price_rejects_a_bad_rate(bad: Any) -> None:
    with pytest.raises(ValidationError) as info:
        set_price(I2V, bad)
    assert info.value.fields == ["usd_per_second"]
    assert estimate_cost(I2V, {"duration": 4}) == pytest.approx(0.40)


@pytest.mark.parametrize(("amount", "shown"), [
    (0.4, "$0.40"),
    (2, "$2.00"),
    (0.8000000000000002, "$0.80"),
    (1234.5, "$1,234.50"),
    (None, "unknown"),
])
def test_format_usd(amount: float | None, shown: str) -> None:
    assert format_usd(amount) == shown


def test_prices_are_dated() -> None:
    year, month, day = PRICES_AS_OF.split("-")
    assert (len(year), len(month), len(day)) == (4, 2, 2)
