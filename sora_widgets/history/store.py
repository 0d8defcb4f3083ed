"""The run log: every generation attempt is one row of an SQLite file, one call from pandas.

The generation helper writes (`start` before anything is sent, `update` as the job moves,
`finish` with the result or error), possibly from the job loop's thread and from several
processes at once; readers get plain dict records, a DataFrame, an export or a notebook table.
Storage layout, migrations and value encoding: `_history_schema`; the record type and lifecycle
stamps: `_history_records`; tables, exports, HTML: `_history_export`.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import HistoryError
from .._home import run_home
from .._owner import Owner
from .._secrets import scrub, secret_values
from .._version import __version__
from ..records import JobStatus
from . import export
from . import migrations as schema
from .rows import HistoryRecord, advance, columns_from_result, decode
from .uploads import UploadCache

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["History", "HistoryRecord"]

_PAGE = 256  # rows fetched per query while iterating
_UNSET: Any = object()  # "not given", where None means "clear it"
_FILTERED_COLUMNS = {"status": "status", "endpoint_id": "endpoint_id", "backend": "backend",
                     "sweep_id": "sweep_id", "model": schema.ARG_PREFIX + "model"}
_RECORD_SQL = ", ".join(schema.COLUMNS)
_UPDATE_ALIASES = {"arguments": "arguments_json", "result": "result_json", "media": "media_json"}
_READ_ONLY = {"id", "created_at", "arguments_json", "result_json"}
_PATH_COLUMNS = ("video_path", "thumbnail_path", "spritesheet_path", "image_path")


@functools.cache
def _fal_client_version() -> str | None:
    """The installed fal-client's version, read from its metadata (fal_client is not imported)."""
    try:
        return importlib.metadata.version("fal-client")
    except importlib.metadata.PackageNotFoundError:
        return None


