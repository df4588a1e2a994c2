"""Build benchmark: `twin build` of the bundled sample district, time and peak memory."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.common import SAMPLE, TWIN, run_child, show


def main(repeats: int = 3) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        for attempt in range(repeats):
            run = run_child([TWIN, "build", str(SAMPLE), "-o", str(ws)])
            if run.returncode:
                raise SystemExit(f"build failed: {run.stderr}")
            manifest = json.loads((ws / "twin.json").read_text())
            tiles = list((ws / "tiles").rglob("*.glb"))
            size_mib = sum(p.stat().st_size for p in tiles) / 2**20
            rows.append(
                (
                    attempt + 1,
                    run.seconds,
                    run.peak_rss_mib,
                    manifest["counts"].get("building", 0),
                    len(tiles),
                    size_mib,
                )
            )
    show(
        "twin build data/sample (Shanghai Bund/Lujiazui, OSM)",
        ["run", "wall s", "peak RSS MiB", "buildings", "glb tiles", "glb MiB"],
        rows,
    )


if __name__ == "__main__":
    main()
