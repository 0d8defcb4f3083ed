"""Run cards: a finished run with its video first, and the live card of a running job.

A `RunView` shows one finished run (a Generation or a history record): the video, a one-line
summary (status, model, duration, time, cost), the prompt, then its actions (load into
controls, copy as code, rating, notes), parameters and log folded in one accordion section.
`show()` swaps the run in place, so the history tab reuses one view. A `JobCard` is a RunView
that first follows a job: status, queue position and elapsed time, its log and a Cancel button.

Job events arrive on the package's job loop thread; the handler only copies the job's state
into widget traits (ipywidgets sends those from any thread), so it stays small: at the end, the
most it does is read the run's thumbnail (or first frame) once for its poster.

Videos are shown by reference, not embedded: `<video src="sora_runs/media/...mp4">` relative
to the kernel's working folder (which Jupyter serves beside the notebook), or the remote URL,
with a poster frame as a few-kB data URI (`poster_src`). So a saved notebook grows by a few kB
per run, not by the video. Every "$" in the HTML is kept from turning into math (`html_text`).
"""

from __future__ import annotations

import html
import json
import textwrap
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets as widgets
import traitlets

from .._errors import ErrorKind, GenerationError, error_kind
from ..pricing import format_usd
from ..records import (
    Generation,
    JobEvent,
    JobStatus,
    html_attr,
    html_text,
    media_src,
    poster_src,
    shown_value,
)
from ..schema.documents import DURATION_FIELDS, to_seconds
from .code import fal_client_code, sora_widgets_code

if TYPE_CHECKING:
    from ..history.store import History
    from ..jobs.job import Job

__all__ = ["CopyButton", "ElapsedBar", "JobCard", "RunView", "facts_html", "plain_error",
           "run_html", "short_endpoint", "summary_line", "video_html"]

_HERE = Path(__file__).parent
LOG_LINES = 12
PROMPT_CHARS = 160  # the prompt under a card's summary, cut at a word past this (all in its tooltip)
DETAILS = "Actions, parameters and log"  # the title of a card's one fold
Run = Generation | Mapping[str, Any]
OnLoad = Callable[[dict[str, Any], str], None]

#: the first words shown for each kind of failure, before the backend's own sentence
_PLAIN: dict[ErrorKind, str] = {
    "cancelled": "Cancelled",
    "content_policy": "Refused by the content filter",
    "credentials": "fal did not accept the key",
    "validation": "The endpoint rejected the request",
    "rate_limited": "Too many requests right now; try again in a minute",
    "timeout": "No answer in time",
    "network": "Could not reach the service",
    "server": "The service had an error",
    "download": "The video was made but could not be kept",
    "lost_answer": "Sent, but the answer was lost: it may still run on fal",
    "render": "The offline preview could not render",
}
_MARK = {"completed": ("✓", "#1a7f37"), "failed": ("✗", "#b00"), "cancelled": ("■", "#777"),
         "unknown": ("?", "#9a6700")}


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


# --- one run as data and as HTML -------------------------------------------------------------


def run_fields(run: Run) -> dict[str, Any]:
    """The facts every view of a run needs, from a Generation or a history record alike."""
    if isinstance(run, Generation):
        return {**run.to_dict(), "id": run.history_id, "status": run.status, "rating": None,
                "notes": None}
    fields = dict(run)
    fields["status"] = JobStatus(fields["status"])
    fields.setdefault("error", fields.get("error_message"))
    return fields


def short_endpoint(endpoint_id: str) -> str:
    """`kling-video/v2.1/standard` for `fal-ai/kling-video/v2.1/standard/image-to-video`."""
    parts = [p for p in endpoint_id.split("/") if p not in ("fal-ai", "image-to-video")]
    return "/".join(parts) or endpoint_id


def model_name(endpoint_id: str, arguments: Mapping[str, Any]) -> str:
    """The endpoint's short name, and the `model` (snapshot) asked for when it says more."""
    short, model = short_endpoint(endpoint_id), arguments.get("model")
    return f"{short} · {model}" if model and str(model) != short else short


def video_seconds(arguments: Mapping[str, Any]) -> float | None:
    """The length of video a request asked for, in seconds, whatever its field is called."""
    for name in DURATION_FIELDS:
        if arguments.get(name) is not None:
            return to_seconds(arguments[name])
    return None


