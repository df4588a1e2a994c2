"""`WS/meshes/*.npz`: building and terrain triangles in the local ENU frame (metres), read by
the desktop viewer and the detector's ray caster (docs/architecture.md, "Meshes")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tiles import FeatureMesh


def write_building_mesh(path: Path, buildings: Sequence[FeatureMesh]) -> None:
    """One npz of every building: ``vertices`` (n, 3) float64, ``faces`` (m, 3) int64,
    ``face_element`` (m,) int32 index into ``element_ids`` (unicode)."""
    offsets = np.cumsum([0] + [len(b.positions) for b in buildings])
    vertices = [np.zeros((0, 3))] + [np.asarray(b.positions, np.float64) for b in buildings]
    faces = [np.zeros((0, 3), np.int64)]
    faces += [np.asarray(b.triangles, np.int64) + offsets[i] for i, b in enumerate(buildings)]
    face_element = np.repeat(
        np.arange(len(buildings), dtype=np.int32), [len(b.triangles) for b in buildings]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        vertices=np.concatenate(vertices),
        faces=np.concatenate(faces),
        face_element=face_element,
        element_ids=np.array([b.element_id for b in buildings], dtype=str),
    )


def write_terrain_mesh(
    path: Path, vertices: NDArray[np.float64], faces: NDArray[np.integer]
) -> None:
    """The terrain npz: ``vertices`` (n, 3) float64 ENU metres, ``faces`` (m, 3) int64."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces, np.int64))
