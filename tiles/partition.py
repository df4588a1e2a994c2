"""Spatial split of features into tiles: a quadtree on ENU x/y of feature centroids, subdivided
until no leaf holds more than `max_features`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

MAX_DEPTH = 20


@dataclass
class QuadNode:
    """A quadtree cell: `address` is the path of quadrant digits from the root ("" for the root;
    0 = south-west, 1 = south-east, 2 = north-west, 3 = north-east); a leaf holds `members`
    (indices into the centroid array), an inner node `children`. Inseparable points are chunked
    into children addressed ``c0``, ``c1``, ..."""

    address: str
    members: NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    children: list[QuadNode] = field(default_factory=list)

    def leaves(self) -> list[QuadNode]:
        """Leaves below (or at) this node, in address order."""
        if not self.children:
            return [self]
        return [leaf for child in self.children for leaf in child.leaves()]


def quadtree(centroids: NDArray[np.float64], max_features: int) -> QuadNode:
    """Split (n, 2) centroids (metres) into a quadtree whose leaves hold ≤ `max_features` each.

    Cells are squares around the centroids' extent; empty quadrants are left out. Points that
    cannot be separated (equal centroids, or the depth limit) are chunked in index order."""
    if max_features < 1:
        raise ValueError(f"max_features must be >= 1, got {max_features}")
    pts = np.asarray(centroids, float).reshape(-1, 2)
    if not len(pts):
        return QuadNode("")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    half = float(max(hi - lo)) / 2
    return _split(pts, np.arange(len(pts)), (lo + hi) / 2, half, "", max_features)


def _split(
    pts: NDArray[np.float64],
    members: NDArray[np.int64],
    centre: NDArray[np.float64],
    half: float,
    address: str,
    max_features: int,
) -> QuadNode:
    if len(members) <= max_features:
        return QuadNode(address, members)
    sub = pts[members]
    if len(address) >= MAX_DEPTH or np.ptp(sub, axis=0).max() == 0:
        chunks = [members[i : i + max_features] for i in range(0, len(members), max_features)]
        return QuadNode(
            address, children=[QuadNode(f"{address}c{i}", c) for i, c in enumerate(chunks)]
        )
    quadrant = (sub[:, 0] >= centre[0]).astype(int) + 2 * (sub[:, 1] >= centre[1]).astype(int)
    children = []
    for q in range(4):
        inside = members[quadrant == q]
        if len(inside):
            offset = np.array([1 if q & 1 else -1, 1 if q & 2 else -1]) * half / 2
            children.append(
                _split(pts, inside, centre + offset, half / 2, address + str(q), max_features)
            )
    return QuadNode(address, children=children)
