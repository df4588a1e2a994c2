"""Point-cloud tiling: our writer (explicit tree, implicit octree, meshopt-compressed) vs the
`py3dtiles convert` CLI on the same generated LAZ.

`python -m bench pointcloud` (10 M points) or `python -m bench.pointcloud --points N`. The LAZ
(synthetic terrain + box buildings, 16-bit RGB, classes, intensity, UTM 10N) is generated once
into a temporary folder, in chunks. Each tool runs as a child process; peak memory is the
largest sum of RSS over the child's whole process tree (workers included), polled every 50 ms;
size is the bytes of every file the tool wrote.

py3dtiles pins numpy < 2.4, so it lives in its own virtual environment: ``--py3dtiles PATH``,
else ``py3dtiles`` on PATH, else ``.cache/py3dtiles-venv/bin/py3dtiles`` (``python -m venv
.cache/py3dtiles-venv && .cache/py3dtiles-venv/bin/pip install py3dtiles``). On LAZ it hangs
unless ``--color_scale`` is given (it stalls guessing the colour depth), so it gets one.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import laspy
import numpy as np
import psutil
from pyproj import CRS

from bench.common import REPO, console, show
from tiles import Compression, TilesetOptions, Tiling

DEFAULT_POINTS = 10_000_000
SIDE_M = 1500.0  # square survey side, metres (≈ 4.4 points / m² at 10 M points)
ORIGIN = (490_000.0, 4_880_000.0)  # UTM 10N easting, northing (Oregon)
CRS_CODE = 32610
WRITE_CHUNK = 1_000_000


@dataclass
class Run:
    seconds: float
    peak_mib: float
    returncode: int
    stderr: str


def generate(path: Path, points: int, seed: int = 7) -> None:
    """A LAZ of `points` points: rolling terrain (class 2) with box buildings (class 6)."""
    rng = np.random.default_rng(seed)
    cells = int(SIDE_M)  # roof heights on a 1 m grid
    roofs = np.zeros((cells, cells))
    for _ in range(400):
        (i, j), (w, h) = rng.integers(0, cells - 40, 2), rng.integers(10, 40, 2)
        block = roofs[i : i + w, j : j + h]
        np.maximum(block, rng.uniform(6, 60), out=block)
    header = laspy.LasHeader(point_format=7, version="1.4")
    header.offsets = [ORIGIN[0], ORIGIN[1], 0.0]
    header.scales = [0.01, 0.01, 0.01]
    header.add_crs(CRS.from_epsg(CRS_CODE))
    with laspy.open(path, mode="w", header=header, do_compress=True) as writer:
        for start in range(0, points, WRITE_CHUNK):
            n = min(WRITE_CHUNK, points - start)
            xy = rng.uniform(0, SIDE_M, (n, 2))
            ground = 120 + 8 * np.sin(xy[:, 0] / 150) * np.cos(xy[:, 1] / 210)
            ij = np.minimum(xy.astype(int), cells - 1)
            roof = roofs[ij[:, 0], ij[:, 1]]
            record = laspy.ScaleAwarePointRecord.zeros(n, header=header)
            record.x, record.y = xy[:, 0] + ORIGIN[0], xy[:, 1] + ORIGIN[1]
            record.z = ground + roof + rng.normal(0, 0.05, n)
            building = roof > 0
            record.classification = np.where(building, 6, 2).astype(np.uint8)
            record.intensity = rng.integers(0, 4000, n).astype(np.uint16)
            shade = np.clip(60 + 3 * roof + rng.normal(0, 10, n), 0, 255)
            record.red = (np.where(building, shade, 90) * 257).astype(np.uint16)
            record.green = (np.where(building, shade, 140) * 257).astype(np.uint16)
            record.blue = (np.where(building, shade * 0.9, 70) * 257).astype(np.uint16)
            writer.write_points(record)


def measure(cmd: list[str]) -> Run:
    """Run `cmd`; wall time and the peak RSS summed over its process tree (MiB)."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        parent = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            total = 0
            try:
                for p in [parent, *parent.children(recursive=True)]:
                    total += p.memory_info().rss
            except psutil.Error:
                pass
            peak = max(peak, total)
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        err.seek(0)
        return Run(seconds, peak / 2**20, proc.returncode, err.read()[-2000:])


