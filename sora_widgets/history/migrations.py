"""How the history is stored: the `runs` table, its recorded migrations, and value encoding.

A file is ours when its header's `application_id` says so. A foreign, corrupt or newer file is
refused before anything is written to it. Migration 1 is frozen: every later change to the layout
is a new named migration appended to MIGRATIONS, so a file made by an older release opens (and is
upgraded) in a newer one. Each applied migration is a row of the `migrations` table.

Arguments get one column each besides the full JSON: a top-level argument whose name is a
lower-case identifier (`[a-z][a-z0-9_]{0,59}`) is stored in the column `arg_<name>`, added on first
use. No fixed column starts with `arg_`, so the two can never collide; other names (camelCase,
dashes, very long) live only in `arguments_json`.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from contextlib import ExitStack
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Any

from .._errors import HistoryError, ValidationError
from .._secrets import scrub
from ..records import JobStatus

FILENAME = "history.sqlite"
APPLICATION_ID = 0x536F5261  # "SoRa": tells our files from every other SQLite file
BUSY_TIMEOUT_S = 60.0  # how long a writer waits for another process before giving up
ARG_PREFIX = "arg_"
_ARG_NAME = re.compile(r"[a-z][a-z0-9_]{0,59}")

# Every fixed column of `runs` and how its values are encoded.
COLUMNS: dict[str, str] = {
    "id": "int", "created_at": "time", "endpoint_id": "text", "backend": "text",
    "status": "status", "request_id": "text", "arguments_json": "json", "result_json": "json",
    "video_url": "text", "video_path": "text", "video_id": "text",
    "thumbnail_url": "text", "thumbnail_path": "text",
    "spritesheet_url": "text", "spritesheet_path": "text",
    "image_sha256": "text", "image_path": "text",
    "submitted_at": "time", "started_at": "time", "completed_at": "time",
    "queued_s": "real", "running_s": "real", "total_s": "real", "cost_usd": "real",
    "error_type": "text", "error_message": "text", "logs": "list", "sweep_id": "text",
    "rating": "rating", "notes": "text", "tags": "list",
    "sora_widgets_version": "text", "fal_client_version": "text", "media_json": "items",
    "owner": "text", "heartbeat_at": "time", "cell_key": "text",
}
TIME_COLUMNS = tuple(name for name, kind in COLUMNS.items() if kind == "time")

MIGRATIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("create_runs", (
        "CREATE TABLE migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at TEXT NOT NULL)",
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, created_at TEXT NOT NULL,"
        " endpoint_id TEXT NOT NULL, backend TEXT NOT NULL, status TEXT NOT NULL,"
        " request_id TEXT, arguments_json TEXT NOT NULL, result_json TEXT,"
        " video_url TEXT, video_path TEXT, video_id TEXT, thumbnail_url TEXT,"
        " thumbnail_path TEXT, spritesheet_url TEXT, spritesheet_path TEXT,"
        " image_sha256 TEXT, image_path TEXT, submitted_at TEXT, started_at TEXT,"
        " completed_at TEXT, queued_s REAL, running_s REAL, total_s REAL, cost_usd REAL,"
        " error_type TEXT, error_message TEXT, logs TEXT NOT NULL DEFAULT '[]', sweep_id TEXT,"
        " rating INTEGER, notes TEXT, tags TEXT NOT NULL DEFAULT '[]',"
        " sora_widgets_version TEXT, fal_client_version TEXT)",
        f"PRAGMA application_id = {APPLICATION_ID}",
    )),
    ("index_status_sweep_request", (
        "CREATE INDEX runs_status ON runs (status)",
        "CREATE INDEX runs_sweep_id ON runs (sweep_id)",
        "CREATE INDEX runs_request_id ON runs (request_id)",
    )),
    ("create_uploads", (
        "CREATE TABLE uploads (sha256 TEXT PRIMARY KEY, url TEXT NOT NULL,"
        " uploaded_at TEXT NOT NULL)",
    )),
    ("add_media", (  # every video and image an endpoint returned, whatever its output calls them
        "ALTER TABLE runs ADD COLUMN media_json TEXT NOT NULL DEFAULT '[]'",
    )),
    ("add_owner_and_cell", (  # who follows a job (see _owner.py), and a sweep row's cell
        "ALTER TABLE runs ADD COLUMN owner TEXT",
        "ALTER TABLE runs ADD COLUMN heartbeat_at TEXT",
        "ALTER TABLE runs ADD COLUMN cell_key TEXT",
    )),
)
LATEST_VERSION = len(MIGRATIONS)


def connect(path: Path, *, read_only: bool = False,
            busy_timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """Open `path`, check that it is a history this release can use, migrate it, enable WAL.
    A write waits up to `busy_timeout` seconds for another process's write to end.

    Read-only, nothing is written: a folder nobody may write is read as it is (`immutable`), and a
    file that would need a migration is refused with the reason."""
    if read_only and not path.is_file():
        raise HistoryError(f"There is no history at {path}, and its folder cannot be written to "
                           "make one.", path=str(path))
    with ExitStack() as stack:
        try:
            if read_only:
                db = _open_read_only(path, busy_timeout)
                stack.callback(db.close)
                if _version(db, path) != LATEST_VERSION:
                    raise HistoryError(f"{path} was written by an older sora_widgets and needs an "
                                       "upgrade, but it cannot be written here. Copy the run folder "
                                       "somewhere writable and open it there.", path=str(path))
            else:
                db = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None)
                stack.callback(db.close)
                _adopt(db, path)
                # WAL lets readers run beside one writer; NORMAL sync keeps every commit across a
                # crashed process (only a power cut may lose the last commits).
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.Error as exc:
            raise HistoryError(
                f"{path} could not be opened as a history: {exc}. The file was left untouched.",
                path=str(path),
            ) from exc
        db.create_function("sw_contains", 2, _contains, deterministic=True)
        stack.pop_all()
    return db


def _open_read_only(path: Path, busy_timeout: float) -> sqlite3.Connection:
    """A read-only connection; `immutable` where the folder cannot be written (no -shm file can
    be made there), so a run folder on a read-only disk or from an archive still reads."""
    import urllib.parse

    immutable = "" if os.access(path.parent, os.W_OK) else "&immutable=1"
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro{immutable}"
    return sqlite3.connect(uri, uri=True, timeout=busy_timeout, isolation_level=None)


def _adopt(db: sqlite3.Connection, path: Path) -> None:
    """Refuse a foreign or newer file; apply missing migrations under the write lock."""
    if _version(db, path) == LATEST_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        version = _version(db, path)  # again: another process may have migrated it meanwhile
        for number, (name, statements) in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements:
                db.execute(statement)
            db.execute("INSERT INTO migrations (version, name, applied_at) VALUES (?, ?, ?)",
                       (number, name, to_iso(now())))
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _version(db: sqlite3.Connection, path: Path) -> int:
    """The schema version of an empty (0) or sora_widgets file; HistoryError for anything else."""
    app_id = db.execute("PRAGMA application_id").fetchone()[0]
    tables = sorted(row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"))
    if app_id != APPLICATION_ID:
        if app_id == 0 and not tables:
            return 0
        raise HistoryError(
            f"{path} is an SQLite database but not a sora_widgets history (its tables: "
            f"{', '.join(tables) or 'none'}). It was left untouched; give History another path.",
            path=str(path))
    if "migrations" not in tables or "runs" not in tables:
        raise HistoryError(f"{path} is marked as a history but lacks its tables; it looks damaged.",
                           path=str(path))
    applied = [tuple(row) for row in db.execute("SELECT version, name FROM migrations ORDER BY version")]
    version = applied[-1][0] if applied else 0
    if version > LATEST_VERSION:
        raise HistoryError(
            f"{path} was written by a newer sora_widgets (history schema v{version}; this release "
            f"reads up to v{LATEST_VERSION}). Upgrade sora_widgets to open it.", path=str(path))
    known = [(number, name) for number, (name, _) in enumerate(MIGRATIONS[:version], start=1)]
    if applied != known:
        raise HistoryError(f"{path} records migrations {applied} that differ from this release's "
                           f"{known}; it was left untouched.", path=str(path))
    return version


def arg_column(name: str) -> str | None:
    """The column that holds top-level argument `name`, or None when it lives only in the JSON."""
    return ARG_PREFIX + name if _ARG_NAME.fullmatch(name) else None


def arg_columns(db: sqlite3.Connection) -> set[str]:
    """The argument columns the file has now."""
    return {row[1] for row in db.execute("PRAGMA table_info(runs)") if row[1].startswith(ARG_PREFIX)}


def _contains(haystack: Any, needle: Any) -> bool:
    """Case-insensitive (Unicode-aware) substring test, registered in SQL as sw_contains."""
    return haystack is not None and str(needle).casefold() in str(haystack).casefold()


# ---- values --------------------------------------------------------------------------------

def now() -> datetime:
    return datetime.now(timezone.utc)


def to_iso(moment: datetime) -> str:
    """Fixed-width UTC text, so stored times sort as strings; naive times are taken as local."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _time(name: str, value: Any) -> str:
    if isinstance(value, datetime):
        return to_iso(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return to_iso(datetime.fromtimestamp(value, timezone.utc))
    expected = "a datetime, an ISO 8601 string or epoch seconds"
    if not isinstance(value, str):
        raise _wrong(name, expected, type(value).__name__)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _wrong(name, expected, repr(value)) from None
    return to_iso(parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc))


