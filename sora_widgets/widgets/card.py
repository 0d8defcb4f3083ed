"""Run cards: a finished run with its video first, and the live card of a running job.

A `RunView` shows one finished run (a Generation or a history record): the video, a one-line
summary (status, model, duration, time, cost), the prompt, then its actions (load into
controls, copy as code, rating, notes), parameters and log folded in one accordion section.
`show()` swaps the run in place, so the history tab reuses one view. A `JobCard` is a RunView
that first follows a job: status, queue position and elapsed time, its log and a Cancel button.

Job events arrive on the package's job loop thread; the handler only copies the job's state
into widget traits (ipywidgets sends those from any thread), so it stays small: at the end, the
most it does is read the run's thumbnail (or first frame) once for its poster. What a run
shows (summary line, video, parameters) is written as HTML in runs.py; here it is laid out.
"""

from __future__ import annotations

import html
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets as widgets
import traitlets

from .._errors import GenerationError
from .._html import html_text
from ..records import JobEvent, JobStatus
from .code import fal_client_code, sora_widgets_code
from .runs import (
    Run,
    error_html,
    facts_html,
    model_name,
    prompt_html,
    run_fields,
    run_html,
    summary_line,
    video_html,
)

if TYPE_CHECKING:
    from ..history.store import History
    from ..jobs.job import Job

__all__ = ["CopyButton", "ElapsedBar", "JobCard", "OnLoad", "RunView"]

_HERE = Path(__file__).parent
LOG_LINES = 12
DETAILS = "Actions, parameters and log"  # the title of a card's one fold
OnLoad = Callable[[dict[str, Any], str], None]


class ElapsedBar(anywidget.AnyWidget):
    """Status, queue position and elapsed time with an indeterminate bar, ticking in the browser."""

    _esm = _HERE / "elapsed.js"
    _css = _HERE / "card.css"
    status = traitlets.Unicode("pending", help="The job's status value.").tag(sync=True)
    elapsed_s = traitlets.Float(0.0, help="Seconds since the job was submitted, at the last "
                                          "event; the browser counts on from there.").tag(sync=True)
    position = traitlets.Int(None, allow_none=True,
                             help="Place in fal's queue while queued, else None.").tag(sync=True)


class CopyButton(anywidget.AnyWidget):
    """A button that copies `text` to the clipboard in the browser."""

    _esm = _HERE / "copy.js"
    _css = _HERE / "card.css"
    text = traitlets.Unicode("", help="What the button copies.").tag(sync=True)
    label = traitlets.Unicode("Copy", help="The button's caption.").tag(sync=True)


