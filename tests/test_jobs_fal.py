"""The generation helper on the fal backend, through the real fal_client and the fake HTTPS queue."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakefal import FakeFal, content_policy_error, validation_error
from helpers import wait_for

import sora_widgets as sw

SECRET = "fal-test-key-SENTINEL-7f3a9c"
ARGS = {"prompt": "a lighthouse at dusk", "image_url": "https://example.com/first.png"}



@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", SECRET)


def test_a_key_selects_fal_and_the_job_completes_with_few_requests(
        fakefal: FakeFal, keyed: None, log: sw.History) -> None:
    fakefal.configure(queue_s=0.3, run_s=1.0)
    gen = sw.generate(**ARGS, duration=8, history=log, timeout=60)
    assert gen.ok and gen.backend == "fal" and gen.request_id in fakefal.jobs
    assert gen.video_url == fakefal.media_url("video.mp4")
    assert Path(gen.video_path).read_bytes() == fakefal.media["video.mp4"]
    queue_requests = sum(fakefal.count(kind) for kind in ("submit", "status", "stream", "result"))
    assert fakefal.count("submit") == 1 and queue_requests <= 5
    sent = fakefal.of_kind("submit")[0].json
    assert sent["duration"] == 8 and sent["model"] == "sora-2"
    row = log.get(gen.history_id)
    assert row["status"] == "completed" and row["request_id"] == gen.request_id
    assert row["queued_s"] is not None and row["running_s"] is not None
    assert row["cost_usd"] == pytest.approx(0.8)


@pytest.mark.parametrize(("error", "kind", "field"), [
    (validation_error("image_url", "Could not download the image"), "validation", "image_url"),
    (content_policy_error("prompt"), "content_policy", "prompt"),
])
def test_a_job_that_fal_fails_raises_and_leaves_a_failed_row(
        fakefal: FakeFal, keyed: None, log: sw.History, error: tuple, kind: str, field: str) -> None:
    fakefal.configure(queue_s=0.1, run_s=0.2, error=error)
    with pytest.raises(sw.GenerationError) as info:
        sw.generate(**ARGS, history=log, timeout=60)
    assert info.value.kind == kind and field in str(info.value)
    assert info.value.generation.status is sw.JobStatus.FAILED
    row = log.get(info.value.history_id)
    assert row["status"] == "failed" and row["error_type"] == kind and row["request_id"]


def test_cancel_reaches_fal_and_ends_the_row_cancelled(fakefal: FakeFal, keyed: None,
                                                       log: sw.History) -> None:
    fakefal.configure(queue_s=30, run_s=1)
    job = sw.submit(**ARGS, history=log)
    wait_for(lambda: job.request_id is not None)
    job.cancel()
    with pytest.raises(sw.GenerationError):
        job.result(timeout=30)
    assert fakefal.count("cancel") == 1
    assert log.get(job.history_id)["status"] == "cancelled"


def test_missing_key_for_fal_is_refused_before_anything_is_sent(fakefal: FakeFal,
                                                                log: sw.History) -> None:
    with pytest.raises(sw.CredentialsError, match="FAL_KEY"):
        sw.submit(**ARGS, backend="fal", history=log)
    assert fakefal.count() == 0 and len(log) == 0


def test_the_key_never_reaches_history_exports_logs_or_reprs(
        fakefal: FakeFal, keyed: None, log: sw.History, tmp_path: Path,
        caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    fakefal.configure(queue_s=0.1, run_s=0.3, logs=["using key " + SECRET])
    gen = sw.generate(**ARGS, history=log, timeout=60)
    fakefal.configure(queue_s=0.1, run_s=0.1, error=(401, {"detail": "Invalid key " + SECRET}))
    with pytest.raises(sw.GenerationError) as failed:
        sw.generate(**ARGS, history=log, timeout=60)
    exported = [log.export(tmp_path / f"runs.{suffix}") for suffix in ("csv", "jsonl")]
    texts = [repr(gen), gen._repr_html_(), str(failed.value), repr(log), log._repr_html_(),
             json.dumps(log.records(), default=str), *[p.read_text() for p in exported]]
    run_files = [p for p in log.path.parent.rglob("*") if p.is_file()]
    assert any(p.suffix == ".mp4" for p in run_files)  # the scan covers media, not only the db
    captured = capfd.readouterr()
    texts += [caplog.text, captured.out, captured.err]
    assert all(SECRET not in text for text in texts)
    assert all(SECRET.encode() not in p.read_bytes() for p in run_files)
    assert fakefal.of_kind("submit")[0].headers["authorization"] == f"Key {SECRET}"


KILLED_KERNEL = """
import os, sys, time
import sora_widgets as sw
log = sw.History(sys.argv[1])
job = sw.submit(prompt="survive a restart", image_url="https://example.com/a.png", history=log)
while log.get(job.history_id)["request_id"] is None:
    time.sleep(0.01)