def _wrong(column: str, expected: str, got: str) -> ValidationError:
    """The error for a value of the wrong kind for `column`, naming the field it was given as."""
    return ValidationError([(_field_name(column), f"must be {expected}, not {got}")])


def _field_name(column: str) -> str:
    """The name a column's value is given under: `arg_prompt` is prompt, `result_json` result."""
    return column.removeprefix(ARG_PREFIX).removesuffix("_json")


def json_default(value: Any) -> Any:
    """JSON for what arguments may hold before upload: paths, times, enums, raw bytes."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return f"<{type(value).__name__}>"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=json_default)


def encode(name: str, value: Any, secrets: list[str]) -> Any:
    """A value for column `name` as stored, with secrets scrubbed; ValidationError naming the
    field for a value of the wrong kind or text SQLite cannot hold."""
    return storable(name, _encode(name, value, secrets))


def storable(name: str, value: Any) -> Any:
    """`value` if SQLite can store it; text with a lone surrogate ("\\ud800") is a ValidationError
    naming the field, raised before any transaction, so one bad prompt harms nothing else."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValidationError([(_field_name(name), f"holds a character that cannot be stored "
                                           f"({value[exc.start]!r} at position {exc.start}, a lone "
                                           "UTF-16 surrogate); remove it")]) from None
    return value


