"""Who follows an unfinished run: its owner process and heartbeat, claimed and released under the
write lock, so `resume()` takes over only runs whose owner is gone and never follows one twice.
"""

from __future__ import annotations

from collections.abc import Iterable

from .._owner import Owner
from ..records import JobStatus
from . import migrations
from .database import Database


class Claims:
    """The owner bookkeeping of `History` (see `_owner.py` for what an owner is)."""

    _database: Database

    def claim(self, id: int, owner: Owner, *, previous: str | None) -> bool:
        """Make `owner` follow unfinished run `id` if its owner is still `previous` (the text the
        caller read); False when another process claimed it first or it has ended."""
        final = [status.value for status in JobStatus if status.is_final]
        with self._database.write() as db:
            cursor = db.execute(
                f"UPDATE runs SET owner = ?, heartbeat_at = ? WHERE id = ? AND owner IS ? "
                f"AND status NOT IN ({', '.join('?' * len(final))})",
                [owner.to_text(), migrations.to_iso(migrations.now()), id, previous, *final])
        return cursor.rowcount == 1

    def heartbeat(self, ids: Iterable[int], owner: Owner) -> None:
        """Renew the heartbeat of the runs `owner` follows (called every few seconds while it does)."""
        ids = list(ids)
        if not ids:
            return
        with self._database.write() as db:
            db.execute(f"UPDATE runs SET heartbeat_at = ? WHERE owner = ? AND id IN "
                       f"({', '.join('?' * len(ids))})",
                       [migrations.to_iso(migrations.now()), owner.to_text(), *ids])

    def release(self, id: int, owner: Owner) -> None:
        """Stop owning run `id`, so the next `resume()` anywhere may follow it."""
        with self._database.write() as db:
            db.execute("UPDATE runs SET owner = NULL, heartbeat_at = NULL WHERE id = ? AND owner = ?",
                       (id, owner.to_text()))
