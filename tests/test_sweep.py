"""Sweeps: planning, budget, concurrency against the fake fal server, failures, resume, tables."""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakefal import Job as FalJob
from fakefal import validation_error
from helpers import png_bytes, wait_for
from IPython.lib.pretty import pretty

import sora_widgets as sw
from sora_widgets.backends.preview import PreviewBackend
from sora_widgets.jobs import JobRunner
from sora_widgets.research.sweeps import SweepPlan

MODELS = ["sora-2", "sora-2-2025-12-08", "sora-2-2025-10-06"]


def mp4_bytes(tmp_path: Path, *, frames: int = 16, size: int = 64) -> bytes:
    """A small H.264 video of a white square moving right on a red field (known motion)."""
    import av
    import numpy as np

    path = tmp_path / "moving.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            rgb = np.zeros((size, size, 3), np.uint8)
            rgb[..., 0] = 200
            rgb[16:32, 2 * i:2 * i + 16] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()




@pytest.fixture
def preview(log: sw.History) -> PreviewBackend:
    return PreviewBackend(media_dir=log.media_dir, queue_s=0.05, fps=8, scale=0.1)


@pytest.fixture
def fal(fakefal, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """The fake fal server with 2 s jobs, a real MP4 behind its media URL and an input image."""
    monkeypatch.setenv("FAL_KEY", "test-key-not-secret")
    fakefal.configure(queue_s=0.2, run_s=1.8)
    fakefal.media["video.mp4"] = mp4_bytes(tmp_path)
    fakefal.media["input.png"] = png_bytes()
    return fakefal


def never(plan: SweepPlan) -> bool:
    return False


# --- planning --------------------------------------------------------------------------------


def test_lists_become_axes_and_the_plan_is_priced_and_shown_not_printed(
        log: sw.History, image: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = sw.sweep(prompt="a fox", image_url=image, model=MODELS, duration=[4, 8], repeat=2,
                   backend="fal", history=log, confirm=never)
    plan = run.plan
    assert plan.axes == {"model": MODELS, "duration": [4, 8]}
    assert plan.n_jobs == 12 and plan.repeat == 2
    assert plan.estimate_usd == pytest.approx(2 * 3 * (0.4 + 0.8))
    assert capsys.readouterr().out == ""  # a library call prints nothing; the notebook shows `run`
    line = plan.line()
    assert "12 jobs" in line and "$7.20" in line and plan.sweep_id in line
    assert pretty(run) == f"{plan.describe()}\nStatus: 12 waiting."
    assert len(log) == 0 and run.status == {"waiting": 12}


def _dollars_stay_text(page: str) -> bool:
    """Every `$` of an HTML page sits alone in a span, where MathJax cannot pair it."""
    return "$" not in page.replace("<span>$</span>", "")


def _cells_left_aligned(page: str) -> bool:
    cells = re.findall(r"<t[hd]\b[^>]*>", page)
    return bool(cells) and all("text-align:left" in c for c in cells)


def test_a_sweep_shows_one_html_summary_with_dollars_as_text_and_tables_left_aligned(
        log: sw.History, image: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # the notebook's folder: local files are shown relative to it
    run = sw.sweep(prompt="a $5 fox", image_url=image, model=MODELS[:2], duration=[4, 8],
                   budget_usd=2, backend="preview", history=log, confirm=never)
    page = run._repr_html_()
    assert page.count(run.sweep_id) == 1 and page.count("Status: ") == 1  # one summary
    assert "free (on fal: <span>$</span>2.40), budget <span>$</span>2.00" in page
    assert "a <span>$</span>5 fox" in page and _dollars_stay_text(page)
    assert _cells_left_aligned(page)
    assert "runs/media/inputs/" in page and str(tmp_path) not in page
    assert "Status: 4 waiting." in page


def test_a_cross_model_plan_shows_each_endpoints_mapping_as_a_table(
        log: sw.History, image: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    endpoints = ["fal-ai/kling-video/v2.1/standard/image-to-video", "fal-ai/veo3.1/image-to-video"]
    run = sw.sweep(endpoint=endpoints, prompt="p", image_url=image, duration=8, backend="preview",
                   history=log, confirm=never)
    page = run.plan._repr_html_()
    assert all(page.count(f">{e}</td>") == 1 for e in endpoints)
    assert "<code>~</code> duration" in page and _dollars_stay_text(page) and _cells_left_aligned(page)
    assert "runs/media/inputs/" in page and str(tmp_path) not in page
    assert str(tmp_path) not in run.plan.describe()


def test_a_list_field_takes_a_list_of_lists_as_its_axis(log: sw.History, image: Path) -> None:
    fixed = sw.sweep(prompt="p", image_url=image, character_ids=["a", "b"], backend="fal",
                     history=log, confirm=never)
    assert fixed.plan.axes == {} and fixed.plan.fields["character_ids"] == ["a", "b"]
    axis = sw.sweep(prompt="p", image_url=image, character_ids=[["a"], ["a", "b"]], backend="fal",
                    history=log, confirm=never)
    assert axis.plan.axes == {"character_ids": [["a"], ["a", "b"]]}
    assert [c.arguments["character_ids"] for c in axis.plan.cells] == [["a"], ["a", "b"]]


def test_an_invalid_combination_names_its_field_and_nothing_is_sent(
        fal, log: sw.History) -> None:
    with pytest.raises(sw.ValidationError) as info:
        sw.sweep(prompt="p", image_url=fal.media_url("input.png"), duration=[4, 7], backend="fal",
                 history=log)
    assert info.value.fields == ["duration"]
    assert fal.count() == fal.count("platform") and len(log) == 0  # prices asked, nothing sent


def test_a_sweep_over_budget_sends_nothing(fal, log: sw.History) -> None:
    with pytest.raises(sw.BudgetError) as info:
        sw.sweep(prompt="p", image_url=fal.media_url("input.png"), model=MODELS, duration=[4, 8],
                 budget_usd=1.0, backend="fal", history=log)
    assert info.value.budget_usd == 1.0 and info.value.estimate_usd == pytest.approx(3.6)
    assert "budget" in str(info.value) and "$3.60" in str(info.value) and "$1.00" in str(info.value)
    assert fal.count() == fal.count("platform") and len(log) == 0  # prices asked, nothing sent
    assert not (log.media_dir.parent / "sweeps").exists()


# --- running against the fake fal server -----------------------------------------------------


def test_three_models_by_two_durations_run_concurrently(fal, log: sw.History) -> None:
    url = fal.media_url("input.png")
    fal.add_job(queue_s=0.0, run_s=0.05)
    sw.generate(prompt="warm up", image_url=url, backend="fal", history=log, timeout=30)
    sw.generate(prompt="one job", image_url=url, backend="fal", history=log, timeout=30)
    run = sw.sweep(prompt="a fox in snow", image_url=url, model=MODELS, duration=[4, 8],
                   budget_usd=5, backend="fal", history=log, wait=True)
    # concurrency, not speed (that is bench/'s): the fake server had all six jobs under way at
    # once, the last one sent before the first one ended
    on_fal = [job for job in fal.jobs.values() if job.arguments["prompt"] == "a fox in snow"]
    assert len(on_fal) == 6
    assert max(job.created for job in on_fal) < min(
        job.created + job.spec.queue_s + job.spec.run_s for job in on_fal)

    frame = run.to_dataframe()
    assert len(frame) == 6
    assert {"model", "duration", "status", "error", "total_s", "cost_usd", "video_path",
            "motion", "psnr_db", "duration_s"} <= set(frame.columns)
    assert list(frame["status"]) == ["completed"] * 6
    assert sorted(zip(frame["model"], frame["duration"])) == sorted(
        (m, d) for m in MODELS for d in (4, 8))
    assert (frame["motion"] > 0).all() and frame["psnr_db"].notna().all()
    assert {r["sweep_id"] for r in log.find(sweep_id=run.sweep_id)} == {run.sweep_id}
    assert len(log.find(sweep_id=run.sweep_id)) == 6 and fal.count("submit") == 8


def test_a_failed_cell_shows_its_error_and_the_others_finish(fal, log: sw.History) -> None:
    fal.configure(queue_s=0.05, run_s=0.2)
    fal.add_job(error=validation_error("prompt", "Prompt is too dull"))
    run = sw.sweep(prompt="p", image_url=fal.media_url("input.png"), model=MODELS, backend="fal",
                   history=log, max_concurrent=1, wait=True)
    frame = run.to_dataframe()
    assert list(frame["status"]) == ["failed", "completed", "completed"]
    assert "Prompt is too dull" in frame["error"][0]
    assert frame["error"][1:].isna().all()
    assert run.status == {"failed": 1, "completed": 2}


def _one_at_a_time(on_fal: list[FalJob]) -> bool:
    """The fake server's jobs never overlapped: each was sent after the one before had ended."""
    ordered = sorted(on_fal, key=lambda job: job.created)
    return all(after.created >= before.created + before.spec.queue_s + before.spec.run_s
               for before, after in itertools.pairwise(ordered))


def test_a_cancelled_sweep_ends_every_row_sends_nothing_waiting_and_reports_done(
        fal, log: sw.History, runner: JobRunner) -> None:
    run = sw.sweep(prompt="p", image_url=fal.media_url("input.png"), model=MODELS, duration=[4, 8],
                   backend="fal", history=log, max_concurrent=2, runner=runner)
    wait_for(lambda: sum(job.request_id is not None for job in run.jobs) >= 2, what="two jobs sent")
    run.cancel()
    assert run.wait(timeout=30).done  # wait() returns: nothing is left waiting for a place
    rows = log.find(sweep_id=run.sweep_id)
    assert len(rows) == 6 and all(row["status"].is_final for row in rows)
    assert {row["status"] for row in rows} <= {sw.JobStatus.CANCELLED, sw.JobStatus.COMPLETED}
    unsent = [row for row in rows if not row["request_id"]]
    assert len(unsent) == 4 and {row["status"] for row in unsent} == {sw.JobStatus.CANCELLED}
    assert fal.count("submit") == 2 and fal.count("cancel") == 2  # the two sent, cancelled on fal
    assert set(run.status) <= {"cancelled", "completed"}


def test_max_concurrent_one_runs_the_sweeps_jobs_one_at_a_time(fal, log: sw.History,
                                                               runner: JobRunner) -> None:
    fal.configure(queue_s=0.05, run_s=0.15)
    run = sw.sweep(prompt="p", image_url=fal.media_url("input.png"), model=MODELS, backend="fal",
                   history=log, max_concurrent=1, runner=runner, wait=True)
    assert run.status == {"completed": 3} and len(fal.jobs) == 3
    assert _one_at_a_time(list(fal.jobs.values()))


def test_a_reopened_sweep_keeps_the_cap_it_was_started_with(fal, log: sw.History,
                                                            runner: JobRunner) -> None:
    fal.configure(queue_s=0.05, run_s=0.15)
    planned = sw.sweep(prompt="p", image_url=fal.media_url("input.png"), model=MODELS, backend="fal",
                       history=log, max_concurrent=1, runner=runner, confirm=lambda plan: False)
    planned.plan_path.parent.mkdir(parents=True, exist_ok=True)  # saved, as a killed start() leaves it
    planned.plan_path.write_text(json.dumps(planned.plan.to_json(), default=str), encoding="utf-8")
    reopened = sw.Sweep.open(planned.sweep_id, history=log, runner=runner)  # no max_concurrent given
    assert reopened.wait(timeout=60).status == {"completed": 3} and len(fal.jobs) == 3
    assert _one_at_a_time(list(fal.jobs.values()))


def test_the_runners_limit_applies_across_a_sweep_and_a_separate_submit(
        fal, log: sw.History) -> None:
    fal.configure(queue_s=0.05, run_s=0.15)
    with JobRunner(max_jobs=1) as runner:
        run = sw.sweep(prompt="p", image_url=fal.media_url("input.png"), model=MODELS[:2],
                       backend="fal", history=log, runner=runner)  # no cap of its own: max_jobs=1
        alone = sw.submit(prompt="alone", image_url=fal.media_url("input.png"), backend="fal",
                          history=log, runner=runner)
        assert alone.result(timeout=60).ok and run.wait(timeout=60).status == {"completed": 2}
    assert len(fal.jobs) == 3 and _one_at_a_time(list(fal.jobs.values()))


def test_a_limit_from_another_runner_is_refused_before_anything_is_recorded(
        log: sw.History, image: Path, runner: JobRunner) -> None:
    with JobRunner() as other, pytest.raises(sw.ValidationError) as info:
        sw.submit(prompt="p", image_url=image, history=log, runner=runner, limit=other.limiter(1))
    assert info.value.fields == ["limit"] and len(log) == 0


def test_a_sweep_resumes_after_a_restart_finishing_only_what_did_not(
        fal, tmp_path: Path) -> None:
    fal.configure(queue_s=0.2, run_s=2.5)
    path = tmp_path / "runs" / "history.sqlite"
    script = (
        "import sora_widgets as sw, time\n"
        f"s = sw.sweep(prompt='p', image_url={fal.media_url('input.png')!r}, model={MODELS!r}, "
        f"duration=[4, 8], backend='fal', history=sw.History({str(path)!r}), max_concurrent=2)\n"
        "print('ID', s.sweep_id, flush=True)\n"
        "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ))
    try:
        sweep_id = next(line.split()[1] for line in proc.stdout if line.startswith("ID "))
        wait_for(lambda: sum(bool(r["request_id"]) for r in sw.History(path).find(sweep_id=sweep_id)) >= 2,
                 what="two cells sent by the child")
    finally:
        proc.kill()  # the kernel dies: two jobs in flight on fal, four never submitted
        proc.wait()
    assert fal.count("submit") == 2

    log = sw.History(path)  # a fresh process's view of the same run folder
    rows = log.find(sweep_id=sweep_id)
    before = {r["id"]: r for r in rows if r["request_id"]}
    assert len(before) == 2 and all(not r["status"].is_final for r in before.values())
    # the other four waited for a place: rows written, owned by the killed kernel, nothing sent
    waiting = [r for r in rows if not r["request_id"]]
    assert len(waiting) == 4 and {r["status"] for r in waiting} == {sw.JobStatus.PENDING}
    assert {r["owner"] for r in waiting} == {r["owner"] for r in before.values()}
    plan = SweepPlan.from_json(json.loads((path.parent / "sweeps" / f"{sweep_id}.json").read_text()))
    taken = {r["cell_key"] for r in before.values()}
    unsent = next(c for c in plan.cells if c.cell_id not in taken)
    died = next(r["id"] for r in waiting if r["cell_key"] == unsent.cell_id)

    run = sw.Sweep.open(sweep_id, history=log).wait(timeout=60)
    assert run.status == {"completed": 6}
    assert fal.count("submit") == 6  # the two in flight were followed, the rest sent once each
    assert {c.index: s["history_id"] for c, s in run.records()}.keys() == set(range(6))
    followed = {s["history_id"] for _, s in run.records()} & before.keys()
    assert followed == before.keys()
    assert log.get(died)["status"] == "completed" and log.get(died)["cell_key"] == unsent.cell_id
    assert len(log.find(sweep_id=sweep_id)) == 6


# --- offline -----------------------------------------------------------------------------------


def test_an_offline_preview_sweep_with_repeats_summarises_per_model(
        log: sw.History, image: Path, preview: PreviewBackend, tmp_path: Path) -> None:
    run = sw.sweep(prompt="zoom in", image_url=image, model=MODELS[:2], repeat=2, budget_usd=0.01,
                   backend=preview, history=log, wait=True)
    assert not run.plan.charged  # nothing is charged, so the tiny budget does not refuse it
    frame = run.to_dataframe()
    assert len(frame) == 4 and list(frame["sample"]) == [0, 1, 0, 1]
    assert (frame["status"] == "completed").all() and frame["motion"].notna().all()
    summary = run.summary(by="model")
    assert list(summary.index) == MODELS[:2]
    assert ("total_s", "mean") in summary.columns and ("motion", "std") in summary.columns
    assert summary[("motion", "count")].tolist() == [2, 2]
    figure = run.chart(tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 1000 and len(figure.axes) == 3
    with pytest.raises(sw.ValidationError, match="axes are model") as caught:
        run.summary(by="duration")
    assert caught.value.fields == ["by"]
    with pytest.raises(sw.NotFoundError, match="not a job of sweep"):
        run.rate(10_000, 5)


def test_reopening_a_finished_sweep_sends_nothing_and_reuses_its_metrics(
        log: sw.History, image: Path, preview: PreviewBackend) -> None:
    run = sw.sweep(prompt="pan left", image_url=image, duration=[4, 8], backend=preview,
                   history=log, wait=True)
    first = run.to_dataframe()
    again = sw.Sweep.open(run.sweep_id, history=sw.History(log.path)).wait(timeout=30)
    assert again.jobs == [] and len(log) == 2
    frame = again.to_dataframe()
    assert list(frame["history_id"]) == list(first["history_id"])
    assert list(frame["motion"]) == list(first["motion"])


def test_opening_an_unknown_sweep_names_the_saved_ones(log: sw.History) -> None:
    with pytest.raises(KeyError, match="saved sweeps: none") as info:
        sw.Sweep.open("nope", history=log)
    assert isinstance(info.value, sw.NotFoundError) and info.value.key == "nope"


def test_a_plan_asked_for_an_endpoint_it_does_not_run_says_not_found(log: sw.History, image: Path) -> None:
    run = sw.sweep(prompt="p", image_url=image, backend="preview", history=log, confirm=never)
    with pytest.raises(KeyError, match="endpoints: fal-ai/sora-2/image-to-video") as info:
        run.plan.arguments_for("acme/other")
    assert isinstance(info.value, sw.NotFoundError) and info.value.key == "acme/other"


def test_a_sweeps_repr_never_reads_the_history(log: sw.History, image: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    run = sw.sweep(prompt="p", image_url=image, duration=[4, 8], backend="preview", history=log,
                   confirm=never)

    def no_reads(**filters: object) -> None:
        raise AssertionError("repr read the history")

    monkeypatch.setattr(log, "find", no_reads)
    assert repr(run) == f"Sweep({run.sweep_id!r}, 2 jobs, 0 followed here)"
