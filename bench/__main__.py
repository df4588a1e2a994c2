"""Run benchmarks: `python -m bench [build|tiles|serve|streaming|detect ...]` (default: all)."""

from __future__ import annotations

import sys

from bench import (
    build,
    build100k,
    detect,
    ingest,
    latency,
    pointcloud,
    rays,
    rules,
    serve,
    streaming,
    tiles,
)

BENCHES = {
    "build": build.main,
    "tiles": tiles.main,
    "serve": serve.main,
    "streaming": streaming.main,
    "detect": detect.main,
    "latency": latency.main,
    "rays": rays.main,
    "pointcloud": pointcloud.main,
    "build100k": build100k.main,
    "ingest": ingest.main,
    "rules": rules.main,
}


def main(argv: list[str]) -> None:
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}")
    for name in names:
        BENCHES[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
