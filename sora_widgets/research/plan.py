"""A sweep's plan: its axes, fixed fields and cells, validated and priced before anything is sent.

Plain data that round-trips through JSON, so a sweep can be reopened after a kernel restart.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .._errors import NotFoundError, ValidationError
from .._html import html_attr, html_table, html_text, shown_value
from .._values import did_you_mean
from ..pricing import estimate_cost, format_usd
from ..schema.documents import EndpointSchema, load_schema
from ..schema.mapping import ALIASES, Mapped, map_request, target_field

__all__ = ["ENDPOINT_AXIS", "Cell", "SweepPlan", "cell_key", "normalize_images", "plan_cells", "split_axes"]


ENDPOINT_AXIS = "endpoint"  # the axis of a cross-model sweep
_SHOWN_CHARS = 80  # longer values are cut in the HTML plan (the whole value is the tooltip)


def _shown_note(note: Mapped) -> Mapped:
    return replace(note, given=shown_value(note.given), sent=shown_value(note.sent))


@dataclass(frozen=True)
class Cell:
    """One job of a sweep: its axis values, sample number, endpoint and the arguments it sends.

    In a cross-model sweep `mapping` says what became of each canonical field on this endpoint.
    """

    index: int
    values: dict[str, Any]
    sample: int
    arguments: dict[str, Any]
    cost_usd: float | None
    endpoint_id: str = ""
    mapping: tuple[Mapped, ...] = ()
    request: dict[str, Any] = field(default_factory=dict)  # the canonical request, as asked

    @property
    def key(self) -> str:
        """Endpoint and arguments as canonical JSON: how a row written before cell ids is matched."""
        return cell_key(self.arguments, self.endpoint_id)

    @property
    def cell_id(self) -> str:
        """What the cell's history row stores (`cell_key`), so a reopened sweep finds it whatever
        its arguments became on upload: the cell's place in the plan and a digest of its request."""
        return f"{self.index}:{hashlib.sha256(self.key.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class SweepPlan:
    """What a sweep will run, priced, before anything is sent; saved as JSON beside the history.

    `endpoint_id` is the (first) endpoint; a cross-model sweep lists all in `endpoints` and has
    them as its `endpoint` axis. `documents` keeps the OpenAPI documents of endpoints that are not
    bundled, so a reopened sweep needs nothing else."""

    sweep_id: str
    endpoint_id: str
    backend: str
    axes: dict[str, list[Any]]
    fields: dict[str, Any]
    repeat: int
    budget_usd: float | None
    created_at: str
    cells: tuple[Cell, ...] = field(repr=False, compare=False)
    endpoints: tuple[str, ...] = ()
    strict: bool = False
    documents: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    max_concurrent: int | None = None  # the sweep's own cap, kept so a reopened sweep honours it

    @property
    def n_jobs(self) -> int:
        return len(self.cells)

    @property
    def cross_model(self) -> bool:
        return ENDPOINT_AXIS in self.axes

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

    def schemas(self) -> dict[str, EndpointSchema]:
        """Each endpoint's schema, from its kept document or the bundled and cached ones."""
        return {e: (EndpointSchema.from_openapi(self.documents[e], endpoint_id=e)
                    if e in self.documents else load_schema(e))
                for e in self.endpoints or (self.endpoint_id,)}

    def arguments_for(self, endpoint: str, **values: Any) -> dict[str, Any]:
        """The request sent to `endpoint` (for the cell whose other axis values are `values`); none
        is a NotFoundError (also a KeyError)."""
        for cell in self.cells:
            if cell.endpoint_id == endpoint and all(cell.values.get(k) == v for k, v in values.items()):
                return dict(cell.arguments)
        raise NotFoundError(f"no job of sweep {self.sweep_id} runs on {endpoint!r} with "
                            f"{values or 'those values'}; "
                            f"endpoints: {', '.join(self.endpoints or (self.endpoint_id,))}",
                            key=endpoint)

    def line(self) -> str:
        """The plan in one line: jobs, their shape, where they run, the estimate and the budget."""
        shape = " x ".join(f"{len(v)} {name}" for name, v in self.axes.items()) or "1 setting"
        repeats = f" x {self.repeat} repeats" if self.repeat > 1 else ""
        unpriced = f" + {self.unpriced} of unknown price" if self.unpriced else ""
        cost = format_usd(self.estimate_usd) + unpriced
        money = f"estimated {cost}" if self.charged else f"preview backend, free (on fal: {cost})"
        budget = f", budget {format_usd(self.budget_usd)}" if self.budget_usd is not None else ""
        where = (f"{len(self.endpoints)} endpoints" if self.cross_model else self.endpoint_id)
        jobs = f"{self.n_jobs} job" + ("" if self.n_jobs == 1 else "s")
        return (f"Sweep {self.sweep_id}: {jobs} ({shape}{repeats}) on "
                f"{where} via {self.backend}, {money}{budget}.")

    def mapping_lines(self) -> list[str]:
        """Per endpoint, what one request sends: every field, with mapped or dropped ones marked."""
        lines = []
        for cell in self._mapped_cells():
            lines.append(f"  {cell.endpoint_id} ({format_usd(cell.cost_usd)} a job):")
            lines += [f"    {_mark(note)} {_shown_note(note)}" for note in cell.mapping]
        return lines

    def _mapped_cells(self) -> list[Cell]:
        """The first cell of each endpoint of a cross-model sweep (the ones with a mapping)."""
        firsts: dict[str, Cell] = {}
        for cell in self.cells:
            if cell.mapping:
                firsts.setdefault(cell.endpoint_id, cell)
        return list(firsts.values())

    def describe(self) -> str:
        """The plan as text: the summary, then each endpoint's mapping (`=` sent as given, `~`
        renamed or mapped to an allowed value, `x` dropped)."""
        return "\n".join([self.line(), *self.mapping_lines()])

    def html(self) -> str:
        """The plan as HTML for a notebook: the summary, then each endpoint's mapping (a sweep
        across endpoints) or the axes and fixed fields; left-aligned, no `$` typeset as math."""
        if self.cross_model:
            table = html_table(("endpoint", "a job", "what it is sent"), [
                (html_text(c.endpoint_id), html_text(format_usd(c.cost_usd)),
                 "<br>".join(f"<code>{_mark(n)}</code> {html_text(_shown_note(n))}" for n in c.mapping))
                for c in self._mapped_cells()])
        else:
            table = html_table(("field", "", "value"), [
                *((html_text(name), "axis", ", ".join(_short_html(v) for v in values))
                  for name, values in self.axes.items()),
                *((html_text(name), "", _short_html(value)) for name, value in self.fields.items())])
        return f"<div class='sora-sweep-plan'><div><b>{html_text(self.line())}</b></div>{table}</div>"

    def _repr_html_(self) -> str:
        return self.html()

    def to_json(self) -> dict[str, Any]:
        return {"sweep_id": self.sweep_id, "endpoint_id": self.endpoint_id, "backend": self.backend,
                "axes": self.axes, "fields": self.fields, "repeat": self.repeat,
                "budget_usd": self.budget_usd, "created_at": self.created_at,
                "endpoints": list(self.endpoints), "strict": self.strict, "documents": self.documents,
                "max_concurrent": self.max_concurrent}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SweepPlan:
        plan = cls(**{k: data[k] for k in ("sweep_id", "endpoint_id", "backend", "axes", "fields",
                                           "repeat", "budget_usd", "created_at")}, cells=(),
                   endpoints=tuple(data.get("endpoints") or ()), strict=bool(data.get("strict")),
                   documents=dict(data.get("documents") or {}),
                   max_concurrent=data.get("max_concurrent"))
        cells = plan_cells(plan.schemas(), data["axes"], data["fields"], data["repeat"],
                           strict=plan.strict)
        return replace(plan, cells=cells)


