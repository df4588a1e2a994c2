"""The architecture as the running product shows it: `twin serve` needs none of the project's
optional parts (pyproject's ``detect`` and ``viewer`` extras: PyTorch, Ultralytics, VTK, PyVista,
Qt) and never imports them, nor OpenCV until a camera is calibrated; a command that needs a
missing extra says which in one line; the extras `twin.extras` checks are the ones
pyproject.toml declares.

The product runs in a child Python in which the optional modules cannot be imported (a finder
ahead of all others refuses them and notes each attempt); the child writes what it was refused
and which of them it holds when it exits (also on SIGTERM).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import httpx
import pytest
import tiny_workspace as tiny
from paths import REPO
from servers import TOKENS_ENV, LiveServer
from waiting import wait_for

from bench.common import free_port
from twin.extras import DISTRIBUTION, EXTRAS

# The top-level modules of the optional parts, and those they bring (vtk's own, PP-OCR's runtime).
OPTIONAL = (
    "torch", "torchvision", "ultralytics", "ai_edge_litert", "lap", "rapidocr_onnxruntime",
    "onnxruntime", "vtk", "vtkmodules", "pyvista", "pyvistaqt", "PySide6",
)  # fmt: skip
# OpenCV is always installed (`twin build` uses it), but the server loads it only to calibrate a
# camera or crop an alert's frame.
NOT_SERVED = (*OPTIONAL, "cv2")

WITHOUT = """
import atexit, json, signal, sys

blocked, report = set(sys.argv[1].split(",")), sys.argv[2]
refused = []


class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in blocked:
            refused.append(name)
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def write_report():
    held = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
    with open(report, "w") as fh:
        json.dump({"refused": refused, "held": held}, fh)


sys.meta_path.insert(0, Refuse())
atexit.register(write_report)
# uvicorn raises SIGTERM again once it has shut down: exit normally then, so the report is written
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
from twin.cli import app

sys.argv = ["twin", *sys.argv[3:]]
app()
"""


def twin_without(modules: tuple[str, ...], report: Path, *args: str) -> list[str]:
    """The command line of `twin ARGS` in a Python that cannot import `modules`; the child
    writes ``{"refused": [...], "held": [...]}`` to `report` when it exits."""
    return [sys.executable, "-c", WITHOUT, ",".join(modules), str(report), *args]


def test_serve_works_without_the_optional_parts(tmp_path: Path) -> None:
    """Health, an element record, an observation posted with a token and seen in the live API
    (its plate hashed and masked by the rule engine's normalisation): all served by a process
    that never tried to import an optional module, nor OpenCV."""
    ws = tiny.build(tmp_path / "ws")
    port, report, log_path = free_port(), tmp_path / "imports.json", tmp_path / "serve.log"
    command = twin_without(
        NOT_SERVED, report, "serve", str(ws), "--host", "127.0.0.1", "--port", str(port)
    )
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "TWIN_TOKENS": TOKENS_ENV})  # fmt: skip
    server = LiveServer(f"http://127.0.0.1:{port}", ws, process)

    def healthy() -> bool:
        assert process.poll() is None, log_path.read_text()
        try:
            return httpx.get(server.url + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout_s=60, poll_s=0.2)
        viewer, ingest = server.client("viewer"), server.client("ingest")
        record = viewer.get(f"/api/elements/{tiny.BUILDING_ID}")
        assert record.status_code == 200 and record.json()["id"] == tiny.BUILDING_ID
        observation = {
            "kind": "vehicle", "cls": "car", "source": tiny.CAMERA_ID, "track_id": "7",
            "lon": tiny.INSIDE[0], "lat": tiny.INSIDE[1], "attributes": {"plate": "沪a·123-45"},
        }  # fmt: skip
        posted = ingest.post("/api/observations", json={"observations": [observation]})
        assert posted.status_code == 200 and posted.json()["accepted"] == 1, posted.text
        [entity] = viewer.get("/api/live").json()["items"]
        assert entity["id"] == f"{tiny.CAMERA_ID}/7"
        assert entity["attributes"]["plate_masked"] == "沪A·***45"
        assert "plate" not in entity["attributes"]
    finally:
        server.stop()
    assert process.returncode == 0, log_path.read_text()
    assert json.loads(report.read_text()) == {"refused": [], "held": []}


@pytest.mark.parametrize(
    ("extra", "args"),
    [
        ("detect", ["detect", "frames", "--camera", tiny.CAMERA_ID]),
        ("detect", ["demo", "--port", "8000"]),
        ("viewer", ["view", "WS", "--screenshot", "shot.png"]),
    ],
)
def test_a_command_without_its_extra_fails_in_one_line(
    extra: str, args: list[str], tmp_path: Path
) -> None:
    ws = tiny.build(tmp_path / "ws")
    argv = [str(ws) if arg == "WS" else arg for arg in args]
    result = subprocess.run(twin_without(OPTIONAL, tmp_path / "imports.json", *argv),
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert f"'{extra}' extra" in lines[0] and f"pip install '{DISTRIBUTION}[{extra}]'" in lines[0]


def test_importing_the_server_loads_no_optional_module() -> None:
    """The fast check: the app, the rule engine and the CLI import none of `NOT_SERVED`."""
    code = (
        "import sys, server.app, scenes.engine, scenes.rulefile, twin.cli; "
        f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {set(NOT_SERVED)!r})))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=REPO)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_the_extras_checked_are_the_extras_declared() -> None:
    """`twin.extras.EXTRAS` names, for each optional part of pyproject.toml, modules that its
    distributions install, and at least one for each distribution."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["name"] == DISTRIBUTION
    declared = {k: v for k, v in project["optional-dependencies"].items() if k != "dev"}
    assert set(EXTRAS) == set(declared)
    installs: dict[str, set[str]] = {}
    for module, dists in packages_distributions().items():
        for dist in dists:
            installs.setdefault(dist.lower().replace("_", "-"), set()).add(module)
    for extra, requirements in declared.items():
        dists = [_name(req) for req in requirements]
        provided = set().union(*(installs.get(dist, set()) for dist in dists))
        assert set(EXTRAS[extra]) <= provided, extra
        for dist in dists:
            assert installs.get(dist, set()) & set(EXTRAS[extra]), (extra, dist)


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (``"PySide6-Essentials>=6.6"`` →
    ``"pyside6-essentials"``)."""
    for index, char in enumerate(requirement):
        if char in "<>=!~[; ":
            return requirement[:index].lower().replace("_", "-")
    return requirement.lower().replace("_", "-")
