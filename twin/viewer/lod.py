"""Which tiles to draw for a view: screen-space error over a `TileNode` tree, as a 3D Tiles
client does (CesiumJS's `maximumScreenSpaceError`).

A tile's screen-space error is its geometric error (m) seen from the camera's distance to its
bounding sphere, in pixels. A tile is refined when that error exceeds the layer's limit and it
has children; REPLACE children stand in for it once all of the visible ones are loaded (until
then it stays), ADD children are drawn with it. Tiles outside the view frustum are skipped.
`TileTree.select_within` raises the error limit (doubling it) until what the selection draws
fits a budget of triangles or points, so a view never draws more than the machine can show.
Visibility and errors of every tile are computed at once per view (numpy), so choosing tiles
costs well under a millisecond for trees of a thousand tiles.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from twin.viewer.tileset import TileNode

F64 = NDArray[np.float64]
Sizes = Callable[[TileNode], int | None]


@dataclass(frozen=True)
class ViewState:
    """Camera position (ENU m), the four side planes of the view frustum (a, b, c, d with
    a·x + b·y + c·z + d >= 0 inside; near and far planes follow what is drawn, so they are not
    used) and pixels per unit of error/distance: viewport height / (2 tan(fov / 2))."""

    position: F64
    planes: F64
    pixels_per_radian: float

    @classmethod
    def from_renderer(cls, renderer: Any) -> ViewState:
        """The view of a vtkRenderer's active camera over its current viewport size."""
        camera = renderer.GetActiveCamera()
        width, height = renderer.GetSize()
        planes = [0.0] * 24
        camera.GetFrustumPlanes(width / max(height, 1), planes)
        factor = height / (2.0 * math.tan(math.radians(camera.GetViewAngle()) / 2.0))
        return cls(np.array(camera.GetPosition()), np.array(planes).reshape(6, 4)[:4], factor)


@dataclass
class Selection:
    """Tiles to draw now, and tiles to load (most wanted first)."""

    show: list[TileNode] = field(default_factory=list)
    load: list[TileNode] = field(default_factory=list)


class TileTree:
    """The tiles under `roots`, numbered (`TileNode.index`) with their boxes as arrays."""

    def __init__(self, roots: Sequence[TileNode]) -> None:
        self.roots = list(roots)
        self.nodes = [node for root in self.roots for node in root.walk()]
        for i, node in enumerate(self.nodes):
            node.index = i
        count = len(self.nodes)
        self.corners = np.array([n.corners for n in self.nodes], float).reshape(count, 8, 3)
        self.centres = np.array([n.centre for n in self.nodes], float).reshape(count, 3)
        self.radii = np.array([n.radius for n in self.nodes], float)
        self.errors = np.array([n.error for n in self.nodes], float)

    def look(self, view: ViewState) -> tuple[NDArray[np.bool_], F64]:
        """For every tile: whether some of its box may be in the frustum, and its
        screen-space error (px)."""
        inside = self.corners @ view.planes[:, :3].T + view.planes[:, 3]  # (n, 8, 4)
        sees = ~np.any(np.all(inside < 0, axis=1), axis=1)
        distance = np.linalg.norm(self.centres - view.position, axis=1) - self.radii
        return sees, self.errors * view.pixels_per_radian / np.maximum(distance, 1e-3)

    def select(
        self, sees: NDArray[np.bool_], errors: F64, max_error_px: float, loaded: Sizes
    ) -> Selection:
        """The tiles to draw given `look`'s answers. `loaded(node)` is the size (triangles
        or points) of a loaded tile's content, None when not loaded yet."""
        out = Selection()

        def own(node: TileNode) -> tuple[list[TileNode], bool]:
            if node.uri is None:
                return [], True
            if loaded(node) is None:
                out.load.append(node)
                return [], False
            return [node], True

        def visit(node: TileNode) -> tuple[list[TileNode], bool]:
            if not sees[node.index]:
                return [], True
            if not node.children or errors[node.index] <= max_error_px:
                return own(node)
            shown, complete = own(node) if node.refine == "ADD" else ([], True)
            kids: list[TileNode] = []
            kids_done = True
            for child in node.children:
                sub, done = visit(child)
                kids, kids_done = kids + sub, kids_done and done
            if node.refine == "ADD":
                return shown + kids, complete and kids_done
            if kids_done:
                return kids, True
            fallback, fallback_done = own(node)
            return (fallback, True) if fallback_done and fallback else (kids, False)

        for root in self.roots:
            out.show.extend(visit(root)[0])
        out.load.sort(key=lambda node: -node.error)  # coarse tiles first: something to see soon
        return out

    def select_within(
        self,
        view: ViewState,
        max_error_px: float,
        loaded: Sizes,
        budget: float,
        guess: float,
        start_px: float | None = None,
    ) -> tuple[Selection, float]:
        """`select` for `view`, with the error limit doubled until the selection's size —
        loaded tiles at their size, tiles to load at `guess` each — fits `budget`, or until
        only the top tiles are left. The search starts at `start_px` (the last frame's limit,
        halved: views change little between frames) when given. Returns the selection and
        the limit it used (px)."""
        sees, errors = self.look(view)
        error = max(max_error_px, start_px or 0.0)
        while True:
            chosen = self.select(sees, errors, error, loaded)
            cost = sum(loaded(n) or guess for n in chosen.show) + guess * len(chosen.load)
            if cost <= budget or error > errors.max(initial=0.0):
                return chosen, error
            error *= 2.0
