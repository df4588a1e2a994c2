"""The packages' import graph: no circle, and layers that point one way.

server → scenes → twin → tiles. Only the wiring (`twin.cli`, `twin.demo`: the console script
and the demo that start a server) reaches up. The rule engine does not depend on the detection
worker. Every import in a module counts, whether at the top, inside a function or under
`TYPE_CHECKING`, because each one is a dependency a reader has to follow.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("tiles", "twin", "scenes", "server")
LAYER = {name: rank for rank, name in enumerate(PACKAGES)}
WIRING = frozenset({"twin.cli", "twin.demo"})


def module_name(path: Path) -> str:
    """`twin/builder/pipeline.py` → `twin.builder.pipeline`; `twin/__init__.py` → `twin`."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def product_modules() -> dict[str, Path]:
    """Every module of the four packages, by dotted name."""
    return {
        module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
    }


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules `path` imports: `from a.b import c` counts as `a.b.c` when that is a
    module, else as `a.b`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            found.update(submodules & modules.keys())
            if not submodules <= modules.keys():
                found.add(node.module)
    return {name for name in found if name in modules}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = product_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def test_the_graph_is_read(graph: dict[str, set[str]]):
    """The scan sees the packages and their edges (a broken scan would pass every check)."""
    assert len(graph) > 150
    assert "twin.geo" in graph["twin.catalog"]
    assert any(target.startswith("scenes.") for target in graph["server.ingest"])


def test_no_module_imports_itself_through_others(graph: dict[str, set[str]]):
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import circle: {' → '.join(err.args[1])}")
    assert len(order) == len(graph)


def test_layers_point_down(graph: dict[str, set[str]]):
    upward = [
        f"{name} → {target}"
        for name, targets in graph.items()
        if name not in WIRING
        for target in targets
        if LAYER[target.split(".")[0]] > LAYER[name.split(".")[0]]
    ]
    assert upward == []


def test_the_rule_engine_does_not_depend_on_the_detection_worker(graph: dict[str, set[str]]):
    reaching = [
        f"{name} → {target}"
        for name, targets in graph.items()
        if name.startswith("scenes")
        for target in targets
        if target.startswith("twin.live")
    ]
    assert reaching == []
