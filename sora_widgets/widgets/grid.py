"""CompareGrid: a sweep's videos in a grid laid out by two axes, played in lockstep, rated.

The browser side (grid.js) plays, pauses and seeks every cell together, opens a cell full size
and sends `rate` messages; this side keeps the `cells` trait in step with the sweep's jobs and
stores ratings in the history. All text is sent as plain data and shown with `textContent`.

Local videos reach the page as bytes over the widget's comm (grid.js asks with a `video` message
and plays the answer from a Blob URL): a path in a widget view would be resolved against the page
(/lab/tree/... in JupyterLab) and VS Code serves no files at all. The bytes go in chunks of at
most CHUNK_BYTES, since Jupyter servers refuse a websocket message over 10 MB. Each cell's poster
is a small JPEG of its first frame, synced as a data URI, so the grid shows pictures before any
video has arrived. Only remote URLs and posters are synced.
"""

from __future__ import annotations

import math
import mimetypes
import threading
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, TypeGuard

import anywidget
import traitlets

from .._html import POSTER_PX, poster_src

__all__ = ["CHUNK_BYTES", "CellState", "CompareGrid", "GridSource", "RateMessage", "VideoChunk",
           "VideoRequest"]

_HERE = Path(__file__).parent
_SAFE_SCHEMES = ("http://", "https://", "data:video/")
CHUNK_BYTES = 2 * 1024 * 1024  # a video is sent in messages of at most this many bytes


class CellState(TypedDict):
    """One job as the front end shows it; `row`/`col` index `rows`/`cols`."""

    row: int
    col: int
    status: str
    src: str | None  # a remote video URL, or None
    local: bool  # the kernel holds the video: grid.js asks for its bytes with a VideoRequest
    poster: str | None  # the first frame as a small data:image/jpeg URI, or None
    label: str
    history_id: int | None
    error: str | None
    rating: int | None


class RateMessage(TypedDict):
    """Sent by grid.js when the user rates a cell (rating None clears it)."""

    type: Literal["rate"]
    history_id: int
    rating: int | None


class VideoRequest(TypedDict):
    """Sent by grid.js for the bytes of a `local` cell's video; answered by VideoChunks carrying
    the same `request` (a failure sets `notice` instead)."""

    type: Literal["video"]
    history_id: int
    request: str  # chosen by the view, so two views of one grid each take only their answer


class VideoChunk(TypedDict):
    """One piece of a video, its bytes as the message's one buffer (at most CHUNK_BYTES); grid.js
    joins the `count` pieces in `index` order into one Blob of type `mime`."""

    type: Literal["video"]
    history_id: int
    request: str
    mime: str
    index: int
    count: int


class GridSource(Protocol):
    """What the grid needs from a sweep: its cells by two axes, ratings, change notices."""

    def grid_cells(self, rows: str | None, cols: str | None
                   ) -> tuple[list[str], list[str], list[dict[str, Any]]]: ...

    def rate(self, history_id: int, rating: int | None) -> None: ...

    def on_change(self, callback: Any) -> None: ...


def safe_src(src: str | None) -> str | None:
    """`src` if a widget's video element may load it anywhere: an http(s) or data:video URL.

    Paths are refused too: the page resolves them against its own address, not the kernel's folder.
    """
    text = (src or "").strip()
    return text if text.lower().startswith(_SAFE_SCHEMES) else None


