"""Benchmark 3: a sweep of many short jobs against one job, and against a loop of raw subscribes.

The sweep is `sw.sweep(repeat=n)`, the way a researcher runs it; with
`max_concurrent=n` every job may run at once; beside it, no max_concurrent (the runner's limit,
`SORA_WIDGETS_MAX_JOBS`, 32 by default).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ._common import APP, IMAGE_URL, Row, Section, median

if TYPE_CHECKING:
    from fakefal import FakeFal

    from sora_widgets import History

ARGS = {"prompt": "bench sweep", "image_url": IMAGE_URL}
QUEUE_SHARE = 0.2


def _one_job(history: History) -> float:
    import sora_widgets as sw

    start = time.perf_counter()
    sw.submit(**ARGS, backend="fal", history=history).result(timeout=120)
    return time.perf_counter() - start


def _sweep(history: History, jobs: int, max_concurrent: int | None) -> float:
    """Wall time of one sweep of `jobs` identical jobs, from the call to the last job's end."""
    import sora_widgets as sw

    options = {} if max_concurrent is None else {"max_concurrent": max_concurrent}
    start = time.perf_counter()
    run = sw.sweep(**ARGS, repeat=jobs, backend="fal", history=history, wait=True, **options)
    took = time.perf_counter() - start
    assert run.status.get("completed") == jobs, run.status
    return took


def _raw_loop(count: int) -> float:
    import fal_client

    start = time.perf_counter()
    for _ in range(count):
        fal_client.subscribe(APP, ARGS)
    return time.perf_counter() - start


def run(fake: FakeFal, history: History, *, jobs: int, length: float, sequential: int,
        singles: int) -> Section:
    """Sweep `jobs` jobs of `length` s; compare with one job and with `sequential` raw calls, scaled."""
    fake.configure(queue_s=QUEUE_SHARE * length, run_s=(1 - QUEUE_SHARE) * length)
    _sweep(history, 1, 1)  # warm-up: first use of the sweep module, its plan folder, connections
    one = median([_one_job(history) for _ in range(singles)])
    full = _sweep(history, jobs, jobs)
    default = _sweep(history, jobs, None)
    raw_part = _raw_loop(sequential)
    raw_all = raw_part * jobs / sequential
    how = ("measured" if sequential == jobs
           else f"extrapolated from {sequential} ({raw_part:.2f} s) x {jobs}/{sequential}")
    return Section(f"Sweep of {jobs} jobs of {length:g} s", [
        Row(f"3. sweep {jobs}x{length:g} s (max_concurrent={jobs}) vs one job", full, one, "s",
            "< 1.3x one job", full < 1.3 * one),
        Row("3. same sweep vs sequential raw subscribe loop", full, raw_all, "s", "(info)", None),
        Row(f"3. sweep {jobs}x{length:g} s, default max_concurrent", default, one, "s", "(info)", None),
    ], [(f"sw.sweep(repeat={jobs}, backend='fal', wait=True) on the fake server; "
        f"after a one-job warm-up sweep; one job = sw.submit(...).result(), median of {singles}; "
        f"sequential raw fal_client.subscribe loop {how}."),
        (f"Without max_concurrent the runner's limit applies: {default:.2f} s "
        f"({default / one:.1f}x one job).")])