def summary_line(run: Run) -> str:
    """One line: id, status, model, the video's length, how long it took, and its cost."""
    f = run_fields(run)
    status = f["status"].value
    mark, colour = _MARK.get(status, ("…", "#555"))
    seconds = video_seconds(f.get("arguments") or {})
    bits = [f"<b>#{f['id']}</b>" if f.get("id") is not None else "",
            f"<b style='color:{colour}'>{mark} {html_text(status)}</b>",
            html_text(model_name(f["endpoint_id"], f.get("arguments") or {})),
            f"{seconds:g} s video" if seconds is not None else "",
            f"took {f['total_s']:.1f} s" if f.get("total_s") is not None else "",
            html_text(format_usd(f.get("cost_usd"))) if f.get("cost_usd") is not None else ""]
    return (f"<div class='sora-summary' style='line-height:1.4;margin:4px 0 2px'>"
            f"{' · '.join(bit for bit in bits if bit)}</div>")


def prompt_html(run: Run) -> str:
    """The prompt in italics, cut at a word boundary when long (the whole prompt as tooltip)."""
    prompt = " ".join(str((run_fields(run).get("arguments") or {}).get("prompt", "")).split())
    if not prompt:
        return ""
    short = textwrap.shorten(prompt, PROMPT_CHARS, placeholder=" …")
    return (f"<div class='sora-prompt' title='{html_attr(prompt)}' style='font-style:italic;"
            f"line-height:1.35;margin:2px 0'>{html_text(short)}</div>")


def video_html(record: Run, *, embed: bool = False, width: int = 480) -> str:
    """A `<video>` for a finished run (a Generation or a history record), or '' when none.

    Its poster is a small data URI (or the thumbnail's web URL), never a relative path."""
    f = run_fields(record)
    src = media_src(f.get("video_path"), f.get("video_url"), embed=embed)
    if not src:
        return ""
    poster = poster_src(f.get("thumbnail_path"), f.get("thumbnail_url"), f.get("video_path"))
    poster_attr = f" poster='{html.escape(poster, quote=True)}'" if poster else ""
    return (f"<video src='{html.escape(src, quote=True)}'{poster_attr} controls loop muted "
            f"playsinline preload='metadata' style='width:{width}px;max-width:100%;"
            "display:block'></video>")


def plain_error(error_type: str | None, message: str | None) -> str:
    """A failure in plain words: what kind of failure, then the backend's sentence."""
    lead = _PLAIN.get(error_kind(error_type), "The generation failed")
    if not message:
        return lead
    return message if message.lower().startswith(lead.lower()) else f"{lead}: {message}"


def facts_html(record: Run) -> str:
    """Parameters, timings, cost and request id of a run as a small, left-aligned, escaped table
    (local files relative to the working folder)."""
    f = run_fields(record)
    rows = [(name, json.dumps(value) if not isinstance(value, str) else shown_value(value))
            for name, value in (f.get("arguments") or {}).items()]
    timing = ", ".join(f"{label} {f[key]:.1f} s" for label, key in
                       (("queued", "queued_s"), ("running", "running_s"), ("total", "total_s"))
                       if f.get(key) is not None)
    rows += [("timings", timing), ("cost (estimate)", format_usd(f.get("cost_usd"))),
             ("backend", f.get("backend")), ("request id", f.get("request_id") or "")]
    cell = "text-align:left;vertical-align:top;padding:1px 8px 1px 0"
    cells = "".join(f"<tr><th style='{cell}'>{html_text(str(k))}</th>"
                    f"<td style='{cell};white-space:pre-wrap;overflow-wrap:anywhere'>"
                    f"{html_text(str(v))}</td></tr>"
                    for k, v in rows if v)
    return f"<table class='sora-facts' style='font-size:12px;line-height:1.35;margin:0'>{cells}</table>"


def error_html(run: Run) -> str:
    """The failure in plain words, in red; '' for a run that did not fail."""
    f = run_fields(run)
    if not f.get("error"):
        return ""
    return f"<div style='color:#b00'>{html_text(plain_error(f.get('error_type'), f['error']))}</div>"


def run_html(run: Run, *, embed: bool = False, width: int = 480) -> str:
    """A run as static HTML (a saved notebook's summary): the video, the summary line, the
    prompt, the error if any, and its parameters folded in a `<details>`."""
    f = run_fields(run)
    video = video_html(f, embed=embed, width=width) if f["status"] is JobStatus.COMPLETED else ""
    marks = [f"rating {f['rating']}" if f.get("rating") else "", html_text(f.get("notes") or "")]
    extra = f"<div><small>{' · '.join(m for m in marks if m)}</small></div>" if any(marks) else ""
    return (f"<div class='sora-run' style='border:1px solid #ddd;border-radius:6px;padding:6px;"
            f"margin:4px 0;max-width:{width + 20}px'>{video}{summary_line(f)}{prompt_html(f)}"
            f"{error_html(f)}{extra}<details><summary>Parameters</summary>{facts_html(f)}"
            "</details></div>")


# --- widgets ---------------------------------------------------------------------------------


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
