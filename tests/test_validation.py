"""Local validation: every rejection names its field and what is allowed; good input is normalised."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sora_widgets as sw
from sora_widgets.schema import Field

I2V = "fal-ai/sora-2/image-to-video"
GOOD = {"prompt": "a cat surfing", "image_url": "https://e.com/a.png"}


@pytest.fixture(scope="module")
def schema() -> sw.EndpointSchema:
    return sw.load_schema(I2V)


def test_issue_example_duration_5_names_the_allowed_durations(schema: sw.EndpointSchema) -> None:
    with pytest.raises(sw.ValidationError) as info:
        schema.validate({"prompt": "x", "image_url": "https://e.com/a.png", "duration": 5})
    assert isinstance(info.value, ValueError)
    [(field, message)] = info.value.errors
    assert field == "duration"
    assert "4, 8, 12, 16, 20" in message and "5" in message
    assert "duration" in str(info.value)


def test_numeric_text_becomes_the_integer(schema: sw.EndpointSchema) -> None:
    args = schema.validate({"prompt": "x", "image_url": "https://e.com/a.png", "duration": "8"})
    assert args["duration"] == 8 and isinstance(args["duration"], int)


def test_defaults_are_filled(schema: sw.EndpointSchema) -> None:
    args = schema.validate(GOOD)
    assert args == {**GOOD, **schema.defaults()}
    assert args["duration"] == 4 and args["model"] == "sora-2" and args["delete_video"] is True
    assert "character_ids" not in args


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"prompt": None}, "prompt", ["required"]),
        ({"image_url": None}, "image_url", ["required"]),
        ({"prompt": ""}, "prompt", ["empty"]),
        ({"prompt": "   \n\t"}, "prompt", ["whitespace"]),
        ({"prompt": "x" * 5001}, "prompt", ["5000", "5001"]),
        ({"prompt": 42}, "prompt", ["text"]),
        ({"delete_video": "yes"}, "delete_video", ["true or false"]),
        ({"delete_video": 1}, "delete_video", ["true or false"]),
        ({"detect_and_block_ip": "false"}, "detect_and_block_ip", ["true or false"]),
        ({"duration": 5}, "duration", ["4, 8, 12, 16, 20"]),
        ({"duration": "eight"}, "duration", ["whole number"]),
        ({"duration": True}, "duration", ["whole number"]),
        ({"duration": 8.5}, "duration", ["whole number"]),
        ({"model": "sora-3"}, "model", ['"sora-2"', '"sora-2-2025-12-08"', '"sora-2-2025-10-06"']),
        ({"aspect_ratio": "4:3"}, "aspect_ratio", ['"auto"', '"9:16"', '"16:9"']),
        ({"character_ids": ["a", "b", "c"]}, "character_ids", ["at most 2"]),
        ({"character_ids": "a"}, "character_ids", ["list"]),
        ({"character_ids": [1]}, "character_ids", ["item 0", "text"]),
        ({"durration": 8}, "durration", ['did you mean "duration"']),
        ({"negative_prompt": "x"}, "negative_prompt", ["not a field", "duration"]),
    ],
)
def test_each_rejection_names_the_field_and_what_is_allowed(
    schema: sw.EndpointSchema, change: dict, field: str, words: list[str]
) -> None:
    with pytest.raises(sw.ValidationError) as info:
        schema.validate({**GOOD, **change})
    assert info.value.fields == [field]
    message = dict(info.value.errors)[field]
    for word in words:
        assert word in message


def test_every_problem_is_reported_at_once(schema: sw.EndpointSchema) -> None:
    with pytest.raises(sw.ValidationError) as info:
        schema.validate({"durration": 8, "duration": 3, "model": "x", "delete_video": "no"})
    assert set(info.value.fields) == {"durration", "prompt", "image_url", "duration", "model",
                                      "delete_video"}


def test_numbers_out_of_bounds_name_the_bounds() -> None:
    field = Field(name="strength", type="number", minimum=0, maximum=1)
    schema = sw.EndpointSchema(endpoint_id="t/x", fields=(field,))
    with pytest.raises(sw.ValidationError, match=r"strength: must be >= 0, <= 1 \(got 1.5\)"):
        schema.validate({"strength": 1.5})
    assert schema.validate({"strength": "0.25"}) == {"strength": 0.25}


def test_not_a_mapping_is_refused(schema: sw.EndpointSchema) -> None:
    with pytest.raises(sw.ValidationError, match="mapping"):
        schema.validate(["prompt"])  # type: ignore[arg-type]


# --- property-based: anything drawn from the schema's own limits validates ----------------------

def _valid_value(field: Field) -> st.SearchStrategy[Any]:
    if field.enum is not None:
        return st.sampled_from(field.enum)
    if field.type == "boolean":
        return st.booleans()
    if field.type == "string":
        low = max(field.min_length or 1, 1)
        high = min(field.max_length or 200, 200)
        return st.text(min_size=low, max_size=high).filter(lambda s: s.strip())
    if field.type == "array":
        items = st.sampled_from(field.item_enum) if field.item_enum else st.text(max_size=20)
        return st.lists(items, max_size=field.max_items if field.max_items is not None else 3)
    if field.type == "integer":
        return st.integers(min_value=int(field.minimum or 0), max_value=int(field.maximum or 1000))
    if field.type == "number":
        return st.floats(min_value=field.minimum or 0, max_value=field.maximum or 1000)
    raise AssertionError(f"no strategy for {field}")


def _valid_arguments(schema: sw.EndpointSchema) -> st.SearchStrategy[dict[str, Any]]:
    required = {f.name: _valid_value(f) for f in schema.fields if f.required}
    optional = {f.name: _valid_value(f) for f in schema.fields if not f.required}
    return st.fixed_dictionaries(required, optional=optional)


def _invalid_value(field: Field) -> st.SearchStrategy[Any]:
    """Values just outside the field's own limits, or of the wrong type."""
    if field.enum is not None:
        return st.one_of(st.text(min_size=1).filter(lambda v: v not in field.enum),
                         st.integers().filter(lambda v: v not in field.enum))
    if field.type == "boolean":
        return st.one_of(st.integers(), st.text(), st.sampled_from(["true", "false", "yes"]))
    if field.type == "string" and field.max_length:
        return st.integers(field.max_length + 1, field.max_length + 50).map(lambda n: "y" * n)
    if field.type == "string":
        return st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans())
    if field.type == "array" and field.max_items is not None:
        return st.lists(st.text(min_size=1, max_size=5), min_size=field.max_items + 1,
                        max_size=field.max_items + 4)
    raise AssertionError(f"no invalid strategy for {field}")


