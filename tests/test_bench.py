"""The benchmark command runs end to end at its quick size and reports every benchmark.

Benchmarks are not timed tests: nothing here checks a figure, only that each one was produced.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADER = "| benchmark | ours | baseline | ratio | goal | met? |"


def test_quick_benchmark_prints_and_saves_a_row_for_every_benchmark(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    done = subprocess.run([sys.executable, "-m", "bench", "--quick", "--results", str(results)],
                          cwd=ROOT, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert HEADER in lines
    rows = [line for line in lines if re.match(r"^\| \d\. ", line)]
    assert {line[2] for line in rows} == set("1234567"), done.stdout
    assert all(line.count("|") == 7 for line in rows)
    saved = results.read_text(encoding="utf-8")
    assert "python -m bench --quick" in saved and "Machine:" in saved and "Date:" in saved
    assert HEADER in saved and all(row in saved for row in rows)
