"""History: paths, the write side's lifecycle, every column's round trip, reading and filters."""

from __future__ import annotations

import importlib.metadata
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sora_widgets._errors import HistoryError, NotFoundError, SoraWidgetsError, ValidationError
from sora_widgets._secrets import is_secret_name
from sora_widgets.history import History
from sora_widgets.history import store as history_module
from sora_widgets.records import JobStatus

I2V = "fal-ai/sora-2/image-to-video"
ARGS = {"prompt": "A red kite over dunes", "image_url": "https://example.com/first.png",
        "duration": 8, "model": "sora-2-2025-10-06", "resolution": "720p", "aspect_ratio": "16:9",
        "delete_video": False, "character_ids": ["c1", "c2"]}



def columns_of(log: History) -> set[str]:
    with sqlite3.connect(log.path) as db:
        return {row[1] for row in db.execute("PRAGMA table_info(runs)")}


# ---- where it lives ---------------------------------------------------------------------------

def test_default_path_reads_the_environment_at_construction(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORA_WIDGETS_HOME", str(tmp_path / "elsewhere"))
    log = History()
    assert log.path == tmp_path / "elsewhere" / "history.sqlite"
    assert log.path.is_file()


def test_default_path_without_the_variable_is_sora_runs_in_the_working_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SORA_WIDGETS_HOME")
    monkeypatch.chdir(tmp_path)
    assert History().path == tmp_path / "sora_runs" / "history.sqlite"


def test_media_dir_sits_beside_the_file_and_is_made_on_demand(log: History) -> None:
    assert not (log.path.parent / "media").exists()
    assert log.media_dir == log.path.parent / "media"
    assert log.media_dir.is_dir()


def test_a_folder_given_as_path_means_its_history_file(tmp_path: Path) -> None:
    assert History(tmp_path).path == tmp_path / "history.sqlite"
    assert History(tmp_path / "new_runs").path == tmp_path / "new_runs" / "history.sqlite"
    assert History(tmp_path / "mine.db").path == tmp_path / "mine.db"


def test_open_reads_a_run_folder_copied_from_elsewhere(log: History, tmp_path: Path) -> None:
    run = log.start(I2V, "preview", ARGS)
    log.finish(run, status="completed", result={"video": {"url": "https://v/1.mp4"}})
    log.close()
    copy = shutil.copytree(log.path.parent, tmp_path / "copied")
    for target in (copy, copy / "history.sqlite", str(copy)):
        assert History.open(target).get(run)["video_url"] == "https://v/1.mp4"


def test_open_refuses_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="no history") as caught:
        History.open(tmp_path / "nowhere")
    assert caught.value.path == str(tmp_path / "nowhere" / "history.sqlite")
    with pytest.raises(HistoryError):
        History.open(tmp_path)  # a folder without a history file
    assert not (tmp_path / "nowhere").exists()


def test_close_and_context_manager_then_reuse(log: History) -> None:
    with log:
        run = log.start(I2V, "preview", ARGS)
    assert log.get(run)["id"] == run  # reopens after close


# ---- write side and lifecycle -----------------------------------------------------------------

def test_start_commits_a_pending_row_before_anything_is_sent(log: History) -> None:
    run = log.start(I2V, "fal", ARGS, sweep_id="s1", cost_usd=0.8,
                    image_sha256="ab" * 32, image_path="media/in.png")
    with sqlite3.connect(log.path) as other:  # another connection sees it: it is committed
        status, = other.execute("SELECT status FROM runs WHERE id = ?", (run,)).fetchone()
    assert status == "pending"
    record = log.get(run)
    assert record["arguments"] == ARGS
    assert record["request_id"] is None
    # a relative media path is relative to the run folder
    assert (record["sweep_id"], record["cost_usd"], record["image_path"]) == ("s1", 0.8, str(log.folder / "media/in.png"))
    assert record["sora_widgets_version"] == "0.1.0"
    assert record["created_at"].tzinfo is timezone.utc