@pytest.mark.parametrize("endpoint", sw.bundled_endpoints())
def test_arguments_drawn_from_the_schema_always_validate(endpoint: str) -> None:
    schema = sw.load_schema(endpoint)

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_valid_arguments(schema))
    def check(arguments: dict[str, Any]) -> None:
        result = schema.validate(arguments)
        for name, value in arguments.items():
            assert result[name] == value
        assert set(schema.required) <= set(result)

    check()


@pytest.mark.parametrize("endpoint", sw.bundled_endpoints())
def test_one_value_pushed_outside_is_rejected_naming_that_field(endpoint: str) -> None:
    schema = sw.load_schema(endpoint)
    candidates = [f for f in schema.fields if f.enum is not None or f.type in ("boolean", "string")
                  or (f.type == "array" and f.max_items is not None)]

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(_valid_arguments(schema), st.data())
    def check(arguments: dict[str, Any], data: st.DataObject) -> None:
        field = data.draw(st.sampled_from(candidates))
        bad = data.draw(_invalid_value(field))
        if field.enum is not None and field.type == "integer" and isinstance(bad, str):
            bad = bad + "x"  # numeric text for an integer enum is a valid spelling, not a bad one
        if (field.enum is not None and field.type == "string" and isinstance(bad, (int, float))
                and not isinstance(bad, bool)):
            bad = bad + 0.25  # nor is a number for a text enum of lengths (6 for "6s")
        with pytest.raises(sw.ValidationError) as info:
            schema.validate({**arguments, field.name: bad})
        assert info.value.fields == [field.name]

    check()
