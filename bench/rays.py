"""Ray-casting benchmark: first-hit rays per second on the sample district's meshes, one batch
of 1 M rays through the eagle-eye camera's pixels (its pose raised to 600 m, above every tower,
so that no ray starts inside a building), trimesh + Embree (what `twin` uses) against
pyvista/vtk `multi_ray_trace`; plus the full pixel → world path (`World.rays`)."""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.common import SAMPLE, TWIN, show

RAYS = 1_000_000
CAMERA = "camera:cam-pearl-eagle"


def _rays(ws: Path) -> tuple[object, object, np.ndarray, np.ndarray]:
    from twin.cameras.rig import CameraRig
    from twin.catalog import Catalog

    rig = CameraRig(ws, Catalog(ws / "catalog.sqlite"))
    camera = replace(rig.camera(CAMERA), mount_height=600.0)
    side = int(np.sqrt(RAYS))
    us, vs = np.meshgrid(
        np.linspace(0, camera.image_width, side), np.linspace(0, camera.image_height, side)
    )
    dirs = camera.direction_enu(us.ravel(), vs.ravel()) @ camera.frame.rotation
    origins = np.broadcast_to(camera.position_ecef, dirs.shape)
    return rig, camera, np.ascontiguousarray(origins), dirs


def _vtk_rate(caster: object, origins_ecef: np.ndarray, dirs_ecef: np.ndarray) -> float:
    import pyvista as pv

    mesh = pv.PolyData.from_regular_faces(caster.vertices, caster.faces)  # type: ignore[attr-defined]
    rot = caster.frame.rotation  # type: ignore[attr-defined]
    origins = (origins_ecef - caster.frame.origin_ecef) @ rot.T  # type: ignore[attr-defined]
    dirs = dirs_ecef @ rot.T
    start = time.perf_counter()
    mesh.multi_ray_trace(origins, dirs, first_point=True, retry=False)
    return len(dirs) / (time.perf_counter() - start)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([TWIN, "build", str(SAMPLE), "-o", str(ws)], check=True,
                       capture_output=True)  # fmt: skip
        rig, camera, origins, dirs = _rays(ws)
        world = rig.world  # type: ignore[attr-defined]
        caster = world.raycaster
        n_tri = len(caster.faces)
        rows: list[tuple[object, ...]] = []
        caster.first_hit_distance(origins[:1000], dirs[:1000])  # warm-up
        enu_o, enu_d = caster._to_enu(origins, dirs)
        start = time.perf_counter()
        caster._intersector.intersects_id(enu_o, enu_d, multiple_hits=False)
        seconds = time.perf_counter() - start
        rows.append(("embreex alone (float32 ENU, no refinement)", n_tri, len(dirs), seconds,
                     len(dirs) / seconds / 1e6, float("nan")))  # fmt: skip
        start = time.perf_counter()
        dist = caster.first_hit_distance(origins, dirs)
        seconds = time.perf_counter() - start
        hit = float(np.isfinite(dist).mean() * 100)
        rows.append(("trimesh + embreex (first hit)", n_tri, len(dirs), seconds,
                     len(dirs) / seconds / 1e6, hit))  # fmt: skip
        start = time.perf_counter()
        caster.cast(origins, dirs)
        seconds = time.perf_counter() - start
        rows.append(("trimesh + embreex (+ element ids, normals)", n_tri, len(dirs), seconds,
                     len(dirs) / seconds / 1e6, hit))  # fmt: skip
        n_px = 100_000
        start = time.perf_counter()
        side = int(np.sqrt(n_px))
        us, vs = np.meshgrid(np.linspace(0, 1920, side), np.linspace(0, 1080, side))
        world.rays(camera, us.ravel(), vs.ravel())
        seconds = time.perf_counter() - start
        rows.append(("World.rays (pixels → lon/lat/height)", n_tri, side * side, seconds,
                     side * side / seconds / 1e6, float("nan")))  # fmt: skip
        try:
            sub = 200_000
            rate = _vtk_rate(caster, origins[:sub], dirs[:sub])
            rows.append(("pyvista multi_ray_trace", n_tri, sub, sub / rate, rate / 1e6, hit))
        except Exception as exc:  # vtk's OBB tree is optional here
            rows.append((f"pyvista multi_ray_trace: {type(exc).__name__}", n_tri, 0, 0.0, 0.0, 0.0))
    show(
        "Ray casting on the sample district (eagle-eye camera's pixels)",
        ["engine", "triangles", "rays", "seconds", "M rays/s", "% hit"],
        [(r[0], r[1], r[2], f"{r[3]:.3f}", f"{r[4]:.2f}", f"{r[5]:.0f}") for r in rows],
    )


if __name__ == "__main__":
    main()