def test_every_column_round_trips(log: History) -> None:
    run = log.start(I2V, "fal", ARGS, sweep_id="sweep-7", cost_usd=0.8, image_sha256="f" * 64,
                    image_path="media/images/f.png")
    t0 = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)
    result = {"video": {"url": "https://v/o.mp4", "content_type": "video/mp4"}, "video_id": "vid_1",
              "thumbnail": {"url": "https://v/t.webp"}, "spritesheet": {"url": "https://v/s.jpg"}}
    values: dict[str, Any] = {
        "request_id": "req-123", "video_path": str(log.folder / "media/o.mp4"),
        "thumbnail_path": str(log.folder / "media/t.webp"), "spritesheet_path": "/elsewhere/s.jpg", "submitted_at": t0, "started_at": t0 + timedelta(seconds=3),
        "completed_at": t0 + timedelta(seconds=40), "queued_s": 3.0, "running_s": 37.0,
        "total_s": 41.5, "cost_usd": 0.4, "error_type": "none", "error_message": "still fine",
        "logs": ["queued", "rendering 50%"], "sweep_id": "sweep-8", "rating": 4, "notes": "nice",
        "tags": ["kite", "dunes"], "sora_widgets_version": "9.9", "fal_client_version": "1.0.3",
        "endpoint_id": I2V + "/pro", "backend": "preview", "image_sha256": "e" * 64,
        "image_path": str(log.folder / "media/images/e.png"), "arguments": {**ARGS, "duration": 12},
        "owner": None, "heartbeat_at": None, "cell_key": "cell-3",
    }
    log.update(run, status=JobStatus.RUNNING)
    log.finish(run, status="completed", result=result, **values)
    record = log.get(run)
    for name, value in values.items():
        assert record[name] == value, name  # type: ignore[literal-required]
    assert record["status"] is JobStatus.COMPLETED
    assert record["result"] == result
    # media URLs come from the result when not given
    assert (record["video_url"], record["video_id"], record["thumbnail_url"], record["spritesheet_url"]) \
        == ("https://v/o.mp4", "vid_1", "https://v/t.webp", "https://v/s.jpg")
    assert set(record) == set(history_module.HistoryRecord.__annotations__)
    assert log.records() == [record]
    assert next(iter(log)) == record


def test_lifecycle_stamps_times_and_durations(log: History) -> None:
    run = log.start(I2V, "fal", ARGS)
    log.update(run, request_id="r1", status="queued")
    log.update(run, status="queued", logs=["position 3"])  # queued -> queued is a legal no-op
    log.update(run, status=JobStatus.RUNNING)
    log.finish(run, status=JobStatus.COMPLETED)
    r = log.get(run)
    assert r["created_at"] <= r["submitted_at"] <= r["started_at"] <= r["completed_at"]  # type: ignore[operator]
    assert r["queued_s"] == pytest.approx((r["started_at"] - r["submitted_at"]).total_seconds(), abs=1e-5)  # type: ignore[operator]
    assert r["running_s"] == pytest.approx((r["completed_at"] - r["started_at"]).total_seconds(), abs=1e-5)  # type: ignore[operator]
    assert r["total_s"] == pytest.approx((r["completed_at"] - r["created_at"]).total_seconds(), abs=1e-5)  # type: ignore[operator]


def test_a_failure_before_submit_has_no_submitted_time(log: History) -> None:
    run = log.start(I2V, "fal", ARGS)
    log.finish(run, status="failed", error_type="UploadError", error_message="image unreadable")
    r = log.get(run)
    assert (r["status"], r["submitted_at"], r["started_at"]) == (JobStatus.FAILED, None, None)
    assert r["completed_at"] is not None and r["total_s"] is not None
    assert (r["error_type"], r["error_message"]) == ("UploadError", "image unreadable")


