"""`History.find`'s filters as SQL: one WHERE clause and its parameters, so finding, counting and
exporting select the same runs.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ..records import JobStatus
from . import migrations
from .database import Database

_FILTERED_COLUMNS = {"status": "status", "endpoint_id": "endpoint_id", "backend": "backend",
                     "sweep_id": "sweep_id", "model": migrations.ARG_PREFIX + "model"}


def where_clause(
    database: Database,
    db: sqlite3.Connection,
    *,
    status: Any = None,
    model: Any = None,
    endpoint_id: Any = None,
    backend: Any = None,
    sweep_id: Any = None,
    text: str | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (empty for no filter) and parameters for `find`'s filters; a list value
    matches any of its items, `text` looks in the prompt, the notes and the tags."""
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
        if column.startswith(migrations.ARG_PREFIX) and not database.has_arg_column(db, column):
            clauses.append("0")  # no run has had this argument yet
            continue
        clauses.append(f'"{column}" IN ({", ".join("?" * len(wanted))})')
        params.extend(wanted)
    if text is not None:
        fields = ["notes", "tags"]
        if database.has_arg_column(db, migrations.ARG_PREFIX + "prompt"):
            fields.append(f'"{migrations.ARG_PREFIX}prompt"')
        clauses.append("(" + " OR ".join(f"sw_contains({f}, ?)" for f in fields) + ")")
        params.extend([text] * len(fields))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