def ours(path: Path, out: Path, tiling: Tiling, compression: Compression = "none") -> None:
    """Tile `path` with our writer into `out` (ENU frame at the cloud's centre)."""
    from twin.builder.pointcloud import cloud_writer, open_cloud
    from twin.geo import LocalFrame, transformer_to_wgs84

    cloud = open_cloud(path, None)
    x = (cloud.mins[0] + cloud.maxs[0]) / 2
    y = (cloud.mins[1] + cloud.maxs[1]) / 2
    lon, lat = transformer_to_wgs84(CRS.from_wkt(cloud.crs_wkt)).transform(x, y)
    frame = LocalFrame(float(lon), float(lat), 0.0)
    writer = cloud_writer(cloud, frame, "cloud", workers=psutil.cpu_count() or 1)
    writer.write(out, TilesetOptions(tiling=tiling, compression=compression), None)


def _mib(folder: Path) -> float:
    """MiB of every file under `folder`."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def _py3dtiles(given: str | None) -> str | None:
    if given:
        return given
    local = REPO / ".cache" / "py3dtiles-venv" / "bin" / "py3dtiles"
    return shutil.which("py3dtiles") or (str(local) if local.is_file() else None)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pointcloud")
    parser.add_argument("--points", type=int, default=DEFAULT_POINTS)
    parser.add_argument("--py3dtiles", default=None, help="path of the py3dtiles CLI")
    parser.add_argument("--run-ours", nargs=4, metavar=("LAZ", "OUT", "TILING", "COMPRESSION"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv or [])
    if args.run_ours:
        laz, out, tiling, compression = args.run_ours
        ours(Path(laz), Path(out), tiling, compression)
        return
    with tempfile.TemporaryDirectory() as tmp:
        laz = Path(tmp) / "cloud.laz"
        start = time.perf_counter()
        generate(laz, args.points)
        mib = laz.stat().st_size / 2**20
        console.print(f"generated {args.points:,} points ({mib:.0f} MiB LAZ) in "
                      f"{time.perf_counter() - start:.1f} s")  # fmt: skip
        variants = {"ours": ("explicit", "none"), "ours (implicit)": ("implicit", "none"),
                    "ours (meshopt, the build's default)": ("explicit", "meshopt")}  # fmt: skip
        runs = {
            name: [sys.executable, "-m", "bench.pointcloud", "--run-ours", str(laz),
                   f"{tmp}/{tiling}-{compression}", tiling, compression]
            for name, (tiling, compression) in variants.items()
        }  # fmt: skip
        outs = {name: Path(tmp, f"{tiling}-{compression}") for name, (tiling, compression)
                in variants.items()}  # fmt: skip
        tool = _py3dtiles(args.py3dtiles)
        if tool is None:
            console.print("py3dtiles not found: see this module's docstring; only ours runs")
        else:
            runs["py3dtiles convert"] = [tool, "convert", str(laz), "--out", f"{tmp}/py3dtiles",
                                         "--srs_out", "4978", "--color_scale", "256"]  # fmt: skip
            outs["py3dtiles convert"] = Path(tmp, "py3dtiles")
        rows, rates = [], {}
        for name, cmd in runs.items():
            run = measure(cmd)
            if run.returncode:
                raise SystemExit(f"{name} failed ({run.returncode}): {run.stderr}")
            rates[name] = args.points / run.seconds
            rows.append([name, f"{run.seconds:.1f}", f"{rates[name] / 1e3:,.0f}",
                         f"{run.peak_mib:,.0f}", f"{_mib(outs[name]):,.0f}"])  # fmt: skip
        if "py3dtiles convert" in rates:
            ratio = rates["ours"] / rates["py3dtiles convert"]
            rows.append(["ours / py3dtiles", "", f"{ratio:.2f}×", "", ""])
        show(f"Point cloud tiling, {args.points:,} points (goal ≥ 3× py3dtiles, ≤ 1024 MiB)",
             ["tool", "seconds", "k points/s", "peak MiB (process tree)", "MiB written"],
             rows)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