def test_explicit_times_win_over_stamps(log: History) -> None:
    run = log.start(I2V, "fal", ARGS)
    t0 = datetime(2026, 5, 1, 12, 0, tzinfo=timezone.utc)
    log.update(run, status="queued", submitted_at=t0.isoformat())
    log.update(run, status="running", started_at=t0.timestamp() + 2)
    log.finish(run, status="completed", completed_at=t0 + timedelta(seconds=10), total_s=99.0)
    r = log.get(run)
    assert (r["queued_s"], r["running_s"], r["total_s"]) == (2.0, 8.0, 99.0)
    assert r["started_at"] == t0 + timedelta(seconds=2)


@pytest.mark.parametrize("final", ["completed", "failed", "cancelled"])
def test_a_final_row_is_never_reopened(log: History, final: str) -> None:
    run = log.start(I2V, "fal", ARGS)
    log.finish(run, status=final)
    for status in JobStatus:
        with pytest.raises(HistoryError, match=f"is {final}; it cannot become"):
            log.update(run, status=status)
    with pytest.raises(HistoryError):
        log.finish(run, status="completed")
    log.update(run, video_path="media/late-download.mp4")  # other columns may still be filled
    assert log.get(run)["status"] == final


def test_illegal_transitions_raise_and_change_nothing(log: History) -> None:
    run = log.start(I2V, "fal", ARGS)
    log.update(run, status="running")
    with pytest.raises(HistoryError):
        log.update(run, status="queued", request_id="must-not-land")
    assert log.get(run)["request_id"] is None
    assert log.get(run)["status"] is JobStatus.RUNNING


def test_finish_needs_a_final_status(log: History) -> None:
    run = log.start(I2V, "fal", ARGS)
    with pytest.raises(HistoryError, match="final status"):
        log.finish(run, status="running")
    with pytest.raises(ValueError):
        log.update(run, status="exploded")


def test_missing_ids_and_unknown_columns(log: History) -> None:
    with pytest.raises(NotFoundError):
        log.get(404)
    with pytest.raises(NotFoundError):
        log.update(404, status="queued")
    run = log.start(I2V, "fal", ARGS)
    for bad in ({"colour": "red"}, {"id": 3}, {"created_at": "2026-01-01"}, {"arguments_json": "{}"}):
        with pytest.raises(ValidationError):
            log.update(run, **bad)
    with pytest.raises(ValidationError):
        log.update(run, logs="one line, not a list")
    with pytest.raises(ValidationError):
        log.update(run, cost_usd="cheap")


@pytest.mark.parametrize("call", ["get", "update"])
def test_a_missing_run_is_not_found_naming_the_id_and_the_file(log: History, call: str) -> None:
    with pytest.raises(NotFoundError) as caught:
        log.get(404) if call == "get" else log.update(404, status="queued")
    assert isinstance(caught.value, KeyError) and isinstance(caught.value, SoraWidgetsError)
    assert caught.value.key == 404
    assert "404" in str(caught.value) and str(log.path) in str(caught.value)


def test_update_names_an_unknown_or_fixed_column(log: History) -> None:
    run = log.start(I2V, "fal", ARGS)
    with pytest.raises(ValidationError) as caught:
        log.update(run, ratting=3)
    assert caught.value.fields == ["ratting"] and 'did you mean "rating"' in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        log.update(run, created_at="2026-01-01")
    assert caught.value.errors == [("created_at", "is set when the run starts and cannot be changed")]
    assert log.get(run)["rating"] is None


