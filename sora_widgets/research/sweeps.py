"""Sweeps: one call runs every combination of the fields given as lists, concurrently.

`sweep(model=[...], duration=[4, 8], repeat=2, ...)` validates every combination and prices the
whole run before anything is sent, refuses a run over its budget, then submits each job through
the generation helper (at most `max_concurrent` at once), tagging its history row with the sweep
id. The plan is saved beside the history, so `Sweep.open(sweep_id)` after a kernel restart
follows what was in flight and submits only what never was.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import BudgetError, GenerationError, SoraWidgetsError, ValidationError
from ..backends import Backend, resolve_backend
from ..jobs.generation import resume, submit
from ..jobs.job import Job, max_jobs
from ..pricing import format_usd
from ..records import JobEvent, JobStatus, media_src
from ..schema.documents import DEFAULT_ENDPOINT, EndpointSpec, bundled_endpoints, schema_for
from .plan import (
    ENDPOINT_AXIS,
    Cell,
    SweepPlan,
    cell_key,
    html_text,
    normalize_images,
    plan_cells,
    shown_value,
    split_axes,
)

if TYPE_CHECKING:
    import matplotlib.figure
    import pandas as pd

    from ..history.store import History
    from ..widgets.grid import CompareGrid

__all__ = ["Cell", "Sweep", "SweepPlan", "sweep"]

WAITING = "waiting"  # the status of a cell that has not been submitted yet
_DIED_BEFORE_SUBMIT = "interrupted"  # rows an older release's resume() closed before they were sent


def _plans_dir(history: History) -> Path:
    return history.media_dir.parent / "sweeps"


def sweep(*, endpoint: EndpointSpec | list[EndpointSpec] = DEFAULT_ENDPOINT,
          backend: str | Backend | None = None, history: History | None = None,
          budget_usd: float | None = None, repeat: int = 1, max_concurrent: int | None = None,
          wait: bool = False, strict: bool = False, allow_unknown_cost: bool = False,
          confirm: Callable[[SweepPlan], bool] | None = None, **fields: Any) -> Sweep:
    """Run every combination of the fields given as lists (`repeat` samples each), concurrently.

    `endpoint` is one endpoint (an id, a document path or an EndpointSchema) or a list of them:
    then one canonical request is mapped onto each endpoint's own fields (see `mapping`), and
    `strict=True` refuses any value that would have to change. Before anything is sent the plan
    is validated and priced; over `budget_usd` it raises BudgetError (the preview backend is free,
    so it is never over), as it does when a price is unknown unless `allow_unknown_cost=True`.
    A `confirm(plan)` that returns False leaves the sweep unstarted (`sweep.start()` sends it
    later). `wait=True` returns once every job ended. Nothing is printed: the returned Sweep shows
    its plan (with each endpoint's mapping) and status when a notebook displays it.
    """
    from ..history.store import History

    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValidationError([("repeat", f"must be a whole number >= 1 (got {repeat!r})")])
    max_concurrent = max_jobs() if max_concurrent is None else max_concurrent
    if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
        raise ValidationError([("max_concurrent", f"must be a whole number >= 1 (got {max_concurrent!r})")])
    if budget_usd is not None and (isinstance(budget_usd, bool) or not isinstance(budget_usd, (int, float))
                                   or not budget_usd >= 0):
        raise ValidationError([("budget_usd", f"must be a number of US dollars >= 0 (got {budget_usd!r})")])
    specs = list(endpoint) if isinstance(endpoint, (list, tuple)) else [endpoint]
    if not specs:
        raise ValidationError([("endpoint", "an empty list gives the sweep nothing to run")])
    schemas = {s.endpoint_id: s for s in (schema_for(spec) for spec in specs)}
    log = history if history is not None else History()
    axes, fixed = split_axes(schemas, fields)
    if ENDPOINT_AXIS in fields:
        raise ValidationError([(ENDPOINT_AXIS, "give endpoints with endpoint=[...], not as a field")])
    if isinstance(endpoint, (list, tuple)):
        axes = {ENDPOINT_AXIS: list(schemas), **axes}
    normalize_images(schemas, axes, fixed, log.media_dir)
    chosen = resolve_backend(backend, history=log)
    bundled = set(bundled_endpoints())
    plan = SweepPlan(sweep_id=uuid.uuid4().hex[:10], endpoint_id=next(iter(schemas)),
                     backend=chosen.name, axes=axes, fields=fixed, repeat=repeat,
                     budget_usd=budget_usd, created_at=datetime.now(timezone.utc).isoformat(),
                     cells=plan_cells(schemas, axes, fixed, repeat, strict=strict),
                     endpoints=tuple(schemas), strict=strict,
                     documents={e: dict(s.document) for e, s in schemas.items()
                                if e not in bundled and s.document})
    over = plan.estimate_usd > budget_usd if budget_usd is not None else False
    if budget_usd is not None and plan.charged and (over or (plan.unpriced and not allow_unknown_cost)):
        why = (f"its estimate {format_usd(plan.estimate_usd)} exceeds the budget {format_usd(budget_usd)}"
               if over else f"{plan.unpriced} of its jobs have no known price (allow_unknown_cost=True "
               "sends them anyway)")
        raise BudgetError(f"Sweep refused, nothing was sent: {why} (budget_usd={budget_usd}, "
                          f"{plan.n_jobs} jobs). Raise budget_usd or remove values from the lists.",
                          estimate_usd=plan.estimate_usd, budget_usd=budget_usd)
    run = Sweep(plan, history=log, backend=backend if backend is not None else chosen,
                max_concurrent=max_concurrent)
    if confirm is not None and not confirm(plan):
        return run
    run.start()
    return run.wait() if wait else run


class Sweep:
    """A running (or finished, or reopened) sweep: its jobs, their rows, tables, grid and reports."""

    def __init__(self, plan: SweepPlan, *, history: History, backend: str | Backend | None = None,
                 max_concurrent: int | None = None) -> None:
        """Made by `sweep()` or `Sweep.open()`; nothing is sent until `start()`."""
        self.plan = plan
        self.history = history
        self._backend = backend if backend is not None else plan.backend
        self._schemas = plan.schemas()
        self._slots = threading.Semaphore(max_concurrent or max_jobs())
        self._holding: set[int] = set()  # history ids of jobs that hold a concurrency slot
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}  # cell index -> job followed in this process
        self._rows: dict[int, int] = {}  # cell index -> history id
        self._errors: dict[int, str] = {}  # cell index -> why it could not be submitted
        self._metrics: dict[int, dict[str, Any]] = {}  # history id -> video metrics
        self._final_rows: dict[int, Any] = {}  # history id -> its final row, read once
        self._ratings: dict[int, int | None] = {}  # history id -> rating given through rate()
        self._listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._dispatcher: threading.Thread | None = None
        self._failure: Exception | None = None

    # --- opening and running -------------------------------------------------------------------

    @property
    def sweep_id(self) -> str:
        return self.plan.sweep_id

    @property
    def plan_path(self) -> Path:
        return _plans_dir(self.history) / f"{self.sweep_id}.json"

    @classmethod
    def open(cls, sweep_id: str, history: History | None = None, *,
             backend: str | Backend | None = None, max_concurrent: int | None = None) -> Sweep:
        """Reopen a saved sweep (e.g. after a kernel restart) and finish only what did not finish.

        Submitted jobs still under way are followed by request id; cells that never got a row, or
        whose row died before it was sent, are submitted now. Ended cells are left as they are.
        """
        from ..history.store import History

        log = history if history is not None else History()
        path = _plans_dir(log) / f"{sweep_id}.json"
        if not path.is_file():
            known = sorted(p.stem for p in _plans_dir(log).glob("*.json"))
            raise KeyError(f"No sweep {sweep_id!r} beside {log.path}; saved sweeps: "
                           f"{', '.join(known) or 'none'}.")
        run = cls(SweepPlan.from_json(json.loads(path.read_text(encoding="utf-8"))), history=log,
                  backend=backend, max_concurrent=max_concurrent)
        followed = {job.history_id: job for job in resume(log, backend=backend, sweep_id=sweep_id)}
        by_id = {cell.cell_id: cell.index for cell in run.plan.cells}
        waiting: dict[str, list[int]] = {}  # rows written before cell ids: matched by request
        for cell in run.plan.cells:
            waiting.setdefault(cell.key, []).append(cell.index)
        for row in sorted(log.find(sweep_id=sweep_id), key=lambda r: r["id"]):
            if row["error_type"] == _DIED_BEFORE_SUBMIT and not row["request_id"]:
                continue
            index = by_id.get(row["cell_key"] or "")
            if index is None and not row["cell_key"]:
                slots = waiting.get(cell_key(row["arguments"], row["endpoint_id"]))
                index = slots.pop(0) if slots else None
            if index is None or index in run._rows:
                continue
            run._rows[index] = row["id"]
            if row["id"] in followed:
                job = followed[row["id"]]
                run._jobs[index] = job
                job.on_event(run._on_event)
        return run.start()

    def start(self) -> Sweep:
        """Save the plan and submit every cell that has no row yet, in the background."""
        if self._dispatcher is not None and self._dispatcher.is_alive():
            return self
        self.plan_path.parent.mkdir(parents=True, exist_ok=True)
        self.plan_path.write_text(json.dumps(self.plan.to_json(), indent=1, default=str),
                                  encoding="utf-8")
        todo = [c for c in self.plan.cells if c.index not in self._rows and c.index not in self._errors]
        self._stop.clear()
        self._dispatcher = threading.Thread(target=self._dispatch, args=(todo,), daemon=True,
                                            name=f"sora-sweep-{self.sweep_id}")
        self._dispatcher.start()
        return self

    def _dispatch(self, todo: list[Cell]) -> None:
        try:
            for cell in todo:
                self._slots.acquire()
                if self._stop.is_set():
                    self._slots.release()
                    return
                self._submit(cell)
        except Exception as exc:  # keep it for wait(): a background thread's error must surface
            self._failure = exc
            raise

    def _submit(self, cell: Cell) -> None:
        try:
            job = submit(endpoint=cell.endpoint_id, arguments=cell.arguments,
                         backend=self._backend, history=self.history,
                         schema=self._schemas[cell.endpoint_id],
                         sweep_id=self.sweep_id, cell_key=cell.cell_id, on_event=self._on_event)
        except SoraWidgetsError as exc:
            self._slots.release()
            with self._lock:
                self._errors[cell.index] = str(exc)
        else:
            with self._lock:
                self._jobs[cell.index] = job
                self._rows[cell.index] = job.history_id
                self._holding.add(job.history_id)
                if job.done():
                    self._release(job.history_id)
        self._notify()

    def _release(self, history_id: int) -> None:
        """Free the slot a job holds, once (call with the lock held)."""
        if history_id in self._holding:
            self._holding.discard(history_id)
            self._slots.release()

    def _on_event(self, job: Job, event: JobEvent) -> None:
        if event.is_final:
            with self._lock:
                self._release(job.history_id)
        self._notify()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback()` whenever a job of the sweep is submitted or moves (any thread)."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()

    def wait(self, timeout: float | None = None) -> Sweep:
        """Block until every job has ended (failed ones included); TimeoutError leaves them running."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        if self._dispatcher is not None:
            self._dispatcher.join(left())
            if self._dispatcher.is_alive():
                raise TimeoutError(f"Sweep {self.sweep_id} is still submitting after {timeout} s: "
                                   f"{self.status}; it keeps running.")
        for job in self.jobs:
            try:
                job.result(left())
            except GenerationError:
                continue
            except TimeoutError:
                raise TimeoutError(f"Sweep {self.sweep_id} is not finished after {timeout} s: "
                                   f"{self.status}; it keeps running.") from None
        if self._failure is not None:
            raise self._failure
        return self

    def cancel(self) -> None:
        """Submit nothing more and cancel the jobs still under way."""
        self._stop.set()
        self._slots.release()  # wake the dispatcher if it waits for a slot
        for job in self.jobs:
            if not job.done():
                job.cancel()

    # --- reading it ------------------------------------------------------------------------------

    @property
    def jobs(self) -> list[Job]:
        """The jobs submitted or followed in this process, in cell order."""
        with self._lock:
            return [self._jobs[i] for i in sorted(self._jobs)]

    def records(self) -> list[tuple[Cell, dict[str, Any]]]:
        """Each cell with its current state: status, error, timings, cost, video, rating.

        Jobs followed here are read from memory; the history is read only for rows this process
        does not follow and has not seen final, so a grid refreshing on every event stays cheap."""
        with self._lock:
            jobs, ids, errors = dict(self._jobs), dict(self._rows), dict(self._errors)
        rows = self._stored_rows({hid for index, hid in ids.items() if index not in jobs})
        out = []
        for cell in self.plan.cells:
            history_id = ids.get(cell.index)
            row = rows.get(history_id) if history_id is not None else None
            rating = row["rating"] if row else None
            if history_id is not None:
                rating = self._ratings.get(history_id, rating)  # given through rate(), not yet read back
            state: dict[str, Any] = {"status": WAITING, "error": errors.get(cell.index),
                                     "history_id": history_id, "queued_s": None, "running_s": None,
                                     "total_s": None, "cost_usd": cell.cost_usd, "video_path": None,
                                     "video_url": None, "rating": rating}
            if cell.index in errors:
                state["status"] = JobStatus.FAILED.value
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
            raise ValueError(f"cannot summarise by {by!r}: the sweep's axes are "
                             f"{', '.join(self.plan.axes) or 'none'}")
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
        for name in (rows, cols):
            if name is not None and name not in self.plan.axes:
                raise ValueError(f"{name!r} is not an axis of sweep {self.sweep_id}; axes: "
                                 f"{', '.join(self.plan.axes) or 'none'}")
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
            raise ValueError(f"history id {history_id} is not a job of sweep {self.sweep_id}")
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
        counts = ", ".join(f"{n} {s}" for s, n in self.status.items())
        return f"Sweep({self.sweep_id!r}, {self.plan.n_jobs} jobs: {counts})"

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
