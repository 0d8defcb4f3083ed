"""Benchmark 7: bytes a saved notebook gains per generation shown.

Ten offline-preview generations (720p, 4 s) are made through a Panel. Two notebooks are saved
with nbformat for 0, 1 and 10 of them: one code cell per generation whose output is what the
kernel's display formatter makes of the Generation, and one cell holding the Panel's output.
The baseline shows the same videos the usual way, `IPython.display.Video(path, embed=True)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._common import Row, Section, smooth_image

if TYPE_CHECKING:
    from sora_widgets import History
    from sora_widgets.records import Generation

COUNTS = (0, 1, 10)


def _size(outputs: list[list[dict[str, Any]]]) -> int:
    """Bytes of a saved notebook with one import cell and one code cell per entry of `outputs`."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import sora_widgets as sw", execution_count=1))
    for n, cell_outputs in enumerate(outputs, start=2):
        cell = nbformat.v4.new_code_cell("sw.generate(prompt=..., image_url=...)", execution_count=n)
        cell.outputs = [nbformat.v4.new_output("execute_result", data=bundle, execution_count=n)
                        for bundle in cell_outputs]
        nb.cells.append(cell)
    return len(nbformat.writes(nb).encode())


def _bundle(obj: object) -> dict[str, Any]:
    """The mime bundle a kernel would store for `obj` as a cell's result."""
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(obj)
    return data


def _per_generation(sizes: dict[int, int]) -> float:
    return (sizes[max(COUNTS)] - sizes[0]) / max(COUNTS)


def run(history: History, folder: Path) -> Section:
    """Render the generations, then compare saved sizes for 0, 1 and 10 of them."""
    from IPython.display import Video

    import sora_widgets as sw
    from sora_widgets.backends.preview import PreviewBackend

    image = smooth_image(folder / "first-frame.png")
    panel = sw.Panel(backend=PreviewBackend(media_dir=history.media_dir, queue_s=0.0), history=history)
    panel.arguments = {"prompt": "a lighthouse at dusk, slow zoom in", "image_url": str(image),
                       "duration": 4, "resolution": "720p", "aspect_ratio": "16:9"}
    panel_sizes = {0: _size([[_bundle(panel)]])}
    generations: list[Generation] = []
    for count in range(1, max(COUNTS) + 1):
        generations.append(panel.generate().result(timeout=300))
        if count in COUNTS:
            panel_sizes[count] = _size([[_bundle(panel)]])
    ours = {n: _size([[_bundle(g)] for g in generations[:n]]) for n in COUNTS}
    embedded = {n: _size([[_bundle(Video(g.video_path, embed=True))] for g in generations[:n]])
                for n in COUNTS}
    video_kb = sum(Path(g.video_path or "").stat().st_size for g in generations) / len(generations) / 1000
    per_cell, per_panel, per_video = (_per_generation(ours), _per_generation(panel_sizes),
                                      _per_generation(embedded))
    return Section("Notebook growth", [
        Row("7. notebook bytes per generation (a cell each)", per_cell, per_video, "B",
            "(info)", None),
        Row("7. Panel output bytes per generation", per_panel, per_video, "B", "(info)", None),
    ], [(f"Saved sizes for {'/'.join(map(str, COUNTS))} generations: cells {_sizes(ours)}; Panel "
        f"{_sizes(panel_sizes)} (its static summary lists the latest 5 runs, so it stops growing); "
        f"Video(embed=True) {_sizes(embedded)}. Preview videos average {video_kb:.0f} kB "
        "(4 s, 720p). Widget state saved by the front end (Save Widget State) is not included.")])


def _sizes(sizes: dict[int, int]) -> str:
    return "/".join(f"{sizes[n]:,}" for n in COUNTS) + " B"
