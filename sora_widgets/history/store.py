"""The run log: every generation attempt is one row of an SQLite file, one call from pandas.

The generation helper writes (`start` before anything is sent, `update` as the job moves,
`finish` with the result or error), possibly from the job loop's thread and from several
processes at once; readers get plain dict records, a DataFrame, an export or a notebook table.
Connections and transactions: `database`; storage layout, migrations and value encoding:
`migrations`; the record type and lifecycle stamps: `rows`; who follows a run: `claims`; the
DataFrame and exports: `export` (its notebook table is `_html.history_html`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import CellTakenError, HistoryError, NotFoundError, ValidationError
from .._home import run_home, shown_path
from .._owner import Owner
from .._secrets import scrub, secret_values
from .._values import did_you_mean
from .._version import __version__
from ..records import JobStatus
from . import export, migrations
from .claims import Claims
from .database import Database, unwritable
from .filters import where_clause
from .rows import CLOSED_UNSENT, PATH_COLUMNS, HistoryRecord, advance, columns_from_result, decode
from .uploads import UploadCache

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["History", "HistoryRecord"]

_PAGE = 256  # rows fetched per query while iterating
_UNSET: Any = object()  # "not given", where None means "clear it"
_RECORD_SQL = ", ".join(migrations.COLUMNS)
_UPDATE_ALIASES = {"arguments": "arguments_json", "result": "result_json", "media": "media_json"}
_READ_ONLY = {"id", "created_at", "arguments_json", "result_json"}
_SETTABLE = sorted((set(migrations.COLUMNS) | set(_UPDATE_ALIASES)) - _READ_ONLY)


@functools.cache
def _fal_client_version() -> str | None:
    """The installed fal-client's version, read from its metadata (fal_client is not imported)."""
    try:
        return importlib.metadata.version("fal-client")
    except importlib.metadata.PackageNotFoundError:
        return None


def _file_path(path: str | os.PathLike[str] | None) -> Path:
    """The SQLite file meant by `path`: a folder (existing, or a name without a suffix) holds
    `history.sqlite`; None means `$SORA_WIDGETS_HOME`, else `./sora_runs`, read now."""
    if path is None:
        path = run_home()
    target = Path(path).expanduser()
    if target.is_dir() or not target.suffix:
        target = target / migrations.FILENAME
    return target.absolute()


