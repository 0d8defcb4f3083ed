"""History storage: migrations from a hand-made v1 file, foreign/corrupt/newer files, and
several processes writing at once or being killed mid-write."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sora_widgets._errors import HistoryError
from sora_widgets.history import History
from sora_widgets.records import JobStatus

ROOT = Path(__file__).resolve().parents[1]
I2V = "fal-ai/sora-2/image-to-video"

# The version-1 layout exactly as the first release wrote it; kept literally so that a change to
# the package's migrations can never silently change what "a v1 file" means here.
V1_SQL = """
CREATE TABLE migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE runs (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL, endpoint_id TEXT NOT NULL,
  backend TEXT NOT NULL, status TEXT NOT NULL, request_id TEXT, arguments_json TEXT NOT NULL,
  result_json TEXT, video_url TEXT, video_path TEXT, video_id TEXT, thumbnail_url TEXT,
  thumbnail_path TEXT, spritesheet_url TEXT, spritesheet_path TEXT, image_sha256 TEXT,
  image_path TEXT, submitted_at TEXT, started_at TEXT, completed_at TEXT, queued_s REAL,
  running_s REAL, total_s REAL, cost_usd REAL, error_type TEXT, error_message TEXT,
  logs TEXT NOT NULL DEFAULT '[]', sweep_id TEXT, rating INTEGER, notes TEXT,
  tags TEXT NOT NULL DEFAULT '[]', sora_widgets_version TEXT, fal_client_version TEXT);
PRAGMA application_id = 1399804513;  -- "SoRa"
INSERT INTO migrations VALUES (1, 'create_runs', '2026-01-01T00:00:00.000000+00:00');
ALTER TABLE runs ADD COLUMN arg_prompt;
INSERT INTO runs (created_at, endpoint_id, backend, status, request_id, arguments_json, arg_prompt,
  video_url, logs, tags, rating, sora_widgets_version)
VALUES ('2026-01-01T00:00:01.000000+00:00', 'fal-ai/sora-2/image-to-video', 'fal', 'completed',
  'req-old', '{"prompt": "from v1", "duration": 4}', 'from v1', 'https://v/old.mp4',
  '["done"]', '["legacy"]', 3, '0.0.1');
INSERT INTO runs (created_at, endpoint_id, backend, status, request_id, arguments_json)
VALUES ('2026-01-01T00:00:02.000000+00:00', 'fal-ai/sora-2/image-to-video', 'fal', 'queued',
  'req-pending', '{"prompt": "still queued"}');
"""


def make_v1(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(V1_SQL)
    db.close()


def migrations(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT version, name FROM migrations ORDER BY version").fetchall()
    db.close()
    return rows


# ---- migrations -------------------------------------------------------------------------------

ALL_MIGRATIONS = [(1, "create_runs"), (2, "index_status_sweep_request"), (3, "create_uploads"),
                  (4, "add_media"), (5, "add_owner_and_cell")]


def test_a_version_1_file_opens_and_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    make_v1(path)
    log = History.open(tmp_path)
    assert migrations(path) == ALL_MIGRATIONS
    with sqlite3.connect(path) as db:
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"runs_status", "runs_sweep_id", "runs_request_id"} <= indexes
    old = log.get(1)
    assert old["arguments"] == {"prompt": "from v1", "duration": 4}
    assert (old["status"], old["video_url"], old["logs"], old["tags"], old["rating"]) == \
        (JobStatus.COMPLETED, "https://v/old.mp4", ["done"], ["legacy"], 3)
    assert [r["request_id"] for r in log.unfinished()] == ["req-pending"]
    assert log.find(text="FROM V1")[0]["id"] == 1
    new = log.start(I2V, "fal", {"prompt": "from v2", "model": "sora-2"})
    assert [r["id"] for r in log] == [new, 2, 1]
    History(path)  # opening again changes nothing
    assert len(migrations(path)) == len(ALL_MIGRATIONS)


def test_a_fresh_file_records_every_migration(tmp_path: Path) -> None:
    log = History(tmp_path / "h.sqlite")
    assert migrations(log.path) == ALL_MIGRATIONS
    with sqlite3.connect(log.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_newer_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    History(path).close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO migrations VALUES (?, 'from_the_future', '2027-01-01')",
                   (len(ALL_MIGRATIONS) + 1,))
    db.close()
    before = path.read_bytes()
    newer, latest = len(ALL_MIGRATIONS) + 1, len(ALL_MIGRATIONS)
    with pytest.raises(HistoryError, match=f"newer sora_widgets .*v{newer}.* up to v{latest}") as caught:
        History(path)
    assert caught.value.path == str(path)
    assert path.read_bytes() == before


def test_unknown_migration_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    History(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE migrations SET name = 'something_else' WHERE version = 2")
    db.close()
    with pytest.raises(HistoryError, match="differ"):
        History(path)


# ---- foreign, corrupt and empty files ---------------------------------------------------------

def test_a_foreign_sqlite_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
        db.execute("INSERT INTO customers VALUES ('Ada')")
    db.close()
    before = path.read_bytes()
    with pytest.raises(HistoryError, match="not a sora_widgets history .*customers"):
        History(path)
    with pytest.raises(HistoryError):
        History.open(tmp_path)
    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


def test_a_foreign_file_with_tables_named_like_ours_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE runs (id INTEGER)")
        db.execute("CREATE TABLE migrations (version INTEGER)")
    db.close()
    with pytest.raises(HistoryError, match="not a sora_widgets history"):
        History(path)


def test_random_bytes_give_a_clear_error_and_stay(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    data = random.Random(4).randbytes(20_000)
    path.write_bytes(data)
    with pytest.raises(HistoryError, match="could not be opened as a history.*left untouched") as caught:
        History(path)
    assert caught.value.path == str(path)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert path.read_bytes() == data


def test_a_damaged_history_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    log = History(path)
    for i in range(300):
        log.start(I2V, "fal", {"prompt": f"run {i} " + "x" * 200})
    log.close()
    data = bytearray(path.read_bytes())
    data[4096:len(data)] = random.Random(1).randbytes(len(data) - 4096)  # keep the header page
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryError):
        damaged = History(path)
        damaged.records()


def test_an_empty_file_becomes_a_history(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    path.touch()
    log = History(path)
    assert log.get(log.start(I2V, "fal", {"prompt": "x"}))["arguments"] == {"prompt": "x"}


# ---- several processes, and processes that die ------------------------------------------------

WRITER = """
import os, sys
from sora_widgets.history import History