class RunView(widgets.VBox):
    """A finished run, video first: summary line, prompt, then actions, parameters and log folded.

    `show(run)` puts another run in the same widgets (nothing is rebuilt)."""

    run_id = traitlets.Int(None, allow_none=True, help="History id of the run shown; None when none.")

    def __init__(self, history: History | None = None, *, on_load: OnLoad | None = None,
                 embed_videos: bool = False) -> None:
        self.history = history
        self.embed_videos = embed_videos
        self._on_load = on_load
        self._run: dict[str, Any] | None = None
        self._showing = False
        self.video = widgets.Output()  # an output, so Jupyter resolves the video's relative src
        self.video_html = ""
        self.summary = widgets.HTML()
        self.error = widgets.HTML()
        self.facts = widgets.HTML()
        self.log_lines = widgets.HTML()
        self.load_button = widgets.Button(description="Load into controls", icon="upload",
                                          disabled=True, layout=widgets.Layout(width="auto"))
        self.load_button.on_click(self._handle_load)
        self.code_button = widgets.Button(description="Copy as code", icon="code",
                                          layout=widgets.Layout(width="auto"))
        self.code_button.on_click(self._handle_code)
        self.rating = widgets.ToggleButtons(options=[(str(n), n) for n in range(1, 6)], value=None,
                                            tooltips=[f"rate {n} of 5" for n in range(1, 6)],
                                            style={"button_width": "36px"})
        self.rating.add_class("sora-rating")
        self.rating.observe(self._handle_rating, "value")
        self.notes = widgets.Text(placeholder="notes", continuous_update=False,
                                  layout=widgets.Layout(width="200px"))
        self.notes.observe(self._handle_notes, "value")
        self.actions = widgets.HBox([self.load_button, self.code_button,
                                     widgets.HTML("&nbsp;rating&nbsp;"), self.rating, self.notes],
                                    layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        self.code_box = widgets.VBox(layout=widgets.Layout(display="none"))
        self.details = widgets.Accordion(
            [widgets.VBox([self.actions, self.code_box, self.facts, self.log_lines])],
            titles=(DETAILS,), selected_index=None, layout=widgets.Layout(display="none"))
        super().__init__([self.video, self.summary, self.error, self.details])
        self.add_class("sora-run-view")

    def show(self, run: Run) -> None:
        """Show `run` (a Generation or a history record) in place of the run shown before."""
        f = self._run = run_fields(run)
        self.run_id = f.get("id")
        self.video_html = ""
        if f["status"] is JobStatus.COMPLETED:
            self.video_html = video_html(f, embed=self.embed_videos)
            if f.get("note"):  # after the video: the card leads with it
                self.video_html += (f"<div style='color:#666;font-size:12px;line-height:1.35'>"
                                    f"{html_text(f['note'])}</div>")
        self.video.outputs = ({"output_type": "display_data", "metadata": {},
                               "data": {"text/html": self.video_html, "text/plain": "<video>"}},
                              ) if self.video_html else ()
        self.summary.value = summary_line(f) + prompt_html(f)
        self.error.value = error_html(f)
        self.facts.value = facts_html(f)
        lines = f.get("logs") or []
        self.log_lines.value = (f"<details style='line-height:1.4'><summary>Log ({len(lines)} "
                                f"line{'s' if len(lines) != 1 else ''})</summary><pre style="
                                f"'font-size:11px;max-height:16em;overflow:auto;margin:0'>"
                                f"{html.escape(chr(10).join(lines))}</pre></details>" if lines else "")
        self._showing = True
        try:
            self.rating.value = f.get("rating")
            self.notes.value = f.get("notes") or ""
        finally:
            self._showing = False
        self.load_button.disabled = self._on_load is None
        if self.code_box.children:
            self._fill_code()
        self.details.layout.display = None

    @property
    def code(self) -> dict[str, str]:
        """The request as code: {"sora_widgets": ..., "fal_client": ...}, with no key in it."""
        if self._run is None:
            return {}
        endpoint_id, arguments = self._run["endpoint_id"], self._run.get("arguments") or {}
        return {"sora_widgets": sora_widgets_code(endpoint_id, arguments),
                "fal_client": fal_client_code(endpoint_id, arguments)}

    def _fill_code(self) -> None:
        """Two copy buttons and two listings, made once per view, filled for the run shown."""
        if not self.code_box.children:
            self.code_box.children = [w for _ in range(2) for w in (CopyButton(), widgets.HTML())]
        buttons, listings = self.code_box.children[::2], self.code_box.children[1::2]
        for (name, text), button, listing in zip(self.code.items(), buttons, listings):
            button.text, button.label = text, f"Copy {name} code"
            listing.value = f"<pre style='font-size:11px'>{html.escape(text)}</pre>"

    def _handle_code(self, button: widgets.Button) -> None:
        if self._run is None:
            return
        self._fill_code()
        shown = self.code_box.layout.display != "none"
        self.code_box.layout.display = "none" if shown else None

    def _handle_load(self, button: widgets.Button) -> None:
        if self._on_load is not None and self._run is not None:
            self._on_load(dict(self._run.get("arguments") or {}), self._run["endpoint_id"])

    def _handle_rating(self, change: traitlets.Bunch) -> None:
        if not self._showing and self.history is not None and self.run_id is not None:
            self.history.annotate(self.run_id, rating=change.new)

    def _handle_notes(self, change: traitlets.Bunch) -> None:
        if not self._showing and self.history is not None and self.run_id is not None:
            self.history.annotate(self.run_id, notes=change.new or None)

    def __repr__(self) -> str:
        return f"RunView(run_id={self.run_id!r})"


class JobCard(RunView):
    """One job: queued (position), running (elapsed, logs, Cancel), then the finished run."""

    status = traitlets.Unicode("pending", help="The job's status value, as last shown.")

    def __init__(self, job: Job, *, on_load: OnLoad | None = None,
                 embed_videos: bool = False) -> None:
        self.job = job
        self._lock = threading.Lock()
        self._finished = False
        super().__init__(job.history, on_load=on_load, embed_videos=embed_videos)
        prompt = " ".join(str(job.arguments.get("prompt", "")).split())
        self.header = widgets.HTML(
            f"<b>#{job.history_id}</b> · {html_text(model_name(job.endpoint_id, job.arguments))}"
            f" · <i>{html_text(textwrap.shorten(prompt, 90, placeholder=' …'))}</i>")
        self.bar = ElapsedBar()
        self.cancel_button = widgets.Button(description="Cancel", icon="stop",
                                            button_style="warning", layout=widgets.Layout(width="auto"))
        self.cancel_button.on_click(self._handle_cancel)
        self.logs = widgets.HTML()
        self.live = widgets.VBox([self.header, widgets.HBox([self.bar, self.cancel_button]), self.logs])
        # ipywidgets is untyped: mypy cannot see `children` on the base class
        finished: tuple[widgets.Widget, ...] = tuple(self.children)  # type: ignore[has-type]
        self.children = (self.live, *finished)
        self.layout = widgets.Layout(border="1px solid #ddd", padding="6px", margin="0 0 8px 0")
        self.add_class("sora-card")
        job.on_event(self._handle_event)
        self.refresh()

    def _handle_event(self, job: Job, event: JobEvent) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Copy the job's state into the card; the final state is drawn once."""
        job, gen = self.job, self.job.generation
        self.status = job.status.value
        self.bar.status, self.bar.position = job.status.value, job.position
        self.bar.elapsed_s = round(job.elapsed_s, 1)
        lines = gen.logs[-LOG_LINES:]
        self.logs.value = (f"<pre style='font-size:11px;max-height:12em;overflow:auto;margin:0'>"
                           f"{html.escape(chr(10).join(lines))}</pre>" if lines else "")
        if not job.status.is_final:
            return
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self.live.layout.display = "none"  # the run's own summary says it all now
        self.show(gen)

    def _handle_cancel(self, button: widgets.Button) -> None:
        """Cancel on a helper thread: a cancel can take a network round trip."""
        button.disabled, button.description = True, "Cancelling..."
        threading.Thread(target=self._cancel, name="sora-widgets-cancel", daemon=True).start()

    def _cancel(self) -> None:
        try:
            self.job.cancel()
        except (GenerationError, TimeoutError) as exc:
            self.error.value = (f"<div style='color:#b00'>Could not cancel: "
                                f"{html_text(str(exc))}</div>")
            self.cancel_button.disabled, self.cancel_button.description = False, "Cancel"

    def static_html(self) -> str:
        """The card as plain HTML (for a saved notebook opened without a kernel); the video is
        linked, never embedded."""
        return run_html(self.job.generation)

    def __repr__(self) -> str:
        return f"JobCard({self.job!r})"
