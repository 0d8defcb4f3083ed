"""Benchmark 2: what the helper adds per job when the server answers at once (queue_s=0, run_s=0).

Four ways to run the same job, interleaved run by run so drift hits them alike; each after a
warm-up, so connections are open: raw `fal_client.subscribe` (the baseline), raw
`fal_client.AsyncClient.subscribe` and FalBackend's submit/events/result on one event loop, and
the full `sw.submit(...).result()` (validation, history rows, the job loop, and keeping the
video, which here is a local file: no download). The async baseline separates what async httpx
costs per request from what FalBackend adds.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from ._common import APP, IMAGE_URL, Row, Section, median, timed

if TYPE_CHECKING:
    import fal_client
    from fakefal import FakeFal

    from sora_widgets import History
    from sora_widgets.backends.fal import FalBackend

ARGS = {"prompt": "bench overhead", "image_url": IMAGE_URL}
WARM_UP = 3


def _raw() -> float:
    import fal_client

    start = time.perf_counter()
    fal_client.subscribe(APP, ARGS)
    return time.perf_counter() - start


async def _raw_async(client: fal_client.AsyncClient) -> float:
    start = time.perf_counter()
    await client.subscribe(APP, ARGS)
    return time.perf_counter() - start


async def _backend_job(backend: FalBackend, phases: list[tuple[float, float, float]]) -> float:
    """One job through the backend; appends (submit, follow, result) milliseconds to `phases`."""
    start = time.perf_counter()
    request_id = await backend.submit(APP, dict(ARGS))
    submitted = time.perf_counter()
    async for _event in backend.events(APP, request_id):
        pass
    followed = time.perf_counter()
    await backend.result(APP, request_id)
    end = time.perf_counter()
    phases.append(((submitted - start) * 1000, (followed - submitted) * 1000, (end - followed) * 1000))
    return end - start


def _helper_job(history: History) -> float:
    import sora_widgets as sw

    start = time.perf_counter()
    sw.submit(**ARGS, backend="fal", history=history).result(timeout=60)
    return time.perf_counter() - start


def _connection_ms(fake: FakeFal, loop: asyncio.AbstractEventLoop) -> tuple[float, float, float]:
    """Median ms of a small GET: sync on a kept-alive connection, sync on a new TLS connection
    each time, and async (httpx.AsyncClient) on a kept-alive connection."""
    import httpx

    url = fake.media_url("video.mp4")
    kept, fresh, kept_async = [], [], []
    with httpx.Client() as keep, httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as once:
        client = httpx.AsyncClient()
        keep.get(url)
        once.get(url)
        loop.run_until_complete(client.get(url))
        for _ in range(10):
            kept.append(timed(lambda: keep.get(url)) * 1000)
            fresh.append(timed(lambda: once.get(url)) * 1000)
            kept_async.append(timed(lambda: loop.run_until_complete(client.get(url))) * 1000)
        loop.run_until_complete(client.aclose())
    return median(kept), median(fresh), median(kept_async)


def run(fake: FakeFal, history: History, *, runs: int) -> Section:
    """Median submit-to-result wall time of each way over `runs` jobs."""
    import fal_client

    from sora_widgets.backends.fal import FalBackend

    fake.configure(queue_s=0.0, run_s=0.0)
    backend = FalBackend()
    loop = asyncio.new_event_loop()
    raw_client = fal_client.AsyncClient()
    raw, raw_async, direct, helper = [], [], [], []
    phases: list[tuple[float, float, float]] = []
    try:
        for i in range(WARM_UP + runs):
            times = (_raw(), loop.run_until_complete(_raw_async(raw_client)),
                     loop.run_until_complete(_backend_job(backend, phases)), _helper_job(history))
            if i >= WARM_UP:
                for bucket, value in zip((raw, raw_async, direct, helper), times):
                    bucket.append(value * 1000)
        loop.run_until_complete(backend.aclose())
        kept, fresh, kept_async = _connection_ms(fake, loop)
    finally:
        loop.close()
    m_raw, m_async, m_direct, m_helper = median(raw), median(raw_async), median(direct), median(helper)
    split = [median([p[i] for p in phases[WARM_UP:]]) for i in range(3)]
    return Section("Helper overhead at zero server latency", [
        Row("2. submit->result, FalBackend direct", m_direct, m_raw, "ms", "<= 1.10x raw",
            m_direct <= 1.10 * m_raw),
        Row("2. submit->result, sw.submit + history", m_helper, m_raw, "ms", "<= 1.10x raw",
            m_helper <= 1.10 * m_raw),
        Row("2. FalBackend direct vs raw AsyncClient.subscribe", m_direct, m_async, "ms", "(info)"),
    ], [(f"Median of {runs} runs each after {WARM_UP} warm-up runs, interleaved; baseline "
        f"fal_client.subscribe(app, args) with no callback (submit, one status, result: 3 requests, "
        f"sync httpx). Spread (min-max ms): raw {min(raw):.1f}-{max(raw):.1f}, raw async "
        f"{min(raw_async):.1f}-{max(raw_async):.1f}, FalBackend {min(direct):.1f}-{max(direct):.1f}, "
        f"sw.submit {min(helper):.1f}-{max(helper):.1f}. FalBackend's median split (3 requests: submit, "
        f"status stream, result GET): submit {split[0]:.1f} ms, events() {split[1]:.1f} ms, "
        f"result() {split[2]:.1f} ms."),
        (f"One small GET to the fake takes {kept:.1f} ms with sync httpx on a kept-alive connection, "
        f"{fresh:.1f} ms on a new TLS connection, and {kept_async:.1f} ms with httpx.AsyncClient on a "
        "kept-alive connection: the gap to the sync baseline is mostly async httpx's per-request "
        "cost (anyio's TLS; and httpcore 1.0.9 retries `import sniffio` on each request when, as "
        "here, anyio no longer installs it). Each FalBackend job uses one kept-alive connection: "
        "the fake, like fal, keeps it open after a status stream, and submit and stream go through "
        "the httpx client of fal_client's pool."),
        ("sw.submit's time includes validation, the history's start/update/finish writes, the hop to "
        "the job loop's thread and the local copy of the (local, tiny) video; no download.")])
