"""Benchmark 1: HTTP requests per job, and how late the client learns a job is done.

Ours (`sw.submit(..., backend=FalBackend)`, the whole job path) and raw `fal_client.subscribe`
run the same job lengths side by side, all at once, on the fake server; requests are counted
per request id from the fake's log, and the completion notice is compared with the moment the
fake completed the job (submit + queue_s + run_s, same monotonic clock, same process).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ._common import (
    APP,
    IMAGE_URL,
    Row,
    Section,
    Stamped,
    job_requests,
    median,
    server_done_at,
)

if TYPE_CHECKING:
    from fakefal import FakeFal

    from sora_widgets import History
    from sora_widgets.jobs import Job

QUEUE_SHARE = 0.2  # a job of T seconds waits 0.2 T in the queue and runs 0.8 T


class _Raw:
    """One raw `fal_client.subscribe` call in a thread, noting when it saw COMPLETED and the result."""

    def __init__(self, prompt: str, *, follow_logs: bool) -> None:
        self.prompt, self.follow_logs = prompt, follow_logs
        self.request_id: str | None = None
        self.enqueued = threading.Event()
        self.known: float | None = None
        self.fetched: float | None = None
        self.thread = threading.Thread(target=self._run, name=f"raw-{prompt}", daemon=True)

    def _run(self) -> None:
        import fal_client

        def on_enqueue(request_id: str) -> None:
            self.request_id = request_id
            self.enqueued.set()

        def on_update(status: Any) -> None:
            if isinstance(status, fal_client.Completed) and self.known is None:
                self.known = time.monotonic()

        fal_client.subscribe(APP, {"prompt": self.prompt, "image_url": IMAGE_URL}, on_enqueue=on_enqueue,
                             with_logs=self.follow_logs,
                             on_queue_update=on_update if self.follow_logs else None)
        self.fetched = time.monotonic()


def _submit_ours(prompt: str, backend: Stamped, history: History) -> Job:
    import sora_widgets as sw

    job = sw.submit(prompt=prompt, image_url=IMAGE_URL, backend=backend, history=history)
    while job.request_id is None and not job.done():
        time.sleep(0.001)
    return job


def run(fake: FakeFal, history: History, *, lengths: tuple[float, ...], samples: int) -> Section:
    """Start `samples` jobs of each way (ours, raw with logs, raw plain) per length, all at once;
    count requests per job and take the median completion-notice delay per way and length."""
    from sora_widgets.backends.fal import FalBackend

    backend = Stamped(FalBackend())
    ours: dict[tuple[float, int], Job] = {}
    raw: dict[tuple[float, bool, int], _Raw] = {}
    for length in lengths:
        for sample in range(samples):
            for kind in ("ours", "raw-logs", "raw-plain"):
                # one-off specs are taken in submission order, so submit one job at a time
                fake.add_job(queue_s=QUEUE_SHARE * length, run_s=(1 - QUEUE_SHARE) * length)
                prompt = f"bench requests {kind} {length:g}s #{sample}"
                if kind == "ours":
                    ours[length, sample] = _submit_ours(prompt, backend, history)
                else:
                    caller = _Raw(prompt, follow_logs=kind == "raw-logs")
                    raw[length, kind == "raw-logs", sample] = caller
                    caller.thread.start()
                    caller.enqueued.wait(30)
    for job in ours.values():
        job.result(timeout=max(lengths) + 60)
    for caller in raw.values():
        caller.thread.join(max(lengths) + 60)

    def requests(rid: str | None) -> int:
        return sum(job_requests(fake, rid or "").values())

    rows, notes = [], []
    for length in lengths:
        mine = [ours[length, n].request_id or "" for n in range(samples)]
        theirs = [raw[length, True, n] for n in range(samples)]
        plain = [raw[length, False, n] for n in range(samples)]
        n_ours, n_raw = max(requests(rid) for rid in mine), median([requests(c.request_id) for c in theirs])
        lag_ours = median([backend.known[rid] - server_done_at(fake, rid) for rid in mine]) * 1000
        lag_raw = median([(c.known or 0.0) - server_done_at(fake, c.request_id or "") for c in theirs]) * 1000
        rows.append(Row(f"1. requests per {length:g} s job", n_ours, n_raw, "req",
                        "<= 5 (floor 3)", n_ours <= 5))
        rows.append(Row(f"1. completion noticed after, {length:g} s job", lag_ours, lag_raw, "ms",
                        "<= raw", lag_ours <= lag_raw))
        kinds = ", ".join(f"{k} {n}" for k, n in job_requests(fake, mine[0]).items())
        fetched_ours = median([backend.fetched[rid] - server_done_at(fake, rid) for rid in mine]) * 1000
        fetched_raw = median([(c.fetched or 0.0) - server_done_at(fake, c.request_id or "")
                              for c in theirs]) * 1000
        fetched_plain = median([(c.fetched or 0.0) - server_done_at(fake, c.request_id or "")
                                for c in plain]) * 1000
        notes.append(
            f"{length:g} s job: ours {n_ours} requests ({kinds}), result in hand {fetched_ours:.0f} ms "
            f"after completion; raw subscribe with on_queue_update+logs {n_raw:.0f} requests, result "
            f"{fetched_raw:.0f} ms after; raw subscribe without callback "
            f"{median([requests(c.request_id) for c in plain]):.0f} requests, "
            f"result {fetched_plain:.0f} ms after.")
    each = ", ".join(f"{n:g}" for n in lengths)
    notes.insert(0, f"{samples} jobs of each way for each of {each} s (queue {QUEUE_SHARE:.0%}, run "
                    f"{1 - QUEUE_SHARE:.0%}, 3 log lines), all run at once (medians of the samples; "
                    "requests: the most any of ours made): ours through sw.submit with "
                    "FalBackend() defaults (wrapped only to time the final event); baseline "
                    "fal_client.subscribe(with_logs=True, on_queue_update=...), which polls every 0.1 s. "
                    "The fake's status stream checks for changes every 20 ms, so ~10 ms of our notice "
                    "delay is the fake's own.")
    return Section("HTTP requests per job and completion notice", rows, notes)

