"""What every benchmark shares: the result row, timing helpers, the machine, the fake fal server.

The fake (tests/fakefal.py) must be started and put into the environment before anything
imports fal_client, which reads its hosts once, at import: `start_fake` does both.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakefal import FakeFal

    from sora_widgets.backends.base import Backend
    from sora_widgets.records import JobEvent

ROOT = Path(__file__).resolve().parent.parent
APP = "fal-ai/sora-2/image-to-video"
IMAGE_URL = "https://example.com/first-frame.png"
FAKE_KEY = "bench-key-not-secret"


@dataclass
class Row:
    """One line of the table: a measure of ours against its baseline, and the goal it serves."""

    benchmark: str
    ours: float
    baseline: float | None
    unit: str
    goal: str = ""
    met: bool | None = None
    ratio: float | None = field(default=None)

    def __post_init__(self) -> None:
        if self.ratio is None and self.baseline:
            self.ratio = self.ours / self.baseline


@dataclass
class Section:
    """A benchmark's rows plus the notes that explain how it was measured."""

    title: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine() -> str:
    """CPU model, logical cores, OS and Python: enough to compare runs across machines."""
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", load average {:.1f}/{:.1f}/{:.1f} at the start".format(*os.getloadavg())
    return (f"{model}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()} ({sys.executable}){load}")


def start_fake() -> FakeFal:
    """Start the fake fal server and point fal_client, httpx and FalBackend at it (fake key).

    TCP_NODELAY is on: otherwise each of the fake's answers waits ~40 ms (Nagle + delayed ACK)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from fakefal import FakeFal

    fake = FakeFal(no_delay=True).start()
    os.environ.update(fake.environment())
    os.environ["FAL_KEY"] = FAKE_KEY
    for name in ("FAL_KEY_ID", "FAL_KEY_SECRET"):
        os.environ.pop(name, None)
    return fake


def served_result(fake: FakeFal) -> dict[str, Any]:
    """A fal-shaped output whose video is the fake's tiny MP4, kept over HTTPS as fal's would be."""
    video = fake.media["video.mp4"]
    return {"video": {"url": fake.media_url("video.mp4"), "content_type": "video/mp4",
                      "file_size": len(video)}, "video_id": "video_bench"}


def job_requests(fake: FakeFal, request_id: str) -> dict[str, int]:
    """Queue API requests one job made, by kind: its submit(s) (matched by its unique prompt) and
    every status, stream, result and cancel request naming its request id."""
    prompt = fake.jobs[request_id].arguments.get("prompt")
    counts: dict[str, int] = {}
    for rec in list(fake.requests):
        submitted = rec.kind == "submit" and (rec.json or {}).get("prompt") == prompt
        if submitted or (rec.kind in ("status", "stream", "result", "cancel")
                         and f"/requests/{request_id}" in rec.path):
            counts[rec.kind] = counts.get(rec.kind, 0) + 1
    return counts


def server_done_at(fake: FakeFal, request_id: str) -> float:
    """time.monotonic() at which the fake completed the job (same clock: it runs in-process)."""
    job = fake.jobs[request_id]
    return job.created + job.spec.queue_s + job.spec.run_s


class Stamped:
    """A Backend that delegates to another and notes when each job's completion became known.

    `known[rid]`: when `events()` yielded the final event; `fetched[rid]`: when `result()` returned.
    The job layer sees the same calls as with the wrapped backend.
    """

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.known: dict[str, float] = {}
        self.fetched: dict[str, float] = {}

    def describe(self) -> str:
        return self.inner.describe()

    async def prepare(self, endpoint_id: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return await self.inner.prepare(endpoint_id, arguments)

    async def submit(self, endpoint_id: str, arguments: dict[str, Any]) -> str:
        return await self.inner.submit(endpoint_id, arguments)

    async def events(self, endpoint_id: str, request_id: str) -> AsyncIterator[JobEvent]:
        async for event in self.inner.events(endpoint_id, request_id):
            if event.is_final:
                self.known.setdefault(request_id, time.monotonic())
            yield event

    async def result(self, endpoint_id: str, request_id: str) -> dict[str, Any]:
        output = await self.inner.result(endpoint_id, request_id)
        self.fetched.setdefault(request_id, time.monotonic())
        return output

    async def cancel(self, endpoint_id: str, request_id: str) -> None:
        await self.inner.cancel(endpoint_id, request_id)


def smooth_image(path: Path, size: tuple[int, int] = (1280, 720)) -> Path:
    """A photo-like test picture (gradients and soft shapes), not noise: encoders behave as on real frames."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([90 + 120 * x / w, 60 + 100 * y / h, 160 - 80 * x / w], axis=-1)
    image = Image.fromarray(rgb.clip(0, 255).astype("uint8"))
    draw = ImageDraw.Draw(image)
    for i in range(12):
        cx, cy, r = (i * 97) % w, (i * 53) % h, 30 + (i * 17) % 90
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=((i * 40) % 255, 200 - i * 10, 80 + i * 12))
    image = image.filter(ImageFilter.GaussianBlur(2))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
