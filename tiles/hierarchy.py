"""The LOD plan: which buildings each quadtree node draws and with what geometric error.

Leaves draw every member at full detail (geometric error 0). An inner node draws the coarse
form (`tiles.lod`) of its largest members — by size, up to `max_features` and `max_bytes` of
content — and its children *replace* it when refined. Its geometric error (metres) is the
largest of: the size of the largest member it leaves out (leaving out a building is an error of
its size), the coarse error of the members it draws, and its children's errors (so errors
never grow downwards).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tiles.lod import Outline
from tiles.partition import QuadNode


@dataclass
class LodTile:
    """A node of the plan: its quadtree `node`, the feature indices it draws (`content`),
    whether they are drawn coarse, its geometric error (metres) and its children."""

    node: QuadNode
    content: NDArray[np.int64]
    coarse: bool
    error: float
    children: list[LodTile] = field(default_factory=list)

    def walk(self) -> list[LodTile]:
        """This tile and every tile below it, depth first."""
        return [self, *(t for child in self.children for t in child.walk())]


def plan(tree: QuadNode, outlines: Sequence[Outline], max_features: int, max_bytes: int) -> LodTile:
    """The LOD plan over a quadtree of feature indices (`outlines[i]` is feature i's)."""
    sizes = np.array([o.size for o in outlines])
    return _plan(tree, outlines, sizes, max_features, max_bytes)


def _plan(
    node: QuadNode,
    outlines: Sequence[Outline],
    sizes: NDArray[np.float64],
    max_features: int,
    max_bytes: int,
) -> LodTile:
    if not node.children:
        return LodTile(node, node.members, coarse=False, error=0.0)
    children = [_plan(c, outlines, sizes, max_features, max_bytes) for c in node.children]
    members = node.all_members()
    order = members[np.argsort(-sizes[members], kind="stable")]
    kept, total = 0, 0
    for index in order[:max_features]:
        cost = outlines[index].coarse_bytes
        if kept and total + cost > max_bytes:
            break
        kept, total = kept + 1, total + cost
    content = np.sort(order[:kept])
    dropped = float(sizes[order[kept]]) if kept < len(order) else 0.0
    drawn = max((outlines[i].error for i in content), default=0.0)
    error = max(dropped, drawn, *(c.error for c in children))
    return LodTile(node, content, coarse=True, error=error, children=children)


def plain(tree: QuadNode) -> LodTile:
    """The plan without levels of detail: leaves draw their members, inner nodes nothing (their
    error is left NaN for the writer to take from their box)."""
    if not tree.children:
        return LodTile(tree, tree.members, coarse=False, error=0.0)
    empty = np.empty(0, np.int64)
    return LodTile(tree, empty, False, float("nan"), [plain(c) for c in tree.children])
