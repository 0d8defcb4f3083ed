"""CompareGrid: a sweep's videos in a grid laid out by two axes, played in lockstep, rated.

The browser side (grid.js) plays, pauses and seeks every cell together, opens a cell full size
and sends `rate` messages; this side keeps the `cells` trait in step with the sweep's jobs and
stores ratings in the history. All text is sent as plain data and shown with `textContent`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict

import anywidget
import traitlets

__all__ = ["CellState", "CompareGrid", "GridSource", "RateMessage"]

_HERE = Path(__file__).parent
_SAFE_SCHEMES = ("http://", "https://", "data:video/", "blob:")


class CellState(TypedDict):
    """One job as the front end shows it; `row`/`col` index `rows`/`cols`."""

    row: int
    col: int
    status: str
    src: str | None
    label: str
    history_id: int | None
    error: str | None
    rating: int | None


class RateMessage(TypedDict):
    """Sent by grid.js when the user rates a cell (rating None clears it)."""

    type: Literal["rate"]
    history_id: int
    rating: int | None


class GridSource(Protocol):
    """What the grid needs from a sweep: its cells by two axes, ratings, change notices."""

    def grid_cells(self, rows: str | None, cols: str | None
                   ) -> tuple[list[str], list[str], list[dict[str, Any]]]: ...

    def rate(self, history_id: int, rating: int | None) -> None: ...

    def on_change(self, callback: Any) -> None: ...


def safe_src(src: str | None) -> str | None:
    """`src` if a video element may load it (http(s), data:video, blob or a relative path)."""
    if not src:
        return None
    text = src.strip()
    if text.lower().startswith(_SAFE_SCHEMES):
        return text
    if ":" in text.split("/", 1)[0]:  # any other scheme (javascript:, file:, ...) is refused
        return None
    return text


class CompareGrid(anywidget.AnyWidget):
    """Videos of a sweep arranged by two axes, with synchronised playback and ratings."""

    _esm = _HERE / "grid.js"
    _css = _HERE / "grid.css"

    cells = traitlets.List(traitlets.Dict(), help="One CellState per job").tag(sync=True)
    rows = traitlets.List(traitlets.Unicode(), help="Row labels (values of the row axis)").tag(sync=True)
    cols = traitlets.List(traitlets.Unicode(), help="Column labels (values of the column axis)").tag(sync=True)
    row_axis = traitlets.Unicode("", help="Name of the axis laid out as rows").tag(sync=True)
    col_axis = traitlets.Unicode("", help="Name of the axis laid out as columns").tag(sync=True)
    notice = traitlets.Unicode("", help="The last problem with a message from the page").tag(sync=True)

    def __init__(self, source: GridSource, *, rows: str | None = None, cols: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._source = source
        self._lock = threading.Lock()
        self.row_axis, self.col_axis = rows or "", cols or ""
        self.refresh()
        source.on_change(self.refresh)
        self.on_msg(self._handle_msg)

    def refresh(self) -> None:
        """Rebuild `cells` from the source (called on every job event, from any thread)."""
        rows, cols, cells = self._source.grid_cells(self.row_axis or None, self.col_axis or None)
        states = [CellState(row=c["row"], col=c["col"], status=str(c["status"]),
                            src=safe_src(c["src"]), label=str(c["label"]),
                            history_id=c["history_id"], error=c["error"], rating=c["rating"])
                  for c in cells]
        with self._lock:
            self.rows, self.cols = rows, cols
            if states != self.cells:
                self.cells = states

    def _handle_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """Handle a custom message from grid.js; a bad one sets `notice` instead of raising."""
        if not isinstance(content, dict) or content.get("type") != "rate":
            return
        history_id, rating = content.get("history_id"), content.get("rating")
        known = {c["history_id"] for c in self.cells if c["history_id"] is not None}
        if not isinstance(history_id, int) or history_id not in known:
            self.notice = f"Cannot rate: {history_id!r} is not a video of this grid."
            return
        if rating is not None and (isinstance(rating, bool) or not isinstance(rating, int)
                                   or not 1 <= rating <= 5):
            self.notice = f"Cannot rate: a rating is 1 to 5 stars (got {rating!r})."
            return
        self._source.rate(history_id, rating)
        self.notice = ""
        self.refresh()

    def __repr__(self) -> str:
        return f"CompareGrid(rows={self.row_axis!r}, cols={self.col_axis!r})"
