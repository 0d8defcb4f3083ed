"""The package's flow, checked: no import cycles, and no module imports a layer above its own.

Layers, lowest first, are DESIGN.md's flow: shared foundations, schema, media, history, backends,
jobs, views, research that shows itself in views, and the command line. A module belongs to the
layer of its top-level package. Imports under `if TYPE_CHECKING:` are for annotations only and do
not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "sora_widgets"
MAX_LINES = 420  # "no module over ~400 lines"

LAYERS: list[tuple[str, set[str]]] = [
    ("foundations", {"_version", "_errors", "_secrets", "_owner", "_home", "_http", "_values", "_html",
                     "records"}),
    ("schema", {"schema", "pricing"}),
    ("media", {"media"}),
    ("history", {"history"}),
    ("backends", {"backends"}),
    ("jobs", {"jobs"}),
    ("views", {"widgets"}),
    ("research", {"research"}),
    ("command line", {"cli", "jupyter_config", "__init__"}),
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
        submodules = {f"{target}.{a.name}".lstrip(".") for a in node.names} & known
        for candidate in submodules or {target}:  # `from . import rows` imports rows, not the package
            if candidate in known and candidate != name:
                found.add(candidate)
    return found


def _layer_of(name: str) -> int:
    """A module's layer: the one naming it, else the one naming its top-level package."""
    for key in (name, name.split(".")[0]):
        for number, (_, members) in enumerate(LAYERS):
            if key in members:
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


@pytest.mark.parametrize("package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")))
def test_each_package_says_what_it_owns_and_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
    assert doc, f"sora_widgets/{package}/__init__.py needs a docstring saying what it owns"
    assert "import" in doc, f"sora_widgets/{package}'s docstring should say what it may import"


def test_no_module_is_a_long_read() -> None:
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them by what they do): {long}"