@pytest.mark.parametrize(("column", "value", "expected"), [
    ("logs", "one line", "must be a list of strings, not str"),
    ("tags", {"a": 1}, "must be a list of strings, not dict"),
    ("cost_usd", "cheap", "must be a number, not str"),
    ("queued_s", True, "must be a number, not bool"),
    ("result", ["not", "a", "dict"], "must be a dict, not list"),
    ("media", "video.mp4", "must be a list of dicts, not str"),
    ("notes", 42, "must be text, not int"),
    ("started_at", [2026], "must be a datetime, an ISO 8601 string or epoch seconds, not list"),
    ("started_at", "yesterday", "must be a datetime, an ISO 8601 string or epoch seconds, not 'yesterday'"),
    ("status", "exploded", "must be one of "),
])
def test_a_value_of_the_wrong_kind_is_a_validation_error_naming_its_column(
        log: History, column: str, value: Any, expected: str) -> None:
    run = log.start(I2V, "fal", ARGS)
    before = log.get(run)
    with pytest.raises(ValidationError) as caught:
        log.update(run, **{column: value})
    [(field, message)] = caught.value.errors
    assert field == column and message.startswith(expected)
    assert isinstance(caught.value, ValueError)
    assert log.get(run) == before  # refused before anything was written


def test_a_run_the_file_refuses_to_record_is_a_history_error(log: History) -> None:
    kept = log.start(I2V, "fal", ARGS)
    with sqlite3.connect(log.path) as db:  # e.g. another program's trigger in the file
        db.execute("CREATE TRIGGER refuse BEFORE INSERT ON runs BEGIN SELECT RAISE(IGNORE); END")
    with pytest.raises(HistoryError, match="did not record the new run") as caught:
        log.start(I2V, "fal", ARGS)  # SQLite would report the last id it gave: `kept`
    assert caught.value.path == str(log.path)
    assert [r["id"] for r in log] == [kept]


def test_unfinished_lists_rows_to_resume_oldest_first(log: History) -> None:
    died_before_submit = log.start(I2V, "fal", ARGS)
    queued = log.start(I2V, "fal", ARGS)
    log.update(queued, status="queued", request_id="req-q")
    running = log.start(I2V, "fal", ARGS)
    log.update(running, status="running", request_id="req-r")
    done = log.start(I2V, "fal", ARGS)
    log.finish(done, status="cancelled")
    found = log.unfinished()
    assert [r["id"] for r in found] == [died_before_submit, queued, running]
    assert [r["request_id"] for r in found] == [None, "req-q", "req-r"]


def test_updating_arguments_rewrites_their_columns(log: History) -> None:
    run = log.start(I2V, "fal", {"prompt": "p", "image_url": "/local/a.png", "seed": 4})
    log.update(run, arguments={"prompt": "p", "image_url": "https://cdn/a.png"})
    assert log.get(run)["arguments"] == {"prompt": "p", "image_url": "https://cdn/a.png"}
    with sqlite3.connect(log.path) as db:
        assert db.execute("SELECT arg_image_url, arg_seed FROM runs").fetchone() == ("https://cdn/a.png", None)


# ---- argument columns -------------------------------------------------------------------------

def test_each_argument_gets_its_own_prefixed_column(log: History) -> None:
    log.start(I2V, "fal", {**ARGS, "video_id": "v-remix", "Odd-Name": 1, "camelCase": 2})
    columns = columns_of(log)
    assert {"arg_prompt", "arg_duration", "arg_character_ids", "arg_video_id"} <= columns
    assert "video_id" in columns  # the fixed result column is untouched
    assert not {c for c in columns if "odd" in c.lower() or "camel" in c.lower()}
    with sqlite3.connect(log.path) as db:
        row = db.execute("SELECT arg_duration, arg_character_ids, arg_delete_video, video_id "
                         "FROM runs").fetchone()
    assert row == (8, '["c1", "c2"]', 0, None)


def test_many_writers_adding_the_same_new_argument_column(log: History, tmp_path: Path) -> None:
    other = History(log.path)  # a second object has a stale cache of argument columns
    log.start(I2V, "fal", {"prompt": "a", "new_field": 1})
    other.start(I2V, "fal", {"prompt": "b", "new_field": 2})
    other.start(I2V, "fal", {"prompt": "c", "other_field": 3})
    log.update(1, arguments={"prompt": "a2"})  # clears other_field too, which `log` never saw
    assert [r["arguments"] for r in log.records()] == [
        {"prompt": "c", "other_field": 3}, {"prompt": "b", "new_field": 2}, {"prompt": "a2"}]
    assert log.count(model="x") == 0


