"""The Panel: controls from the schema, live validation and cost, job cards, and the history tab.

`sw.Panel()` in a cell is the whole playground. It never blocks the kernel: Generate submits a
job on the package's job loop and returns, and the job's card follows it. The Generate tab is
the form (left) and the results, newest first (right); the two sit side by side on a wide cell
and stack on a narrow one, by CSS flex wrapping alone (Python never knows the width).

Under the live view, a separate output shows a static HTML summary of the latest results,
updated when a job starts or ends (panel_summary.py), so a notebook saved and reopened without a
kernel shows the runs and no error. The endpoint menu and status words are endpoint_picker.py's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from .._errors import SoraWidgetsError, ValidationError
from .._html import html_text
from .._values import did_you_mean
from ..backends import Backend, key_source
from ..pricing import PRICES_AS_OF, estimate_cost, format_usd, price_for
from ..schema.documents import DEFAULT_ENDPOINT, EndpointSchema, EndpointSpec, schema_for
from .controls import FieldControl, control_for, is_advanced
from .endpoint_picker import EndpointPicker, status_html
from .panel_summary import SUMMARY_RUNS, SummaryOutput, live_class, summary_html

if TYPE_CHECKING:
    from ..history.store import History
    from ..jobs.job import Job
    from .card import JobCard
    from .history_view import HistoryView

__all__ = ["Panel"]

OFFLINE = ("Offline preview — no FAL_KEY set: videos are rendered on this machine from your "
           "image, not by a model")


class Panel(widgets.VBox):
    """A playground for one fal endpoint: `controls`, `arguments`, `generate()`, job cards, history."""

    valid = traitlets.Bool(False, help="True when the current arguments pass the schema's checks.")
    cost_usd = traitlets.Float(None, allow_none=True,
                               help="Estimated cost of the current request in USD; None if unknown.")

    def __init__(self, endpoint: EndpointSpec = DEFAULT_ENDPOINT, *,
                 schema: EndpointSchema | None = None, backend: str | Backend | None = None,
                 history: History | None = None, embed_videos: bool = False,
                 advanced: Iterable[str] | None = None) -> None:
        """`endpoint` is an id, a path to an OpenAPI document or an EndpointSchema (so is
        `schema`); `advanced` names the fields to fold under "Advanced" (default: `is_advanced`)."""
        from ..history.store import History

        self.history = history if history is not None else History()
        self.backend = backend
        self.embed_videos = embed_videos
        self.jobs: list[Job] = []
        self.cards: list[JobCard] = []
        self._history_view: HistoryView | None = None
        self._advanced = set(advanced) if advanced is not None else None
        self.banner = widgets.HTML()
        self.status_banner = widgets.HTML()
        self.endpoint_picker = EndpointPicker(on_pick=self._switch)
        self.picker = self.endpoint_picker.menu
        self.other_endpoint = self.endpoint_picker.other
        self.other_button = self.endpoint_picker.load_button
        self.generate_button = widgets.Button(description="Generate", icon="play",
                                              button_style="primary", disabled=True,
                                              layout=widgets.Layout(width="auto", flex="0 0 auto"))
        self.generate_button.on_click(self._handle_generate)
        self.cost = widgets.HTML(layout=widgets.Layout(flex="1 1 auto"))
        self.status_line = widgets.HTML()
        self.cards_box = widgets.VBox()
        self.fields_box = widgets.VBox()
        self.no_results = widgets.HTML(
            "<div style='color:#666;border:1px dashed #ccc;border-radius:6px;padding:24px 12px;"
            "text-align:center'>Your video shows here: fill in the form and click Generate.</div>")
        self._history_box = widgets.VBox()
        self.tabs = widgets.Tab([self._workspace(), self._history_box], titles=("Generate", "History"))
        self.tabs.observe(self._handle_tab, "selected_index")
        super().__init__([self.banner, self.endpoint_picker, self.status_banner, self.tabs])
        self.add_class("sora-panel")
        self.add_class(live_class(self.model_id))
        self._summary = SummaryOutput(live_class(self.model_id))
        self.controls: dict[str, FieldControl] = {}
        self._use_schema(schema_for(schema if schema is not None else endpoint), keep={})

    def _workspace(self) -> widgets.Box:
        """The Generate tab: the form and the results, side by side while both fit their minimum
        widths and stacked otherwise (CSS flex wrapping: no width is known in Python)."""
        form = widgets.VBox([self.fields_box, widgets.HBox([self.generate_button, self.cost],
                                                           layout=widgets.Layout(align_items="center",
                                                                                 margin="6px 0")),
                             self.status_line],
                            layout=widgets.Layout(flex="1 1 340px", min_width="280px",
                                                  max_width="600px", margin="0 16px 12px 0"))
        form.add_class("sora-form")
        results = widgets.VBox([self.no_results, self.cards_box],
                               layout=widgets.Layout(flex="1 1 420px", min_width="280px"))
        results.add_class("sora-results")
        workspace = widgets.Box([form, results], layout=widgets.Layout(flex_flow="row wrap",
                                                                       align_items="flex-start"))
        workspace.add_class("sora-workspace")
        return workspace

    # --- the endpoint -----------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """The current endpoint's id; set it (to an id, an EndpointSchema or a document path) to
        rebuild the controls in place, keeping the values of the fields the new endpoint shares."""
        return self.schema.endpoint_id

    @endpoint.setter
    def endpoint(self, spec: EndpointSpec) -> None:
        schema = schema_for(spec)
        if schema is self.schema or (schema == self.schema and schema.document == self.schema.document):
            return
        self._use_schema(schema, keep=self.arguments)

    def _use_schema(self, schema: EndpointSchema, *, keep: Mapping[str, Any]) -> None:
        """Build the controls of `schema`, carry over the kept values it accepts, refresh all.

        A default that its own control cannot hold raises ValidationError; the panel stays as it was."""
        from ..schema.endpoints import endpoint_status
        from ..schema.mapping import target_field
        from ..schema.validation import problem_with

        shown = [f for f in schema.fields if not f.hidden]
        try:
            controls = {f.name: control_for(f, media_dir=self.history.media_dir) for f in shown}
        except ValidationError as exc:
            raise ValidationError(exc.errors, endpoint_id=schema.endpoint_id) from exc
        self.schema, self.controls = schema, controls
        self.status = endpoint_status(schema.endpoint_id)
        self._touched: set[str] = set()
        self._bulk = False
        folded = self._advanced if self._advanced is not None else {f.name for f in shown if is_advanced(f)}
        main = [c for name, c in controls.items() if name not in folded]
        extra = [c for name, c in controls.items() if name in folded]
        children: list[widgets.Widget] = [*main]
        if extra:
            children.append(widgets.Accordion([widgets.VBox(extra)], titles=("Advanced",),
                                              selected_index=None))
        self.fields_box.children = tuple(children)
        for name, value in keep.items():
            target = target_field(schema, name)
            if target is None or target not in controls or problem_with(schema[target], value):
                continue  # a field or value this endpoint does not take: its own default stays
            try:
                controls[target].value = value
            except ValidationError:  # a value the control cannot show (off its slider)
                continue
            self._touched.add(target)
        for control in controls.values():
            control.observe(self._handle_change, names=["value", "problem"])
        self.endpoint_picker.show(self.status)
        self.status_banner.value = status_html(self.status)
        self._refresh()
        if self._history_view is not None:
            self._history_view.refresh()

    def _switch(self, spec: str) -> None:
        """Switch endpoints from the picker; a schema that cannot be had is said, not raised."""
        try:
            self.endpoint = spec
        except SoraWidgetsError as exc:
            self.status_line.value = f"<span style='color:#b00'>{html_text(str(exc))}</span>"
            self.endpoint_picker.show(self.status)

    # --- the request ------------------------------------------------------------------------

    @property
    def arguments(self) -> dict[str, Any]:
        """The current request: every field that is set, as the controls hold it."""
        return {name: c.value for name, c in self.controls.items() if c.value is not None}

    @arguments.setter
    def arguments(self, value: Mapping[str, Any]) -> None:
        unknown = [(str(k), (f"is not a field of {self.schema.endpoint_id}"
                             f"{did_you_mean(str(k), self.schema.names)}"))
                   for k in value if k not in self.schema]
        if unknown:
            raise ValidationError(unknown, endpoint_id=self.schema.endpoint_id)
        errors = []
        self._bulk = True
        try:
            for f in self.schema.fields:
                if f.name not in self.controls:  # hidden: the endpoint's default is sent
                    continue
                wanted = value.get(f.name, f.default if f.has_default else None)
                try:
                    self.controls[f.name].value = wanted
                except ValidationError as exc:  # the control names its field and what it allows
                    errors.extend(exc.errors)
        finally:
            self._bulk = False
        self._touched.update(self.controls)
        self._refresh()
        if errors:
            raise ValidationError(errors, endpoint_id=self.schema.endpoint_id)

    def _handle_change(self, change: traitlets.Bunch) -> None:
        self._touched.add(change.owner.field.name)
        if not self._bulk:
            self._refresh()

    def _refresh(self) -> None:
        """Validate, show each problem by its field, enable Generate, update cost and banner."""
        arguments = self.arguments
        messages: dict[str, str] = {}
        try:
            checked = self.schema.validate(arguments)
        except ValidationError as exc:
            checked = {**self.schema.defaults(), **arguments}
            for name, message in exc.errors:
                messages.setdefault(name, message)
        waiting = []
        for name, control in self.controls.items():
            message = messages.get(name, "")
            if message and control.value is None and name not in self._touched:
                waiting.append(control.label)  # untouched and empty: no red yet
                message = ""
            control.message = f"{control.label} {message}" if message else ""
        blocked = [c.label for c in self.controls.values() if c.problem]
        self.valid = not messages and not blocked
        self.generate_button.disabled = not self.valid
        self.status_line.value = (f"<small style='color:#666'>To generate, fill in: "
                                  f"{html_text(', '.join(waiting))}</small>"
                                  if waiting and not blocked else "")
        self.cost_usd = estimate_cost(self.schema, checked)
        self.cost.value = self._cost_html()
        self.banner.value = self._banner_html()

    def _cost_html(self) -> str:
        if self.cost_usd is None:
            return ("<div style='line-height:1.35;margin-left:8px'>Estimated cost: <b>unknown</b> "
                    "<small>(no published price for this request)</small></div>")
        preview = self.backend_name == "preview"
        free = " <small>(the offline preview itself is free)</small>" if preview else ""
        price = price_for(self.schema, self.arguments)
        when = f"{price.source}, as of {price.as_of}" if price else f"as of {PRICES_AS_OF}"
        whose = "your price" if price and price.source == "set_price" else "fal's price"
        return (f"<div style='line-height:1.35;margin-left:8px'>Estimated cost: "
                f"<b>{html_text(format_usd(self.cost_usd))}</b> "
                f"<small style='color:#666'>{whose} ({html_text(when)})</small>{free}</div>")

    # --- where it runs ----------------------------------------------------------------------

    @property
    def backend_name(self) -> str:
        """"fal" or "preview": the backend a Generate click would use now."""
        if isinstance(self.backend, str):
            return self.backend
        if self.backend is not None:
            return str(self.backend.name)
        return "fal" if key_source() else "preview"

    def backend_text(self) -> str:
        """Which backend runs jobs, in plain words; names where the key comes from, never the key."""
        if self.backend is not None and not isinstance(self.backend, str):
            return self.backend.describe()
        if self.backend_name == "preview":
            if key_source():
                return ("Offline preview (chosen) — your fal key is not used: videos are rendered "
                        "on this machine from your image, not by a model")
            return OFFLINE
        source = key_source()
        return f"fal.ai — key from {source}" if source else "fal.ai — no key found: set FAL_KEY"

    def _banner_html(self) -> str:
        where = f" · endpoint <code>{html_text(self.schema.endpoint_id)}</code>"
        if "model" in self.controls and self.controls["model"].value is not None:
            where += f" · model <code>{html_text(str(self.controls['model'].value))}</code>"
        colour = "#fff4d6" if self.backend_name == "preview" else "#e8f3ff"
        return (f"<div style='background:{colour};padding:4px 8px;border-radius:4px;line-height:1.4'>"
                f"{html_text(self.backend_text())}{where}</div>")

    # --- running jobs -----------------------------------------------------------------------

    def generate(self) -> Job:
        """Submit the current request and return its Job at once; its card follows it.

        Raises ValidationError (nothing sent) when the request is invalid."""
        from ..jobs.generation import submit
        from .card import JobCard

        job = submit(schema=self.schema, arguments=self.arguments, backend=self.backend,
                     history=self.history)
        job.on_event(self._handle_job_event)
        card = JobCard(job, on_load=self._handle_load, embed_videos=self.embed_videos)
        self.jobs.append(job)
        self.cards.insert(0, card)
        self.cards_box.children = (card, *self.cards_box.children)
        self.no_results.layout.display = "none"
        self._update_summary()
        return job

    def _handle_generate(self, button: widgets.Button) -> None:
        try:
            self.generate()
        except SoraWidgetsError as exc:
            self.status_line.value = f"<span style='color:#b00'>{html_text(str(exc))}</span>"

    def _handle_job_event(self, job: Job, event: Any) -> None:
        if not event.is_final:
            return
        self._update_summary()
        if self._history_view is not None:
            self._history_view.refresh()

    def _handle_load(self, arguments: Mapping[str, Any], endpoint_id: str | None = None) -> None:
        """Put a past request into the controls, on the endpoint it ran on (switched to, when the
        panel can still have its schema); fields the endpoint lacks are named, not set."""
        if endpoint_id is not None and endpoint_id != self.endpoint:
            self._switch(endpoint_id)
        ignored = [name for name in arguments if name not in self.controls]
        self.arguments = {k: v for k, v in arguments.items() if k in self.controls}
        self.tabs.selected_index = 0
        if ignored:
            self.status_line.value = (f"<small>Not fields of {html_text(self.schema.endpoint_id)}"
                                      f", left out: {html_text(', '.join(ignored))}</small>")

    # --- history tab ------------------------------------------------------------------------

    @property
    def history_view(self) -> HistoryView:
        """The History tab's view, built on first use so a new panel opens fast."""
        if self._history_view is None:
            from .history_view import HistoryView

            models = (self.schema["model"].enum or ()) if "model" in self.schema else ()
            self._history_view = HistoryView(
                self.history, models=models,
                on_load=self._handle_load, embed_videos=self.embed_videos)
            self._history_box.children = (self._history_view,)
        return self._history_view

    def _handle_tab(self, change: traitlets.Bunch) -> None:
        if change.new == 1:
            self.history_view.refresh()

    # --- display ----------------------------------------------------------------------------

    def summary_html(self) -> str:
        """Static HTML of the latest results: what a saved notebook shows without a kernel."""
        if self.cards:
            runs = [card.static_html() for card in self.cards[:SUMMARY_RUNS]]
        else:
            from .history_view import record_html

            rows = self.history.find(endpoint_id=self.schema.endpoint_id, limit=SUMMARY_RUNS)
            runs = [record_html(row) for row in rows]
        return summary_html(self.model_id, self._banner_html(), runs)

    def _summary_bundle(self) -> dict[str, str]:
        return {"text/html": self.summary_html(), "text/plain": repr(self)}

    def _ipython_display_(self) -> None:
        """Show the live view, then the summary as its own output (display id per panel), so a
        job's end updates the summary without re-rendering the view (and the focus in it)."""
        self._summary.show(super()._repr_mimebundle_(), self._summary_bundle())

    def _update_summary(self) -> None:
        """Send the summary to every output showing it; safe from the job loop's thread."""
        if self._summary.displayed:
            self._summary.update(self._summary_bundle())

    def __repr__(self) -> str:
        return (f"Panel({self.schema.endpoint_id!r}, backend={self.backend_name!r}, "
                f"runs={len(self.jobs)})")