def _mark(note: Mapped) -> str:
    return "=" if not note.changed else ("x" if note.how == "dropped" else "~")


def _short_html(value: Any) -> str:
    """A field value for the HTML plan: relative paths, cut at _SHOWN_CHARS with the rest as a
    tooltip."""
    value = shown_value(value)
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) <= _SHOWN_CHARS:
        return html_text(text)
    return f"<span title='{html_attr(text)}'>{html_text(text[:_SHOWN_CHARS - 1])}…</span>"


def cell_key(arguments: Mapping[str, Any], endpoint_id: str = "") -> str:
    return json.dumps({"endpoint": endpoint_id, "arguments": arguments}, sort_keys=True, default=str)


def _is_list_field(schemas: Mapping[str, EndpointSchema], name: str) -> bool:
    for schema in schemas.values():
        target = target_field(schema, name)
        if target is not None and schema[target].type == "array":
            return True
    return False


def split_axes(schemas: Mapping[str, EndpointSchema], given: Mapping[str, Any]
               ) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Fields given as lists become axes; for list-typed fields (character_ids) a list of lists."""
    axes: dict[str, list[Any]] = {}
    fixed: dict[str, Any] = {}
    for name, value in given.items():
        list_field = _is_list_field(schemas, name)
        if isinstance(value, (list, tuple)) and (
                not list_field or (value and all(isinstance(v, (list, tuple)) for v in value))):
            if not value:
                raise ValidationError([(name, "an empty list gives the sweep nothing to run")])
            axes[name] = [list(v) if isinstance(v, tuple) else v for v in value]
        else:
            fixed[name] = value
    return axes, fixed


def normalize_images(schemas: Mapping[str, EndpointSchema], axes: dict[str, list[Any]],
                     fixed: dict[str, Any], media_dir: Path) -> None:
    """Replace local image inputs by their stored copies, so the plan is plain JSON and stable."""
    from ..media import normalize_image

    def one(name: str, value: Any) -> Any:
        return value if value is None else normalize_image(value, media_dir=media_dir, field=name).value

    images = {name for schema in schemas.values() for name in [*axes, *fixed]
              if (target := target_field(schema, name)) is not None and schema[target].kind == "image"}
    for name in images:
        if name in axes:
            axes[name] = [one(name, v) for v in axes[name]]
        elif name in fixed:
            fixed[name] = one(name, fixed[name])


def _unknown_fields(schemas: Mapping[str, EndpointSchema], names: list[str]) -> list[tuple[str, str]]:
    """Canonical names that no endpoint of a cross-model sweep knows, even by an alias: typos."""
    known = sorted({n for s in schemas.values() for n in s.names} | {n for a in ALIASES.values() for n in a})
    aliases = {n for a in ALIASES.values() for n in a}
    return [(name, f"is not a field of any of the endpoints{did_you_mean(name, known)}")
            for name in names
            if name not in aliases and all(target_field(s, name) is None for s in schemas.values())]


def plan_cells(schemas: Mapping[str, EndpointSchema], axes: Mapping[str, list[Any]],
               fixed: Mapping[str, Any], repeat: int, *, strict: bool = False) -> tuple[Cell, ...]:
    """Every combination x repeat, validated (and, across endpoints, mapped onto each one's own
    fields); a ValidationError lists every distinct problem."""
    cells: list[Cell] = []
    errors: list[tuple[str, str]] = []
    cross = ENDPOINT_AXIS in axes
    names = list(axes)
    if cross:
        errors += _unknown_fields(schemas, [n for n in [*fixed, *axes] if n != ENDPOINT_AXIS])
    for combo in itertools.product(*(axes[n] for n in names)):
        values = dict(zip(names, combo))
        endpoint_id = values[ENDPOINT_AXIS] if cross else next(iter(schemas))
        schema = schemas[endpoint_id]
        request = {**fixed, **{k: v for k, v in values.items() if k != ENDPOINT_AXIS}}
        try:
            mapping: tuple[Mapped, ...] = ()
            if cross:
                request_for_endpoint, notes = map_request(schema, request, strict=strict)
                mapping = tuple(notes)
            else:
                request_for_endpoint = request
            arguments = schema.validate(request_for_endpoint)
        except ValidationError as exc:
            where = f"{endpoint_id}: " if cross else ""
            errors.extend(e for e in ((f, where + m) for f, m in exc.errors) if e not in errors)
            continue
        cost = estimate_cost(schema, arguments)
        for sample in range(repeat):
            cells.append(Cell(len(cells), values, sample, arguments, cost, endpoint_id, mapping, request))
    if errors:
        raise ValidationError(errors, endpoint_id=None if cross else next(iter(schemas)))
    return tuple(cells)
