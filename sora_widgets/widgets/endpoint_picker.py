"""The Panel's endpoint picker and status words: a menu of the endpoints known here, a box for
any other id or OpenAPI document, and the chosen endpoint's status, said before anything is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets
import traitlets

from .._html import html_text

if TYPE_CHECKING:
    from ..schema.endpoints import EndpointInfo, EndpointStatus

__all__ = ["EndpointPicker", "status_html"]


class EndpointPicker(widgets.HBox):
    """The Endpoint menu, then a box and a Load button for another endpoint; a choice in either
    calls `on_pick(spec)`, and the Panel decides whether it can switch."""

    def __init__(self, on_pick: Callable[[str], None]) -> None:
        self._on_pick = on_pick
        self._endpoints: dict[str, EndpointInfo] | None = None  # the menu's list, made once
        self._current = ""
        self._picking = False
        self.menu = widgets.Dropdown(description="Endpoint", style={"description_width": "70px"},
                                     layout=widgets.Layout(width="520px", max_width="100%"))
        self.other = widgets.Text(placeholder="another endpoint id, or a path to its OpenAPI .json",
                                  layout=widgets.Layout(width="360px", max_width="100%"))
        self.load_button = widgets.Button(description="Load", icon="download",
                                          layout=widgets.Layout(width="auto"))
        super().__init__([self.menu, self.other, self.load_button],
                         layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
        self.load_button.on_click(self._handle_other)
        self.menu.observe(self._handle_pick, "value")

    def show(self, status: EndpointStatus) -> None:
        """List bundled, cached and (with a key) fal's image-to-video endpoints, found once per
        picker, and the current one (`status`'s) if it is none of those; choose the current one."""
        from ..schema.endpoints import find_endpoints

        if self._endpoints is None:
            self._endpoints = {e.endpoint_id: e for e in find_endpoints(category=None, online=False)}
            for info in find_endpoints(category="image-to-video"):
                self._endpoints.setdefault(info.endpoint_id, info)
        found = self._endpoints
        self._current = status.endpoint_id
        options = [(_label(info.endpoint_id, info.status, info.origin), info.endpoint_id)
                   for info in found.values()]
        if self._current not in found:
            options.insert(0, (_label(self._current, status.status, "document"), self._current))
        self._picking = True
        try:
            self.menu.options = options
            self.menu.value = self._current
        finally:
            self._picking = False

    def _handle_pick(self, change: traitlets.Bunch) -> None:
        if self._picking or change.new is None or change.new == self._current:
            return
        self._on_pick(change.new)

    def _handle_other(self, button: widgets.Button) -> None:
        if self.other.value.strip():
            self._on_pick(self.other.value.strip())


def _label(endpoint_id: str, status: str, origin: str) -> str:
    marks = {"retired": " (retired)", "deprecated": " (deprecated)"}
    where = {"cached": " · cached", "fal": " · from fal", "document": " · from a document"}
    return f"{endpoint_id}{marks.get(status, '')}{where.get(origin, '')}"


def status_html(status: EndpointStatus) -> str:
    """The endpoint's status in plain words, shown before anything is sent."""
    st = status
    since = f" on {st.since.isoformat()}" if st.since else ""
    if st.status == "retired":
        return _box("#fde2e1", f"<b>{html_text(st.endpoint_id)} was retired{since}.</b> "
                    f"{html_text(st.message)} Your past runs stay in the History tab. To generate, "
                    "pick another model in the Endpoint menu above. "
                    f"<small>Source: {html_text(st.source)}</small>")
    if st.status == "deprecated":
        return _box("#fff4d6", f"<b>{html_text(st.endpoint_id)} is deprecated.</b> "
                    f"{html_text(st.message)} "
                    f"<small>Source: {html_text(st.source)}</small>")
    if st.status == "active":
        return _box("#e9f7ec", f"Endpoint status: <b>active</b>. <small>{html_text(st.message)} "
                    f"Source: {html_text(st.source)}</small>")
    return _box("#f2f2f2", f"Endpoint status: <b>unknown</b>. <small>{html_text(st.message)}</small>")


def _box(colour: str, inner: str) -> str:
    return (f"<div style='background:{colour};padding:4px 8px;border-radius:4px;margin:2px 0;"
            f"line-height:1.4'>{inner}</div>")
