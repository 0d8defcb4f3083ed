"""No job lost or sent twice: real child processes SIGKILLed at each step of a job's life, then
`resume()` from another process; two processes resuming at once; an outage past the retry deadline.

Every case counts the POSTs the fake fal server received: one per job, and every row ends true
(completed, cancelled when asked, or `unknown` where the answer to the POST was lost).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fakefal import FakeFal, Fault
from helpers import wait_for

import sora_widgets as sw
from sora_widgets._owner import this_process
from sora_widgets.backends.fal import FalBackend
from sora_widgets.history import HistoryRecord

SECRET = "fal-crash-key-SENTINEL-51d0c2"
I2V = "fal-ai/kling-video/v2.1/standard/image-to-video"

CHILD = """
import sys, time
import sora_widgets as sw
from sora_widgets.backends.fal import FalBackend
from sora_widgets.history import HistoryRecord

path, step, image = sys.argv[1:4]
log = sw.History(path)

def hang(data, content_type, name):  # an upload that never ends: the kill lands before the POST
    time.sleep(600)

if step == "upload":
    backend = FalBackend(uploader=hang)
elif step == "render":
    backend = sw.PreviewBackend(media_dir=log.media_dir, speed=1.0, scale=0.25)
else:
    backend = "fal"
job = sw.submit(endpoint=sys.argv[4], prompt="a kite over dunes", image_url=image,
                duration="10" if step == "render" else "5", history=log, backend=backend)
print(job.history_id, flush=True)
time.sleep(600)
"""


@pytest.fixture
def keyed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAL_KEY", SECRET)


@pytest.fixture
def child(runs: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start a kernel-like child that submits one job; every child is killed at the end."""
    started: list[subprocess.Popen[str]] = []

    def start(step: str, image: str, endpoint: str = I2V) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, str(runs), step, image, endpoint],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def _row(runs: Path) -> HistoryRecord | None:
    if not runs.is_file():
        return None
    rows = sw.History(runs).records()
    return rows[0] if rows else None


def _uploader(fake: FakeFal) -> Callable[[bytes, str, str], str]:
    def upload(data: bytes, content_type: str, name: str) -> str:
        fake.media[f"up-{len(data)}.png"] = data
        return fake.media_url(f"up-{len(data)}.png")
    return upload


def test_killed_before_the_post_the_row_is_sent_once_by_resume(
        fakefal: FakeFal, keyed: None, child, runs: Path, image: Path) -> None:
    fakefal.configure(queue_s=0.1, run_s=0.3)
    proc = child("upload", str(image))
    wait_for(lambda: (row := _row(runs)) is not None and row["status"] == "pending", what="a pending row")
    _kill(proc)
    assert fakefal.count("submit") == 0

    [job] = sw.resume(sw.History(runs), backend=FalBackend(uploader=_uploader(fakefal)))
    assert job.result(timeout=60).ok
    assert fakefal.count("submit") == 1
    row = sw.History(runs).get(job.history_id)
    assert row["status"] == "completed" and row["arguments"]["image_url"].startswith("https://")


def test_killed_after_the_post_before_the_id_came_back_the_row_ends_unknown_and_is_not_resent(
        fakefal: FakeFal, keyed: None, child, runs: Path) -> None:
    fakefal.add_fault("submit", Fault.delay(60))  # fal takes the job; its answer never arrives
    proc = child("submit", fakefal.media_url("input.png"))
    wait_for(lambda: fakefal.count("submit") == 1 and (row := _row(runs)) is not None
              and row["status"] == "submitting", what="a POST in flight")
    _kill(proc)

    assert sw.resume(sw.History(runs)) == []
    row = sw.History(runs).get(1)
    assert row["status"] == "unknown" and row["error_type"] == "lost_answer"
    assert "may have reached fal" in row["error_message"] and row["request_id"] is None
    assert sw.resume(sw.History(runs)) == []  # final: never sent again, by any later resume
    assert fakefal.count("submit") == 1 and len(fakefal.jobs) == 1


def test_killed_once_the_request_id_is_stored_resume_follows_it(
        fakefal: FakeFal, keyed: None, child, runs: Path) -> None:
    fakefal.configure(queue_s=0.5, run_s=1.0)
    proc = child("submit", fakefal.media_url("input.png"))
    wait_for(lambda: (row := _row(runs)) is not None and row["request_id"], what="a request id")
    _kill(proc)

    [job] = sw.resume(sw.History(runs))
    gen = job.result(timeout=60)
    assert gen.ok and Path(gen.video_path or "").is_file()
    assert fakefal.count("submit") == 1
    assert sw.History(runs).get(job.history_id)["status"] == "completed"


