"""Adversarial checks of issue 15: sweeps on the runner's limit (pending rows waiting for a place),
cancel races, reopening and resuming killed sweeps from other processes, limits from other
runners, SORA_WIDGETS_MAX_JOBS, and the NormalizedImage hand-off to the backends.

Every case counts the POSTs the fake fal server received. Some tests here are regression tests
for bugs found while attacking the change (each says what the bug was); all were fixed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from fakefal import FakeFal, Fault
from helpers import png_bytes, wait_for
from PIL import Image

import sora_widgets as sw
from sora_widgets._owner import Owner, this_process
from sora_widgets.backends.fal import FalBackend
from sora_widgets.jobs import JobRunner
from sora_widgets.jobs.job import cancel_jobs

SECRET = "fal-attack-key-SENTINEL-7c1e99"
I2V = "fal-ai/sora-2/image-to-video"


@pytest.fixture
def fal(fakefal: FakeFal, monkeypatch: pytest.MonkeyPatch) -> FakeFal:
    monkeypatch.setenv("FAL_KEY", SECRET)
    fakefal.configure(queue_s=0.1, run_s=0.3)
    fakefal.media["input.png"] = png_bytes()
    return fakefal


def _dead_owner() -> Owner:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return replace(this_process(), pid=int(gone.stdout), started="gone")


def _posts_per_prompt(fake: FakeFal) -> Counter[str]:
    """POSTs received per prompt; a POST cut short by a SIGKILL (its body incomplete) counts as ""."""
    def prompt(body: bytes) -> str:
        try:
            return str(json.loads(body)["prompt"])
        except (ValueError, KeyError, TypeError):
            return ""
    return Counter(prompt(rec.body) for rec in fake.of_kind("submit"))


def _uploader(fake: FakeFal, seen: list[bytes]) -> Callable[[bytes, str, str], str]:
    def upload(data: bytes, content_type: str, name: str) -> str:
        seen.append(data)
        fake.media[f"up-{len(seen)}.png"] = data
        return fake.media_url(f"up-{len(seen)}.png")
    return upload


def _rows_end_true(log: sw.History, sweep_id: str, fake: FakeFal) -> None:
    """Every row final; a row that never got a request id was never sent (cancelled unsent)."""
    rows = log.find(sweep_id=sweep_id)
    assert all(row["status"].is_final for row in rows), [row["status"] for row in rows]
    assert all(row["status"] == "cancelled" for row in rows if not row["request_id"])
    assert fake.count("submit") == sum(1 for row in rows if row["request_id"])


# --- bugs found while attacking, now fixed ---------------------------------------------------------


def test_two_processes_reopening_a_sweep_killed_mid_start_send_each_cell_once(
        fal: FakeFal, log: sw.History, runner: JobRunner) -> None:
    """Was a bug: a kernel killed inside `start()` leaves cells without a row; two `Sweep.open` at once
    (two notebooks, or a reopen while the first still starts) both submit every such cell,
    because `start()` decides from its own snapshot of the rows, with no claim in the history."""
    cells = 8
    planned = sw.sweep(prompt=[f"cell {i}" for i in range(cells)], image_url=fal.media_url("input.png"),
                       backend="fal", history=log, max_concurrent=3, runner=runner,
                       confirm=lambda plan: False)
    plan = planned.plan
    planned.plan_path.parent.mkdir(parents=True, exist_ok=True)
    planned.plan_path.write_text(json.dumps(plan.to_json(), default=str), encoding="utf-8")
    dead = _dead_owner()  # the killed kernel wrote the rows of its first two cells only
    for cell in plan.cells[:2]:
        log.start(cell.endpoint_id, "fal", cell.arguments, sweep_id=plan.sweep_id, cell_key=cell.cell_id,
                  owner=dead)

    both_matched = threading.Barrier(2)

    class MeetingSweep(sw.Sweep):
        """A Sweep whose start() waits until both reopened sweeps have read the rows."""

        def start(self) -> sw.Sweep:
            with contextlib.suppress(threading.BrokenBarrierError):  # a timeout, never a deadlock
                both_matched.wait(timeout=5)
            return super().start()

    opened: list[sw.Sweep] = []

    def reopen(own: JobRunner) -> None:  # as a second kernel would, with its own runner
        opened.append(MeetingSweep.open(plan.sweep_id, history=sw.History(log.path), runner=own,
                                        max_concurrent=3))

    with JobRunner() as first, JobRunner() as second:
        threads = [threading.Thread(target=reopen, args=(own,)) for own in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        for run in opened:
            run.wait(timeout=60)
    assert _posts_per_prompt(fal) == Counter({f"cell {i}": 1 for i in range(cells)})
    assert len(log.find(sweep_id=plan.sweep_id)) == cells


def test_resume_refuses_a_limit_made_by_another_runner(log: sw.History) -> None:
    """Was a bug: `submit` refuses a Limit of another JobRunner but `resume` takes it; its semaphore then
    serves two loops, and the jobs that meet it on the wrong loop end `failed`/internal, even rows
    that hold a request id for a job fal is running (never resumed again: a paid result lost)."""
    dead = _dead_owner()
    ids = [log.start(I2V, "preview", {"prompt": f"orphan {n}", "image_url": "https://example.com/a.png"},
                     owner=dead) for n in range(2)]
    with JobRunner() as mine, JobRunner() as other:
        try:
            jobs = sw.resume(log, runner=mine, limit=other.limiter(1))
        except sw.ValidationError as exc:
            assert exc.fields == ["limit"]
            assert all(log.get(i)["status"] == "pending" and log.get(i)["owner"] == dead.to_text()
                       for i in ids)
        else:
            cancel_jobs(jobs)  # leave nothing running behind this test
            for job in jobs:
                with pytest.raises(sw.GenerationError):
                    job.result(timeout=60)
            pytest.fail("resume() accepted a limit made by another JobRunner")


def test_a_backend_cancel_that_fails_for_one_job_still_cancels_the_sweeps_other_jobs(
        fal: FakeFal, log: sw.History, runner: JobRunner) -> None:
    """Was a bug: `cancel_jobs` stops at the first job whose backend cancel raises, so the sweep's other
    jobs already sent keep running on fal (and are billed); cancel() then raises."""
    fal.configure(queue_s=5.0, run_s=5.0)
    run = sw.sweep(prompt=[f"c{i}" for i in range(6)], image_url=fal.media_url("input.png"),
                   backend="fal", history=log, max_concurrent=3, runner=runner)
    wait_for(lambda: sum(job.request_id is not None for job in run.jobs) == 3, what="three sent")
    fal.add_fault("cancel", Fault.http(500, {"detail": "cancel broke"}), times=1)
    with contextlib.suppress(sw.GenerationError):  # saying that one cancel failed is fine;
        run.cancel()  # leaving the others running on fal is not
    cancelled_on_fal = sum(job.cancelled_at is not None for job in fal.jobs.values())
    run.cancel()  # the fault is used up: end what is left, so the test does not wait for fal
    run.wait(timeout=60)
    assert fal.count("submit") == 3
    assert cancelled_on_fal >= 2, f"only {cancelled_on_fal} of the 3 sent jobs were cancelled on fal"


def test_a_stored_input_image_gone_before_the_post_fails_naming_the_field_not_internal(
        fal: FakeFal, log: sw.History, image: Path) -> None:
    """Was a bug: the fal backend reads a NormalizedImage's stored copy with no error handling, so a copy
    removed from media/inputs while the job waited for a place surfaces as a raw FileNotFoundError
    (kind "internal") instead of an error naming the field (file errors are translated)."""
    fal.configure(queue_s=0.0, run_s=1.0)
    with JobRunner(max_jobs=1) as runner:
        seen: list[bytes] = []
        first = sw.submit(prompt="holds the only place", image_url=fal.media_url("input.png"), backend="fal",
                          history=log, runner=runner)
        job = sw.submit(prompt="waits", image_url=image, backend=FalBackend(uploader=_uploader(fal, seen)),
                        history=log, runner=runner)
        assert log.get(job.history_id)["status"] == "pending"
        stored = job.images["image_url"].local_path
        assert stored is not None
        stored.unlink()
        with pytest.raises(sw.GenerationError) as failed:
            job.result(timeout=60)
        first.result(timeout=60)
        assert not seen and fal.count("submit") == 1  # nothing uploaded or sent for it
        assert failed.value.kind != "internal" and "image_url" in str(failed.value)
        assert log.get(job.history_id)["error_type"] != "internal"


def test_what_every_cell_would_meet_refuses_the_sweep_before_anything_is_recorded(
        log: sw.History, monkeypatch: pytest.MonkeyPatch) -> None:
    """Was a bug: a sweep turned what every cell meets (a bad SORA_WIDGETS_MAX_JOBS for the default
    runner, a closed runner, no key for fal) into one 'failed' cell each, and said it was done."""
    cells = {"prompt": ["a", "b"], "image_url": "https://example.com/a.png", "history": log}
    monkeypatch.setenv("SORA_WIDGETS_MAX_JOBS", "0")
    with pytest.raises(sw.ValidationError) as refused:
        sw.sweep(backend="preview", **cells)
    assert refused.value.fields == ["SORA_WIDGETS_MAX_JOBS"]
    with JobRunner(max_jobs=2) as own:  # a runner of its own does not read the variable
        assert sw.sweep(backend="preview", runner=own, wait=True, **cells).status == {"completed": 2}
    monkeypatch.delenv("SORA_WIDGETS_MAX_JOBS")
    closed = JobRunner()
    closed.close()
    with pytest.raises(sw.ValidationError) as refused:
        sw.sweep(backend="preview", runner=closed, **cells)
    assert refused.value.fields == ["runner"]
    with pytest.raises(sw.CredentialsError):  # no FAL_KEY in tests
        sw.sweep(backend="fal", **cells)
    assert len(log) == 2  # only the sweep that ran recorded anything


def test_a_damaged_sweep_plan_is_an_error_of_the_tree_not_a_json_error(log: sw.History) -> None:
    """Was a bug: the plan is written with a plain write_text on every start()/open() (not atomically), and
    read back with json.loads unguarded: a plan cut short by a kill (or read while another process
    rewrites it) escapes the error tree as json.JSONDecodeError."""
    run = sw.sweep(prompt=["a", "b"], image_url="https://example.com/a.png", backend="preview",
                   history=log, confirm=lambda plan: False)
    run.plan_path.parent.mkdir(parents=True, exist_ok=True)
    run.plan_path.write_text("", encoding="utf-8")  # what a kill between truncate and write leaves
    with pytest.raises(sw.HistoryError) as damaged:
        sw.Sweep.open(run.sweep_id, history=log)
    assert damaged.value.path == str(run.plan_path) and len(log) == 0


# --- guarantees verified (these pass) ------------------------------------------------------------

_CHILD = """
import sys, time
import sora_widgets as sw
path, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
run = sw.sweep(prompt=[f"cell {i}" for i in range(n)], image_url=url, backend="fal",
               history=sw.History(path), max_concurrent=3)
