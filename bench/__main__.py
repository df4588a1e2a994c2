"""Run benchmarks: `python -m bench [build|tiles|serve|streaming|detect ...]` (default: all),
or one with its options: `python -m bench soak --minutes 60`."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bench import (
    build,
    build100k,
    catalog,
    connectors,
    detect,
    history,
    ingest,
    latency,
    pointcloud,
    rays,
    rules,
    scale,
    serve,
    soak,
    streaming,
    tiles,
    viewer,
)

BENCHES: dict[str, Callable[..., None]] = {
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
    "soak": soak.main,
    "history": history.main,
    "viewer": viewer.main,
    "connectors": connectors.main,
    "catalog": catalog.main,
    "scale": scale.main,
}
# Benchmarks that take options (argparse): `python -m bench NAME --option ...`.
WITH_OPTIONS = {
    "build100k",
    "pointcloud",
    "soak",
    "history",
    "viewer",
    "connectors",
    "catalog",
    "scale",
}


def main(argv: list[str]) -> None:
    if len(argv) > 1 and argv[0] in WITH_OPTIONS and argv[1].startswith("-"):
        BENCHES[argv[0]](argv[1:])
        return
    names = argv or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {unknown}; choose from {list(BENCHES)}")
    for name in names:
        BENCHES[name]()


if __name__ == "__main__":
    main(sys.argv[1:])
