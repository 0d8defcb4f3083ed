"""Benchmark 4: the History as it grows, against the log a user might keep instead: JSONL + pandas.

Inserts are what a job writes (`start`, then `finish` with its result), one row at a time, against
appending a start line and a finish line to a JSONL file. Reads are `to_dataframe()` against
`pandas.read_json(lines=True)` over the same rows. Large tables are grown by copying the rows
already written (SQL `INSERT ... SELECT` on the same file; the JSONL lines likewise), since
writing 100k rows one job at a time would take minutes and measure inserts again.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from ._common import APP, IMAGE_URL, Row, Section, median

ARGS = {"prompt": "a lighthouse at dusk, waves below", "image_url": IMAGE_URL, "duration": 8,
        "resolution": "720p", "aspect_ratio": "16:9", "model": "sora-2-2025-10-06",
        "delete_video": False, "detect_and_block_ip": False}


def _result(i: int) -> dict[str, Any]:
    return {"video": {"url": f"https://v3.fal.media/files/x/{i:08d}.mp4", "content_type": "video/mp4",
                      "width": 1280, "height": 720, "duration": 8.0, "fps": 30.0, "num_frames": 240},
            "video_id": f"video_{i:08d}",
            "thumbnail": {"url": f"https://v3.fal.media/files/x/{i:08d}.webp"}}


def _insert_ours(path: Path, rows: int) -> float:
    import sora_widgets as sw

    log = sw.History(path)
    start = time.perf_counter()
    for i in range(rows):
        row = log.start(APP, "fal", ARGS, cost_usd=0.8)
        log.finish(row, status="completed", result=_result(i), request_id=f"req-{i:08d}",
                   running_s=41.5, total_s=52.25, logs=["Starting", "Rendering", "Encoding"])
    took = time.perf_counter() - start
    log.close()
    return rows / took


def _insert_jsonl(path: Path, rows: int) -> float:
    start = time.perf_counter()
    for i in range(rows):
        _append(path, {"id": i, "created_at": time.time(), "endpoint_id": APP, "backend": "fal",
                       "status": "pending", "arguments": ARGS, "cost_usd": 0.8})
        _append(path, {"id": i, "status": "completed", "result": _result(i), "request_id": f"req-{i:08d}",
                       "running_s": 41.5, "total_s": 52.25, "completed_at": time.time(),
                       "logs": ["Starting", "Rendering", "Encoding"]})
    return rows / (time.perf_counter() - start)


def _append(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def _grow_sqlite(path: Path, rows: int) -> None:
    """Copy existing rows until the table holds `rows` (same file the History uses)."""
    db = sqlite3.connect(path)
    columns = [r[1] for r in db.execute("PRAGMA table_info(runs)") if r[1] != "id"]
    names = ", ".join(f'"{c}"' for c in columns)
    while (have := db.execute("SELECT count(*) FROM runs").fetchone()[0]) < rows:
        db.execute(f"INSERT INTO runs ({names}) SELECT {names} FROM runs ORDER BY id LIMIT ?",
                   (rows - have,))
        db.commit()
    db.close()


def _jsonl_of(path: Path, out: Path) -> None:
    """The History's rows as JSONL, one finished record per line (what read_json would load)."""
    import sora_widgets as sw

    with sw.History(path) as log, out.open("w", encoding="utf-8") as fh:
        for record in log:
            fh.write(json.dumps(dict(record), default=str) + "\n")


def _read_ours(path: Path, repeat: int) -> float:
    import sora_widgets as sw

    times = []
    for _ in range(repeat):
        with sw.History(path) as log:
            start = time.perf_counter()
            frame = log.to_dataframe()
            times.append(time.perf_counter() - start)
    assert len(frame) > 0
    return median(times)


def _read_jsonl(path: Path, repeat: int) -> float:
    import pandas as pd

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        pd.read_json(path, lines=True)
        times.append(time.perf_counter() - start)
    return median(times)


def run(folder: Path, *, inserts: int, sizes: tuple[int, ...], repeat: int) -> Section:
    """Insert rate over `inserts` rows, then DataFrame load times at each size in `sizes`."""
    importlib.import_module("pandas")  # imported once here, so no timing below pays for it

    folder.mkdir(parents=True, exist_ok=True)
    ours_rate = _insert_ours(folder / "insert.sqlite", inserts)
    jsonl_rate = _insert_jsonl(folder / "insert.jsonl", inserts)
    rows = [Row("4. history inserts (start+finish)", ours_rate, jsonl_rate, "rows/s",
                "(info)", None)]
    store = folder / "read.sqlite"
    _insert_ours(store, min(sizes))
    notes = [(f"Inserts: {inserts} rows, each History.start + History.finish (two committed WAL "
             f"transactions) vs two JSONL appends (open, write, close; no fsync on either side)."),
             (f"Reads: median of {repeat}; History.to_dataframe() (typed times, categories, one column "
             "per argument) vs pandas.read_json(lines=True) of the same records (dtype inference only; "
             "nested arguments/result stay dicts).")]
    for size in sorted(sizes):
        _grow_sqlite(store, size)
        lines = folder / f"read-{size}.jsonl"
        _jsonl_of(store, lines)
        ours, theirs = _read_ours(store, repeat), _read_jsonl(lines, repeat)
        rows.append(Row(f"4. to_dataframe() at {size:,} rows", ours * 1000, theirs * 1000, "ms",
                        "(info)", None))
        notes.append(f"{size:,} rows: SQLite file {store.stat().st_size / 1e6:.1f} MB, JSONL "
                     f"{lines.stat().st_size / 1e6:.1f} MB.")
    return Section("History scale", rows, notes)
