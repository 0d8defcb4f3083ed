"""One bad write cannot poison a history, a hostile server cannot leak the key or land local files,
and bad inputs are refused naming what is wrong."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from fakefal import FakeFal

import sora_widgets as sw
from sora_widgets.backends.fal import FalBackend
from sora_widgets.jobs import default_runner

SECRET = "fal-hostile-key-SENTINEL-90ab3e"
I2V = "fal-ai/kling-video/v2.1/standard/image-to-video"


# --- the history ------------------------------------------------------------------------------


def test_a_lone_surrogate_is_refused_naming_the_field_and_the_history_stays_usable(
        log: sw.History, image: Path) -> None:
    with pytest.raises(sw.ValidationError) as info:
        sw.submit(prompt="a kite \ud800 over dunes", image_url=image, history=log, backend="preview")
    assert info.value.fields == ["prompt"] and "surrogate" in str(info.value)
    with pytest.raises(sw.ValidationError) as stored:  # straight to the history, a new column too
        log.start(I2V, "preview", {"brand_new_field": "\udc00"})
    assert stored.value.fields == ["brand_new_field"]
    assert log.records() == []  # nothing half-written
    run = log.start(I2V, "preview", {"brand_new_field": "fine", "prompt": "next"})
    assert log.find(text="next")[0]["id"] == run
    assert log.to_dataframe()["brand_new_field"].tolist() == ["fine"]


def test_a_corrupt_row_is_a_history_error_naming_it(log: sw.History) -> None:
    good = log.start(I2V, "preview", {"prompt": "good"})
    bad = log.start(I2V, "preview", {"prompt": "bad"})
    with sqlite3.connect(log.path) as db:
        db.execute("UPDATE runs SET arguments_json = '{not json' WHERE id = ?", (bad,))
    with pytest.raises(sw.HistoryError, match=f"Run {bad} .* cannot be read"):
        log.get(bad)
    assert log.get(good)["arguments"] == {"prompt": "good"}


def test_media_paths_are_relative_so_a_moved_run_folder_still_shows_its_videos(
        tmp_path: Path, image: Path) -> None:
    first = sw.History(tmp_path / "here" / "runs")
    gen = sw.generate(prompt="moving house", image_url=image, history=first, backend="preview", timeout=120)
    with sqlite3.connect(first.path) as db:
        stored = db.execute("SELECT video_path, media_json FROM runs").fetchone()
    assert stored[0] == f"media/videos/{Path(gen.video_path or '').name}"  # relative on disk
    first.close()
    archive = shutil.make_archive(str(tmp_path / "runs"), "zip", first.folder)
    shutil.rmtree(tmp_path / "here")
    shutil.unpack_archive(archive, tmp_path / "elsewhere" / "runs")

    moved = sw.History.open(tmp_path / "elsewhere" / "runs")
    record = moved.get(gen.history_id or 0)
    assert Path(record["video_path"] or "").is_file()
    assert Path(record["video_path"] or "").is_relative_to(tmp_path / "elsewhere")
    assert all(Path(m["path"]).is_file() for m in record["media"] if m.get("path"))
    assert Path(moved.to_dataframe()["video_path"][0]).is_file()


def test_a_read_only_history_reads_and_refuses_writes_saying_why(log: sw.History, tmp_path: Path) -> None:
    run = log.start(I2V, "preview", {"prompt": "kept"})
    log.close()
    reader = sw.History(log.path, read_only=True)
    assert reader.read_only and reader.get(run)["arguments"]["prompt"] == "kept"
    assert len(reader.to_dataframe()) == 1 and "kept" in reader._repr_html_()
    assert reader.export(tmp_path / "out.jsonl").read_text().count("\n") == 1
    with pytest.raises(sw.HistoryError, match="reading only"):
        reader.start(I2V, "preview", {"prompt": "new"})
    with pytest.raises(sw.HistoryError, match="reading only"):
        reader.annotate(run, rating=5)


READ_ONLY_CHILD = """
import sys, sora_widgets as sw
log = sw.History(sys.argv[1])
print(log.read_only, len(log), log.records()[0]["arguments"]["prompt"], flush=True)
try:
    log.annotate(1, rating=3)
