"""Sweeps: one call runs every combination of the fields given as lists, concurrently.

`sweep(model=[...], duration=[4, 8], repeat=2, ...)` validates every combination and prices the
whole run before anything is sent, refuses a run over its budget, then submits every job at once
through the generation helper, tagging its history row with the sweep id; each waits, pending and
unsent, for a place under the sweep's `max_concurrent` and the JobRunner's own limit. The plan is
saved beside the history, so `Sweep.open(sweep_id)` after a kernel restart follows what was in
flight and submits only what never was. Reading a sweep back (tables, grid, reports) is `tables.py`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._errors import (
    BudgetError,
    CellTakenError,
    GenerationError,
    HistoryError,
    NotFoundError,
    SoraWidgetsError,
    ValidationError,
    WaitTimeout,
)
from ..backends import Backend, resolve_backend
from ..history.rows import CLOSED_UNSENT
from ..jobs.generation import open_runner, require_key, resume, submit
from ..jobs.job import Job, cancel_jobs
from ..jobs.runner import JobRunner, Limit, default_runner
from ..media import atomic_write
from ..pricing import format_usd
from ..records import JobEvent, JobStatus
from ..schema.documents import DEFAULT_ENDPOINT, EndpointSpec, bundled_endpoints, schema_for
from .plan import ENDPOINT_AXIS, Cell, SweepPlan, cell_key, normalize_images, plan_cells, split_axes
from .tables import SweepTables, plans_dir

if TYPE_CHECKING:
    from ..history.store import History

__all__ = ["Cell", "Sweep", "SweepPlan", "sweep"]

_CANCELLED_UNSENT = "The sweep was cancelled before this job was submitted; nothing was sent."


def _limit(runner: JobRunner, max_concurrent: int | None) -> Limit | None:
    """The runner's cap for one sweep's jobs, if `max_concurrent` asks for one."""
    return None if max_concurrent is None else runner.limiter(max_concurrent, name="max_concurrent")


def sweep(*, endpoint: EndpointSpec | list[EndpointSpec] = DEFAULT_ENDPOINT,
          backend: str | Backend | None = None, history: History | None = None,
          budget_usd: float | None = None, repeat: int = 1, max_concurrent: int | None = None,
          wait: bool = False, strict: bool = False, allow_unknown_cost: bool = False,
          confirm: Callable[[SweepPlan], bool] | None = None, runner: JobRunner | None = None,
          **fields: Any) -> Sweep:
    """Run every combination of the fields given as lists (`repeat` samples each), concurrently.

    `endpoint` is one endpoint (an id, a document path or an EndpointSchema) or a list of them:
    then one canonical request is mapped onto each endpoint's own fields (see `mapping`), and
    `strict=True` refuses any value that would have to change. Before anything is sent the plan
    is validated and priced; over `budget_usd` it raises BudgetError (the preview backend is free,
    so it is never over), as it does when a price is unknown unless `allow_unknown_cost=True`.
    A `confirm(plan)` that returns False leaves the sweep unstarted (`sweep.start()` sends it
    later). `wait=True` returns once every job ended. Nothing is printed: the returned Sweep shows
    its plan (with each endpoint's mapping) and status when a notebook displays it.

    Jobs run on `runner` (the package's default JobRunner unless given): at most `max_concurrent`
    of this sweep at once (default: no cap of its own), and never more than the runner's limit.
    """
    from ..history.store import History

    _check_options(repeat, budget_usd)
    runner = open_runner(runner)
    limit = _limit(runner, max_concurrent)
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
    chosen = resolve_backend(backend, history=log, cache=runner.backends)
    bundled = set(bundled_endpoints())
    plan = SweepPlan(sweep_id=uuid.uuid4().hex[:10], endpoint_id=next(iter(schemas)),
                     backend=chosen.name, axes=axes, fields=fixed, repeat=repeat,
                     budget_usd=budget_usd, created_at=datetime.now(timezone.utc).isoformat(),
                     cells=plan_cells(schemas, axes, fixed, repeat, strict=strict),
                     endpoints=tuple(schemas), strict=strict,
                     documents={e: dict(s.document) for e, s in schemas.items()
                                if e not in bundled and s.document},
                     max_concurrent=max_concurrent)
    _check_budget(plan, budget_usd, allow_unknown_cost=allow_unknown_cost)
    run = Sweep(plan, history=log, backend=backend if backend is not None else chosen, runner=runner,
                limit=limit)
    if confirm is not None and not confirm(plan):
        return run
    run.start()
    return run.wait() if wait else run


def _save_plan(plan: SweepPlan, path: Path) -> None:
    """Write the plan whole (atomically, and only when it changed), so a kill or a second process
    reading it never meets half a file."""
    text = json.dumps(plan.to_json(), indent=1, default=str)
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:  # not saved yet
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text.encode("utf-8"))


def _read_plan(path: Path) -> SweepPlan:
    """A saved plan, or a HistoryError naming the file when it cannot be one."""
    try:
        return SweepPlan.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HistoryError(f"The saved sweep plan {path} cannot be read ({type(exc).__name__}: {exc}); "
                           "it was left as it is.", path=str(path)) from exc


def _check_options(repeat: object, budget_usd: object) -> None:
    """Refuse a `repeat` or `budget_usd` a sweep cannot use, naming it, before any work."""
    if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
        raise ValidationError([("repeat", f"must be a whole number >= 1 (got {repeat!r})")])
    if budget_usd is not None and (isinstance(budget_usd, bool) or not isinstance(budget_usd, (int, float))
                                   or not budget_usd >= 0):
        raise ValidationError([("budget_usd", f"must be a number of US dollars >= 0 (got {budget_usd!r})")])


def _check_budget(plan: SweepPlan, budget_usd: float | None, *, allow_unknown_cost: bool) -> None:
    """BudgetError, before anything is sent, for a charged plan over `budget_usd` or (unless
    allowed) with jobs of unknown price; the preview is free, so never over."""
    if budget_usd is None or not plan.charged:
        return
    over = plan.estimate_usd > budget_usd
    if not over and not (plan.unpriced and not allow_unknown_cost):
        return
    why = (f"its estimate {format_usd(plan.estimate_usd)} exceeds the budget {format_usd(budget_usd)}"
           if over else f"{plan.unpriced} of its jobs have no known price (allow_unknown_cost=True "
           "sends them anyway)")
    raise BudgetError(f"Sweep refused, nothing was sent: {why} (budget_usd={budget_usd}, "
                      f"{plan.n_jobs} jobs). Raise budget_usd or remove values from the lists.",
                      estimate_usd=plan.estimate_usd, budget_usd=budget_usd)


class Sweep(SweepTables):
    """A running (or finished, or reopened) sweep: its jobs, their rows, tables, grid and reports."""

    def __init__(self, plan: SweepPlan, *, history: History, backend: str | Backend | None = None,
                 runner: JobRunner | None = None, limit: Limit | None = None) -> None:
        """Made by `sweep()` or `Sweep.open()`; nothing is sent until `start()`. Jobs run on `runner`,
        at most `limit` of them at once (see `JobRunner.limiter`)."""
        super().__init__(plan, history=history)
        self._backend = backend if backend is not None else plan.backend
        self.runner = runner or default_runner()
        self._limit = limit
        self._submitting = threading.Lock()  # one cell submitted at a time, never after cancel()
        self._cancelled = False

    @classmethod
    def open(cls, sweep_id: str, history: History | None = None, *,
             backend: str | Backend | None = None, max_concurrent: int | None = None,
             runner: JobRunner | None = None) -> Sweep:
        """Reopen a saved sweep (e.g. after a kernel restart) and finish only what did not finish.

        Submitted jobs still under way are followed by request id; rows never sent whose process is
        gone are sent once; cells that never got a row, or whose row died before it was sent, are
        submitted now. Ended cells are left as they are. `max_concurrent` defaults to the cap the
        sweep was started with. An unknown id raises NotFoundError.
        """
        from ..history.store import History

        log = history if history is not None else History()
        path = plans_dir(log) / f"{sweep_id}.json"
        if not path.is_file():
            known = sorted(p.stem for p in plans_dir(log).glob("*.json"))
            raise NotFoundError(f"No sweep {sweep_id!r} beside {log.path}; saved sweeps: "
                                f"{', '.join(known) or 'none'}.", key=sweep_id)
        plan = _read_plan(path)
        runner = open_runner(runner)
        limit = _limit(runner, max_concurrent if max_concurrent is not None else plan.max_concurrent)
        run = cls(plan, history=log, backend=backend, runner=runner, limit=limit)
        followed = {job.history_id: job
                    for job in resume(log, backend=backend, sweep_id=sweep_id, runner=runner, limit=limit)}
        run._match_rows(followed)
        return run.start()

    def _match_rows(self, followed: dict[int, Job]) -> None:
        """Tie the sweep's history rows to its cells, and the jobs `resume()` followed to theirs."""
        by_id = {cell.cell_id: cell.index for cell in self.plan.cells}
        waiting: dict[str, list[int]] = {}  # rows written before cell ids: matched by request
        for cell in self.plan.cells:
            waiting.setdefault(cell.key, []).append(cell.index)
        for row in sorted(self.history.find(sweep_id=self.sweep_id), key=lambda r: r["id"]):
            if row["error_type"] == CLOSED_UNSENT and not row["request_id"]:
                continue
            index = by_id.get(row["cell_key"] or "")
            if index is None and not row["cell_key"]:
                slots = waiting.get(cell_key(row["arguments"], row["endpoint_id"]))
                index = slots.pop(0) if slots else None
            if index is None or index in self._rows:
                continue
            self._rows[index] = row["id"]
            if row["id"] in followed:
                job = followed[row["id"]]
                self._jobs[index] = job
                job.on_event(self._on_event)

    def start(self) -> Sweep:
        """Save the plan and submit every cell that has no row yet, all at once: each job waits,
        pending and unsent, for its place, so this returns without waiting for any of them.
        What every cell would meet (no key for fal) is raised once, before anything is recorded."""
        _save_plan(self.plan, self.plan_path)
        with self._lock:
            todo = any(c.index not in self._rows and c.index not in self._unsent for c in self.plan.cells)
        if todo:
            require_key(resolve_backend(self._backend, history=self.history, cache=self.runner.backends),
                        self.plan.endpoint_id)
        for cell in self.plan.cells:
            with self._submitting:
                with self._lock:
                    if cell.index in self._rows or cell.index in self._unsent:
                        continue
                    if self._cancelled:
                        self._unsent[cell.index] = (JobStatus.CANCELLED.value, _CANCELLED_UNSENT)
                        continue
                self._submit(cell)
        self._notify()
        return self

    def _submit(self, cell: Cell) -> None:
        try:
            job = submit(endpoint=cell.endpoint_id, arguments=cell.arguments,
                         backend=self._backend, history=self.history,
                         schema=self._schemas[cell.endpoint_id], sweep_id=self.sweep_id,
                         cell_key=cell.cell_id, on_event=self._on_event, runner=self.runner,
                         limit=self._limit)
        except CellTakenError as exc:  # another process recorded (and follows) this cell first
            with self._lock:
                self._rows[cell.index] = exc.history_id
        except SoraWidgetsError as exc:
            with self._lock:
                self._unsent[cell.index] = (JobStatus.FAILED.value, str(exc))
        else:
            with self._lock:
                self._jobs[cell.index] = job
                self._rows[cell.index] = job.history_id

    def _on_event(self, job: Job, event: JobEvent) -> None:
        self._notify()

    def wait(self, timeout: float | None = None) -> Sweep:
        """Block until every job has ended (failed and cancelled ones included); WaitTimeout (a
        TimeoutError) leaves them running."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in self.jobs:
            try:
                job.result(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except GenerationError:
                continue
            except WaitTimeout:
                raise WaitTimeout(f"Sweep {self.sweep_id} is not finished after {timeout} s: "
                                   f"{self.status}; it keeps running.") from None
        return self

    def cancel(self) -> None:
        """Submit nothing more and cancel every job not ended: those waiting for a place end
        `cancelled` without being sent, those sent are cancelled on the backend."""
        with self._submitting:
            self._cancelled = True
        try:
            cancel_jobs(self.jobs)
        finally:
            self._notify()

    @property
    def jobs(self) -> list[Job]:
        """The jobs submitted or followed in this process, in cell order."""
        with self._lock:
            return [self._jobs[i] for i in sorted(self._jobs)]
