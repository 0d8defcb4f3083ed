"""A sweep read back: each cell's state (from the jobs followed here, else the history), its
tables, summary, chart, compare grid, ratings and reports. `Sweep` (sweeps.py) adds running it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import GenerationError, NotFoundError, ValidationError
from .._html import html_text, media_src, shown_value
from ..records import JobStatus
from .plan import ENDPOINT_AXIS, Cell, SweepPlan

if TYPE_CHECKING:
    import matplotlib.figure
    import pandas as pd

    from ..history.store import History
    from ..jobs.job import Job
    from ..widgets.grid import CompareGrid

__all__ = ["WAITING", "SweepTables", "plans_dir"]

WAITING = "waiting"  # the status of a cell that has not been submitted yet


def plans_dir(history: History) -> Path:
    """Where sweeps' plans (and their metrics) are saved: `sweeps/` beside the history's media."""
    return history.folder / "sweeps"


class SweepTables:
    """A sweep's cells and what became of them, shown as tables, a grid and reports."""

    def __init__(self, plan: SweepPlan, *, history: History) -> None:
        self.plan = plan
        self.history = history
        self._schemas = plan.schemas()
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}  # cell index -> job followed in this process
        self._rows: dict[int, int] = {}  # cell index -> history id
        self._unsent: dict[int, tuple[str, str]] = {}  # cell index -> (status, why): ended without a row
        self._metrics: dict[int, dict[str, Any]] = {}  # history id -> video metrics
        self._final_rows: dict[int, Any] = {}  # history id -> its final row, read once
        self._ratings: dict[int, int | None] = {}  # history id -> rating given through rate()
        self._listeners: list[Callable[[], None]] = []

    @property
    def sweep_id(self) -> str:
        return self.plan.sweep_id

    @property
    def plan_path(self) -> Path:
        return plans_dir(self.history) / f"{self.sweep_id}.json"

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback()` whenever a job of the sweep is submitted or moves (any thread)."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()

    # --- reading it ------------------------------------------------------------------------------

    def records(self) -> list[tuple[Cell, dict[str, Any]]]:
        """Each cell with its current state: status, error, timings, cost, video, rating.

        Jobs followed here are read from memory; the history is read only for rows this process
        does not follow and has not seen final, so a grid refreshing on every event stays cheap."""
        with self._lock:
            jobs, ids, unsent = dict(self._jobs), dict(self._rows), dict(self._unsent)
        rows = self._stored_rows({hid for index, hid in ids.items() if index not in jobs})
        out = []
        for cell in self.plan.cells:
            history_id = ids.get(cell.index)
            row = rows.get(history_id) if history_id is not None else None
            rating = row["rating"] if row else None
            if history_id is not None:
                rating = self._ratings.get(history_id, rating)  # given through rate(), not yet read back
            status, error = unsent.get(cell.index, (WAITING, None))
            state: dict[str, Any] = {"status": status, "error": error, "history_id": history_id,
                                     "queued_s": None, "running_s": None, "total_s": None,
                                     "cost_usd": cell.cost_usd, "video_path": None, "video_url": None,
                                     "rating": rating}
            if cell.index in jobs:
                gen = jobs[cell.index].generation
                state.update(status=gen.status.value, error=gen.error, queued_s=gen.queued_s,
                             running_s=gen.running_s, total_s=gen.total_s, cost_usd=gen.cost_usd,
                             video_path=gen.video_path, video_url=gen.video_url)
            elif row is not None:
                state.update(status=JobStatus(row["status"]).value, error=row["error_message"],
                             queued_s=row["queued_s"], running_s=row["running_s"],
                             total_s=row["total_s"], cost_usd=row["cost_usd"],
                             video_path=row["video_path"], video_url=row["video_url"])
            out.append((cell, state))
        return out

    def _stored_rows(self, wanted: set[int]) -> dict[int, Any]:
        """The history rows `wanted`, read again only while one is missing or unfinished."""
        if wanted - self._final_rows.keys():
            fresh = {row["id"]: row for row in self.history.find(sweep_id=self.sweep_id)}
            self._final_rows.update({i: row for i, row in fresh.items() if row["status"].is_final})
            return fresh
        return self._final_rows

    @property
    def status(self) -> dict[str, int]:
        """How many jobs are in each status (`waiting` = not submitted yet)."""
        counts: dict[str, int] = {}
        for _, state in self.records():
            counts[state["status"]] = counts.get(state["status"], 0) + 1
        return counts

    @property
    def done(self) -> bool:
        return all(s["status"] != WAITING and JobStatus(s["status"]).is_final for _, s in self.records())

    def _metrics_of(self, cell: Cell, state: Mapping[str, Any]) -> dict[str, Any]:
        """Video metrics of a finished cell, computed once per video and cached beside the plan."""
        history_id = state["history_id"]
        if state["status"] != "completed" or not state["video_path"] or history_id is None:
            return {}
        with self._lock:
            if not self._metrics:
                self._metrics.update(self._load_metrics())
            if history_id in self._metrics:
                return self._metrics[history_id]
        from .metrics import video_metrics

        fields = self._schemas[cell.endpoint_id]
        image = next((v for k, v in cell.arguments.items()
                      if k in fields and fields[k].kind == "image"), None)
        try:
            found = dict(video_metrics(state["video_path"], image=image,
                                       requested=cell.request or cell.arguments))
        except (GenerationError, ValidationError) as exc:
            found = {"metrics_error": str(exc)}
        with self._lock:
            self._metrics[history_id] = found
            path = self.plan_path.with_suffix(".metrics.json")
            path.write_text(json.dumps(self._metrics, default=str), encoding="utf-8")
        return found

    def _load_metrics(self) -> dict[int, dict[str, Any]]:
        path = self.plan_path.with_suffix(".metrics.json")
        if not path.is_file():
            return {}
        return {int(k): v for k, v in json.loads(path.read_text(encoding="utf-8")).items()}

    def to_dataframe(self) -> pd.DataFrame:
        """One row per job: axis values, sample, status, error, timings, cost, video and metrics."""
        import pandas as pd

        taken = set(self.plan.axes) | {"endpoint_id", "mapped", "sample", "status", "error", "history_id",
                                       "queued_s", "running_s", "total_s", "cost_usd", "video_path",
                                       "video_url", "rating"}
        rows = []
        for cell, state in self.records():
            found = self._metrics_of(cell, state)
            mapped = "; ".join(str(n) for n in cell.mapping if n.changed)
            rows.append({**cell.values, "endpoint_id": cell.endpoint_id, "sample": cell.sample,
                         **({"mapped": mapped} if self.plan.cross_model else {}), **state,
                         **{(f"metric_{k}" if k in taken else k): v for k, v in found.items()}})
        return pd.DataFrame(rows)

    def summary(self, by: str | None = None) -> pd.DataFrame:
        """Mean and spread (std over repeats and other axes) of every numeric column per `by` value
        (default: the endpoint of a cross-model sweep, else the model)."""
        by = by or (ENDPOINT_AXIS if self.plan.cross_model else "model")
        frame = self.to_dataframe()
        if by not in frame.columns:
            raise ValidationError([("by", f"cannot summarise by {by!r}: the sweep's axes are "
                                          f"{', '.join(self.plan.axes) or 'none'}")])
        frame[by] = frame[by].map(lambda v: v if isinstance(v, (str, int, float)) else json.dumps(v))
        skip = {"sample", "history_id", "rating", "endpoint_id", by}
        numeric = [c for c in frame.columns if c not in skip and frame[c].dtype.kind in "if"]
        return frame.groupby(by, sort=False)[numeric].agg(["mean", "std", "count"])

    # --- views -----------------------------------------------------------------------------------

    def chart(self, path: str | Path | None = None, *, by: str | None = None) -> matplotlib.figure.Figure:
        """A small chart of latency, cost and motion per `by` value (saved to `path` if given)."""
        from .report import chart

        by = by or (ENDPOINT_AXIS if self.plan.cross_model else "model")
        return chart(self.to_dataframe(), by=by, path=path)

    def grid(self, rows: str | None = None, cols: str | None = None) -> CompareGrid:
        """A comparison grid widget: cells arranged by two axes, synchronised playback, ratings.

        By default columns are the `endpoint` axis of a cross-model sweep, else the `model` axis
        (else the first axis), and rows the `prompt` axis (else the next axis); other axes and
        repeats stack inside each cell.
        """
        from ..widgets.grid import CompareGrid

        rows, cols = self.grid_axes(rows, cols)
        return CompareGrid(self, rows=rows, cols=cols)

    def grid_axes(self, rows: str | None, cols: str | None) -> tuple[str | None, str | None]:
        names = list(self.plan.axes)
        if cols is None:
            cols = next((n for n in (ENDPOINT_AXIS, "model") if n in names and rows != n),
                        next((n for n in names if n != rows), None))
        if rows is None:
            rows = "prompt" if "prompt" in names and cols != "prompt" else next(
                (n for n in names if n != cols), None)
        return rows, cols

    def grid_cells(self, rows: str | None, cols: str | None
                   ) -> tuple[list[str], list[str], list[dict[str, Any]]]:
        """Row labels, column labels and one dict per job (CellState keys plus `video_path`)."""
        for option, name in (("rows", rows), ("cols", cols)):
            if name is not None and name not in self.plan.axes:
                raise ValidationError([(option, f"{name!r} is not an axis of sweep {self.sweep_id}; "
                                                f"axes: {', '.join(self.plan.axes) or 'none'}")])
        row_values = self.plan.axes[rows] if rows else [None]
        col_values = self.plan.axes[cols] if cols else [None]
        others = [n for n in self.plan.axes if n not in (rows, cols)]
        cells = []
        for cell, state in self.records():
            bits = [f"{n}={_label(cell.values[n])}" for n in others]
            if self.plan.repeat > 1:
                bits.append(f"#{cell.sample + 1}")
            cells.append({
                "row": row_values.index(cell.values[rows]) if rows else 0,
                "col": col_values.index(cell.values[cols]) if cols else 0,
                "status": state["status"], "src": media_src(state["video_path"], state["video_url"]),
                "label": " · ".join(bits), "history_id": state["history_id"],
                "error": state["error"], "rating": state["rating"],
                "video_path": state["video_path"]})
        return ([_label(v) for v in row_values], [_label(v) for v in col_values], cells)

    def rate(self, history_id: int, rating: int | None) -> None:
        """Store a user's rating (1 to 5, None clears it) on one of this sweep's rows."""
        with self._lock:
            mine = history_id in self._rows.values()
        if not mine:
            raise NotFoundError(f"History id {history_id} is not a job of sweep {self.sweep_id}.",
                                key=history_id)
        self.history.annotate(history_id, rating=rating)
        self._ratings[history_id] = rating
        self._notify()

    def report(self, path: str | Path = "report.html") -> Path:
        """Write one self-contained HTML file: videos side by side, parameters, metrics, code."""
        from .report import write_report

        return write_report(self, path)

    def to_notebook(self, path: str | Path = "sweep.ipynb") -> Path:
        """Write a notebook (nbformat v4) that runs this sweep again and shows its grid and table."""
        from .report import write_notebook

        return write_notebook(self, path)

    def __repr__(self) -> str:
        """Cheap on purpose: what this process holds in memory, never a history query."""
        with self._lock:
            followed, ended = len(self._jobs), len(self._unsent)
        unsent = f", {ended} ended unsent" if ended else ""
        return f"Sweep({self.sweep_id!r}, {self.plan.n_jobs} jobs, {followed} followed here{unsent})"

    def status_line(self) -> str:
        """How many jobs are in each status, as one line (reads the history for rows not followed)."""
        return "Status: " + ", ".join(f"{n} {s}" for s, n in self.status.items()) + "."

    def _repr_html_(self) -> str:
        return (f"<div class='sora-sweep'>{self.plan.html()}"
                f"<div>{html_text(self.status_line())}</div></div>")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self) if cycle else f"{self.plan.describe()}\n{self.status_line()}")


def _label(value: Any) -> str:
    """An axis value as short display text (lists as JSON, None as empty, local files relative
    to the working folder)."""
    value = shown_value(value)
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value) if isinstance(value, list) else str(value)
