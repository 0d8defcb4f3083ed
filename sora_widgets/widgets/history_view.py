"""The History tab: past runs a page at a time, filtered by text, model and status.

Only one page of rows is read (`History.find(limit=, offset=)`) and counted (`History.count`),
so a history of thousands of runs stays quick to page through.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from ..records import JobStatus

if TYPE_CHECKING:
    from ..history import History

__all__ = ["HistoryView", "record_html", "row_label", "short_endpoint"]

ANY = "any"


def row_label(record: Mapping[str, Any]) -> str:
    """One line for a run in the list: id, status, endpoint, model, duration and the prompt's start."""
    args = record.get("arguments") or {}
    prompt = " ".join(str(args.get("prompt", "")).split())
    bits = [f"#{record['id']}", JobStatus(record["status"]).value, short_endpoint(record["endpoint_id"])]
    bits += [str(args[name]) for name in ("model", "duration", "resolution") if name in args]
    short = prompt if len(prompt) <= 60 else prompt[:57] + "..."
    return " · ".join(bits) + (f" · {short}" if short else "")


def short_endpoint(endpoint_id: str) -> str:
    """`kling-video/v2.1/standard` for `fal-ai/kling-video/v2.1/standard/image-to-video`."""
    parts = [p for p in endpoint_id.split("/") if p not in ("fal-ai", "image-to-video")]
    return "/".join(parts) or endpoint_id


def record_html(record: Mapping[str, Any], *, embed: bool = False) -> str:
    """A past run as static, escaped HTML: status, prompt, the video (linked unless `embed`),
    facts, error."""
    from .card import facts_html, plain_error, video_html

    args = record.get("arguments") or {}
    status = JobStatus(record["status"])
    parts = [f"<div class='sora-run' style='border:1px solid #ddd;padding:6px;margin:4px 0'>"
             f"<b>#{record['id']}</b> · {html.escape(status.value)} · "
             f"<i>{html.escape(str(args.get('prompt', '')))}</i>"]
    if status is JobStatus.COMPLETED:
        parts.append(video_html(record, embed=embed, width=360))
    if record.get("error_message"):
        parts.append(f"<div style='color:#b00'>"
                     f"{html.escape(plain_error(record.get('error_type'), record['error_message']))}</div>")
    parts.append(facts_html(record))
    notes = record.get("notes")
    rating = record.get("rating")
    if rating or notes:
        parts.append(f"<div><small>rating {rating or '-'} · {html.escape(notes or '')}</small></div>")
    parts.append("</div>")
    return "".join(parts)


class HistoryView(widgets.VBox):
    """Past runs from a History: filters, pages, a list, and the selected run's video and actions."""

    page = traitlets.Int(0, help="The page shown, counted from 0.")
    page_size = traitlets.Int(20, help="Rows per page.")
    total = traitlets.Int(0, help="How many runs match the filters.")
    selected_id = traitlets.Int(None, allow_none=True, help="History id of the selected run.")

    def __init__(self, history: History, *, models: Iterable[str] = (),
                 on_load: Callable[[dict[str, Any], str], None] | None = None, page_size: int = 20,
                 embed_videos: bool = False) -> None:
        self.history = history
        self.embed_videos = embed_videos
        self._on_load = on_load
        self.text = widgets.Text(placeholder="search prompt, notes, tags", continuous_update=False,
                                 layout=widgets.Layout(width="240px"))
        self.model = widgets.Combobox(options=[str(m) for m in models], placeholder="any model",
                                      ensure_option=False, layout=widgets.Layout(width="200px"))
        self.status = widgets.Dropdown(options=[ANY, *(s.value for s in JobStatus)], value=ANY,
                                       layout=widgets.Layout(width="130px"))
        self.prev_button = widgets.Button(description="Newer", icon="chevron-left",
                                          layout=widgets.Layout(width="auto"))
        self.next_button = widgets.Button(description="Older", icon="chevron-right",
                                          layout=widgets.Layout(width="auto"))
        self.page_label = widgets.HTML()
        self.rows = widgets.Select(options=[], rows=min(page_size, 12),
                                   layout=widgets.Layout(width="100%"))
        self.detail = widgets.Output()
        self.detail_html = ""
        self.load_button = widgets.Button(description="Load into controls", icon="upload",
                                          disabled=True, layout=widgets.Layout(width="auto"))
        super().__init__([
            widgets.HBox([self.text, self.model, self.status]),
            widgets.HBox([self.prev_button, self.page_label, self.next_button],
                         layout=widgets.Layout(align_items="center")),
            self.rows, self.load_button, self.detail])
        self.page_size = page_size
        for control in (self.text, self.model, self.status):
            control.observe(self._handle_filter, "value")
        self.prev_button.on_click(self._handle_prev)
        self.next_button.on_click(self._handle_next)
        self.rows.observe(self._handle_select, "value")
        self.load_button.on_click(self._handle_load)

    def filters(self) -> dict[str, Any]:
        """The `find`/`count` filters the controls ask for."""
        given = {"text": self.text.value.strip(), "model": self.model.value.strip(),
                 "status": self.status.value if self.status.value != ANY else ""}
        return {name: value for name, value in given.items() if value}

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def refresh(self) -> None:
        """Count the matching runs and read the current page, and no more."""
        filters = self.filters()
        self.total = self.history.count(**filters)
        self.page = min(self.page, self.pages - 1)
        records = self.history.find(**filters, limit=self.page_size, offset=self.page * self.page_size)
        chosen = self.selected_id
        self.rows.options = [(row_label(r), r["id"]) for r in records]
        if chosen in [r["id"] for r in records]:
            self.rows.value = chosen
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        self.page_label.value = (f"&nbsp;page {self.page + 1} of {self.pages} · "
                                 f"{self.total} run{'s' if self.total != 1 else ''}&nbsp;")

    def _handle_filter(self, change: traitlets.Bunch) -> None:
        self.page = 0
        self.refresh()

    def _handle_prev(self, button: widgets.Button) -> None:
        self.page = max(0, self.page - 1)
        self.refresh()

    def _handle_next(self, button: widgets.Button) -> None:
        self.page = min(self.pages - 1, self.page + 1)
        self.refresh()

    def _handle_select(self, change: traitlets.Bunch) -> None:
        self.selected_id = change.new
        self.load_button.disabled = change.new is None
        self.detail.clear_output()
        if change.new is None:
            self.detail_html = ""
            return
        from IPython.display import HTML

        self.detail_html = record_html(self.history.get(change.new), embed=self.embed_videos)
        self.detail.append_display_data(HTML(self.detail_html))

    def _handle_load(self, button: widgets.Button) -> None:
        if self._on_load is not None and self.selected_id is not None:
            record = self.history.get(self.selected_id)
            self._on_load(dict(record["arguments"]), record["endpoint_id"])

    def __repr__(self) -> str:
        return f"HistoryView({self.history!r}, page={self.page}, total={self.total})"
