"""Controls built from single fields: each kind, its value, its "not set" state and its limits."""

from __future__ import annotations

import html
import io
from datetime import datetime, timezone

import ipywidgets as widgets
import pytest
import traitlets
from PIL import Image

import sora_widgets as sw
from sora_widgets.schema import Field
from sora_widgets.widgets.controls import (
    NOT_SET,
    ImageInput,
    OptionalValue,
    control_for,
    control_for_enum,
    control_for_list,
    control_for_text,
    fits_toggle_buttons,
    is_advanced,
    label_for,
)


def png_bytes() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


def test_short_enum_is_toggle_buttons_and_maps_values():
    control = control_for(Field("aspect_ratio", "string", default="auto", enum=("auto", "9:16", "16:9")))
    assert isinstance(control.editor, widgets.ToggleButtons)
    assert control.value == "auto"
    control.editor.value = "9:16"
    assert control.value == "9:16"


def test_integer_enum_maps_labels_to_integers():
    control = control_for(Field("duration", "integer", default=4, enum=(4, 8, 12, 16, 20)))
    assert isinstance(control.editor, widgets.ToggleButtons)  # like its neighbours (one rule)
    control.value = 12
    assert control.editor.value == "12" and control.value == 12
    with pytest.raises(traitlets.TraitError, match="one of 4, 8"):
        control.value = 7