def _encode(name: str, value: Any, secrets: list[str]) -> Any:
    kind = COLUMNS[name]
    if value is None:
        if kind in ("list", "items"):
            return "[]"
        return None
    if kind == "status":
        try:
            return JobStatus(value).value
        except ValueError:
            raise _wrong(name, "one of " + ", ".join(s.value for s in JobStatus), repr(value)) from None
    if kind == "time":
        return _time(name, value)
    if kind == "real":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _wrong(name, "a number", type(value).__name__)
        return float(value)
    if kind == "rating":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 5:
            raise ValidationError([("rating", f"must be a whole number from 1 to 5, not {value!r}")])
        return value
    if kind == "list":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _wrong(name, "a list of strings", type(value).__name__)
        return dumps([scrub(str(item), secrets) for item in value])
    if kind == "items":
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _wrong(name, "a list of dicts", type(value).__name__)
        return dumps(scrub(list(value), secrets))
    if kind == "json":
        if not isinstance(value, dict):
            raise _wrong(name, "a dict", type(value).__name__)
        return dumps(scrub(value, secrets))
    if isinstance(value, (str, os.PathLike)):
        return scrub(os.fspath(value), secrets)
    raise _wrong(name, "text", type(value).__name__)


def arg_value(value: Any) -> Any:
    """An argument as its column holds it: scalars as they are, anything else as JSON text."""
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return dumps(value)  # beyond SQLite's 64-bit integers
    if value is None or isinstance(value, (str, int, float)):
        return value
    return dumps(value)
