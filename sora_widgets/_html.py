"""HTML for the views: the one module that writes the markup value objects, exports and widgets
share, so escaping (no "$" ever becomes math), posters and media sources are decided once.

Value objects render themselves (`Generation._repr_html_`) by calling in here; nothing here
imports a layer above the foundations.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._home import in_working_folder, shown_path

if TYPE_CHECKING:
    from .history.store import History
    from .records import Generation

__all__ = ["POSTER_PX", "generation_html", "history_html", "html_attr", "html_table", "html_text",
           "media_src", "poster_src", "runs_text", "schema_html", "shown_value", "video_tag"]

_LEFT = "style='text-align:left'"  # on every cell: JupyterLab right-aligns tables in outputs
_SHORT = "style='text-align:left;white-space:nowrap'"  # cells other than the prompt stay on one line
_CELL = "style='text-align:left;vertical-align:top'"
_HISTORY_ROWS = 20  # the newest runs a history shows in a notebook


def html_text(value: Any) -> str:
    """`value` as HTML text that no notebook turns into math: escaped, each "$" in its own span.

    MathJax (JupyterLab, Notebook 7, Voila) pairs dollar signs within one run of the page's
    text, where `&#36;` is a "$" again; it never pairs them across elements."""
    return html.escape("" if value is None else str(value)).replace("$", "<span>$</span>")


def html_attr(value: Any) -> str:
    """`value` escaped for a quoted attribute (attributes are never typeset)."""
    return html.escape("" if value is None else str(value), quote=True).replace("$", "&#36;")


def shown_value(value: Any) -> Any:
    """`value` as shown to a person: a local file's absolute path relative to the working folder
    (`sora_runs/media/inputs/...`, not a temporary absolute path), recursively in lists."""
    if isinstance(value, list):
        return [shown_value(v) for v in value]
    if isinstance(value, str) and os.path.isabs(value) and Path(value).is_file():
        try:
            return Path(os.path.relpath(value)).as_posix()
        except ValueError:  # another drive (Windows): no relative path exists
            return value
    return value


def media_src(path: str | None, url: str | None, *, embed: bool = False,
              content_type: str = "video/mp4") -> str | None:
    """A browser `src` for a media file: a data URI when embedding, else the local copy relative to
    the kernel's folder, else the remote URL, else a relative path that leaves the folder."""
    local = Path(path) if path else None
    if local is not None and local.is_file():
        if embed:
            return f"data:{content_type};base64,{base64.b64encode(local.read_bytes()).decode()}"
        inside = in_working_folder(local)
        if inside is not None:
            return inside
    if url and url.startswith(("http://", "https://")):
        return url
    if local is not None and local.is_file():
        return Path(os.path.relpath(local.resolve(), Path.cwd().resolve())).as_posix()
    return None


#: the longest side of a poster frame, in pixels: a few kB as a JPEG data URI
POSTER_PX = 320


def poster_src(thumbnail_path: str | None, thumbnail_url: str | None,
               video_path: str | None = None, *, size: int = POSTER_PX) -> str | None:
    """A `poster` that shows in every front end: the local thumbnail (else the video's first
    frame) as a small JPEG data URI, else the thumbnail's web URL, else None.

    Not a relative path: JupyterLab rewrites a relative `src` to its file server but leaves
    `poster` alone, so a relative poster loads the Lab page (a black box until played)."""
    for path, is_video in ((thumbnail_path, False), (video_path, True)):
        if not path:
            continue
        try:
            stat = os.stat(path)
        except OSError:
            continue
        uri = _poster(os.path.realpath(path), stat.st_mtime_ns, stat.st_size, is_video, size)
        if uri:
            return uri
    if thumbnail_url and thumbnail_url.startswith(("http://", "https://")):
        return thumbnail_url
    return None


@functools.lru_cache(maxsize=512)
def _poster(path: str, mtime_ns: int, file_size: int, is_video: bool, size: int) -> str | None:
    """The data URI of one file's poster, made once per version of the file (mtime and size)."""
    image = _first_frame(path) if is_video else _picture(path, size)
    if image is None:
        return None
    image = image.convert("RGB")
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=70, optimize=True)
    return f"data:image/jpeg;base64,{base64.b64encode(out.getvalue()).decode()}"


def _picture(path: str, size: int) -> Any:
    """An image file as a PIL image decoded near `size` (JPEG draft mode), or None."""
    from PIL import Image

    try:
        image = Image.open(path)
        image.draft("RGB", (size, size))
        image.load()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None
    return image


def _first_frame(path: str) -> Any:
    """A video's first frame as a PIL image, or None when it has none that can be read."""
    import av

    try:
        with av.open(path) as container:
            return next(container.decode(video=0)).to_image()
    except (av.FFmpegError, OSError, ValueError, StopIteration):
        return None


def video_tag(src: str, poster: str | None, *, style: str) -> str:
    """A looping, muted `<video>` with controls that loads only its metadata until played."""
    poster_attr = f" poster='{html.escape(poster, quote=True)}'" if poster else ""
    return (f"<video src='{html.escape(src, quote=True)}'{poster_attr} controls loop muted playsinline "
            f"preload='metadata' style='{html.escape(style, quote=True)}'></video>")


