"""Benchmark 6: `import sora_widgets` and `sw.Panel()` cost, each in fresh interpreters.

Import time is measured inside the child (interpreter start-up excluded), median of several
children. The Panel's first construction includes the lazy imports it triggers (ipywidgets,
History); "warm" is the median of further constructions in the same process. The baselines are
`import ipywidgets` and the form a user would otherwise build: `ipywidgets.interactive` over the
same nine fields.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ._common import ROOT, Row, Section, median

IMPORT = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"

PANEL = """
import json, time
import sora_widgets as sw
def build():
    return sw.Panel()
t = time.perf_counter(); build(); first = time.perf_counter() - t
warm = []
for _ in range(5):
    t = time.perf_counter(); build(); warm.append(time.perf_counter() - t)
print(json.dumps([first, sorted(warm)[2]]))
"""

INTERACTIVE = """
import json, time
t = time.perf_counter()
import ipywidgets as w
def build():
    return w.interactive(lambda **kw: None, prompt=w.Textarea(), image_url=w.Text(),
                         resolution=["auto", "720p"], aspect_ratio=["auto", "9:16", "16:9"],
                         duration=[4, 8, 12, 16, 20], delete_video=True,
                         model=["sora-2", "sora-2-2025-12-08", "sora-2-2025-10-06"],
                         detect_and_block_ip=False, character_ids=w.Text())
build(); first = time.perf_counter() - t
warm = []
for _ in range(5):
    t = time.perf_counter(); build(); warm.append(time.perf_counter() - t)
print(json.dumps([first, sorted(warm)[2]]))
"""


def _child(code: str, home: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAL_")}
    env["SORA_WIDGETS_HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


def _import_ms(module: str, home: Path, repeat: int) -> float:
    return median([float(_child(IMPORT.format(module=module), home)) * 1000 for _ in range(repeat)])


def _build_ms(code: str, home: Path, repeat: int) -> tuple[float, float]:
    runs = [json.loads(_child(code, home)) for _ in range(repeat)]
    return median([r[0] * 1000 for r in runs]), median([r[1] * 1000 for r in runs])


def run(home: Path, *, repeat: int) -> Section:
    """Medians over `repeat` fresh interpreters of each import and construction."""
    ours = _import_ms("sora_widgets", home, repeat)
    ipywidgets = _import_ms("ipywidgets", home, repeat)
    fal_client = _import_ms("fal_client", home, repeat)
    panel_first, panel_warm = _build_ms(PANEL, home, repeat)
    form_first, form_warm = _build_ms(INTERACTIVE, home, repeat)
    return Section("Start-up", [
        Row("6. import sora_widgets (vs import ipywidgets)", ours, ipywidgets, "ms", "< 300 ms", ours < 300),
        Row("6. sw.Panel() first, after the import", panel_first, form_first, "ms", "< 150 ms",
            panel_first < 150),
        Row("6. sw.Panel() warm", panel_warm, form_warm, "ms", "< 150 ms", panel_warm < 150),
    ], [(f"Median of {repeat} fresh interpreters. import fal_client (other baseline): {fal_client:.0f} ms. "
        "Panel baseline: ipywidgets.interactive over the endpoint's nine fields (its 'first' "
        "includes import ipywidgets, as the Panel's first includes its own lazy imports).")])
