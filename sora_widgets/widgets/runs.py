"""A run as data and as static HTML, without widgets: the facts, the one-line summary, the
prompt, the `<video>` and the parameters that every view of a run shows (cards, the history
tab, a saved notebook's summary), from a Generation or a history record alike.

Videos are shown by reference, not embedded: `<video src="sora_runs/media/...mp4">` relative
to the kernel's working folder (which Jupyter serves beside the notebook), or the remote URL,
with a poster frame as a few-kB data URI (`poster_src`). So a saved notebook grows by a few kB
per run, not by the video. Every "$" in the HTML is kept from turning into math (`html_text`).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from typing import Any

from .._errors import ErrorKind, error_kind
from .._html import html_attr, html_text, media_src, poster_src, shown_value, video_tag
from .._values import to_seconds
from ..pricing import format_usd
from ..records import Generation, JobStatus
from ..schema.fields import DURATION_FIELDS

__all__ = ["Run", "error_html", "facts_html", "model_name", "plain_error", "prompt_html", "run_fields",
           "run_html", "short_endpoint", "summary_line", "video_html", "video_seconds"]

PROMPT_CHARS = 160  # the prompt under a card's summary, cut at a word past this (all in its tooltip)
Run = Generation | Mapping[str, Any]

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
    return video_tag(src, poster, style=f"width:{width}px;max-width:100%;display:block")


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
