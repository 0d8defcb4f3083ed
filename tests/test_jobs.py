"""The generation helper end to end on the offline preview backend: nothing lost, nothing sent twice."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import png_bytes, wait_for
from PIL import Image

import sora_widgets as sw
from sora_widgets.jobs import JobRunner


def test_first_run_without_a_key_uses_the_preview_and_makes_a_playable_video(
        log: sw.History, image: Path) -> None:
    gen = sw.generate(prompt="a red square breathing", image_url=image, history=log, timeout=120)
    assert gen.status is sw.JobStatus.COMPLETED and gen.backend == "preview"
    assert gen.note and "no model" in gen.note.lower()
    assert gen.video_path and Path(gen.video_path).stat().st_size > 1000
    assert Path(gen.video_path).is_relative_to(log.media_dir)
    row = log.get(gen.history_id)
    assert row["status"] == "completed" and row["backend"] == "preview"
    assert row["request_id"] == gen.request_id
    assert row["arguments"]["duration"] == 4 and row["image_sha256"]
    assert row["total_s"] is not None and row["cost_usd"] == 0  # nothing was spent
    assert gen.thumbnail_path and gen.thumbnail_path != gen.spritesheet_path
    assert Path(gen.thumbnail_path).is_file()
    assert "<video" in gen._repr_html_()


def test_invalid_arguments_are_refused_before_anything_is_recorded(log: sw.History) -> None:
    with pytest.raises(sw.ValidationError) as info:
        sw.submit(prompt="x", image_url="https://e.com/a.png", durration=8, history=log)
    assert info.value.fields == ["durration"]
    assert len(log) == 0


def test_missing_local_image_names_the_field(log: sw.History, tmp_path: Path) -> None:
    with pytest.raises(sw.ValidationError) as info:
        sw.submit(prompt="x", image_url=tmp_path / "nope.png", history=log)
    assert info.value.fields == ["image_url"]
    assert len(log) == 0


def test_submit_returns_at_once_and_events_arrive_in_order(log: sw.History) -> None:
    seen: list[str] = []
    job = sw.submit(prompt="waves", image_url=png_bytes(), history=log, backend="preview",
                    on_event=lambda _job, event: seen.append(event.kind))
    assert job.status in (sw.JobStatus.PENDING, sw.JobStatus.SUBMITTING, sw.JobStatus.QUEUED,
                          sw.JobStatus.RUNNING)
    gen = job.result(timeout=120)
    assert gen.ok and job.done()
    assert seen[-1] == "completed" and "running" in seen
    assert seen.index("running") < seen.index("completed")


def test_generate_async_works_inside_a_running_loop(log: sw.History) -> None:
    async def main() -> tuple[sw.Generation, list[str]]:
        job = sw.submit(prompt="async", image_url=png_bytes(), history=log)
        kinds = [event.kind async for event in job]
        return await sw.generate_async(prompt="again", image_url=png_bytes((1, 2, 3)), history=log), kinds

    gen, kinds = asyncio.run(main())
    assert gen.ok and kinds[-1] == "completed"
    assert len(log) == 2


def test_cancel_ends_the_row_cancelled_and_result_raises(log: sw.History) -> None:
    job = sw.submit(prompt="long one", image_url=png_bytes(), duration=20, history=log)
    job.cancel()
    with pytest.raises(sw.GenerationError) as info:
        job.result(timeout=60)
    assert info.value.kind == "cancelled" and info.value.history_id == job.history_id
    assert log.get(job.history_id)["status"] == "cancelled"


def test_result_timeout_leaves_the_job_running(log: sw.History) -> None:
    job = sw.submit(prompt="slow", image_url=png_bytes(), duration=8, history=log)
    with pytest.raises(sw.WaitTimeout, match="keeps running") as caught:
        job.result(timeout=0.01)
    assert isinstance(caught.value, TimeoutError)  # code that catches TimeoutError still does
    assert job.result(timeout=120).ok


KILLED_KERNEL = """
import os, sys, time
import sora_widgets as sw
log = sw.History(sys.argv[1])
job = sw.submit(prompt="restart me", image_url=sys.argv[2], duration=8, history=log,
                backend="preview")
while job.request_id is None or log.get(job.history_id)["request_id"] is None:
    time.sleep(0.01)
