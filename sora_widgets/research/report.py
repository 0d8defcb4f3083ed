"""Sweep reports: a chart, one self-contained HTML file, and a notebook that runs the sweep again.

The HTML report embeds every video as a base64 data URI, so the single file opens offline from
anywhere; every piece of text in it is HTML-escaped (dollar signs too, so a notebook showing it
never typesets them as math), and local files are named relative to the working folder.
matplotlib (the `charts` extra), pandas and nbformat are imported only when used; without
matplotlib `chart()` raises an ImportError that says what to install and the report leaves its
chart out.
"""

from __future__ import annotations

import base64
import mimetypes
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._html import html_attr, html_text, shown_value

if TYPE_CHECKING:
    import matplotlib.figure
    import pandas as pd

    from .plan import SweepPlan
    from .tables import SweepTables

__all__ = ["CHARTS_MISSING", "chart", "reproduce_code", "write_notebook", "write_report"]

CHARTS_MISSING = ("Charts need matplotlib, which is not installed here: "
                  "pip install 'sora-widgets[charts]' (or pip install matplotlib).")

_PANELS = (("total_s", "latency (s)"), ("cost_usd", "cost (USD)"), ("motion", "motion"))
_HIDDEN_COLUMNS = ("video_path", "video_url")
_LONG_CHARS = 40  # longer cell text wraps; shorter stays on one line
#: measured columns the jobs table leaves out: the same facts are in other columns
_REDUNDANT_COLUMNS = ("width", "height", "codec", "frames", "frames_analyzed")
#: the numbers the report's summary shows per group, as "mean ± std"
_SUMMARY_COLUMNS = ("total_s", "cost_usd", "duration_s", "psnr_db", "ssim", "motion", "flicker")

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; text-align: left; }
.wide { overflow-x: auto; max-width: 100%; }
table.data td { white-space: nowrap; }
table.data td.long { white-space: normal; min-width: 18em; }
video { width: 280px; display: block; background: #000; }
.label { color: #555; font-size: 12px; max-width: 280px; }
.error { color: #900; max-width: 280px; white-space: pre-wrap; }
.note { color: #555; font-style: italic; }
pre { background: #f6f6f6; padding: 10px; overflow-x: auto; }
.controls { margin: .5em 0; display: flex; gap: 8px; align-items: center; }
.controls input[type=range] { width: 320px; }
"""

# Plays, pauses and seeks every video of the report together (no network, no libraries).
_SYNC_SCRIPT = """
const vids = [...document.querySelectorAll("video.sync")];
const btn = document.getElementById("play-all"), seek = document.getElementById("seek-all");
const longest = () => Math.max(0, ...vids.map(v => isFinite(v.duration) ? v.duration : 0));
vids.forEach(v => v.addEventListener("loadedmetadata", () => { seek.max = longest(); }));
btn.addEventListener("click", () => {
  const start = vids.some(v => v.paused);
  vids.forEach(v => start ? v.play().catch(() => {}) : v.pause());
  btn.textContent = start ? "Pause all" : "Play all";
});
seek.addEventListener("input", () => vids.forEach(v => {
  v.currentTime = Math.min(Number(seek.value), isFinite(v.duration) ? v.duration : 0);
}));
"""


def chart(frame: pd.DataFrame, *, by: str = "model", path: str | Path | None = None
          ) -> matplotlib.figure.Figure:
    """Bars of mean latency, cost and motion per `by` value, with the spread as error bars.

    Raises ImportError naming the `charts` extra when matplotlib is not installed."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(CHARTS_MISSING, name="matplotlib") from exc

    fig = Figure(figsize=(9, 2.8), layout="constrained")
    FigureCanvasAgg(fig)
    keys = frame[by].map(str) if by in frame.columns else None
    for ax, (column, title) in zip(fig.subplots(1, len(_PANELS)), _PANELS):
        ax.set_title(title)
        values = frame[column] if column in frame.columns else None
        if values is None or values.dropna().empty:
            ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        grouped = values.astype(float).groupby(keys if keys is not None else ["all"] * len(values),
                                               sort=False).agg(["mean", "std"])
        ax.bar(range(len(grouped)), grouped["mean"], yerr=grouped["std"].fillna(0.0), capsize=3,
               color="#4c72b0")
        ax.set_xticks(range(len(grouped)), [_short(k, 18) for k in grouped.index], rotation=20,
                      ha="right", fontsize=8)
    fig.suptitle(f"per {by}" if keys is not None else "all jobs", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def reproduce_code(plan: SweepPlan, *, wait: bool = True) -> str:
    """The sora_widgets call that runs the same sweep again (same endpoint, fields, axes, repeats);
    local files are named relative to the working folder, where the code is meant to run."""
    lines = ["sweep = sw.sweep("]
    if not plan.cross_model:
        lines.append(f"    endpoint={plan.endpoint_id!r},")
    lines.append(f"    backend={plan.backend!r},")
    lines += [f"    {name}={shown_value(value)!r}," for name, value in plan.fields.items()]
    lines += [f"    {name}={shown_value(values)!r},  # axis" for name, values in plan.axes.items()]
    if plan.repeat > 1:
        lines.append(f"    repeat={plan.repeat},")
    if plan.budget_usd is not None:
        lines.append(f"    budget_usd={plan.budget_usd!r},")
    if wait:
        lines.append("    wait=True,")
    lines.append(")")
    return "\n".join(lines)


def _short(value: Any, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _frame_html(frame: pd.DataFrame, *, index: bool) -> str:
    """A flat DataFrame as an escaped table (see `html_text`): numbers to 4 digits, missing values
    empty, short values on one line (`model` names are not broken at their hyphens) and long
    text wrapped."""
    names = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    rows = []
    for key, values in zip(frame.index, frame.itertuples(index=False, name=None)):
        cells = [f"<th>{html_text(key)}</th>"] if index else []
        for value in values:
            text = _cell_text(value)
            cells.append(f"<td class='long'>{html_text(text)}</td>" if len(text) > _LONG_CHARS
                         else f"<td>{html_text(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html_text(name)}</th>" for name in names)
    return (f"<div class='wide'><table class='data'><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>")


def _cell_text(value: Any) -> str:
    import pandas as pd

    if not isinstance(value, (list, tuple, dict)) and pd.isna(value):
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _jobs_table(sweep: SweepTables, frame: pd.DataFrame) -> pd.DataFrame:
    """The jobs as the report lists them: no file paths, local inputs relative to the working
    folder, and without columns that say nothing (all empty; the one endpoint; a single sample)."""
    plan = sweep.plan
    shown = frame.drop(columns=[c for c in _HIDDEN_COLUMNS if c in frame.columns])
    for name in plan.axes:
        if name in shown.columns:
            shown[name] = shown[name].map(shown_value)
    silent = [c for c in shown.columns if shown[c].isna().all() or c in _REDUNDANT_COLUMNS
              or (c == "endpoint_id" and not plan.cross_model) or (c == "sample" and plan.repeat == 1)]
    return shown.drop(columns=silent)


def _summary_table(sweep: SweepTables, by: str) -> pd.DataFrame:
    """Per `by` value: the number of jobs and the key numbers as "mean ± std" (std over repeats
    and the other axes), narrow enough to read."""
    import pandas as pd

    summary = sweep.summary(by=by)
    names = [n for n in _SUMMARY_COLUMNS if (n, "mean") in summary.columns]
    table = pd.DataFrame(index=summary.index.rename(by))
    if names:
        table["jobs"] = summary[(names[0], "count")].astype(int)
    for name in names:
        table[name] = [f"{m:.4g}" + ("" if s != s else f" ± {s:.2g}")
                       for m, s in zip(summary[(name, "mean")], summary[(name, "std")])]
    return table


def _data_uri(path: Path) -> str:
    kind = mimetypes.guess_type(path.name)[0] or "video/mp4"
    return f"data:{kind};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"


def _figure_uri(fig: matplotlib.figure.Figure) -> str:
    import io

    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _video_html(cell: dict[str, Any]) -> str:
    path = Path(cell["video_path"]) if cell.get("video_path") else None
    if cell["status"] == "completed" and path is not None and path.is_file():
        video = (f"<video class='sync' src='{html_attr(_data_uri(path))}' "
                 "controls muted loop playsinline></video>")
    elif cell["status"] == "completed" and cell.get("src"):
        video = (f"<video class='sync' src='{html_attr(cell['src'])}' controls muted loop playsinline>"
                 "</video><div class='label'>(not embedded: no local copy)</div>")
    else:
        video = f"<div><b>{html_text(cell['status'])}</b></div>"
    parts = [video, f"<div class='label'>{html_text(cell['label'])}</div>" if cell["label"] else ""]
    if cell.get("error"):
        parts.append(f"<div class='error'>{html_text(cell['error'])}</div>")
    return "".join(parts)


def _grid_html(sweep: SweepTables) -> str:
    rows_axis, cols_axis = sweep.grid_axes(None, None)
    rows, cols, cells = sweep.grid_cells(rows_axis, cols_axis)
    corner = " \\ ".join(n for n in (rows_axis, cols_axis) if n)
    out = [f"<table><tr><th>{html_text(corner)}</th>", *(f"<th>{html_text(c)}</th>" for c in cols), "</tr>"]
    for ri, row in enumerate(rows):
        out.append(f"<tr><th>{html_text(row)}</th>")
        for ci in range(len(cols)):
            inside = "".join(_video_html(c) for c in cells if c["row"] == ri and c["col"] == ci)
            out.append(f"<td>{inside}</td>")
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def _pairs_html(pairs: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{html_text(k)}</th><td>{html_text(v)}</td></tr>" for k, v in pairs)
    return f"<table>{body}</table>"


def _chart_html(frame: pd.DataFrame, by: str) -> str:
    """The chart as an embedded PNG, or a note saying what to install when matplotlib is missing."""
    try:
        figure = chart(frame, by=by)
    except ImportError as exc:
        warnings.warn(f"The report has no chart: {exc}", stacklevel=4)  # at run.report()
        return f"<p class='note'>No chart: {html_text(exc)}</p>"
    return f"<img alt='latency, cost and motion per {html_attr(by)}' src='{_figure_uri(figure)}'>"


def write_report(sweep: SweepTables, path: str | Path) -> Path:
    """Write the sweep as one HTML file with embedded videos, parameters, metrics and code
    (and a chart when matplotlib is installed)."""
    plan = sweep.plan
    frame = sweep.to_dataframe()
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Sweep {html_attr(plan.sweep_id)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Sweep {html_text(plan.sweep_id)}</h1><p>{html_text(plan.line())}</p>",
        "<h2>Videos</h2><div class='controls'><button id='play-all' type='button'>Play all</button>"
        "<input id='seek-all' type='range' min='0' max='0' step='0.01' value='0'></div>",
        _grid_html(sweep),
        "<h2>Parameters</h2>",
        _pairs_html([("endpoint", ", ".join(plan.endpoints or (plan.endpoint_id,))),
                     ("backend", plan.backend), ("repeat", plan.repeat), ("created", plan.created_at),
                     *((f"{k} (axis)", ", ".join(map(str, shown_value(v)))) for k, v in plan.axes.items()),
                     *((k, shown_value(v)) for k, v in plan.fields.items())]),
        "<h2>Jobs and metrics</h2>",
        _frame_html(_jobs_table(sweep, frame), index=False),
    ]
    by = next((n for n in ("endpoint", "model", *plan.axes) if n in plan.axes), None)
    if by is not None and (frame["status"] == "completed").any():
        parts += [f"<h2>Summary per {html_text(by)}</h2>", _frame_html(_summary_table(sweep, by), index=True),
                  _chart_html(frame, by)]
    parts += ["<h2>Reproduce</h2>",
              f"<pre><code>{html_text('import sora_widgets as sw' + chr(10) * 2 + reproduce_code(plan))}"
              "</code></pre>",
              f"<script>{_SYNC_SCRIPT}</script></body></html>"]
    target = Path(path)
    target.write_text("".join(parts), encoding="utf-8")
    return target


def _markdown_text(text: str) -> str:
    """`text` for a markdown cell: each `$` escaped, so amounts are not typeset as math."""
    return text.replace("$", "\\$")


def write_notebook(sweep: SweepTables, path: str | Path) -> Path:
    """Write an nbformat v4 notebook that runs the same sweep and shows its grid and tables."""
    import nbformat
    from nbformat import v4

    plan = sweep.plan
    rows, cols = sweep.grid_axes(None, None)
    by = next((n for n in ("endpoint", "model", *plan.axes) if n in plan.axes), None)
    cells = [
        v4.new_markdown_cell(f"# Sweep {plan.sweep_id}\n\n{_markdown_text(plan.line())}\n\n"
                             "Running the next cells sends the same sweep again (a new sweep id). "
                             "To look at the original "
                             f"runs instead: `sw.Sweep.open({plan.sweep_id!r})` in the same run folder."),
        v4.new_code_cell("import sora_widgets as sw"),
        v4.new_code_cell(reproduce_code(plan)),
        v4.new_code_cell(f"sweep.grid(rows={rows!r}, cols={cols!r})"),
        v4.new_code_cell("sweep.to_dataframe()"),
    ]
    if by is not None:
        cells += [v4.new_code_cell(f"sweep.summary(by={by!r})"),
                  v4.new_code_cell(f"sweep.chart(by={by!r})")]
    notebook = v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    nbformat.validate(notebook)
    target = Path(path)
    nbformat.write(notebook, str(target))
    return target
