"""Golden build: `twin build tests/golden/tiny-source` (a fixed build time) writes exactly the
committed `tests/golden/tiny-build/tileset.json` (numbers to 1e-9). After an intended change,
regenerate with ``UPDATE_GOLDEN=1 pytest tests/test_build_golden.py`` and review the diff."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from paths import TWIN
from tiles_helpers import assert_json_close, validate_tileset_tree

from twin.workspace import WorkspacePaths

GOLDEN = Path(__file__).resolve().parent / "golden"
SOURCE = GOLDEN / "tiny-source"
EXPECTED = GOLDEN / "tiny-build" / "tileset.json"
EPOCH = "1000000000"  # 2001-09-09T01:46:40Z


def test_tiny_source_builds_the_golden_tileset(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    result = subprocess.run(
        [TWIN, "build", str(SOURCE), "-o", str(ws)],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    tileset = WorkspacePaths(ws).tileset
    got = json.loads(tileset.read_text())
    if os.environ.get("UPDATE_GOLDEN"):
        EXPECTED.parent.mkdir(parents=True, exist_ok=True)
        EXPECTED.write_text(json.dumps(got, indent=1, ensure_ascii=False) + "\n", "utf-8")
    assert_json_close(got, json.loads(EXPECTED.read_text("utf-8")))
    assert got["metadata"]["properties"]["build_time"] == "2001-09-09T01:46:40Z"
    assert validate_tileset_tree(tileset) == []