print("ID", run.sweep_id, flush=True)
time.sleep(600)
"""

_RESUMER = """
import sys
import sora_widgets as sw
path, sweep_id, how = sys.argv[1:4]
log = sw.History(path)
if how == "resume":
    jobs = sw.resume(log)
    for job in jobs:
        try:
            job.result(timeout=120)
        except sw.GenerationError:
            pass
else:
    sw.Sweep.open(sweep_id, history=log, max_concurrent=3).wait(timeout=120)
"""


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_sweep_killed_mid_run_resumed_by_two_processes_at_once_sends_each_cell_once(
        fal: FakeFal, runs: Path, children: list[subprocess.Popen[str]]) -> None:
    cells = 8
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(runs), fal.media_url("input.png"), str(cells)],
                             stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    children.append(child)
    assert child.stdout is not None
    sweep_id = child.stdout.readline().split()[1]

    def mixed() -> bool:
        statuses = Counter(str(r["status"]) for r in sw.History(runs).find(sweep_id=sweep_id))
        return statuses["completed"] >= 1 and statuses["pending"] >= 2

    wait_for(mixed, what="some rows done, some waiting for a place")
    child.send_signal(signal.SIGKILL)
    child.wait(10)
    resumers = [subprocess.Popen([sys.executable, "-c", _RESUMER, str(runs), sweep_id, how],
                                 text=True, env=dict(os.environ)) for how in ("resume", "open")]
    children.extend(resumers)
    assert all(proc.wait(timeout=120) == 0 for proc in resumers)

    rows = sw.History(runs).find(sweep_id=sweep_id)
    assert len(rows) == cells
    assert {str(r["status"]) for r in rows} <= {"completed", "unknown"}  # unknown: killed mid-POST
    unknown = [r for r in rows if r["status"] == "unknown"]
    assert all(r["error_type"] == "lost_answer" and not r["request_id"] for r in unknown)
    posts = _posts_per_prompt(fal)
    cut_short = posts.pop("", 0)  # a POST the kill interrupted: its row is one of the unknown ones
    assert cut_short <= len(unknown)
    assert all(count == 1 for count in posts.values())  # never sent twice
    assert set(posts) | {r["arguments"]["prompt"] for r in unknown} == {f"cell {i}" for i in range(cells)}


def test_cancelling_a_sweep_twice_from_three_threads_right_after_it_starts_ends_every_row(
        fal: FakeFal, log: sw.History, runner: JobRunner) -> None:
    run = sw.sweep(prompt=[f"c{i}" for i in range(8)], image_url=fal.media_url("input.png"), backend="fal",
                   history=log, max_concurrent=3, runner=runner)
    threads = [threading.Thread(target=run.cancel) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    run.cancel()
    assert run.wait(timeout=60).done
    assert set(run.status) == {"cancelled"}
    _rows_end_true(log, run.sweep_id, fal)
    sent = fal.count("submit")
    time.sleep(0.5)
    assert fal.count("submit") == sent <= 3  # nothing waiting was sent, then or later


def test_cancel_while_start_is_still_submitting_leaves_no_cell_waiting_or_sent_later(
        fal: FakeFal, log: sw.History, runner: JobRunner) -> None:
    fal.configure(queue_s=5.0, run_s=5.0)  # nothing sent ends on its own before cancel() gets in
    run = sw.sweep(prompt=[f"c{i}" for i in range(8)], image_url=fal.media_url("input.png"), backend="fal",
                   history=log, max_concurrent=2, runner=runner, confirm=lambda plan: False)

    def cancel_once_two_are_recorded() -> None:  # from another thread, while start() submits
        wait_for(lambda: len(log.find(sweep_id=run.sweep_id)) >= 2, what="two cells recorded")
        run.cancel()

    canceller = threading.Thread(target=cancel_once_two_are_recorded)
    canceller.start()
    run.start()
    canceller.join(60)
    assert run.wait(timeout=60).done and set(run.status) == {"cancelled"}
    _rows_end_true(log, run.sweep_id, fal)
    assert fal.count("submit") <= 2


def test_a_sweep_cancelled_on_a_one_place_runner_never_blocks_separate_jobs(
        fal: FakeFal, log: sw.History) -> None:
    with JobRunner(max_jobs=1) as runner:
        run = sw.sweep(prompt=[f"s{i}" for i in range(4)], image_url=fal.media_url("input.png"), backend="fal",
                       history=log, runner=runner, max_concurrent=3)
        alone = [sw.submit(prompt=f"alone {i}", image_url=fal.media_url("input.png"), backend="fal",
                           history=log, runner=runner) for i in range(2)]
        run.cancel()
        assert run.wait(timeout=60).done
        assert all(job.result(timeout=60).ok for job in alone)
        rows = log.find(sweep_id=run.sweep_id)
        assert all(row["status"] == "cancelled" for row in rows if not row["request_id"])
        assert fal.count("submit") == 2 + sum(1 for row in rows if row["request_id"])


def test_the_image_sent_is_the_one_given_at_submit_even_if_the_file_changes_while_it_waits(
        fal: FakeFal, log: sw.History, tmp_path: Path) -> None:
    fal.configure(queue_s=0.0, run_s=0.8)
    with JobRunner(max_jobs=1) as runner:
        first = sw.submit(prompt="holds the only place", image_url=fal.media_url("input.png"), backend="fal",
                          history=log, runner=runner)
        mine = tmp_path / "mine.png"
        mine.write_bytes(png_bytes((10, 200, 10)))
        given = mine.read_bytes()
        seen: list[bytes] = []
        job = sw.submit(prompt="waits", image_url=mine, backend=FalBackend(uploader=_uploader(fal, seen)),
                        history=log, runner=runner)
        assert log.get(job.history_id)["status"] == "pending"
        mine.write_bytes(png_bytes((250, 0, 0)))  # replaced, then removed, before its POST
        mine.unlink()
        assert job.result(timeout=60).ok and first.result(timeout=60).ok
        assert seen == [given]
        row = log.get(job.history_id)
        assert row["image_sha256"] == hashlib.sha256(given).hexdigest()
        assert row["arguments"]["image_url"] == fal.media_url("up-1.png")


@pytest.mark.parametrize("kind", ["bytes", "pil", "data_uri", "path_named_after_the_key"])
def test_every_image_input_kind_is_stored_as_json_text_and_never_shows_the_key(
        fal: FakeFal, log: sw.History, tmp_path: Path, kind: str, runner: JobRunner) -> None:
    import base64

    data = png_bytes((3, 4, 5))
    folder = tmp_path / f"in-{SECRET}"
    folder.mkdir()
    (folder / f"{SECRET}.png").write_bytes(data)
    value: object = {"bytes": data, "pil": Image.open(folder / f"{SECRET}.png"),
                     "data_uri": "data:image/png;base64," + base64.b64encode(data).decode(),
                     "path_named_after_the_key": folder / f"{SECRET}.png"}[kind]
    seen: list[bytes] = []
    run = sw.sweep(prompt=["a", "b"], image_url=value, backend=FalBackend(uploader=_uploader(fal, seen)),
                   history=log, runner=runner, wait=True)
    assert run.status == {"completed": 2}
    rows = log.find(sweep_id=run.sweep_id)
    sent = [rec.json["image_url"] for rec in fal.of_kind("submit")]
    for row in rows:
        assert isinstance(row["arguments"]["image_url"], str)
        assert row["arguments"]["image_url"] in sent
    if kind == "data_uri":
        assert not seen and all(url.startswith("data:image/png;base64,") for url in sent)
    else:
        assert len(seen) == 1 and all(url.startswith("https://") for url in sent)  # uploaded once
    assert SECRET not in run.plan_path.read_text(encoding="utf-8")
    assert SECRET not in json.dumps([dict(row) for row in rows], default=str)
    assert SECRET.encode() not in log.path.read_bytes()
