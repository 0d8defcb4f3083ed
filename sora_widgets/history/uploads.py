"""Uploaded input images by content hash, kept in the history file so each is uploaded once.

fal's FalBackend takes any mutable mapping of sha256 -> URL as its upload cache; this one lives
in the `uploads` table, so a sweep of many runs, or a notebook restarted tomorrow, reuses the URL.
Entries older than `max_age_s` are treated as gone, since a storage URL may not live forever.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import timedelta

from .._errors import NotFoundError
from . import migrations
from .database import Database

DAY_S = 24 * 3600.0


class UploadCache(MutableMapping[str, str]):
    """sha256 of an uploaded file -> its URL, read from and written to the history's file.

    A missing (or expired) entry is a NotFoundError, which is a KeyError as a mapping's must be."""

    def __init__(self, database: Database, *, max_age_s: float = DAY_S) -> None:
        self._database = database
        self.max_age_s = max_age_s

    def _oldest(self) -> str:
        return migrations.to_iso(migrations.now() - timedelta(seconds=self.max_age_s))

    def __getitem__(self, sha256: str) -> str:
        with self._database.read() as db:
            row = db.execute("SELECT url FROM uploads WHERE sha256 = ? AND uploaded_at >= ?",
                             (sha256, self._oldest())).fetchone()
        if row is None:
            raise self._missing(sha256)
        return str(row[0])

    def __setitem__(self, sha256: str, url: str) -> None:
        with self._database.write() as db:
            db.execute("INSERT OR REPLACE INTO uploads (sha256, url, uploaded_at) VALUES (?, ?, ?)",
                       (sha256, url, migrations.to_iso(migrations.now())))

    def __delitem__(self, sha256: str) -> None:
        with self._database.write() as db:
            if db.execute("DELETE FROM uploads WHERE sha256 = ?", (sha256,)).rowcount == 0:
                raise self._missing(sha256)

    def __iter__(self) -> Iterator[str]:
        with self._database.read() as db:
            rows = db.execute("SELECT sha256 FROM uploads WHERE uploaded_at >= ?",
                              (self._oldest(),)).fetchall()
        return iter([str(row[0]) for row in rows])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def _missing(self, sha256: str) -> NotFoundError:
        return NotFoundError(f"No upload of {sha256!r} is remembered in the history at "
                             f"{self._database.path} (entries expire after {self.max_age_s:g} s).",
                             key=sha256)