json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


def _harmless(value: Any) -> bool:
    """No key named like a credential and no text that looks like one: those are scrubbed on purpose."""
    if isinstance(value, dict):
        return all(not is_secret_name(k) and _harmless(k) and _harmless(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_harmless(v) for v in value)
    if isinstance(value, str):
        lowered = value.lower()
        return not any(word in lowered for word in ("authorization", "key", "token"))
    return True


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments=st.dictionaries(st.text(min_size=1, max_size=12), json_values, max_size=6))
def test_any_json_arguments_round_trip(log: History, arguments: dict[str, Any]) -> None:
    if not _harmless(arguments):
        return
    run = log.start(I2V, "fal", arguments)
    assert log.get(run)["arguments"] == arguments


# ---- secrets ----------------------------------------------------------------------------------

def test_keys_are_scrubbed_from_everything_written(log: History, monkeypatch: pytest.MonkeyPatch) -> None:
    key_id, secret = "1f6b2a9c-key-id", "a0b1c2d3e4f5a6b7c8d9e0f1"
    monkeypatch.setenv("FAL_KEY", f"{key_id}:{secret}")
    monkeypatch.setenv("FAL_KEY_SECRET", "another-long-secret-value")
    arguments = {"prompt": f"leak {key_id}:{secret} and {secret}", "api_key": "x" * 30,
                 "headers": {"Authorization": "Key abcdefghij", "accept": "json"},
                 "extra": [{"access_token": "tok-123456789"}], "token": None}
    run = log.start(I2V, "fal", arguments)
    log.update(run, logs=[f"sending with Authorization: Key {key_id}:{secret}",
                          "Authorization: Bearer some-other-token-9999", "api_key=zzzz9999zzzz"],
               notes="another-long-secret-value was here")
    log.finish(run, status="failed", error_type="CredentialsError",
               error_message=f"key {secret} refused", result={"detail": secret, "token": "t" * 12})
    record = log.get(run)
    assert record["arguments"] == {"prompt": "leak *** and ***", "api_key": "***",
                                   "headers": {"Authorization": "***", "accept": "json"},
                                   "extra": [{"access_token": "***"}], "token": None}
    assert record["logs"] == ["sending with Authorization: ***", "Authorization: ***", "api_key=***"]
    assert record["error_message"] == "key *** refused"
    assert record["notes"] == "*** was here"
    assert record["result"] == {"detail": "***", "token": "***"}
    log.close()
    stored = b"".join(p.read_bytes() for p in log.path.parent.glob("history.sqlite*"))
    for leaked in (secret.encode(), b"another-long-secret-value", b"abcdefghij", b"x" * 30,
                   b"some-other-token-9999", b"zzzz9999zzzz", b"tok-123456789"):
        assert leaked not in stored


def test_plain_words_like_secret_in_a_prompt_are_kept(log: History) -> None:
    prompt = "The secret garden; a token of love; keyframes of a monkey"
    run = log.start(I2V, "fal", {"prompt": prompt, "keyframes": 3, "max_tokens": 5})
    assert log.get(run)["arguments"] == {"prompt": prompt, "keyframes": 3, "max_tokens": 5}


@pytest.mark.parametrize("name", ["key", "api_key", "apiKey", "X-Api-Key", "Authorization", "fal_key",
                                  "client_secret", "access_token", "password", "credentials"])
