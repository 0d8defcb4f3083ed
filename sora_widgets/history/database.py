"""One history file's SQLite connections: one per thread and process, each write one short
transaction that holds the lock from its start, SQLite's errors translated into HistoryError.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .._errors import HistoryError
from . import migrations


def unwritable(path: Path) -> bool:
    """True when this process cannot write the history file (or create it in its folder)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if path.exists() and not os.access(path, os.W_OK):
        return True
    return not os.access(folder if not path.parent.exists() else path.parent, os.W_OK)


class Database:
    """The connections to one history file, safe to share between threads and processes.

    Each thread (and process) uses its own connection; every write is one short `BEGIN
    IMMEDIATE` transaction, so concurrent writers queue behind SQLite's busy timeout instead
    of failing, and a killed process loses at most its uncommitted write.
    """

    def __init__(self, path: Path, *, read_only: bool, busy_timeout: float) -> None:
        self.path = path
        self.read_only = read_only
        self._busy_timeout = busy_timeout
        self._local = threading.local()
        self._epoch = 0  # bumped by close(): connections of an older epoch are reopened
        self._arg_columns: frozenset[str] = frozenset()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and checked) on first use in a thread or process."""
        key = (os.getpid(), self._epoch)
        cached: tuple[tuple[int, int], sqlite3.Connection] | None = getattr(self._local, "db", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        if cached is not None and cached[0][0] == key[0]:
            cached[1].close()  # left over from before close(); a forked child's copy is dropped
        db = migrations.connect(self.path, read_only=self.read_only, busy_timeout=self._busy_timeout)
        db.row_factory = sqlite3.Row
        self._local.db = (key, db)
        return db

    def close(self) -> None:
        """Close this thread's connection now; other threads reopen theirs on their next use."""
        self._epoch += 1
        cached = getattr(self._local, "db", None)
        self._local.db = None
        if cached is not None:
            cached[1].close()

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        """Translate SQLite's errors into HistoryError, naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise HistoryError(f"History {self.path}: {exc}", path=str(self.path)) from exc

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection for reading, SQLite's errors as HistoryError."""
        with self._sqlite_errors():
            yield self.connection()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One transaction holding the write lock from its start, committed on success; the
        argument-column cache takes what the transaction added only once it has committed."""
        if self.read_only:
            raise HistoryError(f"History {self.path} is open for reading only (its folder cannot be "
                               "written here); nothing was recorded. Copy the run folder somewhere "
                               "writable to add runs or notes.", path=str(self.path))
        with self._sqlite_errors():
            db = self.connection()
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

    def ensure_arg_columns(self, db: sqlite3.Connection, columns: Iterable[str]) -> None:
        """Add missing argument columns inside the write transaction (so adders never race); the
        cache learns of them when the transaction commits (`write`)."""
        missing = set(columns) - self._arg_columns
        if not missing:
            return
        existing = migrations.arg_columns(db)
        for column in sorted(missing - existing):
            db.execute(f'ALTER TABLE runs ADD COLUMN "{column}"')
        self._local.staged = frozenset(existing | missing)

    def has_arg_column(self, db: sqlite3.Connection, column: str) -> bool:
        """True when the file has argument column `column` (the cache is refreshed on a miss)."""
        if column not in self._arg_columns:
            self._arg_columns = frozenset(migrations.arg_columns(db))
        return column in self._arg_columns
