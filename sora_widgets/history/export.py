"""The history as tables: a typed pandas DataFrame and CSV/JSONL/Parquet exports.

pandas and the Parquet engines are imported only when asked for, so `import sora_widgets` and
the write side never pay for them.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from .._errors import HistoryError
from ..records import JobStatus
from . import migrations
from .rows import PATH_COLUMNS, absolute

if TYPE_CHECKING:
    import pandas
    import pandas as pd

    from .store import History

_CATEGORIES = ("status", "backend", "endpoint_id", "model", "resolution", "aspect_ratio")
_LEAD = ("id", "created_at", "status", "endpoint_id", "backend")  # first columns; arguments follow
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # what makes a CSV cell a formula


def _pandas() -> ModuleType:
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise HistoryError("Tables and CSV/Parquet exports of the history need pandas: "
                           "pip install pandas.") from exc


def dataframe(columns: list[str], rows: list[tuple[Any, ...]], *, folder: Path | None = None) -> pd.DataFrame:
    """Stored rows as a typed DataFrame, arguments expanded into their own columns, media paths
    made absolute against the run `folder`."""
    pd = _pandas()
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for name in PATH_COLUMNS:
        frame[name] = [absolute(value, folder) for value in frame[name]]
    parsed = [json.loads(text) for text in frame.pop("arguments_json")]
    record_names = set(frame.columns) | {"arguments", "result"}
    arguments = pd.DataFrame({
        migrations.ARG_PREFIX + name if name in record_names else name:
            _typed_argument(pd, [args.get(name) for args in parsed], frame.index)
        for name in dict.fromkeys(name for args in parsed for name in args)}, index=frame.index)
    frame["result"] = [json.loads(text) if isinstance(text, str) else None
                       for text in frame.pop("result_json")]
    for name in ("logs", "tags"):
        frame[name] = [json.loads(text) for text in frame[name]]
    for name in migrations.TIME_COLUMNS:
        frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601")
    for name, kind in migrations.COLUMNS.items():
        if kind == "real":
            frame[name] = frame[name].astype("float64")
    frame["id"] = frame["id"].astype("int64")
    frame["rating"] = frame["rating"].astype("Int64")
    frame["status"] = pd.Categorical(frame["status"], categories=[s.value for s in JobStatus])
    lead = frame[list(_LEAD)]
    table = pd.concat([lead, arguments, frame.drop(columns=list(_LEAD))], axis=1)
    for name in _CATEGORIES[1:]:
        if name in table.columns and not isinstance(table[name].dtype, pd.CategoricalDtype):
            table[name] = table[name].astype("category")
    return cast("pandas.DataFrame", table)


def _typed_argument(pd: ModuleType, values: list[Any], index: pd.Index) -> pd.Series:
    """One argument's values as booleans, integers, floats or text where every value allows it."""
    kinds = {type(value) for value in values if value is not None}
    dtype = {frozenset({bool}): "boolean", frozenset({int}): "Int64", frozenset({float}): "float64",
             frozenset({int, float}): "float64", frozenset({str}): None}.get(frozenset(kinds), object)
    return cast("pandas.Series", pd.Series(values, index=index, dtype=dtype))


def flat(table: pd.DataFrame, *, spreadsheet: bool = False) -> pd.DataFrame:
    """`table` with every object column that is not plain text turned into JSON text (for files).

    With `spreadsheet`, text a spreadsheet would run as a formula is also quoted (see `_inert`);
    JSON text starts with a quote or bracket, and numbers stay numbers, so neither needs it.
    """
    table = table.copy()
    for name in table.columns:
        column = table[name]
        if column.dtype == object and not all(isinstance(value, str) for value in column.dropna()):
            table[name] = [None if _missing(value) else migrations.dumps(value) for value in column]
        elif spreadsheet and any(_is_formula(value) for value in column):
            table[name] = [_inert(value) for value in column]
    if spreadsheet:
        table.columns = [_inert(str(name)) for name in table.columns]
    return table


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _is_formula(value: Any) -> bool:
    """Text a spreadsheet would evaluate rather than show (OWASP "CSV injection")."""
    return isinstance(value, str) and value.startswith(_FORMULA_STARTS)


def _inert(value: Any) -> Any:
    """`value` with a leading `'` when it is formula-like text, so a spreadsheet shows it as text."""
    return "'" + value if _is_formula(value) else value


def export(log: History, path: Path, filters: dict[str, Any]) -> Path:
    """Write `log` to `path` in the format its suffix names, via a temporary file and a rename."""
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".parquet"):
        raise HistoryError(f"Cannot export to {path.name!r}: name a .csv, .jsonl or .parquet file.",
                           path=str(path))
    engine = _parquet_engine() if suffix == ".parquet" else None
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        if suffix == ".jsonl":
            with partial.open("w", encoding="utf-8") as out:
                for record in log.find(**filters):
                    out.write(migrations.dumps(record) + "\n")
        else:
            table = flat(log.to_dataframe(**filters), spreadsheet=engine is None)
            if engine is None:
                table.to_csv(partial, index=False)
            else:
                table.to_parquet(partial, index=False, engine=engine)  # type: ignore[call-overload]
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _parquet_engine() -> str:
    for engine in ("pyarrow", "fastparquet"):
        try:
            importlib.import_module(engine)
        except ImportError:
            continue
        return engine
    raise HistoryError("Parquet export needs pyarrow or fastparquet, and neither is installed: "
                       "pip install pyarrow (or export to .csv or .jsonl).")
