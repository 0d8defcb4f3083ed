"""A job's card: live status while it runs, then the video, its facts, actions and rating.

Job events arrive on the package's job loop thread; the handler only copies the job's state
into widget traits (ipywidgets sends those from any thread), so it stays small.

Videos are shown by reference, not embedded: `<video src="sora_runs/media/...mp4">` relative
to the kernel's working folder (which Jupyter serves beside the notebook), or the remote URL.
So a saved notebook grows by a few hundred bytes per run, not by the video.
"""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets as widgets
import traitlets
from IPython.display import HTML

from .._errors import GenerationError
from ..pricing import format_usd
from ..records import Generation, JobEvent, JobStatus, media_src
from .code import fal_client_code, sora_widgets_code

if TYPE_CHECKING:
    from ..jobs import Job

__all__ = ["CopyButton", "ElapsedBar", "JobCard", "video_html"]

_HERE = Path(__file__).parent
LOG_LINES = 12

#: the first words shown for each kind of failure, before the backend's own sentence
_PLAIN = {
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


def video_html(record: Generation | Mapping[str, Any], *, embed: bool = False,
               width: int = 480) -> str:
    """A `<video>` for a finished run (a Generation or a history record), or '' when none."""
    get = record.get if isinstance(record, Mapping) else lambda name: getattr(record, name)
    src = media_src(get("video_path"), get("video_url"), embed=embed)
    if not src:
        return ""
    poster = media_src(get("thumbnail_path"), get("thumbnail_url"), embed=embed,
                       content_type="image/jpeg")
    poster_attr = f" poster='{html.escape(poster, quote=True)}'" if poster else ""
    return (f"<video src='{html.escape(src, quote=True)}'{poster_attr} controls loop muted "
            f"playsinline preload='metadata' style='width:{width}px;max-width:100%;"
            "display:block'></video>")


def plain_error(error_type: str | None, message: str | None) -> str:
    """A failure in plain words: what kind of failure, then the backend's sentence."""
    lead = _PLAIN.get(error_type or "", "The generation failed")
    if not message:
        return lead
    return message if message.lower().startswith(lead.lower()) else f"{lead}: {message}"


def _short_path(value: str) -> str:
    """A local file shown relative to the working folder, so cards stay short and shareable."""
    path = Path(value)
    if not path.is_absolute():
        return value
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return value


def facts_html(record: Generation | Mapping[str, Any]) -> str:
    """Parameters, timings, cost and request id of a run as a small escaped table."""
    get = record.get if isinstance(record, Mapping) else lambda name: getattr(record, name)
    rows = [(name, json.dumps(value) if not isinstance(value, str) else _short_path(value))
            for name, value in (get("arguments") or {}).items()]
    timing = ", ".join(f"{label} {get(key):.1f} s" for label, key in
                       (("queued", "queued_s"), ("running", "running_s"), ("total", "total_s"))
                       if get(key) is not None)
    rows += [("timings", timing), ("cost (estimate)", format_usd(get("cost_usd"))),
             ("backend", get("backend")), ("request id", get("request_id") or "")]
    cells = "".join(f"<tr><th style='text-align:left;padding-right:8px'>{html.escape(str(k))}</th>"
                    f"<td style='white-space:pre-wrap'>{html.escape(str(v))}</td></tr>"
                    for k, v in rows if v)
    return f"<table class='sora-facts' style='font-size:12px'>{cells}</table>"


class JobCard(widgets.VBox):
    """One job: queued (position), running (elapsed, logs, Cancel), then video, facts and actions."""

    status = traitlets.Unicode("pending", help="The job's status value, as last shown.")

    def __init__(self, job: Job, *, on_load: Callable[[dict[str, Any], str], None] | None = None,
                 embed_videos: bool = False) -> None:
        self.job = job
        self.embed_videos = embed_videos
        self._on_load = on_load
        self._lock = threading.Lock()
        self._finished = False
        prompt = str(job.arguments.get("prompt", ""))
        short = prompt if len(prompt) <= 90 else prompt[:87] + "..."
        model = job.arguments.get("model")
        self.header = widgets.HTML(
            f"<b>#{job.history_id}</b> · <code>{html.escape(job.endpoint_id)}</code>"
            f"{' · ' + html.escape(str(model)) if model else ''} · <i>{html.escape(short)}</i>")
        self.bar = ElapsedBar()
        self.cancel_button = widgets.Button(description="Cancel", icon="stop",
                                            button_style="warning", layout=widgets.Layout(width="auto"))
        self.cancel_button.on_click(self._handle_cancel)
        self.logs = widgets.HTML()
        self.error = widgets.HTML()
        self.video = widgets.Output()
        self.video_html = ""
        self.facts = widgets.HTML()
        self.actions = widgets.HBox()
        self.load_button = widgets.Button(description="Load into controls", icon="upload",
                                          layout=widgets.Layout(width="auto"))
        self.load_button.on_click(self._handle_load)
        self.code_button = widgets.Button(description="Copy as code", icon="code",
                                          layout=widgets.Layout(width="auto"))
        self.code_button.on_click(self._handle_code)
        self.rating = widgets.ToggleButtons(options=[(str(n), n) for n in range(1, 6)], value=None,
                                            tooltips=[f"rate {n} of 5" for n in range(1, 6)],
                                            style={"button_width": "28px"})
        self.rating.observe(self._handle_rating, "value")
        self.notes = widgets.Text(placeholder="notes", continuous_update=False,
                                  layout=widgets.Layout(width="220px"))
        self.notes.observe(self._handle_notes, "value")
        self.code_box = widgets.VBox(layout=widgets.Layout(display="none"))
        super().__init__([widgets.HBox([self.header]), widgets.HBox([self.bar, self.cancel_button]),
                          self.logs, self.error, self.video, self.facts, self.actions, self.code_box],
                         layout=widgets.Layout(border="1px solid #ddd", padding="6px", margin="4px 0"))
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
        self._show_final(gen)

    def _show_final(self, gen: Generation) -> None:
        self.cancel_button.layout.display = "none"
        if gen.status is JobStatus.COMPLETED:
            self.video_html = video_html(gen, embed=self.embed_videos)
            if gen.note:
                self.video_html = (f"<div style='color:#666;font-size:12px'>{html.escape(gen.note)}"
                                   f"</div>{self.video_html}")
            self.video.append_display_data(HTML(self.video_html))
        else:
            self.error.value = (f"<div style='color:#b00'>"
                                f"{html.escape(plain_error(gen.error_type, gen.error))}</div>")
        self.facts.value = facts_html(gen)
        self.actions.children = [self.load_button, self.code_button, widgets.HTML("&nbsp;rating"),
                                 self.rating, self.notes]

    @property
    def code(self) -> dict[str, str]:
        """The request as code: {"sora_widgets": ..., "fal_client": ...}, with no key in it."""
        return {"sora_widgets": sora_widgets_code(self.job.endpoint_id, self.job.arguments),
                "fal_client": fal_client_code(self.job.endpoint_id, self.job.arguments)}

    def _handle_code(self, button: widgets.Button) -> None:
        if not self.code_box.children:
            parts: list[widgets.Widget] = []
            for name, text in self.code.items():
                parts += [CopyButton(text=text, label=f"Copy {name} code"),
                          widgets.HTML(f"<pre style='font-size:11px'>{html.escape(text)}</pre>")]
            self.code_box.children = parts
        shown = self.code_box.layout.display != "none"
        self.code_box.layout.display = "none" if shown else None

    def _handle_load(self, button: widgets.Button) -> None:
        if self._on_load is not None:
            self._on_load(dict(self.job.arguments), self.job.endpoint_id)

    def _handle_rating(self, change: traitlets.Bunch) -> None:
        self.job.history.annotate(self.job.history_id, rating=change.new)

    def _handle_notes(self, change: traitlets.Bunch) -> None:
        self.job.history.annotate(self.job.history_id, notes=change.new or None)

    def _handle_cancel(self, button: widgets.Button) -> None:
        """Cancel on a helper thread: a cancel can take a network round trip."""
        button.disabled, button.description = True, "Cancelling..."
        threading.Thread(target=self._cancel, name="sora-widgets-cancel", daemon=True).start()

    def _cancel(self) -> None:
        try:
            self.job.cancel()
        except (GenerationError, TimeoutError) as exc:
            self.error.value = (f"<div style='color:#b00'>Could not cancel: "
                                f"{html.escape(str(exc))}</div>")
            self.cancel_button.disabled, self.cancel_button.description = False, "Cancel"

    def static_html(self) -> str:
        """The card as plain HTML (for a saved notebook opened without a kernel)."""
        gen = self.job.generation
        prompt = html.escape(str(gen.arguments.get("prompt", "")))
        body = video_html(gen) if gen.ok else ""  # linked, never embedded, in the summary
        if gen.error:
            body += f"<div style='color:#b00'>{html.escape(plain_error(gen.error_type, gen.error))}</div>"
        return (f"<div class='sora-card' style='border:1px solid #ddd;padding:6px;margin:4px 0'>"
                f"<b>#{gen.history_id}</b> · {html.escape(gen.status.value)} · <i>{prompt}</i>"
                f"{body}{facts_html(gen)}</div>")

    def __repr__(self) -> str:
        return f"JobCard({self.job!r})"