def _unwritable(path: Path) -> bool:
    """True when this process cannot write the history file (or create it in its folder)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if path.exists() and not os.access(path, os.W_OK):
        return True
    return not os.access(folder if not path.parent.exists() else path.parent, os.W_OK)


def _file_path(path: str | os.PathLike[str] | None) -> Path:
    """The SQLite file meant by `path`: a folder (existing, or a name without a suffix) holds
    `history.sqlite`; None means `$SORA_WIDGETS_HOME`, else `./sora_runs`, read now."""
    if path is None:
        path = run_home()
    target = Path(path).expanduser()
    if target.is_dir() or not target.suffix:
        target = target / schema.FILENAME
    return target.absolute()


class History:
    """An SQLite log of generation attempts, safe to share between threads and processes.

    Each thread (and process) uses its own connection; every write is one short `BEGIN
    IMMEDIATE` transaction, so concurrent writers queue behind SQLite's busy timeout instead
    of failing, and a killed process loses at most its uncommitted write.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 read_only: bool | None = None, busy_timeout: float = schema.BUSY_TIMEOUT_S) -> None:
        """Open or create the history at `path`: a run folder (existing, or a name without a
        suffix) holding `history.sqlite`, or the file itself; None means `$SORA_WIDGETS_HOME`,
        else `./sora_runs`. A corrupt, foreign or newer file raises HistoryError here.

        A history in a folder this process cannot write (read_only=None finds out) opens for
        reading: records, DataFrame, export and display work, and a write says why it cannot.
        A write waits up to `busy_timeout` seconds while another process writes, then raises."""
        self._path = _file_path(path)
        self._busy_timeout = busy_timeout
        self._read_only = _unwritable(self._path) if read_only is None else read_only
        if not self._read_only:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._epoch = 0  # bumped by close(): connections of an older epoch are reopened
        self._arg_columns: frozenset[str] = frozenset()
        self._db()  # a corrupt, foreign or newer file fails here, not at the first write

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> History:
        """Open an existing history: a run folder (e.g. one copied from elsewhere) or its .sqlite."""
        target = _file_path(path)
        if not target.is_file():
            raise HistoryError(f"There is no history at {target}.", path=str(target))
        return cls(target)

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return self._path

    @property
    def read_only(self) -> bool:
        """True when this history was opened for reading only (e.g. a run folder on a read-only disk)."""
        return self._read_only

    @property
    def folder(self) -> Path:
        """The run folder: the history file, its media, and what paths in records are relative to."""
        return self._path.parent

    @property
    def media_dir(self) -> Path:
        """The folder beside the file for local copies of videos and images; made on first use."""
        media = self._path.parent / "media"
        if not self._read_only:
            media.mkdir(exist_ok=True)
        return media

    @property
    def uploads(self) -> UploadCache:
        """Uploaded input images (sha256 -> URL) kept in this file, so each is uploaded once."""
        return UploadCache(self)

    def close(self) -> None:
        """Close this thread's connection now; other threads reopen theirs on their next use."""
        self._epoch += 1
        cached = getattr(self._local, "db", None)
        self._local.db = None
        if cached is not None:
            cached[1].close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- connections and transactions -----------------------------------------------------

    def _db(self) -> sqlite3.Connection:
        """This thread's connection, opened (and checked) on first use in a thread or process."""
        key = (os.getpid(), self._epoch)
        cached: tuple[tuple[int, int], sqlite3.Connection] | None = getattr(self._local, "db", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        if cached is not None and cached[0][0] == key[0]:
            cached[1].close()  # left over from before close(); a forked child's copy is dropped
        db = schema.connect(self._path, read_only=self._read_only, busy_timeout=self._busy_timeout)
        db.row_factory = sqlite3.Row
        self._local.db = (key, db)
        return db

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        """Translate SQLite's errors into HistoryError, naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"History {self._path}: {exc}", path=str(self._path)) from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._sqlite_errors():
            yield self._db()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its start, committed on success; the
        argument-column cache takes what the transaction added only once it has committed."""
        if self._read_only:
            raise HistoryError(f"History {self._path} is open for reading only (its folder cannot be "
                               "written here); nothing was recorded. Copy the run folder somewhere "
                               "writable to add runs or notes.", path=str(self._path))
        with self._sqlite_errors():
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            self._local.staged = None
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            if self._local.staged is not None:
                self._arg_columns = self._local.staged

    def _ensure_arg_columns(self, db: sqlite3.Connection, columns: Iterable[str]) -> None:
        """Add missing argument columns inside the write transaction (so adders never race); the
        cache learns of them when the transaction commits (`_write`)."""
        missing = set(columns) - self._arg_columns
        if not missing:
            return
        existing = schema.arg_columns(db)
        for column in sorted(missing - existing):
            db.execute(f'ALTER TABLE runs ADD COLUMN "{column}"')
        self._local.staged = frozenset(existing | missing)

    def _decode(self, row: sqlite3.Row) -> HistoryRecord:
        return decode(row, folder=self.folder, path=str(self._path))

    def _has_arg_column(self, db: sqlite3.Connection, column: str) -> bool:
        if column not in self._arg_columns:
            self._arg_columns = frozenset(schema.arg_columns(db))
        return column in self._arg_columns

    # ---- the write side -------------------------------------------------------------------

    def start(
        self,
        endpoint_id: str,
        backend: str,
        arguments: dict[str, Any],
        *,
        sweep_id: str | None = None,
        cost_usd: float | None = None,
        image_sha256: str | None = None,
        image_path: str | None = None,
        owner: Owner | None = None,
        cell_key: str | None = None,
    ) -> int:
        """Record a new attempt as `pending` and return its id; committed before anything is sent.

        `owner` is the process that will follow it (see `_owner.py`); `cell_key` names a sweep's
        cell, so a reopened sweep finds the row whatever the arguments became on upload."""
        secrets = secret_values()
        clean = scrub(dict(arguments), secrets)
        row = {
            "created_at": schema.now(), "endpoint_id": endpoint_id, "backend": backend,
            "status": JobStatus.PENDING, "arguments_json": clean, "sweep_id": sweep_id,
            "cost_usd": cost_usd, "image_sha256": image_sha256,
            "image_path": self._stored_path(image_path),
            "logs": [], "tags": [], "sora_widgets_version": __version__,
            "fal_client_version": _fal_client_version(), "cell_key": cell_key,
            "owner": owner.to_text() if owner else None, "heartbeat_at": schema.now() if owner else None,
        }
        arg_values = self._arg_values(clean)  # first, so a bad value is named by its own field
        values = {name: schema.encode(name, value, secrets) for name, value in row.items()}
        values.update(arg_values)
        names = ", ".join(f'"{name}"' for name in values)
        with self._write() as db:
            self._ensure_arg_columns(db, (n for n in values if n.startswith(schema.ARG_PREFIX)))
            cursor = db.execute(f"INSERT INTO runs ({names}) VALUES ({', '.join('?' * len(values))})",
                                list(values.values()))
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def update(self, id: int, **columns: Any) -> None:
        """Set named columns of run `id`; `status` may only move forward (JobStatus.can_become).

        `arguments` and `result` take dicts, `logs` and `tags` lists (replacing the stored ones),
        times datetimes, ISO strings or epoch seconds. Leaving pending stamps `submitted_at`,
        reaching running `started_at`, a final status `completed_at`, each with the durations it
        completes (queued_s, running_s, and total_s from created_at), unless given explicitly.
        A `result` also fills video, thumbnail and spritesheet URLs and video_id not given (or None).
        """
        secrets = secret_values()
        if isinstance(columns.get("result"), dict):
            derived = columns_from_result(columns["result"])
            columns = {**columns, **{k: v for k, v in derived.items() if columns.get(k) is None}}
        values: dict[str, Any] = {}
        for name, value in columns.items():
            column = _UPDATE_ALIASES.get(name, name)
            if name in _READ_ONLY or column not in schema.COLUMNS:
                raise TypeError(f"update() got an unknown or read-only column {name!r}")
            if column in _PATH_COLUMNS:
                value = self._stored_path(value)
            elif column == "media_json":
                value = self._stored_media(value)
            values[column] = schema.encode(column, value, secrets)
        with self._write() as db:
            current = db.execute("SELECT status, created_at, submitted_at, started_at, request_id "
                                 "FROM runs WHERE id = ?", (id,)).fetchone()
            if current is None:
                raise KeyError(id)
            advance(id, current, values, path=str(self._path))
            if "arguments" in columns:
                clean = scrub(dict(columns["arguments"]), secrets)
                new_args = self._arg_values(clean)
                self._ensure_arg_columns(db, new_args)
                values.update(dict.fromkeys(schema.arg_columns(db), None) | new_args)
            if values:
                assignments = ", ".join(f'"{name}" = ?' for name in values)
                db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*values.values(), id])

    def finish(
        self,
        id: int,
        *,
        status: JobStatus | str,
        result: dict[str, Any] | None = None,
        error_type: str | None = None,
        error_message: str | None = None,
        **columns: Any,
    ) -> None:
        """Give run `id` its final status (completed, failed or cancelled), result or error.

        Stamps completed_at and the durations it completes (see `update`); None leaves a column as is.
        """
        final = JobStatus(status)
        if not final.is_final:
            raise HistoryError(f"finish() needs a final status (completed, failed or cancelled), "
                               f"not {final}.", path=str(self._path))
        given = {"result": result, "error_type": error_type, "error_message": error_message}
        self.update(id, status=final, **{k: v for k, v in given.items() if v is not None}, **columns)

    def annotate(self, id: int, *, rating: int | None = _UNSET, notes: str | None = _UNSET,
                 tags: list[str] | None = _UNSET) -> None:
        """Set the user's rating (1 to 5), notes and tags of run `id`; None clears one."""
        given = {"rating": rating, "notes": notes, "tags": tags}
        self.update(id, **{name: value for name, value in given.items() if value is not _UNSET})

    @staticmethod
    def _arg_values(arguments: dict[str, Any]) -> dict[str, Any]:
        """The `arg_<name>` columns for (already scrubbed) arguments."""
        columns = {}
        for name, value in arguments.items():
            column = schema.arg_column(name) if isinstance(name, str) else None
            if column is not None:
                columns[column] = schema.storable(column, schema.arg_value(value))
        return columns

    def _stored_path(self, path: Any) -> Any:
        """A media path as stored: relative to the run folder when inside it, so a run folder
        copied or unzipped elsewhere still finds its videos; other paths as given."""
        if not isinstance(path, (str, os.PathLike)) or not os.path.isabs(path):
            return path
        try:
            return Path(path).relative_to(self.folder).as_posix()
        except ValueError:
            return os.fspath(path)

    def _stored_media(self, items: Any) -> Any:
        if not isinstance(items, (list, tuple)):
            return items
        return [{**item, "path": self._stored_path(item.get("path"))} if isinstance(item, dict) else item
                for item in items]

    # ---- who follows a job ----------------------------------------------------------------

    def claim(self, id: int, owner: Owner, *, previous: str | None) -> bool:
        """Make `owner` follow unfinished run `id` if its owner is still `previous` (the text the
        caller read); False when another process claimed it first or it has ended."""
        final = [status.value for status in JobStatus if status.is_final]
        with self._write() as db:
            cursor = db.execute(
                f"UPDATE runs SET owner = ?, heartbeat_at = ? WHERE id = ? AND owner IS ? "
                f"AND status NOT IN ({', '.join('?' * len(final))})",
                [owner.to_text(), schema.to_iso(schema.now()), id, previous, *final])
        return cursor.rowcount == 1

    def heartbeat(self, ids: Iterable[int], owner: Owner) -> None:
        """Renew the heartbeat of the runs `owner` follows (called every few seconds while it does)."""
        ids = list(ids)
        if not ids:
            return
        with self._write() as db:
            db.execute(f"UPDATE runs SET heartbeat_at = ? WHERE owner = ? AND id IN "
                       f"({', '.join('?' * len(ids))})",
                       [schema.to_iso(schema.now()), owner.to_text(), *ids])

    def release(self, id: int, owner: Owner) -> None:
        """Stop owning run `id`, so the next `resume()` anywhere may follow it."""
        with self._write() as db:
            db.execute("UPDATE runs SET owner = NULL, heartbeat_at = NULL WHERE id = ? AND owner = ?",
                       (id, owner.to_text()))

    # ---- the read side --------------------------------------------------------------------

    def get(self, id: int) -> HistoryRecord:
        """The record of run `id`; KeyError when there is none."""
        with self._read() as db:
            row = db.execute(f"SELECT {_RECORD_SQL} FROM runs WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise KeyError(id)
        return self._decode(row)

    def find(
        self,
        *,
        status: JobStatus | str | Iterable[JobStatus | str] | None = None,
        model: str | Iterable[str] | None = None,
        endpoint_id: str | Iterable[str] | None = None,
        backend: str | Iterable[str] | None = None,
        sweep_id: str | Iterable[str] | None = None,
        text: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[HistoryRecord]:
        """Records matching every filter given, newest first; a list value matches any of its items.

        `text` looks, ignoring case, in the prompt, the notes and the tags.
        """
        rows = self._select(status=status, model=model, endpoint_id=endpoint_id, backend=backend,
                            sweep_id=sweep_id, text=text, limit=limit, offset=offset)
        return [self._decode(row) for row in rows]

    def records(self, **filters: Any) -> list[HistoryRecord]:
        """Every record (or those matching `find`'s filters), newest first."""
        return self.find(**filters)

    def count(self, **filters: Any) -> int:
        """How many runs match `find`'s filters (without limit/offset): for paging a table."""
        with self._read() as db:
            where, params = self._where(db, **filters)
            return int(db.execute(f"SELECT COUNT(*) FROM runs{where}", params).fetchone()[0])

    def unfinished(self) -> list[HistoryRecord]:
        """Runs without a final status, oldest first: what `resume()` picks up after a crash."""
        final = [status.value for status in JobStatus if status.is_final]
        with self._read() as db:
            rows = db.execute(f"SELECT {_RECORD_SQL} FROM runs WHERE status NOT IN "
                              f"({', '.join('?' * len(final))}) ORDER BY id", final).fetchall()
        return [self._decode(row) for row in rows]

    def _where(
        self,
        db: sqlite3.Connection,
        *,
        status: Any = None,
        model: Any = None,
        endpoint_id: Any = None,
        backend: Any = None,
        sweep_id: Any = None,
        text: str | None = None,
    ) -> tuple[str, list[Any]]:
        """The WHERE clause and parameters for `find`'s filters."""
        clauses: list[str] = []
        params: list[Any] = []
        given = {"status": status, "model": model, "endpoint_id": endpoint_id,
                 "backend": backend, "sweep_id": sweep_id}
        for name, value in given.items():
            if value is None:
                continue
            wanted = [value] if isinstance(value, str) else list(value)
            if name == "status":
                wanted = [JobStatus(item).value for item in wanted]
            column = _FILTERED_COLUMNS[name]
            if column.startswith(schema.ARG_PREFIX) and not self._has_arg_column(db, column):
                clauses.append("0")  # no run has had this argument yet
                continue
            clauses.append(f'"{column}" IN ({", ".join("?" * len(wanted))})')
            params.extend(wanted)
        if text is not None:
            fields = ["notes", "tags"]
            if self._has_arg_column(db, schema.ARG_PREFIX + "prompt"):
                fields.append(f'"{schema.ARG_PREFIX}prompt"')
            clauses.append("(" + " OR ".join(f"sw_contains({f}, ?)" for f in fields) + ")")
            params.extend([text] * len(fields))
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[HistoryRecord]:
        """Every record, newest first, read a page at a time (rows added meanwhile are skipped)."""
        before = 2**63 - 1  # above any id SQLite can give
        while True:
            with self._read() as db:
                rows = db.execute(f"SELECT {_RECORD_SQL} FROM runs WHERE id < ? ORDER BY id DESC LIMIT ?",
                                  (before, _PAGE)).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._decode(row)
            before = rows[-1]["id"]

    def _select(self, *, limit: int | None = None, offset: int = 0, **filters: Any) -> list[sqlite3.Row]:
        """Stored rows matching `find`'s filters, newest first."""
        with self._read() as db:
            where, params = self._where(db, **filters)
            return db.execute(f"SELECT {_RECORD_SQL} FROM runs{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                              [*params, -1 if limit is None else limit, offset]).fetchall()

    # ---- tables, exports, display ---------------------------------------------------------

    def to_dataframe(self, **filters: Any) -> pd.DataFrame:
        """A pandas DataFrame, newest first: typed times (UTC), numbers and categories, and one
        column per argument (named `arg_<name>` only where it clashes with a record column)."""
        return export.dataframe(list(schema.COLUMNS), [tuple(row) for row in self._select(**filters)],
                                folder=self.folder)

    def export(self, path: str | os.PathLike[str], **filters: Any) -> Path:
        """Write the runs to .csv, .jsonl or .parquet (chosen by suffix) and return the path."""
        return export.export(self, Path(path), filters)

    def __repr__(self) -> str:
        return f"History({str(self._path)!r}, {export.runs_text(len(self))})"

    def _repr_html_(self) -> str:
        return export.html_table(self)
