"""The README is executable documentation: its Python runs offline, its commands exist."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_the_python_examples_run_top_to_bottom_offline(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notebooks").mkdir()
    shutil.copy(ROOT / "notebooks" / "example.png", tmp_path / "notebooks" / "example.png")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    blocks = _blocks("python")
    assert len(blocks) >= 5
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)  # our own README
    assert namespace["gen"].ok and namespace["gen"].backend == "preview"
    assert len(namespace["df"]) >= 1
    assert namespace["run"].to_dataframe()["status"].eq("completed").all()
    assert (tmp_path / "compare.html").is_file() and (tmp_path / "runs.csv").is_file()


def test_the_two_commands_exist_and_ci_runs_the_test_command() -> None:
    commands = re.findall(r"^(\./scripts/\w+)", _blocks("bash")[0], flags=re.M)
    assert commands == ["./scripts/demo", "./scripts/test"]
    for command in commands:
        assert (ROOT / command).is_file()
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_is_documented() -> None:
    from sora_widgets.cli.commands import build_parser

    parser = build_parser()
    import argparse

    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert {"generate", "history", "resume", "schema", "lab"} <= set(sub.choices)
    for name in sub.choices:
        assert f"sora-widgets {name}" in README, name


def test_the_benchmark_table_is_filled_in() -> None:
    assert "BENCHMARKS_TABLE" not in README
    assert "python -m bench" in README and "| 5. preview render" in README