def generation_html(gen: Generation, *, embed: bool = False) -> str:
    """A run as HTML (`Generation.html`): the poster a small data URI (`poster_src`), every "$"
    kept from turning into math (`html_text`)."""
    src = media_src(gen.video_path, gen.video_url, embed=embed)
    parts = [f"<div class='sora-generation'><b>{html_text(gen.status.value)}</b> · "
             f"{html_text(gen.backend)} · <code>{html_text(gen.endpoint_id)}</code>"]
    if gen.note:
        parts.append(f"<div><i>{html_text(gen.note)}</i></div>")
    if src and gen.ok:
        poster = poster_src(gen.thumbnail_path, gen.thumbnail_url, gen.video_path)
        parts.append(video_tag(src, poster, style="max-width:480px;display:block"))
        if src.startswith("../"):
            parts.append("<small>The video is outside the notebook's folder, where Jupyter "
                         "cannot serve it: keep SORA_WIDGETS_HOME beside the notebook, or show "
                         "it with gen.html(embed=True).</small>")
    if gen.error:
        parts.append(f"<div style='color:#b00'>{html_text(gen.error)}</div>")
    facts = {k: v for k, v in (("request_id", gen.request_id), ("total_s", gen.total_s),
                               ("cost_usd", gen.cost_usd)) if v is not None}
    parts.append(f"<pre>{html.escape(json.dumps(gen.arguments, indent=1, default=str))}</pre>")
    if facts:
        parts.append(f"<small>{html_text(', '.join(f'{k}={v}' for k, v in facts.items()))}</small>")
    parts.append("</div>")
    return "".join(parts)


def html_table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """A left-aligned table of `head` (plain text) over `rows` (HTML already); empty without rows."""
    if not rows:
        return ""
    cells = [f"<tr>{''.join(f'<th {_CELL}>{html_text(h)}</th>' for h in head)}</tr>"]
    cells += [f"<tr>{''.join(f'<td {_CELL}>{c}</td>' for c in row)}</tr>" for row in rows]
    return f"<table>{''.join(cells)}</table>"


def schema_html(endpoint_id: str, rows: list[tuple[str, ...]]) -> str:
    """An endpoint's fields as a table (`EndpointSchema._repr_html_`): `rows` of plain text for
    field, type, allowed values, default and description."""
    shown = [tuple(html_text(cell) for cell in row) for row in rows]
    table = html_table(("field", "type", "allowed", "default", "description"), shown)
    return f"<b>{html_text(endpoint_id)}</b> (* required){table}"


def runs_text(count: int) -> str:
    """"1 run", "3 runs": how a count of runs is said everywhere."""
    return f"{count} run" if count == 1 else f"{count} runs"


def history_html(log: History) -> str:
    """A history as a compact table of its newest runs (`History._repr_html_`): every value from
    the file escaped, cells left-aligned (JupyterLab right-aligns them), no `$` typeset as math."""
    records = log.find(limit=_HISTORY_ROWS)
    total = log.count()
    shown = runs_text(total) + (f", newest {len(records)} shown" if total > len(records) else "")
    head = (f"<div class='sora-history'><div><b>History</b> · <code>{html_text(shown_path(log.path))}</code>"
            f" · {html_text(shown)}</div>")
    if not records:
        return head + "<div><i>No runs yet.</i></div></div>"
    cells = ["", "#", "time (UTC)", "prompt", "model", "duration", "status", "cost"]
    rows = ["<tr>" + "".join(f"<th {_LEFT}>{html_text(c)}</th>" for c in cells) + "</tr>"]
    for record in records:
        arguments = record["arguments"]
        src = _thumbnail_src(log.path.parent, record["thumbnail_path"], record["thumbnail_url"])
        thumb = f"<img src='{html.escape(src)}' style='height:40px' loading='lazy'>" if src else ""
        prompt = str(arguments.get("prompt", ""))
        short = prompt if len(prompt) <= 80 else prompt[:77] + "..."
        duration = arguments.get("duration")
        cost = record["cost_usd"]
        before = [str(record["id"]), _when(record["created_at"])]
        after = [str(arguments.get("model", "")), "" if duration is None else f"{duration} s",
                 record["status"].value, "" if cost is None else f"${cost:.2f}"]
        rows.append(f"<tr><td {_LEFT}>{thumb}</td>"
                    + "".join(f"<td {_SHORT}>{html_text(v)}</td>" for v in before)
                    + f"<td {_LEFT} title='{html_attr(prompt)}'>{html_text(short)}</td>"
                    + "".join(f"<td {_SHORT}>{html_text(v)}</td>" for v in after) + "</tr>")
    return head + "<table>" + "".join(rows) + "</table></div>"



def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _thumbnail_src(base: Path, path: str | None, url: str | None) -> str | None:
    """The local thumbnail relative to the working folder when reachable, else a web URL.

    A relative stored path is taken relative to the history's folder, so a copied run folder works.
    """
    if path:
        local = Path(path) if Path(path).is_absolute() else base / path
        inside = in_working_folder(local) if local.is_file() else None
        if inside is not None:
            return inside
    if url and url.startswith(("https://", "http://", "data:image/")):
        return url
    return None
