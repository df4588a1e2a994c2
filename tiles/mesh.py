"""Triangle-mesh preparation for glTF: input checks, flat and smooth normals, and the change
from the ENU frame (z up) to glTF's y-up frame (x east, y up, z south = -north)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tiles.errors import MeshError

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

# Rows map ENU (x east, y north, z up) to glTF (x, y up, z = -north); a proper rotation, so
# triangle winding is kept. Cesium applies the inverse (y-up → z-up) to glTF content.
ENU_TO_GLTF = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# Triangles with less area than this (m²) are dropped as degenerate.
MIN_AREA = 1e-8


def enu_to_gltf(points: ArrayLike) -> F64:
    """(..., 3) ENU metres → glTF y-up metres."""
    return np.asarray(points, float) @ ENU_TO_GLTF.T


def gltf_to_enu(points: ArrayLike) -> F64:
    """(..., 3) glTF y-up metres → ENU metres."""
    return np.asarray(points, float) @ ENU_TO_GLTF


def checked(
    positions: ArrayLike, triangles: ArrayLike, element_id: str | None = None
) -> tuple[F64, I64]:
    """Check shapes, finiteness and index range; drop degenerate triangles (repeated index or
    area under `MIN_AREA`). Raises `MeshError` when nothing drawable is left."""
    pos = np.asarray(positions, dtype=np.float64)
    tri = np.asarray(triangles)
    if pos.ndim != 2 or pos.shape[1] != 3 or not len(pos):
        raise MeshError(f"positions must be (n, 3), got {pos.shape}", element_id=element_id)
    if tri.ndim != 2 or tri.shape[1] != 3 or not np.issubdtype(tri.dtype, np.integer):
        raise MeshError(
            f"triangles must be (m, 3) integers, got {tri.shape} {tri.dtype}",
            element_id=element_id,
        )
    if not np.isfinite(pos).all():
        raise MeshError("positions hold NaN or infinity", element_id=element_id)
    tri = tri.astype(np.int64)
    if len(tri) and (tri.min() < 0 or tri.max() >= len(pos)):
        raise MeshError(f"triangle index out of range 0..{len(pos) - 1}", element_id=element_id)
    area2 = np.linalg.norm(_cross(pos, tri), axis=1)
    keep = (area2 > 2 * MIN_AREA) & (tri[:, 0] != tri[:, 1])
    keep &= (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])
    if not keep.any():
        raise MeshError("no non-degenerate triangle", element_id=element_id)
    return pos, tri[keep]


def _cross(pos: F64, tri: I64) -> F64:
    a, b, c = pos[tri[:, 0]], pos[tri[:, 1]], pos[tri[:, 2]]
    return np.cross(b - a, c - a)


def flat_shaded(positions: F64, triangles: I64) -> tuple[F64, F64, I64]:
    """Flat normals: each corner takes its face's normal; a vertex is duplicated once per
    distinct face orientation (normals equal to 1e-4), so coplanar faces still share vertices.

    Returns new positions (k, 3), unit normals (k, 3) and triangles (m, 3), same frame."""
    face_n = _cross(positions, triangles)
    face_n /= np.linalg.norm(face_n, axis=1, keepdims=True)
    corner_v = triangles.ravel()
    corner_n = np.repeat(face_n, 3, axis=0)
    key = np.column_stack([corner_v, np.round(corner_n * 1e4).astype(np.int64)])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    return positions[corner_v[first]], corner_n[first], inverse.reshape(-1, 3).astype(np.int64)


def smooth_normals(positions: F64, triangles: I64) -> F64:
    """Area-weighted vertex normals (unit; +z for vertices no triangle uses)."""
    face_n = _cross(positions, triangles)
    normals = np.zeros_like(positions)
    for corner in range(3):
        np.add.at(normals, triangles[:, corner], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)
    normals[length[:, 0] == 0] = (0.0, 0.0, 1.0)
    return normals