path, tag, count, report = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
log = History(path)
out = os.open(report, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if report != "-" else None
for i in range(count):
    run = log.start("fal-ai/sora-2/image-to-video", "preview",
                    {"prompt": f"{tag} {i}", "duration": 4, "model": tag})
    log.update(run, status="queued", request_id=f"{tag}-{i}")
    log.update(run, status="running", logs=[f"{tag} {i} started"])
    log.finish(run, status="completed", result={"video": {"url": f"https://v/{tag}/{i}.mp4"}})
    if out is not None:
        os.write(out, f"{run}\\n".encode())
"""


def _python(code: str, *args: str, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # type: ignore[call-overload]


def test_four_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared" / "history.sqlite"  # made by whichever process comes first
    count = 250
    workers = [_python(WRITER, str(path), f"p{n}", str(count), "-") for n in range(4)]
    outcomes = [(worker.wait(timeout=300), worker.stderr.read()) for worker in workers]  # type: ignore[union-attr]
    assert outcomes == [(0, "")] * 4  # no "database is locked", no error of any kind
    log = History(path)
    assert len(log) == 4 * count
    records = log.records()
    assert {r["status"] for r in records} == {JobStatus.COMPLETED}
    seen = {(r["arguments"]["model"], r["request_id"], r["video_url"], tuple(r["logs"])) for r in records}
    assert seen == {(f"p{n}", f"p{n}-{i}", f"https://v/p{n}/{i}.mp4", (f"p{n} {i} started",))
                    for n in range(4) for i in range(count)}
    assert all(r["queued_s"] is not None and r["total_s"] is not None for r in records)


def test_a_writer_killed_mid_stream_leaves_every_committed_row(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    History(path).close()
    report = tmp_path / "committed.txt"
    writer = _python(WRITER, str(path), "k", "100000", str(report))
    deadline = time.monotonic() + 60
    while (not report.exists() or report.read_text().count("\n") < 100) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    committed = [int(line) for line in report.read_text().split()]
    assert len(committed) >= 100
    log = History.open(path)
    for run in committed:
        assert log.get(run)["status"] is JobStatus.COMPLETED
    # at most the one attempt in flight is unfinished, and it is there for resume()
    assert len(log.unfinished()) <= 1
    assert len(log) - len(committed) <= 1
    log.start(I2V, "fal", {"prompt": "after the crash"})  # the file takes writes again


HOLDER = """
import sys, time
from sora_widgets.history import History

log = History(sys.argv[1])
kept = log.start("fal-ai/sora-2/image-to-video", "fal", {"prompt": "committed"})
with log._database.write() as db:
    db.execute("UPDATE runs SET notes = 'never committed' WHERE id = ?", (kept,))
    db.execute("INSERT INTO runs (created_at, endpoint_id, backend, status, arguments_json)"
               " VALUES ('2026-01-01', 'x', 'fal', 'pending', '{}')")
    print(kept, flush=True)
    time.sleep(120)
"""


def test_a_writer_killed_inside_a_transaction_leaves_no_trace_and_no_lock(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    holder = _python(HOLDER, str(path))
    kept = int(holder.stdout.readline())  # type: ignore[union-attr]
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    log = History.open(path)
    run = log.start(I2V, "fal", {"prompt": "next writer"})  # a lock left behind would raise here
    assert [r["id"] for r in log] == [run, kept]
    assert log.get(kept)["notes"] is None
