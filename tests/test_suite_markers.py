"""The quick inner loop (`make test-fast`: `-m "not browser and not slow"`) holds no test that
starts Chromium, a server process or a real engine: checked on what pytest selects, against each
selected test's own source (its fixtures and the names it calls)."""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from paths import REPO

FAST = "not browser and not slow"
# Fixtures that start Chromium, `twin serve`, PostgreSQL, Redis or Xvfb (tests/conftest.py,
# tests/xvfb.py, tests/viewer_workspace.py).
STARTING_FIXTURES = {"browser", "live_server", "server_factory", "postgres", "database", "redis"}
STARTING_FIXTURES |= {"display", "viewer_ws"}
# Calls that start them in a test's own body.
STARTING_CALLS = {"launch", "start_server", "start_redis", "start_postgres", "Popen"}


@cache
def _functions(module: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(module.read_text("utf-8"))
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def _called_names(function: ast.FunctionDef) -> set[str]:
    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name):
                names.add(node.func.id)
            elif isinstance(node.func, ast.Attribute):
                names.add(node.func.attr)
    return names


@pytest.mark.slow
def test_the_fast_selection_starts_no_browser_server_or_engine() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-m", FAST, "tests"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stdout + listed.stderr
    selected = [line for line in listed.stdout.splitlines() if "::" in line]
    assert len(selected) > 100, listed.stdout
    starting = []
    for node_id in selected:
        file, name = node_id.split("::")[:2]
        function = _functions(REPO / file)[name.split("[")[0]]
        fixtures = {arg.arg for arg in function.args.args}
        if fixtures & STARTING_FIXTURES or _called_names(function) & STARTING_CALLS:
            starting.append(node_id)
    assert starting == []
    browser_files = {p.name for p in (REPO / "tests").glob("test_*browser*.py")}
    assert not [n for n in selected if Path(n.split("::")[0]).name in browser_files]