def _is_id(value: Any) -> TypeGuard[int]:
    """Whether a value from the page is a history id (an int; JSON true would pass as 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _local_file(cell: dict[str, Any]) -> Path | None:
    """The cell's video file on the kernel's disk, if it has one (by `video_path`)."""
    path = cell.get("video_path")
    return Path(path) if path and Path(path).is_file() else None


class CompareGrid(anywidget.AnyWidget):
    """Videos of a sweep arranged by two axes, with synchronised playback and ratings."""

    _esm = _HERE / "grid.js"
    _css = _HERE / "grid.css"

    cells = traitlets.List(traitlets.Dict(), help="One CellState per job").tag(sync=True)
    rows = traitlets.List(traitlets.Unicode(), help="Row labels (values of the row axis)").tag(sync=True)
    cols = traitlets.List(traitlets.Unicode(),
                          help="Column labels (values of the column axis)").tag(sync=True)
    row_axis = traitlets.Unicode("", help="Name of the axis laid out as rows").tag(sync=True)
    col_axis = traitlets.Unicode("", help="Name of the axis laid out as columns").tag(sync=True)
    notice = traitlets.Unicode("", help="The last problem with a message from the page").tag(sync=True)

    def __init__(self, source: GridSource, *, rows: str | None = None, cols: str | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._source = source
        self._lock = threading.Lock()
        self._files: dict[int, Path] = {}  # history id -> local video; kept out of synced state
        self._posters: dict[Path, str | None] = {}  # local video -> its poster, made once
        self.row_axis, self.col_axis = rows or "", cols or ""
        self.refresh()
        source.on_change(self.refresh)
        self.on_msg(self._on_custom_msg)

    def refresh(self) -> None:
        """Rebuild `cells` from the source (called on every job event, from any thread)."""
        rows, cols, cells = self._source.grid_cells(self.row_axis or None, self.col_axis or None)
        files = {c["history_id"]: path for c in cells
                 if c["history_id"] is not None and (path := _local_file(c)) is not None}
        posters = {hid: self._poster(path) for hid, path in files.items()}
        states = [CellState(row=c["row"], col=c["col"], status=str(c["status"]),
                            src=None if c["history_id"] in files else safe_src(c["src"]),
                            local=c["history_id"] in files, poster=posters.get(c["history_id"]),
                            label=str(c["label"]), history_id=c["history_id"], error=c["error"],
                            rating=c["rating"])
                  for c in cells]
        with self._lock:
            self._files = files
            self.rows, self.cols = rows, cols
            if states != self.cells:
                self.cells = [dict(state) for state in states]

    def _poster(self, path: Path) -> str | None:
        if path not in self._posters:
            self._posters[path] = poster_src(None, None, str(path), size=POSTER_PX)
        return self._posters[path]

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        """Handle a custom message from grid.js; a bad one sets `notice` instead of raising."""
        if not isinstance(content, dict):
            return
        if content.get("type") == "rate":
            self._rate(content)
        elif content.get("type") == "video":
            self._send_video(content)

    def _send_video(self, content: dict[str, Any]) -> None:
        """Answer a VideoRequest with the file's bytes in VideoChunks (message buffers, never
        synced state), each at most CHUNK_BYTES."""
        history_id, request = content.get("history_id"), content.get("request")
        if not _is_id(history_id):
            self.notice = f"Cannot show video: {history_id!r} is not a history id."
            return
        with self._lock:
            path = self._files.get(history_id)
        if path is None:
            self.notice = f"Cannot show video: {history_id} is not a video of this grid on the kernel's disk."
            return
        mime = mimetypes.guess_type(path.name)[0] or "video/mp4"
        try:
            with path.open("rb") as video:
                count = max(1, math.ceil(path.stat().st_size / CHUNK_BYTES))
                for index in range(count):
                    chunk = VideoChunk(type="video", history_id=history_id, request=str(request or ""),
                                       mime=mime, index=index, count=count)
                    self.send(chunk, buffers=[video.read(CHUNK_BYTES)])
        except OSError as error:
            self.notice = f"Cannot show video: {path.name} could not be read ({error.strerror or error})."

    def _rate(self, content: dict[str, Any]) -> None:
        """Store a RateMessage's rating through the source, after checking it."""
        history_id, rating = content.get("history_id"), content.get("rating")
        known = {c["history_id"] for c in self.cells if c["history_id"] is not None}
        if not _is_id(history_id) or history_id not in known:
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
