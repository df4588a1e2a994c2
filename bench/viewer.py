"""Desktop viewer benchmark: `python -m bench viewer`, or `python -m bench.viewer --buildings N
--points N`.

1. **City**: the generated district of `bench.build100k` (100,000 buildings on a DTM), built
   with `twin build`. *Open*: wall time of a child process that imports the viewer, opens the
   workspace, loads the tiles of the home view at the window's starting detail and draws the
   first frame offscreen. *Frames per second*: offscreen (EGL, 1600×1000), the camera orbiting
   the home view and then a street-level view, the level of detail adapting to keep frames
   under 40 ms as in the window; with what each frame draws.
2. **Cloud**: a 10 M-point LAZ (`bench.pointcloud.generate`) built into a LiDAR-only workspace:
   points drawn at the home view (the tiles' coarse subsamples) and close up (refined down to
   the leaf tiles, which hold every point: spacing 0), at full detail as a screenshot draws;
   then frames per second with the adaptive detail of the window.

Goals: the city opens in < 10 s and renders at ≥ 20 fps; the cloud is decimated far away and
refined close up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench.build100k import DEFAULT_BUILDINGS
from bench.build100k import generate as generate_city
from bench.common import TWIN, console, show
from bench.pointcloud import DEFAULT_POINTS
from bench.pointcloud import generate as generate_cloud

SIZE = (1600, 1000)
START_DETAIL = 0.1  # as the window starts (twin.viewer.window)
WARM_FRAMES = 30
FRAMES = 60


def _scene(ws: Path, adaptive: bool) -> tuple[Any, Any]:
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    from twin.viewer.district import District
    from twin.viewer.scene import SceneView

    plotter = pv.Plotter(off_screen=True, window_size=list(SIZE))
    scene = SceneView(plotter, District.open(ws), adaptive=adaptive)
    scene.detail = START_DETAIL
    return plotter, scene


def open_once(ws: Path) -> None:
    """The child's work for *Open*: the home view's tiles and one frame."""
    plotter, scene = _scene(ws, adaptive=True)
    scene.settle()
    scene.render()
    drawn = ", ".join(f"{k} {v:,}" for k, v in scene.drawn().items())
    print(drawn, flush=True)
    plotter.close()


def _orbit(scene: Any, view: Any, frames: int) -> tuple[float, list[int]]:
    """Frames per second orbiting `view` by 2° a frame (tiles chosen and loaded each frame,
    at most one new tile per layer), and the triangles/points drawn per frame."""
    scene.set_view(view)
    camera = scene.plotter.renderer.GetActiveCamera()
    drawn = []
    start = time.perf_counter()
    for _ in range(frames):
        camera.Azimuth(2.0)
        scene.update_lod(max_loads=1)
        scene.render()
        drawn.append(sum(scene.drawn().values()))
    return frames / (time.perf_counter() - start), drawn


def frame_rates(ws: Path, views: dict[str, Any]) -> list[list[object]]:
    """One table row per named view (a function of the scene giving a `CameraView`)."""
    plotter, scene = _scene(ws, adaptive=True)
    rows: list[list[object]] = []
    try:
        for name, make_view in views.items():
            view = make_view(scene)
            _orbit(scene, view, WARM_FRAMES)
            fps, drawn = _orbit(scene, view, FRAMES)
            rows.append([name, f"{fps:.1f}", f"{min(drawn):,}–{max(drawn):,}",
                         f"{scene.detail:.3f}"])  # fmt: skip
    finally:
        plotter.close()
    return rows


def _street(scene: Any) -> Any:
    b = scene.district.bounds()
    centre = np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, b[4] + 5.0])
    return scene.view_of(centre, 150.0, elevation=20.0)


def _close(scene: Any) -> Any:
    b = scene.district.bounds()
    centre = np.array([(b[0] + b[1]) / 2, (b[2] + b[3]) / 2, (b[4] + b[5]) / 2])
    return scene.view_of(centre, 60.0, elevation=60.0)


def _build(src: Path, ws: Path) -> float:
    start = time.perf_counter()
    run = subprocess.run([TWIN, "build", str(src), "-o", str(ws)], capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"build failed ({run.returncode}): {run.stderr}")
    return time.perf_counter() - start


def _open_seconds(ws: Path) -> tuple[float, str]:
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", "bench.viewer", "--open", str(ws)],
                           capture_output=True, text=True)  # fmt: skip
    if child.returncode:
        raise SystemExit(f"opening the viewer failed: {child.stderr[-2000:]}")
    return time.perf_counter() - start, child.stdout.strip().splitlines()[-1]


def city(tmp: Path, buildings: int) -> None:
    src, ws = tmp / "city-src", tmp / "city-ws"
    src.mkdir()
    generate_city(src, buildings)
    console.print(f"built {buildings:,} buildings in {_build(src, ws):.0f} s")
    seconds, drawn = _open_seconds(ws)
    rows: list[list[object]] = [
        ["open (first frame of the home view)", f"{seconds:.1f} s", drawn, ""]
    ]
    rows += frame_rates(ws, {"orbit, home view": lambda s: s.home_view(),
                             "orbit, street level (150 m)": _street})  # fmt: skip
    show(f"Desktop viewer, {buildings:,} buildings, offscreen {SIZE[0]}×{SIZE[1]} "
         "(goal: open < 10 s, ≥ 20 fps)", ["what", "figure", "drawn", "detail"], rows)  # fmt: skip


def cloud(tmp: Path, points: int) -> None:
    src, ws = tmp / "cloud-src", tmp / "cloud-ws"
    src.mkdir()
    generate_cloud(src / "cloud.laz", points)
    (src / "twin.yaml").write_text(
        yaml.safe_dump({"name": "cloud", "drone": {"pointcloud": ["cloud.laz"]}})
    )
    console.print(f"built {points:,} points in {_build(src, ws):.0f} s")
    plotter, scene = _scene(ws, adaptive=False)
    try:
        rows: list[list[object]] = []
        for name, make_view in (("home view", lambda s: s.home_view()),
                                ("close up (60 m)", _close)):  # fmt: skip
            scene.detail = 1.0
            scene.set_view(make_view(scene))
            scene.settle()
            scene.render()
            layer = scene.tiles["pointcloud"]
            errors = {n.uri: n.error for n in layer.tree.nodes}
            shown = scene.drawn()["pointcloud"]
            finest = min(errors[uri] for uri in layer.shown)
            rows.append([name, f"{shown:,}", f"{100 * shown / points:.1f} %",
                         f"{len(layer.shown)}", f"{finest:.2f}"])  # fmt: skip
    finally:
        plotter.close()
    show(f"Point cloud of {points:,} points: decimated far away, refined close up",
         ["view", "points drawn", "of the cloud", "tiles",
          "finest spacing drawn, m (0: every point)"], rows)  # fmt: skip
    rates = frame_rates(ws, {"orbit, home view": lambda s: s.home_view(),
                             "orbit, close up": _close})  # fmt: skip
    show(f"Point cloud of {points:,} points, offscreen {SIZE[0]}×{SIZE[1]} (goal ≥ 20 fps)",
         ["view", "fps", "points drawn", "detail"], rates)  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.viewer")
    parser.add_argument("--buildings", type=int, default=DEFAULT_BUILDINGS)
    parser.add_argument("--points", type=int, default=DEFAULT_POINTS)
    parser.add_argument("--open", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv or [])
    if args.open:
        open_once(args.open)
        return
    with tempfile.TemporaryDirectory() as tmp:
        city(Path(tmp), args.buildings)
        cloud(Path(tmp), args.points)


if __name__ == "__main__":
    main(sys.argv[1:])
