"""A sweep's plan: its axes, fixed fields and cells, validated and priced before anything is sent.

Plain data that round-trips through JSON, so a sweep can be reopened after a kernel restart.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import ValidationError
from .pricing import estimate_cost, format_usd
from .schema import EndpointSchema, load_schema

__all__ = ["Cell", "SweepPlan", "cell_key", "normalize_images", "plan_cells", "split_axes"]


@dataclass(frozen=True)
class Cell:
    """One job of a sweep: its axis values, its sample number and the validated arguments."""

    index: int
    values: dict[str, Any]
    sample: int
    arguments: dict[str, Any]
    cost_usd: float | None

    @property
    def key(self) -> str:
        """The arguments as canonical JSON: how a history row is matched back to its cell."""
        return cell_key(self.arguments)


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will run, priced, before anything is sent; saved as JSON beside the history."""

    sweep_id: str
    endpoint_id: str
    backend: str
    axes: dict[str, list[Any]]
    fields: dict[str, Any]
    repeat: int
    budget_usd: float | None
    created_at: str
    cells: tuple[Cell, ...] = field(repr=False, compare=False)

    @property
    def n_jobs(self) -> int:
        return len(self.cells)

    @property
    def charged(self) -> bool:
        """False for the offline preview, which costs nothing."""
        return self.backend != "preview"

    @property
    def estimate_usd(self) -> float:
        """The estimated total over the jobs whose price is known (see `unpriced`)."""
        return round(sum(c.cost_usd or 0.0 for c in self.cells), 6)

    @property
    def unpriced(self) -> int:
        return sum(c.cost_usd is None for c in self.cells)

    def line(self) -> str:
        """The one-line summary printed before anything is sent."""
        shape = " x ".join(f"{len(v)} {name}" for name, v in self.axes.items()) or "1 setting"
        repeats = f" x {self.repeat} repeats" if self.repeat > 1 else ""
        cost = format_usd(self.estimate_usd) + (f" + {self.unpriced} unpriced" if self.unpriced else "")
        money = f"estimated {cost}" if self.charged else f"preview backend, free (on fal: {cost})"
        budget = f", budget {format_usd(self.budget_usd)}" if self.budget_usd is not None else ""
        return (f"Sweep {self.sweep_id}: {self.n_jobs} jobs ({shape}{repeats}) on "
                f"{self.endpoint_id} via {self.backend}, {money}{budget}.")

    def to_json(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, "endpoint_id": self.endpoint_id, "backend": self.backend,
                "axes": self.axes, "fields": self.fields, "repeat": self.repeat,
                "budget_usd": self.budget_usd, "created_at": self.created_at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepPlan:
        schema = load_schema(data["endpoint_id"])
        cells = plan_cells(schema, data["axes"], data["fields"], data["repeat"])
        return cls(**{k: data[k] for k in ("sweep_id", "endpoint_id", "backend", "axes", "fields",
                                           "repeat", "budget_usd", "created_at")}, cells=cells)


def cell_key(arguments: Mapping[str, Any]) -> str:
    return json.dumps(arguments, sort_keys=True, default=str)


def split_axes(schema: EndpointSchema, given: Mapping[str, Any]) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Fields given as lists become axes; for list-typed fields (character_ids) a list of lists."""
    axes: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for name, value in given.items():
        list_field = name in schema and schema[name].type == "array"
        if isinstance(value, (list, tuple)) and (
                not list_field or (value and all(isinstance(v, (list, tuple)) for v in value))):
            if not value:
                raise ValidationError([(name, "an empty list gives the sweep nothing to run")],
                                      endpoint_id=schema.endpoint_id)
            axes[name] = [list(v) if isinstance(v, tuple) else v for v in value]
        else:
            fixed[name] = value
    return axes, fixed


def normalize_images(schema: EndpointSchema, axes: dict[str, list[Any]], fixed: dict[str, Any],
                      media_dir: Path) -> None:
    """Replace local image inputs by their stored copies, so the plan is plain JSON and stable."""
    from .media import normalize_image

    def one(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value.startswith(("http://", "https://"))):
            return value
        return normalize_image(value, media_dir=media_dir).value

    for f in schema.fields:
        if f.kind != "image":
            continue
        if f.name in axes:
            axes[f.name] = [one(v) for v in axes[f.name]]
        elif f.name in fixed:
            fixed[f.name] = one(fixed[f.name])


def plan_cells(schema: EndpointSchema, axes: Mapping[str, list[Any]], fixed: Mapping[str, Any],
           repeat: int) -> tuple[Cell, ...]:
    """Every combination x repeat, validated; a ValidationError lists every distinct problem."""
    cells: list[Cell] = []
    errors: list[tuple[str, str]] = []
    names = list(axes)
    for combo in itertools.product(*(axes[n] for n in names)):
        values = dict(zip(names, combo))
        try:
            arguments = schema.validate({**fixed, **values})
        except ValidationError as exc:
            errors.extend(e for e in exc.errors if e not in errors)
            continue
        cost = estimate_cost(schema.endpoint_id, arguments)
        for sample in range(repeat):
            cells.append(Cell(len(cells), values, sample, arguments, cost))
    if errors:
        raise ValidationError(errors, endpoint_id=schema.endpoint_id)
    return tuple(cells)
