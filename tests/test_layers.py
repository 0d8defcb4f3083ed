"""The package's flow, checked: no import cycles, and no module imports a layer above its own.

Layers, lowest first (DESIGN.md's flow: schema, media and history, backends, jobs, views,
research that shows itself in views, command line). Imports under `if TYPE_CHECKING:` are for annotations only and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sora_widgets"

LAYERS: list[tuple[str, set[str]]] = [
    ("foundations", {"_version", "_errors", "_secrets", "_owner", "_home", "_http", "_values",
                     "records"}),
    ("schema", {"schema", "validation", "mapping", "platform", "endpoints", "pricing"}),
    ("media and history", {"media", "browser_copy", "_history_schema", "_history_records",
                           "_history_uploads", "_history_export", "history"}),
    ("backends", {"backends", "backends.base", "backends.fal", "backends._fal_errors",
                  "backends._fal_stream", "backends.preview", "backends._render"}),
    ("jobs", {"_runner", "jobs", "generation"}),
    ("views", {"widgets", "widgets.card", "widgets.code", "widgets.controls", "widgets.grid",
               "widgets.history_view", "widgets.panel"}),
    ("research", {"_sweep_plan", "sweeps", "report", "video_metrics"}),
    ("command line", {"cli", "_cli_format", "_jupyter", "jupyter_config.jupyter_server_config",
                      "__init__"}),
]


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)
        found[name] = path
    return found


def _runtime_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `path` imports when it runs (TYPE_CHECKING blocks left out)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for sub in node.body for n in ast.walk(sub)}
    package = name.split(".") if path.name == "__init__.py" and name != "__init__" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only or not isinstance(node, ast.ImportFrom) or node.level == 0:
            continue
        base = package[: len(package) - (node.level - 1)]
        target = ".".join([*base, *([node.module] if node.module else [])])
        for candidate in (target, *(f"{target}.{a.name}".lstrip(".") for a in node.names)):
            if candidate in known and candidate != name:
                found.add(candidate)
    return found


def _layer_of(name: str) -> int:
    for number, (_, members) in enumerate(LAYERS):
        if name in members:
            return number
    raise AssertionError(f"sora_widgets.{name} belongs to no layer: add it to LAYERS in {__file__}")


MODULES = _modules()
GRAPH = {name: _runtime_imports(name, path, set(MODULES)) for name, path in MODULES.items()}


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_imports_a_layer_above_its_own(name: str) -> None:
    mine = _layer_of(name)
    upward = sorted(t for t in GRAPH[name] if _layer_of(t) > mine)
    assert not upward, (f"{name} ({LAYERS[mine][0]}) imports {upward} from a layer above; move the "
                        "code down or pass it in")


def test_the_import_graph_has_no_cycle() -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(GRAPH[name]):
            assert state.get(target) != 1, f"import cycle: {' -> '.join([*path, name, target])}"
            if target not in state:
                visit(target, [*path, name])
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [])