print(job.history_id, flush=True)
os._exit(0)
"""


def test_a_submitted_fal_job_is_recovered_after_a_kernel_restart(
        fakefal: FakeFal, keyed: None, log: sw.History) -> None:
    fakefal.configure(queue_s=0.5, run_s=1.0)
    out = subprocess.run([sys.executable, "-c", KILLED_KERNEL, str(log.path)], env=os.environ,
                         capture_output=True, text=True, timeout=60, check=True)
    row_id = int(out.stdout.split()[-1])
    assert fakefal.count("submit") == 1
    [job] = sw.resume(sw.History(log.path))
    gen = job.result(timeout=60)
    assert gen.ok and job.history_id == row_id
    assert fakefal.count("submit") == 1  # followed by its request id, never sent again
    assert log.get(row_id)["status"] == "completed"


def test_a_local_image_is_uploaded_once_and_the_row_records_what_was_sent(
        fakefal: FakeFal, keyed: None, log: sw.History, tmp_path: Path) -> None:
    from PIL import Image

    from sora_widgets.backends.fal import FalBackend

    uploads: list[bytes] = []

    def uploader(data: bytes, content_type: str, file_name: str) -> str:
        uploads.append(data)
        fakefal.media[file_name] = data
        return fakefal.media_url(file_name)

    image = tmp_path / "frame.png"
    Image.new("RGB", (64, 36), (10, 120, 200)).save(image)
    fakefal.configure(queue_s=0.1, run_s=0.2)
    backend = FalBackend(uploader=uploader)
    first = sw.generate(prompt="one", image_url=image, backend=backend, history=log, timeout=60)
    second = sw.generate(prompt="two", image_url=str(image), backend=backend, history=log, timeout=60)
    assert uploads == [image.read_bytes()]
    sent = [request.json["image_url"] for request in fakefal.of_kind("submit")]
    assert sent[0] == sent[1] and sent[0].startswith("https://127.0.0.1")
    for gen in (first, second):
        row = log.get(gen.history_id)
        assert row["arguments"]["image_url"] == sent[0] == gen.arguments["image_url"]
        assert Path(row["image_path"]).read_bytes() == image.read_bytes()


def test_a_sweep_uploads_its_image_once_and_a_restart_reuses_the_upload(
        fakefal: FakeFal, keyed: None, log: sw.History, tmp_path: Path) -> None:
    from PIL import Image

    from sora_widgets.backends.fal import FalBackend

    uploads: list[str] = []

    def uploader(data: bytes, content_type: str, file_name: str) -> str:
        uploads.append(file_name)
        return fakefal.media_url(file_name)

    image = tmp_path / "frame.png"
    Image.new("RGB", (64, 36), (200, 120, 10)).save(image)
    fakefal.configure(queue_s=0.1, run_s=0.2)
    run = sw.sweep(prompt="p", image_url=image, duration=[4, 8, 12], model=sw.load_schema()["model"].enum,
                   repeat=4, history=log, backend=FalBackend(uploader=uploader, upload_cache=log.uploads),
                   wait=True)
    assert len(run.jobs) == 36 and set(run.to_dataframe()["status"]) == {"completed"}
    assert len(uploads) == 1 and fakefal.count("submit") == 36
    # the rows hold the uploaded URL, the plan the local path: rows are matched by their cell key
    reopened = sw.Sweep.open(run.sweep_id, history=sw.History(log.path),
                             backend=FalBackend(uploader=uploader)).wait(timeout=60)
    assert fakefal.count("submit") == 36 and reopened.status == {"completed": 36}
    after_restart = FalBackend(uploader=uploader, upload_cache=sw.History(log.path).uploads)
    sw.generate(prompt="again", image_url=image, backend=after_restart, history=log, timeout=60)
    assert len(uploads) == 1


def test_a_short_download_fails_the_run_keeping_its_url_and_request_id(
        fakefal: FakeFal, keyed: None, log: sw.History) -> None:
    video = fakefal.media["video.mp4"]
    fakefal.configure(queue_s=0.1, run_s=0.2, result={
        "video": {"url": fakefal.media_url("video.mp4"), "content_type": "video/mp4",
                  "file_size": len(video) + 100},
        "video_id": "vid-short"})
    with pytest.raises(sw.GenerationError) as info:
        sw.generate(**ARGS, history=log, timeout=60)
    assert info.value.kind == "download" and "stopped early" in str(info.value)
    row = log.get(info.value.history_id or 0)
    assert row["status"] == "failed" and row["request_id"] == info.value.request_id
    assert row["video_url"] == fakefal.media_url("video.mp4") and row["video_path"] is None
    assert not list((log.media_dir / "videos").glob("*vid-short*"))
