"""Building meshes → `PreparedFeature`s (checked, flat-shaded), for all buildings at once.

The same result as `tiles.mesh.checked` then `tiles.mesh.flat_shaded` on every building, done
on the concatenated arrays: the corners' (vertex, normal) keys of all buildings are sorted in one
pass, which sorts each building's keys exactly as its own `np.unique` would. Positions stay in
the local ENU frame (metres). A building that the per-building checks would reject is reported
through those checks (`MeshError` naming it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from tiles import mesh
from tiles.content import PreparedFeature
from tiles.model import FeatureMesh, PropertyValue

I64 = NDArray[np.int64]


def _row(building: FeatureMesh) -> dict[str, PropertyValue]:
    props = {
        k: v.item() if isinstance(v, np.generic) else v
        for k, v in building.properties.items()
        if k != "element_id"
    }
    return {"element_id": building.element_id, **props}


def _one(building: FeatureMesh) -> PreparedFeature:
    """The per-building path (also the one that raises with the element id)."""
    pos, tri = mesh.checked(building.positions, building.triangles, building.element_id)
    positions, normals, triangles = mesh.flat_shaded(pos, tri)
    return PreparedFeature(_row(building), positions, normals, triangles)


def prepare_features(buildings: Sequence[FeatureMesh]) -> list[PreparedFeature]:
    """Checked, flat-shaded features in input order (see the module docstring)."""
    if not buildings:
        return []
    pos_list = [np.asarray(b.positions) for b in buildings]
    tri_list = [np.asarray(b.triangles) for b in buildings]
    shapes_ok = all(
        p.ndim == 2 and p.shape[1] == 3 and len(p) and t.ndim == 2 and t.shape[1] == 3
        and np.issubdtype(t.dtype, np.integer)
        for p, t in zip(pos_list, tri_list, strict=True)
    )  # fmt: skip
    if not shapes_ok:
        return [_one(b) for b in buildings]
    n_vert = np.array([len(p) for p in pos_list], np.int64)
    n_tri = np.array([len(t) for t in tri_list], np.int64)
    positions = np.concatenate(pos_list).astype(np.float64, copy=False)
    local_tri = np.concatenate(tri_list).astype(np.int64, copy=False)
    tri_owner = np.repeat(np.arange(len(buildings)), n_tri)
    in_range = not len(local_tri) or (
        local_tri.min() >= 0 and bool((local_tri.max(axis=1) < n_vert[tri_owner]).all())
    )
    if not in_range or not np.isfinite(positions).all():
        return [_one(b) for b in buildings]
    vert_start = np.concatenate([[0], np.cumsum(n_vert)[:-1]])
    triangles = local_tri + vert_start[tri_owner][:, None]
    area2 = np.linalg.norm(mesh._cross(positions, triangles), axis=1)
    keep = (area2 > 2 * mesh.MIN_AREA) & (local_tri[:, 0] != local_tri[:, 1])
    keep &= (local_tri[:, 1] != local_tri[:, 2]) & (local_tri[:, 0] != local_tri[:, 2])
    kept_per = np.bincount(tri_owner[keep], minlength=len(buildings))
    if (kept_per == 0).any():
        return [_one(b) for b in buildings]
    triangles, tri_owner = triangles[keep], tri_owner[keep]
    new_pos, normals, new_tri, source = _flat_shaded_all(positions, triangles)
    owner_of_vertex = np.searchsorted(np.cumsum(n_vert), source, side="right")
    counts = np.bincount(owner_of_vertex, minlength=len(buildings))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    new_tri = new_tri - starts[tri_owner][:, None]
    cuts_v, cuts_t = np.cumsum(counts)[:-1], np.cumsum(kept_per)[:-1]
    return [
        PreparedFeature(_row(b), p, n, t)
        for b, p, n, t in zip(
            buildings, np.split(new_pos, cuts_v), np.split(normals, cuts_v),
            np.split(new_tri, cuts_t), strict=True,
        )
    ]  # fmt: skip


def _flat_shaded_all(
    positions: NDArray[np.float64], triangles: I64
) -> tuple[NDArray[np.float64], NDArray[np.float64], I64, I64]:
    """`mesh.flat_shaded` on one big mesh: new positions, unit normals, triangles and, per new
    vertex, the index of the input vertex it copies (sorted, so buildings stay in order)."""
    face_n = mesh._cross(positions, triangles)
    face_n /= np.linalg.norm(face_n, axis=1, keepdims=True)
    corner_v = triangles.ravel()
    corner_n = np.repeat(face_n, 3, axis=0)
    rounded = np.round(corner_n * 1e4).astype(np.int64)
    # Lexicographic sort by (vertex, nx, ny, nz), stable: np.unique(axis=0)'s order and firsts.
    order = np.lexsort((rounded[:, 2], rounded[:, 1], rounded[:, 0], corner_v))
    sv, sr = corner_v[order], rounded[order]
    new = np.ones(len(order), bool)
    new[1:] = (sv[1:] != sv[:-1]) | np.any(sr[1:] != sr[:-1], axis=1)
    first = order[new]
    inverse = np.empty(len(order), np.int64)
    inverse[order] = np.cumsum(new) - 1
    return positions[corner_v[first]], corner_n[first], inverse.reshape(-1, 3), corner_v[first]