print(job.history_id, flush=True)
os._exit(0)  # the kernel dies: no clean-up, the job's task dies with it
"""


def test_resume_finishes_a_job_submitted_before_a_restart(log: sw.History, image: Path) -> None:
    out = subprocess.run([sys.executable, "-c", KILLED_KERNEL, str(log.path), str(image)],
                         capture_output=True, text=True, timeout=120, check=True)
    row_id = int(out.stdout.split()[-1])
    assert log.get(row_id)["status"] in ("queued", "running")
    jobs = sw.resume(sw.History(log.path))
    assert [j.history_id for j in jobs] == [row_id]
    gen = jobs[0].result(timeout=120)
    assert gen.ok and Path(gen.video_path).is_file()
    assert log.get(row_id)["status"] == "completed"


def test_resume_never_sends_a_row_an_older_release_left_without_an_owner(log: sw.History) -> None:
    row = log.start("fal-ai/sora-2/image-to-video", "fal", {"prompt": "x", "image_url": "u"})
    assert sw.resume(log) == []  # no owner: its process may have been sending it when it died
    record = log.get(row)
    assert record["status"] == "unknown" and record["error_type"] == "lost_answer"
    assert "may have reached fal" in record["error_message"]


def test_unknown_backend_name_is_a_validation_error(log: sw.History) -> None:
    with pytest.raises(sw.ValidationError, match="backend"):
        sw.submit(prompt="x", image_url="https://e.com/a.png", backend="replicate", history=log)


def test_no_key_photo_becomes_a_4_s_16_9_mp4_whose_first_frame_is_the_photo(
        log: sw.History, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from sora_widgets.media import probe_video
    from sora_widgets.research.metrics import video_metrics

    rng = np.random.default_rng(7)
    photo = Image.fromarray(rng.integers(0, 255, (18, 32, 3), dtype=np.uint8)).resize(
        (1280, 720), Image.Resampling.BICUBIC)  # smooth, photo-like colour fields
    monkeypatch.chdir(tmp_path)
    photo.save("photo.png")
    gen = sw.generate(prompt="still life", image_url="photo.png", duration=4, aspect_ratio="16:9",
                      history=log, timeout=120)
    info = probe_video(gen.video_path)
    assert (info.codec, info.width, info.height) == ("h264", 1280, 720)
    assert info.duration_s == pytest.approx(4.0, abs=0.1)
    measured = video_metrics(gen.video_path, image="photo.png")
    assert measured["psnr_db"] > 20 and measured["ssim"] > 0.6


@pytest.fixture
def one_job_at_a_time() -> Iterator[JobRunner]:
    """A runner of its own that follows a single job at a time, closed after the test."""
    with JobRunner(max_jobs=1) as runner:
        yield runner


def test_jobs_beyond_the_concurrency_limit_wait_pending_and_all_finish(
        log: sw.History, one_job_at_a_time: JobRunner) -> None:
    runner = one_job_at_a_time
    first = sw.submit(prompt="first", image_url=png_bytes(), duration=8, history=log, runner=runner)
    second = sw.submit(prompt="second", image_url=png_bytes((9, 9, 9)), history=log, runner=runner)
    while first.request_id is None:
        asyncio.run(asyncio.sleep(0.01))
    assert second.status is sw.JobStatus.PENDING and second.request_id is None
    assert first.result(timeout=120).ok and second.result(timeout=120).ok


def test_resume_in_the_same_process_leaves_live_jobs_alone(
        log: sw.History, one_job_at_a_time: JobRunner) -> None:
    runner = one_job_at_a_time
    first = sw.submit(prompt="first", image_url=png_bytes(), duration=8, history=log, runner=runner)
    waiting = sw.submit(prompt="waiting for a place", image_url=png_bytes((5, 5, 5)), history=log,
                        runner=runner)
    resumed = sw.resume(log, runner=runner)
    assert {job.history_id for job in resumed} == {first.history_id, waiting.history_id}
    assert all(job in (first, waiting) for job in resumed)
    assert first.result(timeout=120).ok and waiting.result(timeout=120).ok
    assert {row["status"] for row in log.records()} == {"completed"}


def test_cancel_from_an_event_callback_does_not_block_the_job_loop(log: sw.History) -> None:
    def cancel_when_running(job: sw.Job, event: sw.JobEvent) -> None:
        if event.kind == "running":
            job.cancel()

    job = sw.submit(prompt="stop me", image_url=png_bytes(), duration=20, history=log,
                    on_event=cancel_when_running)
    with pytest.raises(sw.GenerationError) as info:
        job.result(timeout=30)
    assert info.value.kind == "cancelled"  # result() would time out if the loop had frozen
    assert log.get(job.history_id)["status"] == "cancelled"


def test_a_job_of_an_endpoint_known_only_from_a_document_can_be_resumed(
        log: sw.History) -> None:
    row = log.start("acme/never-bundled", "preview", {"prompt": "x"})
    log.update(row, status="queued", request_id="preview-" + "0" * 32)
    [job] = sw.resume(log)
    with pytest.raises(sw.GenerationError) as info:
        job.result(timeout=30)
    assert info.value.kind == "not_found"  # followed, and the backend's own answer is recorded
    assert log.get(row)["status"] == "failed"


def test_a_video_outside_the_notebook_folder_says_so_and_can_be_embedded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notebook").mkdir()
    monkeypatch.chdir(tmp_path / "notebook")
    gen = sw.generate(prompt="elsewhere", image_url=png_bytes(), history=sw.History(tmp_path / "runs"),
                      timeout=120)
    page = gen._repr_html_()
    assert "src='../runs/media/" in page and "outside the notebook's folder" in page
    assert "file://" not in page
    embedded = gen.html(embed=True)
    assert "src='data:video/mp4;base64," in embedded and "notebook's folder" not in embedded


class _RecordingPreview(sw.PreviewBackend):
    """The offline preview, keeping what each prepare() was handed."""

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self.handed: list[dict[str, object]] = []

    async def prepare(self, endpoint_id: str, arguments: dict[str, object]) -> dict[str, object]:
        self.handed.append(dict(arguments))
        return await super().prepare(endpoint_id, arguments)  # type: ignore[arg-type]


def test_the_backend_is_handed_the_image_checked_once_not_its_text(log: sw.History) -> None:
    from sora_widgets.media import NormalizedImage

    backend = _RecordingPreview(media_dir=log.media_dir, queue_s=0.0, scale=0.25)
    gen = sw.generate(prompt="handed once", image_url=png_bytes(), backend=backend, history=log,
                      timeout=120)
    image = backend.handed[0]["image_url"]  # the Job's call (the preview's submit prepares again)
    assert isinstance(image, NormalizedImage) and image.size is not None and image.sha256
    row = log.get(gen.history_id)
    assert gen.ok and row["arguments"]["image_url"] == image.value  # the history keeps plain text
    assert row["image_sha256"] == image.sha256


async def test_the_preview_does_not_read_an_image_it_is_handed_again(tmp_path: Path) -> None:
    from sora_widgets.media import normalize_image

    image = normalize_image(png_bytes(), media_dir=tmp_path)
    assert image.local_path is not None
    image.local_path.unlink()  # reading it again would fail now
    prepared = await sw.PreviewBackend(media_dir=tmp_path).prepare(
        "fal-ai/sora-2/image-to-video", {"prompt": "p", "image_url": image})
    assert prepared["image_url"] == image.value


def test_a_closed_runner_ends_its_threads_and_leaves_sent_jobs_resumable(log: sw.History) -> None:
    import threading

    def loops() -> int:
        return sum(t.name == "sora-widgets-jobs" for t in threading.enumerate())

    before = loops()
    slow = sw.PreviewBackend(media_dir=log.media_dir, queue_s=30.0, scale=0.25)
    with JobRunner(max_jobs=1) as runner:
        sent = sw.submit(prompt="sent, then left", image_url=png_bytes(), backend=slow, history=log,
                         runner=runner)
        waiting = sw.submit(prompt="never sent", image_url=png_bytes(), backend=slow, history=log,
                            runner=runner)
        wait_for(lambda: sent.request_id is not None, what="the first job sent")
        assert loops() == before + 1
    assert loops() == before and "closed" in repr(runner)
    with pytest.raises(sw.ValidationError, match="closed"):
        sw.submit(prompt="x", image_url=png_bytes(), backend=slow, history=log, runner=runner)
    assert log.get(waiting.history_id)["status"] == "cancelled"  # it was never sent
    row = log.get(sent.history_id)
    assert row["status"] == "queued" and row["request_id"] == sent.request_id and row["owner"] is None
    fast = sw.PreviewBackend(media_dir=log.media_dir, queue_s=0.0, scale=0.25)
    with JobRunner() as again:
        [resumed] = sw.resume(log, backend=fast, runner=again)
        assert resumed.result(timeout=120).ok and resumed.request_id == sent.request_id
