"""Run every benchmark against its baseline in one process and print one table (and save it).

    .venv/bin/python -m bench [--quick] [--only N ...] [--results bench/RESULTS.md]

`--only 2` runs benchmark 2 alone (repeatable); a partial run prints its table but writes a
report only where `--results` says, so bench/RESULTS.md keeps the last full table.

Nothing leaves 127.0.0.1: fal traffic goes to the fake fal server from tests/fakefal.py, started
here before anything imports fal_client; runs and media go to a temporary SORA_WIDGETS_HOME.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `bench` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _history, _notebook, _overhead, _preview, _requests, _startup, _sweep
from bench._common import ROOT, Section, machine, served_result, start_fake

FAKE_NOTE = ("Fake fal server: tests/fakefal.py with `no_delay=True` (TCP_NODELAY) and a listen backlog of "
             "128; without them each answer waits ~40 ms (Nagle + delayed ACK) and bursts of new "
             "connections stall 1 s.")
HEADER = ("benchmark", "ours", "baseline", "ratio", "goal", "met?")


@dataclass(frozen=True)
class Sizes:
    """How big each benchmark runs: the full run, or the quick one the tests use."""

    job_lengths: tuple[float, ...]
    job_samples: int
    overhead_runs: int
    sweep_jobs: int
    sweep_length: float
    sweep_sequential: int
    sweep_singles: int
    history_inserts: int
    history_sizes: tuple[int, ...]
    history_repeat: int
    preview_lengths: tuple[int, ...]
    preview_repeat: int
    startup_repeat: int


FULL = Sizes(job_lengths=(5, 30, 120), job_samples=3, overhead_runs=30, sweep_jobs=32, sweep_length=2.0,
             sweep_sequential=4, sweep_singles=3, history_inserts=2000,
             history_sizes=(1_000, 10_000, 100_000), history_repeat=3, preview_lengths=(4, 12),
             preview_repeat=3, startup_repeat=5)
QUICK = Sizes(job_lengths=(1, 2, 3), job_samples=2, overhead_runs=5, sweep_jobs=8, sweep_length=1.0,
              sweep_sequential=2, sweep_singles=1, history_inserts=200, history_sizes=(1_000,),
              history_repeat=1, preview_lengths=(4, 12), preview_repeat=1, startup_repeat=3)


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "req":
        return f"{value:.0f} req"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f} {unit}"


def table(sections: list[Section]) -> str:
    """The results as one Markdown table (readable in a terminal too)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in (r for s in sections for r in s.rows):
        met = "—" if row.met is None else "yes" if row.met else "NO"
        ratio = "—" if row.ratio is None else f"{row.ratio:.2f}x" if row.ratio >= 0.1 else f"{row.ratio:.4f}x"
        lines.append(f"| {row.benchmark} | {_number(row.ours, row.unit)} | "
                     f"{_number(row.baseline, row.unit)} | {ratio} | {row.goal} | {met} |")
    return "\n".join(lines)


def report(sections: list[Section], *, command: str, host: str, started: datetime, took: float) -> str:
    """RESULTS.md: the command, machine and date, the table, then how each figure was measured."""
    notes = "\n".join(f"- **{s.title}.** " + " ".join(s.notes) for s in sections)
    return (f"# sora-widgets benchmarks\n\n"
            f"Command: `{command}` (from the repository root; {took:.0f} s)  \n"
            f"Date: {started:%Y-%m-%d %H:%M} UTC  \nMachine: {host}  \n"
            f"Versions: {_versions()}  \n"
            f"Ratio = ours / baseline. Every baseline ran in the same process and run.  \n"
            f"{FAKE_NOTE}\n\n"
            f"{table(sections)}\n\n## How each figure was measured\n\n{notes}\n")


def _versions() -> str:
    from importlib.metadata import version

    return ", ".join(f"{name} {version(name)}" for name in ("sora-widgets", "fal-client", "httpx", "pandas"))


def run(sizes: Sizes, folder: Path, only: set[int] | None = None) -> list[Section]:
    """Every benchmark (or those numbered in `only`) in order, against one fake fal server and one
    temporary history."""
    fake = start_fake()  # before anything imports fal_client, which reads its hosts at import
    os.environ["SORA_WIDGETS_HOME"] = str(folder / "home")
    import sora_widgets as sw

    history = sw.History(folder / "runs")
    fake.configure(result=served_result(fake))
    steps = [
        ("1 requests per job", lambda: _requests.run(fake, history, lengths=sizes.job_lengths,
                                                            samples=sizes.job_samples)),
        ("2 overhead", lambda: _overhead.run(fake, history, runs=sizes.overhead_runs)),
        ("3 sweep", lambda: _sweep.run(fake, history, jobs=sizes.sweep_jobs, length=sizes.sweep_length,
                                       sequential=sizes.sweep_sequential, singles=sizes.sweep_singles)),
        ("4 history", lambda: _history.run(folder / "history", inserts=sizes.history_inserts,
                                           sizes=sizes.history_sizes, repeat=sizes.history_repeat)),
        ("5 preview", lambda: _preview.run(folder / "preview", lengths=sizes.preview_lengths,
                                           repeat=sizes.preview_repeat)),
        ("6 start-up", lambda: _startup.run(folder / "startup", repeat=sizes.startup_repeat)),
        ("7 notebook", lambda: _notebook.run(sw.History(folder / "notebook"), folder / "notebook")),
    ]
    sections = []
    try:
        for name, step in steps:
            if only and int(name.split()[0]) not in only:
                continue
            start = time.perf_counter()
            print(f"[bench] {name} ...", file=sys.stderr, flush=True)
            sections.append(step())
            print(f"[bench] {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    finally:
        fake.stop()
    return sections


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds, not minutes)")
    parser.add_argument("--only", type=int, action="append", choices=range(1, 8), metavar="N",
                        help="run only benchmark N (1-7); repeat for several")
    parser.add_argument("--results", type=Path, default=None,
                        help="where to write the Markdown report (default: bench/RESULTS.md, "
                             "except with --only: no report)")
    args = parser.parse_args(argv)
    results = args.results or (None if args.only else ROOT / "bench" / "RESULTS.md")
    command = " ".join(["python -m bench", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])
    started, clock, host = datetime.now(timezone.utc), time.perf_counter(), machine()
    with tempfile.TemporaryDirectory(prefix="sora-bench-") as tmp:
        sections = run(QUICK if args.quick else FULL, Path(tmp), set(args.only or ()))
    took = time.perf_counter() - clock
    print(f"sora-widgets benchmarks, {started:%Y-%m-%d %H:%M} UTC, {host}")
    print(table(sections))
    if results is not None:
        results.write_text(report(sections, command=command, host=host, started=started, took=took),
                           encoding="utf-8")
        print(f"Written to {results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