except sw.HistoryError as exc:
    print("refused:", exc)
"""


def _as_another_user() -> list[str]:
    """A command prefix running a child as an unprivileged user who owns nothing here: a user
    namespace mapping this user to uid 1000, so even root meets folder permissions."""
    probe = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000", "true"],
                           capture_output=True)
    assert probe.returncode == 0, ("user namespaces are needed to meet folder permissions as "
                                   f"another user: {probe.stderr.decode().strip()}")
    return ["unshare", "--user", "--map-user=1000", "--map-group=1000"]


def test_a_run_folder_this_user_cannot_write_opens_for_reading(tmp_path: Path) -> None:
    folder = tmp_path / "shared" / "runs"
    log = sw.History(folder)
    log.start(I2V, "preview", {"prompt": "from the teacher"})
    log.close()
    for path in folder.rglob("*"):
        path.chmod(0o444 if path.is_file() else 0o555)
    folder.chmod(0o555)
    try:
        out = subprocess.run([*_as_another_user(), sys.executable, "-c", READ_ONLY_CHILD, str(folder)],
                             capture_output=True, text=True, timeout=60)
    finally:
        folder.chmod(0o755)
    assert out.returncode == 0, out.stderr
    first, refused = out.stdout.splitlines()
    assert first == "True 1 from the teacher"
    assert refused.startswith("refused:") and "reading only" in refused


def test_a_slow_disk_never_stalls_the_job_loop(log: sw.History, image: Path) -> None:
    job = sw.submit(prompt="patient", image_url=image, history=log, backend="preview")
    blocker = sqlite3.connect(log.path, timeout=60, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock: every write waits
    try:
        for _ in range(5):  # meanwhile the job loop keeps answering at once
            asyncio.run_coroutine_threadsafe(asyncio.sleep(0), default_runner().loop).result(timeout=2)
            threading.Event().wait(0.2)
    finally:
        blocker.execute("COMMIT")
        blocker.close()
    assert job.result(timeout=120).ok


class CountingHistory(sw.History):
    """A history that counts how often a sweep reads its rows back."""

    reads = 0

    def find(self, **filters: Any) -> list[Any]:
        CountingHistory.reads += 1
        return super().find(**filters)


def test_a_grid_does_not_read_the_history_back_on_every_event(tmp_path: Path, image: Path) -> None:
    log = CountingHistory(tmp_path / "runs")
    run = sw.sweep(prompt="p", image_url=image, duration=[4, 8], backend="preview", history=log,
                   confirm=lambda plan: True, wait=False)
    grid = run.grid()
    run.wait(timeout=180)
    grid.refresh()
    events = sum(len(job.events) for job in run.jobs)
    assert events > 6 and CountingHistory.reads <= 2
    assert {cell["status"] for cell in grid.cells} == {"completed"}


# --- a hostile server ----------------------------------------------------------------------------


def test_a_server_echoing_the_key_never_gets_it_into_any_object_output_or_file(
        fakefal: FakeFal, log: sw.History, tmp_path: Path, capfd: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """The key comes from code (key=), not the environment: scrubbing must still find it."""
    backend = FalBackend(key=SECRET)
    fakefal.configure(queue_s=0.1, run_s=0.3, logs=[f"auth ok for {SECRET}", "rendering"], result={
        "video": {"url": fakefal.media_url("video.mp4"), "content_type": "video/mp4"},
        "debug": {"echo": f"Authorization: Key {SECRET}", "plain": SECRET}})
    events: list[sw.JobEvent] = []
    gen = sw.generate(endpoint=I2V, prompt="echo", image_url=fakefal.media_url("input.png"),
                      history=log, backend=backend, timeout=60, on_event=lambda j, e: events.append(e))
    fakefal.configure(queue_s=0.1, run_s=0.1, error=(422, {"detail": f"bad key {SECRET} in request"}))
    with pytest.raises(sw.GenerationError) as failed:
        sw.generate(endpoint=I2V, prompt="echo again", image_url=fakefal.media_url("input.png"),
                    history=log, backend=backend, timeout=60)
    exported = [log.export(tmp_path / f"runs.{suffix}") for suffix in ("csv", "jsonl")]
    texts = [repr(gen), gen._repr_html_(), str(gen.result), str(gen.logs), str(events),
             str(failed.value), repr(failed.value.generation), repr(log), log._repr_html_(),
             str(log.records()), *[p.read_text() for p in exported], caplog.text, *capfd.readouterr()]
    assert "rendering" in str(gen.logs) and "***" in str(gen.result)
    assert all(SECRET not in text for text in texts)
    assert all(SECRET.encode() not in p.read_bytes() for p in log.folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("url", ["file:///etc/passwd", "/etc/passwd", "file:///proc/self/environ"])
def test_local_files_named_by_a_result_never_land_in_the_run_folder(
        fakefal: FakeFal, log: sw.History, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("FAL_KEY", SECRET)
    fakefal.configure(queue_s=0.1, run_s=0.1, result={
        "video": {"url": fakefal.media_url("video.mp4"), "content_type": "video/mp4"},
        "thumbnail": {"url": url, "content_type": "image/png"}})
    gen = sw.generate(endpoint=I2V, prompt="peek", image_url=fakefal.media_url("input.png"),
                      history=log, timeout=60)
    assert gen.ok and gen.thumbnail_path is None
    assert any("thumbnail" in line and "refused" in line for line in gen.logs)
    kept = [p for p in log.media_dir.rglob("*") if p.is_file()]
    assert [p.suffix for p in kept] == [".mp4"]

    fakefal.configure(queue_s=0.1, run_s=0.1, result={"video": {"url": url, "content_type": "video/mp4"}})
    with pytest.raises(sw.GenerationError) as info:
        sw.generate(endpoint=I2V, prompt="peek", image_url=fakefal.media_url("input.png"),
                    history=log, timeout=60)
    assert info.value.kind == "download" and "refused" in str(info.value)
    assert log.get(info.value.history_id or 0)["video_url"] == url
    assert len([p for p in log.media_dir.rglob("*") if p.is_file()]) == 1


@pytest.mark.parametrize("how", ["html", "huge"])
def test_a_body_that_is_not_the_promised_video_is_never_kept(
        fakefal: FakeFal, log: sw.History, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    monkeypatch.setenv("FAL_KEY", SECRET)
    monkeypatch.setenv("SORA_WIDGETS_MAX_DOWNLOAD_MB", "5")
    url = fakefal.hostile_media(f"bad-{how}.mp4", how)
    fakefal.configure(queue_s=0.1, run_s=0.1, result={"video": {"url": url, "content_type": "video/mp4"}})
    with pytest.raises(sw.GenerationError) as info:
        sw.generate(endpoint=I2V, prompt="lies", image_url=fakefal.media_url("input.png"),
                    history=log, timeout=60)
    assert info.value.kind == "download" and info.value.request_id
    row = log.get(info.value.history_id or 0)
    assert row["status"] == "failed" and row["request_id"] == info.value.request_id
    assert not [p for p in log.media_dir.rglob("*") if p.is_file()]


# --- inputs -------------------------------------------------------------------------------------


def test_bad_inputs_are_refused_naming_what_is_wrong(log: sw.History, monkeypatch: pytest.MonkeyPatch,
                                                     image: Path) -> None:
    with pytest.raises(sw.ValidationError) as info:
        sw.submit(prompt="x", image_url="http://", history=log, backend="preview")
    assert info.value.fields == ["image_url"] and "no host" in str(info.value)
    with pytest.raises(sw.ValidationError) as info:
        sw.submit(arguments=["prompt", "x"], history=log, backend="preview")  # type: ignore[arg-type]
    assert info.value.fields == ["arguments"]
    monkeypatch.setenv("SORA_WIDGETS_MAX_JOBS", "0")
    with pytest.raises(sw.ValidationError) as info:
        sw.submit(prompt="x", image_url=image, history=log, backend="preview")
    assert info.value.fields == ["SORA_WIDGETS_MAX_JOBS"]
    assert log.records() == []  # nothing recorded for any of them


def test_a_key_echoed_as_a_field_name_and_odd_server_names_stay_harmless(
        fakefal: FakeFal, log: sw.History, monkeypatch: pytest.MonkeyPatch) -> None:
    realistic = "3f9a1c7e-aa21:9d8c7b6a5f4e3d2c1b0a"  # no credential-looking words in it
    monkeypatch.setenv("FAL_KEY", realistic)
    fakefal.configure(queue_s=0.1, run_s=0.1, result={
        "videos/hd": [{"url": fakefal.media_url("video.mp4"), "content_type": "video/mp4"}],
        "video_id": "clip/../../1",
        realistic: {"url": fakefal.media_url("thumbnail.webp"), "content_type": "image/webp"}})
    gen = sw.generate(endpoint=I2V, prompt="odd names", image_url=fakefal.media_url("input.png"),
                      history=log, timeout=60)
    assert gen.ok and Path(gen.video_path or "").is_file()
    kept = [p for p in log.media_dir.rglob("*") if p.is_file()]
    assert all(p.parent == log.media_dir / "videos" for p in kept) and len(kept) == 2
    secret_half = realistic.partition(":")[2]
    texts = [str(gen.to_dict()), repr(gen), str(log.records()), *(p.name for p in kept)]
    assert all(secret_half not in text for text in texts)
    assert all(secret_half.encode() not in p.read_bytes() for p in log.folder.rglob("*") if p.is_file())
    assert all(Path(m["path"]).is_file() for m in log.get(gen.history_id or 0)["media"])


def test_a_pid_means_nothing_across_pid_namespaces() -> None:
    from dataclasses import replace
    from datetime import datetime, timedelta, timezone

    from sora_widgets._owner import owner_gone, this_process

    elsewhere = replace(this_process(), pid=1, started="1", pid_space="pid:[123]")  # another container
    now = datetime.now(timezone.utc)
    assert not owner_gone(elsewhere.to_text(), now)  # its heartbeat is fresh: it lives
    assert owner_gone(elsewhere.to_text(), now - timedelta(minutes=10))
    dead_here = replace(this_process(), pid=this_process().pid, started="not-this-start")
    assert owner_gone(dead_here.to_text(), now)  # a reused pid on this host is not the owner


def test_an_unknown_row_still_takes_the_request_id_its_sender_learns_late(log: sw.History) -> None:
    run = log.start(I2V, "fal", {"prompt": "late answer"})
    log.update(run, status="submitting")
    log.finish(run, status="unknown", error_type="lost_answer", error_message="may have reached fal")
    assert sw.resume(log) == []  # final for resume: never sent again
    log.update(run, status="queued", request_id="req-late")  # the live sender got its answer
    assert log.get(run)["request_id"] == "req-late" and log.get(run)["status"] == "queued"


def test_a_part_file_of_a_killed_but_unreaped_process_is_removed(tmp_path: Path) -> None:
    from sora_widgets.media import remove_partials

    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    while Path(f"/proc/{zombie.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
        threading.Event().wait(0.01)  # exited, not yet reaped by us: a zombie
    left = tmp_path / f".000001-v.video.mp4.{zombie.pid}-ab12_c.part"
    left.write_bytes(b"half")
    try:
        assert remove_partials(tmp_path) == 1 and not left.exists()
    finally:
        zombie.wait()
