"""Run benchmarks: `python -m bench [build|tiles|serve|streaming|detect ...]` (default: all)."""

from __future__ import annotations

import sys

from bench import build, detect, rays, serve, streaming, tiles

BENCHES = {
    "build": build.main,
    "tiles": tiles.main,
    "serve": serve.main,
    "streaming": streaming.main,
    "detect": detect.main,
    "rays": rays.main,
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
