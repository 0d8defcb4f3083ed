"""The Panel's saved-notebook summary: static HTML of the latest results, shown as its own output
under the live view and updated by display id, so a notebook reopened without a kernel shows the
runs and no error.

Its CSS hides it (and its output's row) while the panel's live view is on the page, and, while
the view is not (no kernel, or a new one without this panel's model), hides the output just
before it: the widget's, which then says "Error displaying widget: model not found".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from IPython import get_ipython
from IPython.display import display

__all__ = ["SUMMARY_RUNS", "SummaryOutput", "live_class", "summary_html"]

SUMMARY_RUNS = 5


def live_class(model_id: str) -> str:
    """The CSS class of a panel's live view: while it is on the page, the summary hides."""
    return f"sora-panel-{model_id}"


def summary_html(model_id: str, head: str, runs: Iterable[str]) -> str:
    """The summary of the panel with widget model `model_id`: its `head` (the banner) and the
    HTML of its latest `runs`, with the CSS that shows it only where the live view is not."""
    key, live = f"sora-panel-summary-{model_id}", live_class(model_id)
    shown = f"body:has(.{live})"
    gone = f"body:not(:has(.{live}))"
    style = (f"<style>{shown} .{key}, {shown} .jp-OutputArea-child:has(.{key}) {{display: none}} "
             f"{gone} .jp-OutputArea-child:has(+ .jp-OutputArea-child .{key}) {{display: none}}"
             "</style>")
    body = "".join(runs) or "<p>No runs yet.</p>"
    return (f"<div class='sora-panel-summary {key}'>{style}<div><b>sora-widgets panel</b>{head}</div>"
            f"{body}</div>")


class SummaryOutput:
    """The outputs showing one panel's summary (by display id), and the request that displayed
    each: an update is sent as a reply to it, from whichever thread it is sent."""

    def __init__(self, display_id: str) -> None:
        self.display_id = display_id
        self._parents: list[dict[str, Any] | None] = []

    @property
    def displayed(self) -> bool:
        """True once the summary has been shown somewhere."""
        return bool(self._parents)

    def show(self, view: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
        """Show the live `view`'s bundle, then the `summary` bundle as its own output."""
        display(view, raw=True)
        display(summary, raw=True, display_id=self.display_id)
        publisher = getattr(get_ipython(), "display_pub", None)
        parent = dict(getattr(publisher, "parent_header", None) or {}) or None
        if parent not in self._parents:
            self._parents.append(parent)

    def update(self, summary: Mapping[str, Any]) -> None:
        """Send `summary` to every output showing it; safe from the job loop's thread.

        A front end routes an update by the message's parent: ipykernel gives a message from
        another thread the parent of the latest request (often another cell, or a widget's
        click), so each update is sent as a reply to the request that displayed the panel."""
        publisher = getattr(get_ipython(), "display_pub", None)
        for parent in self._parents:
            token = (publisher.set_thread_parent(parent) if publisher is not None and parent is not None
                     and hasattr(publisher, "set_thread_parent") else None)
            try:
                display(summary, raw=True, display_id=self.display_id, update=True)
            finally:
                if publisher is not None and token is not None:
                    publisher.reset_thread_parent(token)