def test_killed_mid_download_resume_keeps_the_video_and_no_part_file(
        fakefal: FakeFal, keyed: None, child, runs: Path) -> None:
    slow = fakefal.hostile_media("slow.mp4", "trickle")
    fakefal.configure(queue_s=0.1, run_s=0.2, result={"video": {"url": slow, "content_type": "video/mp4"}})
    proc = child("submit", fakefal.media_url("input.png"))
    videos = runs.parent / "media" / "videos"
    wait_for(lambda: videos.is_dir() and list(videos.glob(".*.part")), what="a download under way")
    _kill(proc)
    fakefal.hostile_media("slow.mp4", ("redirect", "video.mp4"))  # the CDN answers again

    [job] = sw.resume(sw.History(runs))
    gen = job.result(timeout=60)
    assert gen.ok and Path(gen.video_path or "").read_bytes() == fakefal.media["video.mp4"]
    assert not list(videos.glob(".*.part"))
    assert fakefal.count("submit") == 1


def test_killed_mid_render_the_preview_is_rendered_again_and_completes(
        child, runs: Path, image: Path) -> None:
    proc = child("render", str(image))
    wait_for(lambda: (row := _row(runs)) is not None and row["status"] == "running", timeout=60,
              what="a render under way")
    _kill(proc)

    [job] = sw.resume(sw.History(runs))
    gen = job.result(timeout=120)
    assert gen.ok and Path(gen.video_path or "").is_file()
    assert [r["status"] for r in sw.History(runs).records()] == ["completed"]


