"""Spatial split of features into tiles: a quadtree on ENU x/y of feature centroids, subdivided
until no leaf holds more than `max_features` (and, given weights, no more than `max_weight`).

Cells are a uniform subdivision of one square, so a node's quadrant digits are also its
implicit-tiling coordinates (`QuadNode.level_x_y`)."""

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

    @property
    def is_chunk(self) -> bool:
        """Whether some address step is a chunk of inseparable points, not a quadrant."""
        return "c" in self.address

    def level_x_y(self) -> tuple[int, int, int]:
        """Implicit quadtree coordinates: level, x (east index), y (north index)."""
        if self.is_chunk:
            raise ValueError(f"chunk node {self.address} has no quadtree coordinates")
        x = y = 0
        for digit in self.address:
            q = int(digit)
            x, y = 2 * x + (q & 1), 2 * y + (q >> 1)
        return len(self.address), x, y

    def walk(self) -> list[QuadNode]:
        """This node and every node below, depth first."""
        return [self, *(n for child in self.children for n in child.walk())]

    def all_members(self) -> NDArray[np.int64]:
        """Members of every leaf below (or at) this node."""
        return np.concatenate([leaf.members for leaf in self.leaves()])

    def leaves(self) -> list[QuadNode]:
        """Leaves below (or at) this node, in address order."""
        if not self.children:
            return [self]
        return [leaf for child in self.children for leaf in child.leaves()]


@dataclass(frozen=True)
class _Limits:
    count: int
    weights: NDArray[np.float64]
    weight: float
    chunk: bool

    def fits(self, members: NDArray[np.int64]) -> bool:
        return len(members) <= self.count and float(self.weights[members].sum()) <= self.weight

    def chunks(self, members: NDArray[np.int64]) -> list[NDArray[np.int64]]:
        """Consecutive runs of `members` that each fit (a single heavy member stands alone)."""
        out, start, total = [], 0, 0.0
        for i, m in enumerate(members):
            w = float(self.weights[m])
            if i > start and (i - start >= self.count or total + w > self.weight):
                out.append(members[start:i])
                start, total = i, 0.0
            total += w
        out.append(members[start:])
        return out


def quadtree(
    centroids: NDArray[np.float64],
    max_features: int,
    *,
    weights: NDArray[np.float64] | None = None,
    max_weight: float = np.inf,
    chunk: bool = True,
) -> QuadNode:
    """Split (n, 2) centroids (metres) into a quadtree whose leaves hold ≤ `max_features` each
    and, with `weights` (one per point), ≤ `max_weight` in all.

    Cells are squares around the centroids' extent; empty quadrants are left out. Points that
    cannot be separated (equal centroids, or the depth limit) are chunked in index order, or,
    with ``chunk=False`` (implicit tiling has no room for chunks), left together in one leaf."""
    if max_features < 1:
        raise ValueError(f"max_features must be >= 1, got {max_features}")
    pts = np.asarray(centroids, float).reshape(-1, 2)
    if not len(pts):
        return QuadNode("")
    w = np.zeros(len(pts)) if weights is None else np.asarray(weights, float)
    limits = _Limits(max_features, w, max_weight, chunk)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    half = float(max(hi - lo)) / 2
    return _split(pts, np.arange(len(pts)), (lo + hi) / 2, half, "", limits)


def _split(
    pts: NDArray[np.float64],
    members: NDArray[np.int64],
    centre: NDArray[np.float64],
    half: float,
    address: str,
    limits: _Limits,
) -> QuadNode:
    if limits.fits(members):
        return QuadNode(address, members)
    sub = pts[members]
    if len(address) >= MAX_DEPTH or np.ptp(sub, axis=0).max() == 0:
        if not limits.chunk:
            return QuadNode(address, members)
        chunks = limits.chunks(members)
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
                _split(pts, inside, centre + offset, half / 2, address + str(q), limits)
            )
    return QuadNode(address, children=children)