def test_one_rule_picks_toggle_buttons_or_a_dropdown():
    """Toggle buttons when the options fit one short row: at most 7, of at most 12 characters,
    40 in all (with "not set"); so every bundled duration but Seedance's eleven is buttons."""
    assert fits_toggle_buttons(["4", "8", "12", "16", "20"])
    assert fits_toggle_buttons(["21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "auto"])
    assert not fits_toggle_buttons([str(n) for n in range(2, 13)])  # eleven options
    assert not fits_toggle_buttons(["sora-2", "sora-2-2025-12-08", "sora-2-2025-10-06"])  # long
    assert not fits_toggle_buttons([NOT_SET, "anime", "3d_animation", "clay", "comic", "cyberpunk"])
    schemas = [sw.load_schema(e) for e in ("fal-ai/sora-2/image-to-video",
                                           "fal-ai/bytedance/seedance/v1/pro/image-to-video",
                                           "fal-ai/veo3.1/image-to-video")]
    kinds = {(s.endpoint_id.split("/")[1], f.name): type(control_for(f).editor).__name__
             for s in schemas for f in s.fields if f.kind == "enum" and not f.hidden}
    assert kinds[("sora-2", "duration")] == kinds[("sora-2", "aspect_ratio")] == "ToggleButtons"
    assert kinds[("sora-2", "model")] == "Dropdown"
    assert kinds[("bytedance", "duration")] == "Dropdown"
    assert kinds[("veo3.1", "safety_tolerance")] == "ToggleButtons"


def test_labels_come_from_titles_with_acronyms_spelled_right():
    assert label_for(Field("image_url", "string", title="Image Url")) == "Image URL"
    assert label_for(Field("detect_and_block_ip", "boolean", title="Detect And Block Ip")) == \
        "Detect and block IP"
    assert label_for(Field("character_ids", "array", title="Character Ids")) == "Character IDs"
    assert label_for(Field("cfg_scale", "number", title="Cfg Scale")) == "CFG scale"
    assert label_for(Field("fps", "integer")) == "FPS"
    assert label_for(Field("end_image_url", "string", title="End Image URL")) == "End image URL"
    assert label_for(Field("video_id", "string")) == "Video ID"
    assert label_for(Field("startImageUrl", "string")) == "Start image URL"
    # a title of its own keeps its words; only acronyms are fixed
    assert label_for(Field("cfg_scale", "number", title="Guidance (Cfg) Strength")) == \
        "Guidance (Cfg) Strength"
    assert label_for(Field("seed", "integer", title="Random Seed For Ai")) == "Random Seed For AI"
    schema = sw.load_schema()
    labels = {name: control_for(schema[name]).label for name in ("image_url", "detect_and_block_ip")}
    assert labels == {"image_url": "Image URL", "detect_and_block_ip": "Detect and block IP"}


def test_enum_without_default_starts_not_set():
    control = control_for_enum(Field("style", "string", enum=("a", "b")))
    assert control.value is None and control.editor.value == NOT_SET
    control.value = "b"
    control.value = None
    assert control.editor.value == NOT_SET


def test_boolean_checkbox_and_three_way_without_default():
    assert isinstance(control_for(Field("flag", "boolean", default=True)).editor, widgets.Checkbox)
    three = control_for(Field("flag", "boolean"))
    assert three.value is None
    three.value = False
    assert three.value is False and three.editor.value == "False"


def test_bounded_number_is_a_slider_unbounded_a_box():
    ints = control_for(Field("steps", "integer", default=10, minimum=1, maximum=50))
    assert isinstance(ints.editor, widgets.IntSlider)
    assert (ints.editor.min, ints.editor.max, ints.value) == (1, 50, 10)
    floats = control_for(Field("scale", "number", default=1.5))
    assert isinstance(floats.editor, widgets.FloatText) and floats.value == 1.5


def test_optional_number_has_a_set_tick_box():
    control = control_for(Field("seed", "integer", minimum=0, maximum=100))
    assert isinstance(control.editor, OptionalValue) and control.value is None
    assert control.editor.inner.disabled
    control.editor.toggle.value = True
    assert control.value == 0
    control.value = 42
    assert control.editor.inner.value == 42 and control.editor.toggle.value
    control.value = None
    assert not control.editor.toggle.value


def test_prompt_is_a_textarea_with_a_live_counter():
    control = control_for_text(sw.load_schema()["prompt"])
    assert isinstance(control.editor, widgets.Textarea)
    assert control.value is None  # empty means not set
    control.editor.value = "hello"
    assert control.value == "hello"
    assert "5 / 5000" in control.counter.value
    control.value = "x" * 5001
    assert "5001 / 5000" in control.counter.value and "#b00" in control.counter.value


def test_short_text_is_a_text_box():
    control = control_for(Field("video_id", "string", required=True, max_length=64))
    assert isinstance(control.editor, widgets.Text)


def test_required_mark_and_description_as_help():
    field = Field("prompt", "string", required=True, description="What <happens> next")
    control = control_for(field)
    label = control.label_widget.value
    assert "*" in label and "&lt;happens&gt;" in label
    assert control.editor.tooltip == "What <happens> next"
    assert "&lt;happens&gt;" in control.help.value
    assert control.children[:3] == (control.children[0], control.editor, control.help)  # label on top


def test_help_text_is_whole_and_wraps():
    """Never cut mid-word ("snapsho..."): the whole description, wrapped by the browser."""
    model = sw.load_schema()["model"]
    assert len(model.description) > 160
    control = control_for(model)
    assert html.escape(model.description) in control.help.value
    assert "white-space:normal" in control.help.value and "..." not in control.help.value


def test_image_from_url_shows_a_url_thumbnail():
    control = control_for(sw.load_schema()["image_url"])
    assert isinstance(control.editor, ImageInput)
    control.value = "https://example.com/a.png"
    assert control.editor.thumbnail.format == "url"
    assert control.editor.thumbnail.value == b"https://example.com/a.png"
    assert control.problem == ""


def test_image_from_path_shrinks_a_thumbnail_and_flags_missing_files(tmp_path):
    path = tmp_path / "in.png"
    path.write_bytes(png_bytes())
    control = control_for(sw.load_schema()["image_url"], media_dir=tmp_path / "media")
    control.value = str(path)
    assert control.editor.thumbnail.format == "jpeg" and control.editor.thumbnail.value
    control.value = str(tmp_path / "missing.png")
    assert "no image file" in control.problem and control.editor.thumbnail.value == b""


def test_image_upload_is_kept_under_media_inputs(tmp_path):
    control = control_for(sw.load_schema()["image_url"], media_dir=tmp_path / "media")
    data = png_bytes()
    control.editor.upload.value = ({"name": "in.png", "type": "image/png", "size": len(data),
                                    "content": memoryview(data),
                                    "last_modified": datetime.now(timezone.utc)},)
    assert control.value.startswith(str(tmp_path / "media" / "inputs"))
    assert control.problem == "" and control.editor.upload.value == ()


def test_an_upload_that_is_not_an_image_is_named_under_the_field(tmp_path):
    control = control_for(sw.load_schema()["image_url"], media_dir=tmp_path / "media")
    control.value = "https://example.com/kept.png"

    def upload(name: str, data: bytes) -> None:
        control.editor.upload.value = ({"name": name, "type": "image/png", "size": len(data),
                                        "content": memoryview(data),
                                        "last_modified": datetime.now(timezone.utc)},)

    upload("notes.png", b"plain text, not a picture")
    assert control.problem.startswith("notes.png: ") and "image" in control.problem
    assert control.value == "https://example.com/kept.png" and control.editor.upload.value == ()
    upload("in.png", png_bytes())  # a good upload clears the problem
    assert control.problem == "" and control.value.startswith(str(tmp_path / "media" / "inputs"))


def test_list_is_tags_capped_at_max_items():
    control = control_for_list(sw.load_schema()["character_ids"])
    assert isinstance(control.editor, widgets.TagsInput)
    assert control.value is None
    control.editor.value = ["a", "b", "c"]
    assert control.value == ["a", "b"] and control.editor.value == ["a", "b"]
    control.value = None
    assert control.editor.value == []


def test_list_of_enum_items_is_a_multi_select():
    control = control_for(Field("tags", "array", item_type="string", item_enum=("x", "y", "z")))
    assert isinstance(control.editor, widgets.SelectMultiple)
    control.value = ["x", "z"]
    assert control.editor.value == ("x", "z")


def test_object_field_takes_json_and_flags_bad_json():
    control = control_for(Field("extra", "object"))
    control.editor.value = '{"a": 1}'
    assert control.value == {"a": 1} and control.problem == ""
    control.editor.value = "{oops"
    assert control.value is None and "not valid JSON" in control.problem


def test_advanced_rule_is_data_driven():
    schema = sw.load_schema()
    assert [f.name for f in schema.fields if is_advanced(f)] == [
        "delete_video", "detect_and_block_ip", "character_ids"]
    assert not is_advanced(Field("flag", "boolean", required=True))
    assert not is_advanced(Field("ids", "array", default=[]))


def test_message_shows_under_the_field_escaped():
    control = control_for(Field("prompt", "string"))
    control.message = "Prompt is <bad>"
    assert "&lt;bad&gt;" in control._message.value and control._message.layout.display is None
    control.message = ""
    assert control._message.layout.display == "none"


def test_values_a_widget_would_change_are_refused():
    slider = control_for(Field("steps", "integer", default=10, minimum=1, maximum=50))
    for bad in (500, 2.5, "8", True, None):
        with pytest.raises(traitlets.TraitError):
            slider.value = bad
    assert slider.value == 10 and slider.editor.value == 10
    with pytest.raises(traitlets.TraitError):
        control_for(Field("flag", "boolean", default=False)).value = "yes"


def test_composite_editors_carry_no_tooltip():
    """ipywidgets 8.1 cannot render a Box view that has a tooltip (seen in JupyterLab)."""
    control = control_for(sw.load_schema()["image_url"])
    assert control.editor.tooltip is None
    assert "first frame" in control.label_widget.value  # the label keeps the help


@pytest.mark.parametrize(("field", "bad", "says"), [
    (Field("steps", "integer", default=10, minimum=1, maximum=50), "8", "must be a number, got '8'"),
    (Field("steps", "integer", default=10, minimum=1, maximum=50), 2.5, "must be a whole number"),
    (Field("steps", "integer", default=10, minimum=1, maximum=50), 500,
     "must be within the slider's range 1 to 50"),
    (Field("flag", "boolean", default=False), "yes", "must be true or false, got 'yes'"),
    (Field("name", "string"), 5, "must be text, got int"),
    (Field("duration", "integer", default=4, enum=(4, 8)), 7, "must be one of 4, 8, got 7"),
    (Field("tags", "array", item_type="string", item_enum=("x", "y")), ["q"], "must be a list of x, y"),
    (Field("ids", "array", item_type="string"), 5, "must be a list, got 5"),
    (Field("extra", "object"), {1, 2}, "must be JSON data"),
])
def test_a_value_a_control_cannot_hold_is_a_validation_error_naming_the_field(field, bad, says):
    """`control.value = bad` raises sw.ValidationError (still a TraitError, so traitlets rolls
    back), naming the field and what it allows; the control and its editor keep their value."""
    control = control_for(field)
    before, shown = control.value, control.editor.value
    with pytest.raises(sw.ValidationError) as caught:
        control.value = bad
    assert isinstance(caught.value, traitlets.TraitError)
    [(name, message)] = caught.value.errors
    assert name == field.name and message.startswith(says)
    assert control.value == before and control.editor.value == shown


def test_a_value_the_editor_itself_refuses_is_a_validation_error_and_changes_nothing():
    control = control_for(Field("counts", "array", item_type="integer"))
    with pytest.raises(sw.ValidationError, match="counts: must be array") as caught:
        control.value = ["q"]
    assert isinstance(caught.value, traitlets.TraitError)
    assert control.value is None and control.editor.value == []


@pytest.mark.parametrize(("field", "says"), [
    (Field("duration", "integer", default=5, enum=(4, 8)), "must be one of 4, 8, got 5"),
    (Field("steps", "integer", default="x", minimum=1, maximum=50), "must be a number, got 'x'"),
    (Field("scale", "number", default="x"), "must be a number, got 'x'"),
    (Field("extra", "object", default={1, 2}), "must be JSON data"),
])
def test_a_default_its_control_cannot_hold_is_a_validation_error(field, says):
    with pytest.raises(sw.ValidationError) as caught:
        control_for(field)
    [(name, message)] = caught.value.errors
    assert name == field.name and message.startswith(says)