class History(Claims):
    """An SQLite log of generation attempts, safe to share between threads and processes.

    Each thread (and process) uses its own connection; every write is one short `BEGIN
    IMMEDIATE` transaction, so concurrent writers queue behind SQLite's busy timeout instead
    of failing, and a killed process loses at most its uncommitted write (see `database`).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 read_only: bool | None = None, busy_timeout: float = migrations.BUSY_TIMEOUT_S) -> None:
        """Open or create the history at `path`: a run folder (existing, or a name without a
        suffix) holding `history.sqlite`, or the file itself; None means `$SORA_WIDGETS_HOME`,
        else `./sora_runs`. A corrupt, foreign or newer file raises HistoryError here.

        A history in a folder this process cannot write (read_only=None finds out) opens for
        reading: records, DataFrame, export and display work, and a write says why it cannot.
        A write waits up to `busy_timeout` seconds while another process writes, then raises."""
        target = _file_path(path)
        read_only = unwritable(target) if read_only is None else read_only
        if not read_only:
            target.parent.mkdir(parents=True, exist_ok=True)
        self._database = Database(target, read_only=read_only, busy_timeout=busy_timeout)
        self._database.connection()  # a corrupt, foreign or newer file fails here, not at the first write

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
        return self._database.path

    @property
    def read_only(self) -> bool:
        """True when this history was opened for reading only (e.g. a run folder on a read-only disk)."""
        return self._database.read_only

    @property
    def folder(self) -> Path:
        """The run folder: the history file, its media, and what paths in records are relative to."""
        return self.path.parent

    @property
    def media_dir(self) -> Path:
        """The folder beside the file for local copies of videos and images; made on first use."""
        media = self.folder / "media"
        if not self.read_only:
            media.mkdir(exist_ok=True)
        return media

    @property
    def uploads(self) -> UploadCache:
        """Uploaded input images (sha256 -> URL) kept in this file, so each is uploaded once."""
        return UploadCache(self._database)

    def close(self) -> None:
        """Close this thread's connection now; other threads reopen theirs on their next use."""
        self._database.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _decode(self, row: sqlite3.Row) -> HistoryRecord:
        return decode(row, folder=self.folder, path=str(self.path))

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
        cell, so a reopened sweep finds the row whatever the arguments became on upload. A cell
        has one run: when another process recorded it first, CellTakenError names that run."""
        secrets = secret_values()
        clean = scrub(dict(arguments), secrets)
        row = {
            "created_at": migrations.now(), "endpoint_id": endpoint_id, "backend": backend,
            "status": JobStatus.PENDING, "arguments_json": clean, "sweep_id": sweep_id,
            "cost_usd": cost_usd, "image_sha256": image_sha256,
            "image_path": self._stored_path(image_path),
            "logs": [], "tags": [], "sora_widgets_version": __version__,
            "fal_client_version": _fal_client_version(), "cell_key": cell_key,
            "owner": owner.to_text() if owner else None, "heartbeat_at": migrations.now() if owner else None,
        }
        arg_values = self._arg_values(clean)  # first, so a bad value is named by its own field
        values = {name: migrations.encode(name, value, secrets) for name, value in row.items()}
        values.update(arg_values)
        names = ", ".join(f'"{name}"' for name in values)
        with self._database.write() as db:
            if sweep_id is not None and cell_key is not None:
                self._claim_cell(db, sweep_id, cell_key)
            self._database.ensure_arg_columns(db, (n for n in values if n.startswith(migrations.ARG_PREFIX)))
            cursor = db.execute(f"INSERT INTO runs ({names}) VALUES ({', '.join('?' * len(values))})",
                                list(values.values()))
            if cursor.rowcount != 1 or cursor.lastrowid is None:  # e.g. a trigger dropped the row
                raise HistoryError(f"History {self.path} did not record the new run: something in "
                                   "the file (such as a trigger) refused it.", path=str(self.path))
        return cursor.lastrowid

    def _claim_cell(self, db: sqlite3.Connection, sweep_id: str, cell_key: str) -> None:
        """Inside the write transaction (so two processes cannot both pass): refuse a sweep's cell
        that already has a run, except one an older release closed before it was sent."""
        taken = db.execute("SELECT id FROM runs WHERE sweep_id = ? AND cell_key = ? AND NOT "
                           "(request_id IS NULL AND error_type IS ?) LIMIT 1",
                           (sweep_id, cell_key, CLOSED_UNSENT)).fetchone()
        if taken is not None:
            raise CellTakenError(f"Cell {cell_key} of sweep {sweep_id} already has run {taken[0]} in "
                                 f"{self.path}; it is not recorded or sent again.",
                                 history_id=int(taken[0]), path=str(self.path))

    def update(self, id: int, /, **columns: Any) -> None:
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
            if name in _READ_ONLY or column not in migrations.COLUMNS:
                raise ValidationError([(name, _not_settable(name))])
            if column in PATH_COLUMNS:
                value = self._stored_path(value)
            elif column == "media_json":
                value = self._stored_media(value)
            values[column] = migrations.encode(column, value, secrets)
        with self._database.write() as db:
            current = db.execute("SELECT status, created_at, submitted_at, started_at, request_id "
                                 "FROM runs WHERE id = ?", (id,)).fetchone()
            if current is None:
                raise self._missing(id)
            advance(id, current, values, path=str(self.path))
            if "arguments" in columns:
                clean = scrub(dict(columns["arguments"]), secrets)
                new_args = self._arg_values(clean)
                self._database.ensure_arg_columns(db, new_args)
                values.update(dict.fromkeys(migrations.arg_columns(db), None) | new_args)
            if values:
                assignments = ", ".join(f'"{name}" = ?' for name in values)
                db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", [*values.values(), id])

    def finish(
        self,
        id: int,
        /,
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
                               f"not {final}.", path=str(self.path))
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
            column = migrations.arg_column(name) if isinstance(name, str) else None
            if column is not None:
                columns[column] = migrations.storable(column, migrations.arg_value(value))
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

    # ---- the read side --------------------------------------------------------------------

    def get(self, id: int) -> HistoryRecord:
        """The record of run `id`; NotFoundError (a KeyError) when there is none."""
        with self._database.read() as db:
            row = db.execute(f"SELECT {_RECORD_SQL} FROM runs WHERE id = ?", (id,)).fetchone()
        if row is None:
            raise self._missing(id)
        return self._decode(row)

    def _missing(self, id: int) -> NotFoundError:
        return NotFoundError(f"There is no run {id!r} in the history at {self.path}.", key=id)

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
        with self._database.read() as db:
            where, params = where_clause(self._database, db, **filters)
            return int(db.execute(f"SELECT COUNT(*) FROM runs{where}", params).fetchone()[0])

    def unfinished(self) -> list[HistoryRecord]:
        """Runs without a final status, oldest first: what `resume()` picks up after a crash."""
        final = [status.value for status in JobStatus if status.is_final]
        with self._database.read() as db:
            rows = db.execute(f"SELECT {_RECORD_SQL} FROM runs WHERE status NOT IN "
                              f"({', '.join('?' * len(final))}) ORDER BY id", final).fetchall()
        return [self._decode(row) for row in rows]

    def __len__(self) -> int:
        return self.count()

    def __iter__(self) -> Iterator[HistoryRecord]:
        """Every record, newest first, read a page at a time (rows added meanwhile are skipped)."""
        before = 2**63 - 1  # above any id SQLite can give
        while True:
            with self._database.read() as db:
                rows = db.execute(f"SELECT {_RECORD_SQL} FROM runs WHERE id < ? ORDER BY id DESC LIMIT ?",
                                  (before, _PAGE)).fetchall()
            if not rows:
                return
            for row in rows:
                yield self._decode(row)
            before = rows[-1]["id"]

    def _select(self, *, limit: int | None = None, offset: int = 0, **filters: Any) -> list[sqlite3.Row]:
        """Stored rows matching `find`'s filters, newest first."""
        with self._database.read() as db:
            where, params = where_clause(self._database, db, **filters)
            return db.execute(f"SELECT {_RECORD_SQL} FROM runs{where} ORDER BY id DESC LIMIT ? OFFSET ?",
                              [*params, -1 if limit is None else limit, offset]).fetchall()

    # ---- tables, exports, display ---------------------------------------------------------

    def to_dataframe(self, **filters: Any) -> pd.DataFrame:
        """A pandas DataFrame, newest first: typed times (UTC), numbers and categories, and one
        column per argument (named `arg_<name>` only where it clashes with a record column)."""
        return export.dataframe(list(migrations.COLUMNS), [tuple(row) for row in self._select(**filters)],
                                folder=self.folder)

    def export(self, path: str | os.PathLike[str], **filters: Any) -> Path:
        """Write the runs to .csv, .jsonl or .parquet (chosen by suffix) and return the path."""
        return export.export(self, Path(path), filters)

    def __repr__(self) -> str:
        """Cheap on purpose (no query): the file, and whether it is open for reading only."""
        return f"<History {shown_path(self.path)}{' (read-only)' if self.read_only else ''}>"

    def _repr_html_(self) -> str:
        from .._html import history_html

        return history_html(self)


def _not_settable(name: str) -> str:
    """Why update() refuses column `name`: it is set once at start(), or the history has no such column."""
    if name in _READ_ONLY:
        return "is set when the run starts and cannot be changed"
    return f"is not a column update() can set{did_you_mean(name, _SETTABLE)}"
