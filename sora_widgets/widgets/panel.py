"""The Panel: controls from the schema, live validation and cost, job cards, and the history tab.

`sw.Panel()` in a cell is the whole playground. It never blocks the kernel: Generate submits a
job on the package's job loop and returns, and the job's card follows it. The Generate tab is
the form (left) and the results, newest first (right); the two sit side by side on a wide cell
and stack on a narrow one, by CSS flex wrapping alone (Python never knows the width).

Under the live view, a separate output shows a static HTML summary of the latest results,
updated when a job starts or ends. Its own CSS hides it while the live view is on the page, and
hides the widget's output ("Error displaying widget: model not found") while the live view is
not: a notebook saved and reopened without a kernel shows the runs and no error
(`_ipython_display_`, `summary_html`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets
from IPython import get_ipython
from IPython.display import display

from .._errors import SoraWidgetsError, ValidationError
from ..backends import Backend, key_source
from ..pricing import PRICES_AS_OF, estimate_cost, format_usd, price_for
from ..records import html_text
from ..schema.documents import DEFAULT_ENDPOINT, EndpointSchema, EndpointSpec, did_you_mean, schema_for
from .controls import FieldControl, control_for, is_advanced

if TYPE_CHECKING:
    from ..history.store import History
    from ..jobs.job import Job
    from ..schema.endpoints import EndpointInfo
    from .card import JobCard
    from .history_view import HistoryView

__all__ = ["Panel"]

OFFLINE = ("Offline preview — no FAL_KEY set: videos are rendered on this machine from your "
           "image, not by a model")
SUMMARY_RUNS = 5


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
        self.picker = widgets.Dropdown(description="Endpoint", style={"description_width": "70px"},
                                       layout=widgets.Layout(width="520px", max_width="100%"))
        self.other_endpoint = widgets.Text(placeholder="another endpoint id, or a path to its OpenAPI .json",
                                           layout=widgets.Layout(width="360px", max_width="100%"))
        self.other_button = widgets.Button(description="Load", icon="download",
                                           layout=widgets.Layout(width="auto"))
        self.other_button.on_click(self._handle_other_endpoint)
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
        chooser = widgets.HBox([self.picker, self.other_endpoint, self.other_button],
                               layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([self.banner, chooser, self.status_banner, self.tabs])
        self.add_class("sora-panel")
        self.add_class(self._live_class)
        self._display_parents: list[dict[str, Any] | None] = []  # where the summary is shown
        self.controls: dict[str, FieldControl] = {}
        self._endpoints: dict[str, EndpointInfo] | None = None  # the picker's list, made once
        self._use_schema(schema_for(schema if schema is not None else endpoint), keep={})
        self.picker.observe(self._handle_pick, "value")

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
        """Build the controls of `schema`, carry over the kept values it accepts, refresh all."""
        from ..schema.endpoints import endpoint_status
        from ..schema.mapping import target_field
        from ..schema.validation import problem_with

        self.schema = schema
        self.status = endpoint_status(schema.endpoint_id)
        self._touched: set[str] = set()
        self._bulk = False
        media_dir = self.history.media_dir
        shown = [f for f in schema.fields if not f.hidden]
        self.controls = {f.name: control_for(f, media_dir=media_dir) for f in shown}
        folded = self._advanced if self._advanced is not None else {f.name for f in shown if is_advanced(f)}
        main = [c for name, c in self.controls.items() if name not in folded]
        extra = [c for name, c in self.controls.items() if name in folded]
        children: list[widgets.Widget] = [*main]
        if extra:
            children.append(widgets.Accordion([widgets.VBox(extra)], titles=("Advanced",),
                                              selected_index=None))
        self.fields_box.children = tuple(children)
        for name, value in keep.items():
            target = target_field(schema, name)
            if target is None or target not in self.controls or problem_with(schema[target], value):
                continue  # a field or value this endpoint does not take: its own default stays
            try:
                self.controls[target].value = value
            except traitlets.TraitError:
                continue
            self._touched.add(target)
        for control in self.controls.values():
            control.observe(self._handle_change, names=["value", "problem"])
        self._fill_picker()
        self.status_banner.value = self._status_html()
        self._refresh()
        if self._history_view is not None:
            self._history_view.refresh()

    def _fill_picker(self) -> None:
        """Bundled, cached and (with a key) fal's image-to-video endpoints, listed once per panel
        (and the current one if it is none of those), the current one chosen."""
        from ..schema.endpoints import find_endpoints

        if self._endpoints is None:
            self._endpoints = {e.endpoint_id: e for e in find_endpoints(category=None, online=False)}
            for info in find_endpoints(category="image-to-video"):
                self._endpoints.setdefault(info.endpoint_id, info)
        found = self._endpoints
        current = self.schema.endpoint_id
        options = [(_picker_label(info.endpoint_id, info.status, info.origin), info.endpoint_id)
                   for info in found.values()]
        if current not in found:
            options.insert(0, (_picker_label(current, self.status.status, "document"), current))
        self._picking = True
        try:
            self.picker.options = options
            self.picker.value = current
        finally:
            self._picking = False

    def _handle_pick(self, change: traitlets.Bunch) -> None:
        if self._picking or change.new is None or change.new == self.endpoint:
            return
        self._switch(change.new)

    def _handle_other_endpoint(self, button: widgets.Button) -> None:
        if self.other_endpoint.value.strip():
            self._switch(self.other_endpoint.value.strip())

    def _switch(self, spec: str) -> None:
        """Switch endpoints from the picker; a schema that cannot be had is said, not raised."""
        try:
            self.endpoint = spec
        except SoraWidgetsError as exc:
            self.status_line.value = f"<span style='color:#b00'>{html_text(str(exc))}</span>"
            self._fill_picker()

    def _status_html(self) -> str:
        """The endpoint's status in plain words, shown before anything is sent."""
        st = self.status
        since = f" on {st.since.isoformat()}" if st.since else ""
        if st.status == "retired":
            return _box("#fde2e1", f"<b>{html_text(st.endpoint_id)} was retired{since}.</b> "
                        f"{html_text(st.message)} Your past runs stay in the History tab. To generate, "
                        "pick another model in the Endpoint menu above. "
                        f"<small>Source: {html_text(st.source)}</small>")
        if st.status == "deprecated":
            return _box("#fff4d6", f"<b>{html_text(st.endpoint_id)} is deprecated.</b> "
                        f"{html_text(st.message)} "
                        f"<small>Source: {html_text(st.source)}</small>")
        if st.status == "active":
            return _box("#e9f7ec", f"Endpoint status: <b>active</b>. <small>{html_text(st.message)} "
                        f"Source: {html_text(st.source)}</small>")
        return _box("#f2f2f2", f"Endpoint status: <b>unknown</b>. <small>{html_text(st.message)}</small>")

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
                except traitlets.TraitError as exc:
                    errors.append((f.name, str(exc)))
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
        return (f"<div style='line-height:1.35;margin-left:8px'>Estimated cost: "
                f"<b>{html_text(format_usd(self.cost_usd))}</b> "
                f"<small style='color:#666'>fal's price ({html_text(when)})</small>{free}</div>")

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

    @property
    def _live_class(self) -> str:
        """The CSS class of this panel's live view: while it is on the page, the summary hides."""
        return f"sora-panel-{self.model_id}"

    def summary_html(self) -> str:
        """Static HTML of the latest results: what a saved notebook shows without a kernel.

        Its CSS hides it (and its output's row) while this panel's live view is on the page, and,
        while the view is not (no kernel, or a new one without this panel's model), hides the
        output just before it: the widget's, which then says "Error displaying widget"."""
        key = f"sora-panel-summary-{self.model_id}"
        live = f"body:has(.{self._live_class})"
        gone = f"body:not(:has(.{self._live_class}))"
        style = (f"<style>{live} .{key}, {live} .jp-OutputArea-child:has(.{key}) {{display: none}} "
                 f"{gone} .jp-OutputArea-child:has(+ .jp-OutputArea-child .{key}) {{display: none}}"
                 "</style>")
        head = f"<div><b>sora-widgets panel</b>{self._banner_html()}</div>"
        if self.cards:
            body = "".join(card.static_html() for card in self.cards[:SUMMARY_RUNS])
        else:
            from .history_view import record_html

            rows = self.history.find(endpoint_id=self.schema.endpoint_id, limit=SUMMARY_RUNS)
            body = "".join(record_html(row) for row in rows) or "<p>No runs yet.</p>"
        return f"<div class='sora-panel-summary {key}'>{style}{head}{body}</div>"

    def _summary_bundle(self) -> dict[str, str]:
        return {"text/html": self.summary_html(), "text/plain": repr(self)}

    def _ipython_display_(self) -> None:
        """Show the live view, then the summary as its own output (display id per panel), so a
        job's end updates the summary without re-rendering the view (and the focus in it)."""
        display(super()._repr_mimebundle_(), raw=True)
        display(self._summary_bundle(), raw=True, display_id=self._live_class)
        publisher = getattr(get_ipython(), "display_pub", None)
        parent = dict(getattr(publisher, "parent_header", None) or {}) or None
        if parent not in self._display_parents:
            self._display_parents.append(parent)

    def _update_summary(self) -> None:
        """Send the summary to every output showing it; safe from the job loop's thread.

        A front end routes an update by the message's parent: ipykernel gives a message from
        another thread the parent of the latest request (often another cell, or a widget's
        click), so each update is sent as a reply to the request that displayed the panel."""
        if not self._display_parents:
            return
        bundle = self._summary_bundle()
        publisher = getattr(get_ipython(), "display_pub", None)
        for parent in self._display_parents:
            token = (publisher.set_thread_parent(parent) if publisher is not None and parent is not None
                     and hasattr(publisher, "set_thread_parent") else None)
            try:
                display(bundle, raw=True, display_id=self._live_class, update=True)
            finally:
                if publisher is not None and token is not None:
                    publisher.reset_thread_parent(token)

    def __repr__(self) -> str:
        return (f"Panel({self.schema.endpoint_id!r}, backend={self.backend_name!r}, "
                f"runs={len(self.jobs)})")


def _box(colour: str, inner: str) -> str:
    return (f"<div style='background:{colour};padding:4px 8px;border-radius:4px;margin:2px 0;"
            f"line-height:1.4'>{inner}</div>")


def _picker_label(endpoint_id: str, status: str, origin: str) -> str:
    marks = {"retired": " (retired)", "deprecated": " (deprecated)"}
    where = {"cached": " · cached", "fal": " · from fal", "document": " · from a document"}
    return f"{endpoint_id}{marks.get(status, '')}{where.get(origin, '')}"