def test_credential_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["prompt", "keyframes", "monkey", "max_tokens", "hotkeys", "duration"])
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def test_fal_client_version_is_none_without_the_package(log: History,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    history_module._fal_client_version.cache_clear()
    try:
        assert log.get(log.start(I2V, "fal", ARGS))["fal_client_version"] is None
    finally:
        history_module._fal_client_version.cache_clear()


# ---- reading ----------------------------------------------------------------------------------

def _fill(log: History) -> list[int]:
    specs = [("sora-2", "completed", "A red kite", None, []),
             ("sora-2-2025-10-06", "failed", "A blue whale", "good light", ["ocean"]),
             ("sora-2-2025-12-08", "completed", "Ünïcode ÉCLAIR", None, ["Dessert"]),
             ("sora-2", "running", "Night market", None, ["street"])]
    ids = []
    for model, status, prompt, notes, tags in specs:
        run = log.start(I2V, "fal", {"prompt": prompt, "model": model, "duration": 4}, sweep_id="s1")
        log.update(run, status="running")
        if status != "running":
            log.finish(run, status=status)
        log.annotate(run, notes=notes, tags=tags)
        ids.append(run)
    log.start(I2V + "/pro", "preview", {"prompt": "no model field"})
    return ids


def test_find_filters_and_counts(log: History) -> None:
    a, b, c, d = _fill(log)
    ids = lambda records: [r["id"] for r in records]  # noqa: E731
    assert ids(log.find(model="sora-2")) == [d, a]
    assert ids(log.find(model=["sora-2-2025-10-06", "sora-2-2025-12-08"])) == [c, b]
    assert ids(log.find(status="completed")) == [c, a]
    assert ids(log.find(status=[JobStatus.FAILED, "running"])) == [d, b]
    assert ids(log.find(text="KITE")) == [a]
    assert ids(log.find(text="éclair")) == [c]  # Unicode-aware case folding
    assert ids(log.find(text="LIGHT")) == [b]  # notes
    assert ids(log.find(text="dessert")) == [c]  # tags
    assert ids(log.find(sweep_id="s1", status="completed", model="sora-2")) == [a]
    assert len(log.find(endpoint_id=I2V + "/pro")) == 1
    assert len(log.find(backend="preview")) == 1
    assert ids(log.find(sweep_id="s1", limit=2)) == [d, c]
    assert ids(log.find(sweep_id="s1", limit=2, offset=2)) == [b, a]
    assert log.count() == len(log) == 5
    assert log.count(model="sora-2") == 2 and log.count(text="nothing like it") == 0
    assert log.records(status="failed") == log.find(status="failed")


def test_filters_on_an_argument_no_run_has_had(log: History) -> None:
    log.start(I2V, "fal", {"duration": 4})
    assert log.find(model="sora-2") == [] and log.count(text="x") == 0


def test_iteration_is_newest_first_and_pages_lazily(log: History) -> None:
    ids = [log.start(I2V, "fal", {"prompt": str(i)}) for i in range(600)]
    iterator = iter(log)
    first = next(iterator)
    late = log.start(I2V, "fal", {"prompt": "added while iterating"})
    assert first["id"] == ids[-1]
    assert [first["id"]] + [r["id"] for r in iterator] == ids[::-1]
    assert len(log) == 601 and log.get(late)


def test_annotate_and_validation(log: History) -> None:
    run = log.start(I2V, "fal", ARGS)
    log.annotate(run, rating=5, notes="keeper", tags=["best", "kite"])
    assert (log.get(run)["rating"], log.get(run)["notes"], log.get(run)["tags"]) == (5, "keeper", ["best", "kite"])
    log.annotate(run, notes=None)  # only what is given changes; None clears
    assert (log.get(run)["rating"], log.get(run)["notes"]) == (5, None)
    for bad in (0, 6, 2.5, True, "5"):
        with pytest.raises(ValidationError) as caught:
            log.annotate(run, rating=bad)  # type: ignore[arg-type]
        assert caught.value.fields == ["rating"] and isinstance(caught.value, ValueError)
    log.annotate(run, rating=None, tags=None)
    assert (log.get(run)["rating"], log.get(run)["tags"]) == (None, [])


def test_threads_share_one_history(log: History) -> None:
    def work(n: int) -> None:
        for i in range(40):
            run = log.start(I2V, "fal", {"prompt": f"t{n}-{i}"})
            log.update(run, status="running")
            log.finish(run, status="completed")

    with ThreadPoolExecutor(max_workers=6) as pool:
        for done in [pool.submit(work, n) for n in range(6)]:
            done.result()  # re-raises any error from the thread
    assert log.count(status="completed") == 240
    assert len({r["arguments"]["prompt"] for r in log}) == 240


def test_repr_is_cheap_and_names_the_file(log: History) -> None:
    assert repr(log) == f"<History {log.path}>"  # outside the working folder: as it is
    log.start(I2V, "fal", ARGS)
    assert repr(log) == f"<History {log.path}>"  # no row count: that would be a query


def test_repr_is_relative_to_the_working_folder_and_says_read_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert repr(History("sora_runs")) == "<History sora_runs/history.sqlite>"
    assert repr(History("sora_runs", read_only=True)) == "<History sora_runs/history.sqlite (read-only)>"


def test_repr_does_not_touch_the_database(tmp_path: Path) -> None:
    log = History(tmp_path / "runs")
    log.start(I2V, "fal", ARGS)
    log.close()
    shutil.rmtree(tmp_path / "runs")  # the file is gone and closed: any query now would fail
    assert repr(log) == f"<History {tmp_path / 'runs' / 'history.sqlite'}>"
    assert not (tmp_path / "runs").exists()


def test_unknown_filters_are_refused(log: History) -> None:
    with pytest.raises(TypeError):
        log.count(colour="red")
    with pytest.raises(TypeError):
        log.records(colour="red")


def test_explicit_media_columns_win_over_the_result(log: History) -> None:
    run = log.start(I2V, "fal", ARGS)
    log.finish(run, status="completed", result={"video": {"url": "https://fal/v.mp4"}, "video_id": 7,
                                                "thumbnail": {"url": "https://fal/t.jpg"}},
               video_url="https://mirror/v.mp4", thumbnail_url=None)
    record = log.get(run)
    assert (record["video_url"], record["thumbnail_url"]) == ("https://mirror/v.mp4", "https://fal/t.jpg")
    assert record["video_id"] is None  # a non-text id is not taken from the result


def test_a_lock_held_too_long_is_a_clear_history_error(tmp_path: Path) -> None:
    log = History(tmp_path / "h.sqlite", busy_timeout=0.2)
    holder = sqlite3.connect(log.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(HistoryError, match="locked") as caught:
            log.start(I2V, "fal", ARGS)
        assert caught.value.path == str(log.path)
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert log.records() == []  # readers are not blocked by a writer (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    log.start(I2V, "fal", ARGS)


def test_uploads_are_remembered_in_the_file_and_expire(tmp_path: Path) -> None:
    log = History(tmp_path / "h.sqlite")
    log.uploads["abc"] = "https://cdn.example/abc.png"
    again = History(tmp_path / "h.sqlite").uploads
    assert again["abc"] == "https://cdn.example/abc.png" and list(again) == ["abc"]
    assert "zzz" not in again
    again.max_age_s = 0
    assert "abc" not in again and len(again) == 0
    del log.uploads["abc"]
    with pytest.raises(KeyError):
        del log.uploads["abc"]


def test_a_missing_upload_is_not_found_and_still_a_key_error(log: History) -> None:
    for missing in (lambda: log.uploads["nope"], lambda: log.uploads.__delitem__("nope")):
        with pytest.raises(NotFoundError, match="nope") as caught:
            missing()
        assert isinstance(caught.value, KeyError) and caught.value.key == "nope"
        assert str(log.path) in str(caught.value)
    assert log.uploads.get("nope") is None and "nope" not in log.uploads  # the mapping protocol