def test_two_processes_resuming_at_once_send_each_orphan_once(
        fakefal: FakeFal, keyed: None, runs: Path) -> None:
    fakefal.configure(queue_s=0.2, run_s=0.5)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    dead = replace(this_process(), pid=int(gone.stdout), started="gone")
    log = sw.History(runs)
    rows = [log.start(I2V, "fal", {"prompt": f"orphan {n}", "image_url": fakefal.media_url("input.png")},
                      owner=dead) for n in range(6)]
    script = ("import sys, sora_widgets as sw\n"
              "jobs = sw.resume(sw.History(sys.argv[1]))\n"
              "print(' '.join(str(j.history_id) for j in jobs), flush=True)\n"
              "[j.result(timeout=120) for j in jobs]\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(runs)], stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ)) for _ in range(2)]
    taken = [proc.communicate(timeout=120)[0].split() for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert sorted(int(i) for ids in taken for i in ids) == rows  # each row taken by exactly one
    assert fakefal.count("submit") == 6
    assert {r["status"] for r in sw.History(runs).records()} == {sw.JobStatus.COMPLETED}


def test_resume_leaves_alone_a_row_another_live_process_is_sending(
        fakefal: FakeFal, keyed: None, child, runs: Path) -> None:
    fakefal.configure(queue_s=0.1, run_s=0.2)
    fakefal.add_fault("submit", Fault.delay(2.0))
    child("submit", fakefal.media_url("input.png"))
    wait_for(lambda: (row := _row(runs)) is not None and row["status"] == "submitting",
              what="a POST in flight")
    assert sw.resume(sw.History(runs)) == []  # its owner is alive: not ours to close or follow
    assert sw.History(runs).get(1)["status"] == "submitting"
    wait_for(lambda: sw.History(runs).get(1)["status"] == "completed", what="the child finishing")
    assert fakefal.count("submit") == 1


def test_an_outage_past_the_retry_deadline_leaves_the_row_resumable(
        fakefal: FakeFal, keyed: None, log: sw.History) -> None:
    fakefal.configure(queue_s=0.3, run_s=0.5)
    for kind in ("status", "stream", "result"):
        fakefal.add_fault(kind, Fault.http(503, {"detail": "upstream unavailable"}), times=10_000)
    backend = FalBackend(retry_deadline_s=0.6, backoff_s=0.05)
    job = sw.submit(endpoint=I2V, prompt="through an outage", image_url=fakefal.media_url("input.png"),
                    history=log, backend=backend)
    with pytest.raises(sw.GenerationError) as lost:
        job.result(timeout=60)
    # the last try ends on a 503 or on the deadline itself: either way only the contact was lost
    assert lost.value.kind in ("server", "timeout") and "sw.resume()" in str(lost.value)
    row = log.get(job.history_id)
    assert row["status"] in ("queued", "running") and row["request_id"] == job.request_id
    assert row["owner"] is None  # released: any process may take it over

    fakefal.clear_faults()  # the network is back
    [again] = sw.resume(log)
    assert again.result(timeout=60).ok
    row = log.get(job.history_id)
    assert row["status"] == "completed" and row["error_message"] is None
    assert fakefal.count("submit") == 1


def test_cancel_during_the_submit_records_the_id_and_cancels_on_fal(
        fakefal: FakeFal, keyed: None, log: sw.History) -> None:
    fakefal.configure(queue_s=5.0, run_s=5.0)
    fakefal.add_fault("submit", Fault.delay(1.0))
    job = sw.submit(endpoint=I2V, prompt="never mind", image_url=fakefal.media_url("input.png"),
                    history=log)
    wait_for(lambda: log.get(job.history_id)["status"] == "submitting", what="a POST in flight")
    job.cancel()
    with pytest.raises(sw.GenerationError) as info:
        job.result(timeout=30)
    assert info.value.kind == "cancelled"
    row = log.get(job.history_id)
    [fal_job] = fakefal.jobs.values()
    assert row["status"] == "cancelled" and row["request_id"] == fal_job.request_id
    assert fakefal.count("cancel") == 1 and fal_job.cancelled_at is not None


def test_a_callback_that_raises_never_changes_the_outcome(
        log: sw.History, image: Path, caplog: pytest.LogCaptureFixture) -> None:
    def broken(job: sw.Job, event: sw.JobEvent) -> None:
        raise RuntimeError(f"callback bug on {event.kind}")

    job = sw.submit(prompt="fine", image_url=image, history=log, backend="preview", on_event=broken)
    assert job.result(timeout=120).ok
    assert log.get(job.history_id)["status"] == "completed"
    assert any("callback bug on completed" in (r.exc_text or str(r.exc_info)) for r in caplog.records)


def test_a_503_at_submit_is_retried_and_a_502_is_not(
        fakefal: FakeFal, keyed: None, log: sw.History) -> None:
    fakefal.configure(queue_s=0.1, run_s=0.2)
    fakefal.add_fault("submit", Fault.http(503, {"detail": "busy"}, **{"Retry-After": "0.1"}), times=2)
    gen = sw.generate(endpoint=I2V, prompt="declined twice", image_url=fakefal.media_url("input.png"),
                      history=log, timeout=60)
    assert gen.ok and fakefal.count("submit") == 3 and len(fakefal.jobs) == 1

    fakefal.add_fault("submit", Fault.http(502, "<html>bad gateway</html>"))
    with pytest.raises(sw.GenerationError) as info:
        sw.generate(endpoint=I2V, prompt="lost", image_url=fakefal.media_url("input.png"),
                    history=log, timeout=60)
    assert info.value.kind == "lost_answer" and fakefal.count("submit") == 4
    assert log.get(info.value.history_id or 0)["status"] == "unknown"


def test_a_caller_that_stops_awaiting_leaves_the_job_running(
        fakefal: FakeFal, keyed: None, log: sw.History) -> None:
    import asyncio

    fakefal.configure(queue_s=0.3, run_s=1.0)

    async def impatient() -> None:
        await asyncio.wait_for(sw.generate_async(endpoint=I2V, prompt="slow", history=log,
                                                 image_url=fakefal.media_url("input.png")), 0.5)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(impatient())
    [row] = log.records()
    assert row["status"] in ("queued", "running")  # only cancel() stops a job
    wait_for(lambda: log.get(row["id"])["status"] == "completed", what="the job finishing")
    assert fakefal.count("cancel") == 0 and fakefal.count("submit") == 1


def test_resume_without_a_working_key_leaves_the_row_for_a_later_resume(
        fakefal: FakeFal, keyed: None, child, runs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fakefal.configure(queue_s=0.5, run_s=1.0)
    proc = child("submit", fakefal.media_url("input.png"))
    wait_for(lambda: (row := _row(runs)) is not None and row["request_id"], what="a request id")
    _kill(proc)

    monkeypatch.delenv("FAL_KEY")  # a shell without the key
    [job] = sw.resume(sw.History(runs))
    with pytest.raises(sw.GenerationError) as refused:
        job.result(timeout=60)
    assert refused.value.kind == "credentials" and "sw.resume()" in str(refused.value)
    row = sw.History(runs).get(job.history_id)
    assert not row["status"].is_final and row["owner"] is None and row["request_id"]

    monkeypatch.setenv("FAL_KEY", SECRET)
    [again] = sw.resume(sw.History(runs))
    assert again.result(timeout=60).ok and fakefal.count("submit") == 1


def test_slow_downloads_never_hold_up_other_jobs(
        fakefal: FakeFal, keyed: None, log: sw.History, image: Path) -> None:
    slow = fakefal.hostile_media("slow.mp4", "trickle")
    fakefal.configure(queue_s=0.0, run_s=0.1, result={"video": {"url": slow, "content_type": "video/mp4"}})
    stuck = [sw.submit(endpoint=I2V, prompt=f"slow {n}", image_url=fakefal.media_url("input.png"),
                       history=log) for n in range(8)]
    wait_for(lambda: fakefal.streaming_media() == 8, what="eight downloads trickling")
    gen = sw.generate(prompt="meanwhile", image_url=image, history=log, backend="preview", timeout=120)
    assert gen.ok and not any(job.done() for job in stuck)
    fakefal.reset()  # the trickles end: those downloads fail, and their jobs with them
    for job in stuck:
        with pytest.raises(sw.GenerationError):
            job.result(timeout=60)
