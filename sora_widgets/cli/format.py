"""Text the `sora-widgets` command prints: tables, the schema listing and the progress line.

Kept apart from `cli.py` so the command's flow reads top to bottom and every piece of output
can be tested as a plain string.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

from ..pricing import format_usd
from ..records import Generation, JobEvent
from ..schema.documents import EndpointSchema
from ..schema.fields import Field

if TYPE_CHECKING:
    from ..jobs.job import Job

__all__ = ["PrintableStream", "Progress", "generation_summary", "history_table", "printable",
           "schema_listing", "table"]

_CONTROLS = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves, clearing the screen
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC...: links, titles
    r"|\x1b[ -/]*[0-~]"  # any other escape sequence
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # what is left of C0 (but tab, newline), DEL and C1


def printable(text: str) -> str:
    """`text` without terminal control sequences or carriage returns, so text from a server or a
    history file cannot recolour, clear or retitle the terminal, hide a link or overwrite a line."""
    return _CONTROLS.sub("", text)


class PrintableStream(io.TextIOBase):
    """A text stream that writes everything through `printable` to `raw`; the command prints
    through two of these (stdout, stderr), so no text reaches the terminal uncleaned."""

    def __init__(self, raw: TextIO) -> None:
        super().__init__()
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return self.raw.isatty()

    def writable(self) -> bool:
        return True

    @property  # typeshed has TextIOBase.encoding as a plain attribute; io's own is read-only too
    def encoding(self) -> str:  # type: ignore[override]
        return self.raw.encoding


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns separated by two spaces, with a rule under the header."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _value(value: Any) -> str:
    """A field value as a user would type it on the command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _default(f: Field) -> str:
    return _value(f.default) if f.has_default else "-"


def schema_listing(schema: EndpointSchema) -> str:
    """Every input field: type, required, default, allowed values, then its description."""
    rows = [[f.name + (" *" if f.required else ""), f.type, _default(f), f.allowed()]
            for f in schema.fields]
    lines = [f"{schema.endpoint_id}  ({len(schema.fields)} fields, * required)", ""]
    body = table(["field", "type", "default", "allowed"], rows).splitlines()
    lines += body[:2]
    for row_text, f in zip(body[2:], schema.fields):
        lines.append(row_text)
        if f.description:
            lines.append("    " + _shorten(f.description, 100))
    lines += ["", "Option names for `sora-widgets generate`: "
              + " ".join(option_name(f) for f in schema.fields)]
    return "\n".join(lines)


def option_name(f: Field) -> str:
    """The command-line option of a field: `image_url` -> `--image-url`."""
    return "--" + f.name.replace("_", "-")


def _local_time(stamp: Any) -> str:
    if isinstance(stamp, datetime):
        return stamp.astimezone().strftime("%Y-%m-%d %H:%M")
    if isinstance(stamp, str) and stamp:
        try:
            return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
        except ValueError:
            return stamp
    return "-"


def _seconds(value: Any) -> str:
    return f"{value:.1f}s" if isinstance(value, (int, float)) else "-"


def history_table(records: Sequence[Mapping[str, Any]], *, prompt_width: int = 40) -> str:
    """Recent runs, one line each: when, status, backend, model, duration, time, cost, prompt."""
    rows = []
    for r in records:
        args = r.get("arguments") or {}
        rows.append([
            str(r.get("id", "")), _local_time(r.get("created_at")), str(r.get("status", "")),
            str(r.get("backend", "")), str(args.get("model", "-")),
            f"{args['duration']}s" if "duration" in args else "-", _seconds(r.get("total_s")),
            format_usd(r.get("cost_usd")) if r.get("cost_usd") is not None else "-",
            _shorten(str(args.get("prompt", "")), prompt_width),
        ])
    return table(["id", "created", "status", "backend", "model", "length", "took", "cost",
                  "prompt"], rows)


def generation_summary(gen: Generation) -> str:
    """Where the video is and what it took, as printed when a generation finishes."""
    lines = [f"video: {gen.video_path or gen.video_url}"]
    if gen.video_path and gen.video_url and gen.video_url != gen.video_path:
        lines.append(f"url: {gen.video_url}")
    if gen.thumbnail_path:
        lines.append(f"thumbnail: {gen.thumbnail_path}")
    facts = [f"history id {gen.history_id}", f"request id {gen.request_id}",
             f"backend {gen.backend}", f"took {_seconds(gen.total_s)}",
             f"estimated cost {format_usd(gen.cost_usd)}"]
    lines.append(", ".join(facts))
    if gen.note:
        lines.append(gen.note)
    return "\n".join(lines)


class Progress:
    """A one-line status on stderr (queue position, elapsed time) fed by `Job.on_event`.

    On a terminal the line is redrawn in place every tick; otherwise (a log file, a CI job)
    a line is written only when the status changes, so logs stay short. Log lines from the
    backend are printed above the status line either way, through `printable` like the rest.
    """

    def __init__(self, stream: TextIO | None = None, *, label: str = "") -> None:
        stream = stream or sys.stderr
        # it redraws with "\r" of its own, so it writes past a PrintableStream and cleans its text
        self.stream = stream.raw if isinstance(stream, PrintableStream) else stream
        self.label = label
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self._live = self.stream.isatty()
        self._kind = "pending"
        self._position: int | None = None
        self._last_written = ""

    def __call__(self, job: Job, event: JobEvent) -> None:
        """The `Job.on_event` callback: remember the state, print logs, redraw."""
        with self._lock:
            self._kind = event.kind
            if event.kind == "queued":
                self._position = event.position
            for line in event.logs:
                self._write_above(f"  log: {line}")
            self._draw(job)
        if event.is_final:
            self.finished.set()

    def tick(self, job: Job) -> None:
        """Redraw with the current elapsed time (only on a terminal)."""
        if self._live:
            with self._lock:
                self._draw(job)

    def _status(self, job: Job) -> str:
        queued = self._kind == "queued" and self._position is not None
        where = f" position {self._position}" if queued else ""
        return f"{self.label}{self._kind}{where} · {job.elapsed_s:.0f}s"

    def _draw(self, job: Job) -> None:
        text = printable(self._status(job))
        if self._live:
            width = shutil.get_terminal_size((80, 20)).columns - 1
            self.stream.write("\r" + text[:width].ljust(min(width, len(self._last_written))))
            if self._kind in ("completed", "failed", "cancelled", "unknown"):
                self.stream.write("\n")
        elif text.split(" · ")[0] != self._last_written.split(" · ")[0]:
            self.stream.write(text + "\n")
        self._last_written = text
        self.stream.flush()

    def _write_above(self, line: str) -> None:
        if self._live and self._last_written:
            self.stream.write("\r" + " " * len(self._last_written) + "\r")
        self.stream.write(printable(line) + "\n")
