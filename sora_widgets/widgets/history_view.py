"""The History tab: past runs as a gallery of poster frames, a page at a time, filtered by text,
model and status; a click opens the run's card beside the gallery.

Only one page of rows is read (`History.find(limit=, offset=)`) and counted (`History.count`),
so a history of thousands of runs stays quick to page through. The page is one `Gallery`
widget (its tiles are drawn in the browser from a list of small dicts) and the opened run is one
`RunView` that every click refills: a page costs no new widgets.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import ipywidgets as widgets
import traitlets

from .._html import poster_src
from ..records import JobStatus
from .card import OnLoad, RunView
from .runs import model_name, run_html, short_endpoint, video_seconds

if TYPE_CHECKING:
    from ..history.store import History

__all__ = ["Gallery", "HistoryView", "record_html", "row_label", "short_endpoint", "tile"]

ANY = "any"
_HERE = Path(__file__).parent


def row_label(record: Mapping[str, Any]) -> str:
    """One line for a run: id, status, endpoint, model, duration and the prompt's start."""
    args = record.get("arguments") or {}
    prompt = " ".join(str(args.get("prompt", "")).split())
    bits = [f"#{record['id']}", JobStatus(record["status"]).value, short_endpoint(record["endpoint_id"])]
    bits += [str(args[name]) for name in ("model", "duration", "resolution") if name in args]
    short = textwrap.shorten(prompt, 60, placeholder=" …")
    return " · ".join(bits) + (f" · {short}" if short else "")


def tile(record: Mapping[str, Any]) -> dict[str, Any]:
    """What the gallery draws for a run: its poster (a data URI, a web URL or ''), a head line,
    a caption cut at a word, and the whole line as tooltip."""
    args = record.get("arguments") or {}
    seconds = video_seconds(args)
    head = [f"#{record['id']}", model_name(record["endpoint_id"], args)]
    if seconds is not None:
        head.append(f"{seconds:g} s")
    prompt = " ".join(str(args.get("prompt", "")).split())
    status = JobStatus(record["status"])
    poster = (poster_src(record.get("thumbnail_path"), record.get("thumbnail_url"),
                         record.get("video_path")) if status is JobStatus.COMPLETED else None)
    return {"id": record["id"], "status": status.value, "poster": poster or "",
            "head": " · ".join(head), "caption": textwrap.shorten(prompt, 70, placeholder=" …"),
            "label": row_label(record)}


def record_html(record: Mapping[str, Any], *, embed: bool = False) -> str:
    """A past run as static, escaped HTML: the video (linked unless `embed`), its summary line,
    prompt and error, and its parameters folded."""
    return run_html(record, embed=embed, width=360)


class Gallery(anywidget.AnyWidget):
    """A page of runs as poster thumbnails; clicking one sets `value` to its history id."""

    _esm = _HERE / "gallery.js"
    _css = _HERE / "card.css"
    items = traitlets.List(traitlets.Dict(), help="The tiles of the page shown, newest first: "
                           "id, status, poster, head, caption, label (see `tile`).").tag(sync=True)
    value = traitlets.Int(None, allow_none=True,
                          help="History id of the chosen run; None when none is.").tag(sync=True)

    @property
    def options(self) -> list[tuple[str, int]]:
        """(label, history id) of each run shown, as a Select's options read."""
        return [(item["label"], item["id"]) for item in self.items]

    def __repr__(self) -> str:
        return f"Gallery({len(self.items)} runs, value={self.value!r})"


class HistoryView(widgets.VBox):
    """Past runs from a History: filters, pages, a gallery, and the chosen run's card."""

    page = traitlets.Int(0, help="The page shown, counted from 0.")
    page_size = traitlets.Int(12, help="Runs per page.")
    total = traitlets.Int(0, help="How many runs match the filters.")
    selected_id = traitlets.Int(None, allow_none=True, help="History id of the selected run.")

    def __init__(self, history: History, *, models: Iterable[str] = (),
                 on_load: OnLoad | None = None, page_size: int = 12,
                 embed_videos: bool = False) -> None:
        self.history = history
        self.embed_videos = embed_videos
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
        self.gallery = Gallery(layout=widgets.Layout(flex="1 1 320px", min_width="260px",
                                                     max_width="640px", margin="0 12px 8px 0"))
        self.card = RunView(history, on_load=on_load, embed_videos=embed_videos)
        self.card.layout = widgets.Layout(flex="1 1 380px", min_width="280px")
        self.hint = widgets.HTML("<small style='color:#666'>Click a thumbnail to open its run.</small>")
        opened = widgets.VBox([self.hint, self.card], layout=widgets.Layout(flex="1 1 380px",
                                                                            min_width="280px"))
        super().__init__([
            widgets.HBox([self.text, self.model, self.status], layout=widgets.Layout(flex_flow="row wrap")),
            widgets.HBox([self.prev_button, self.page_label, self.next_button],
                         layout=widgets.Layout(align_items="center")),
            widgets.Box([self.gallery, opened], layout=widgets.Layout(flex_flow="row wrap",
                                                                      align_items="flex-start"))])
        self.add_class("sora-history-view")
        self.page_size = page_size
        for control in (self.text, self.model, self.status):
            control.observe(self._handle_filter, "value")
        self.prev_button.on_click(self._handle_prev)
        self.next_button.on_click(self._handle_next)
        self.gallery.observe(self._handle_select, "value")

    @property
    def rows(self) -> Gallery:
        """The gallery, under the name of the list it replaced (`options`, `value`)."""
        return self.gallery

    @property
    def load_button(self) -> widgets.Button:
        """The opened run's "Load into controls" button."""
        return self.card.load_button

    @property
    def detail_html(self) -> str:
        """The opened run's video as HTML ('' when none is open or it has no video)."""
        return self.card.video_html if self.selected_id is not None else ""

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
        self.gallery.items = [tile(r) for r in records]
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
        """Open the clicked run in the card (the same widgets, refilled)."""
        self.selected_id = change.new
        if change.new is None:
            return
        self.card.show(self.history.get(change.new))
        self.hint.layout.display = "none"

    def __repr__(self) -> str:
        return f"HistoryView({self.history!r}, page={self.page}, total={self.total})"
