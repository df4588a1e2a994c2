"""Meshes drawn over the district, in the workspace ENU frame (metres): the selection
highlight, live entities with their trails and open alerts as pins. Pure
functions of their inputs; `twin.viewer.scene` turns them into actors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyvista as pv
from numpy.typing import NDArray

from twin.viewer.colours import ENTITY_KINDS, SEVERITY, UNKNOWN
from twin.viewer.live import LiveState

F64 = NDArray[np.float64]
COLOUR = "colour"
INFLATE = 1.02
PIN_HEIGHT_M = 12.0


def inflated(mesh: pv.PolyData, factor: float = INFLATE) -> pv.PolyData:
    """`mesh` grown by `factor` about the middle of its footprint at its lowest point, so a
    highlight drawn over a building covers it without flickering against its faces."""
    xmin, xmax, ymin, ymax, zmin, _ = mesh.bounds
    anchor = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2, zmin])
    out = mesh.copy()
    out.points = anchor + (np.asarray(mesh.points) - anchor) * factor
    return out


@dataclass
class Markers:
    """Points with per-point colours (``colour``) and the ids they stand for, in order."""

    points: pv.PolyData
    ids: list[str]


def entity_markers(state: LiveState) -> tuple[Markers, pv.PolyData | None]:
    """Live entities (coloured by kind) and their trails (polylines, same colours)."""
    tracks = list(state.tracks.items())
    colours = np.array([ENTITY_KINDS.get(str(t.payload.get("kind")), UNKNOWN) for _, t in tracks],
                       np.uint8).reshape(-1, 3)  # fmt: skip
    points = _coloured(np.array([t.position for _, t in tracks], float), colours)
    lines = [(np.array(t.trail), colours[i]) for i, (_, t) in enumerate(tracks) if len(t.trail) > 1]
    trails = None
    if lines:
        trails = pv.merge([_line(xyz, colour) for xyz, colour in lines])
    return Markers(points, [key for key, _ in tracks]), trails


def _coloured(xyz: F64, colours: NDArray[np.uint8]) -> pv.PolyData:
    """Points (ENU m) with their ``colour`` (none when there are no points)."""
    points = pv.PolyData(np.asarray(xyz, float).reshape(-1, 3))
    if len(colours):
        points.point_data[COLOUR] = colours
    return points


def _line(xyz: F64, colour: NDArray[np.uint8]) -> pv.PolyData:
    line = pv.lines_from_points(xyz)
    line.point_data[COLOUR] = np.tile(colour, (len(xyz), 1))
    return line


def alert_markers(
    alerts: Sequence[dict[str, Any]], positions: F64
) -> tuple[Markers, pv.PolyData | None]:
    """Open alerts as a marker `PIN_HEIGHT_M` above each place (ENU m, (n, 3)), coloured by
    severity, and the pins down to the places."""
    colours = np.array([SEVERITY.get(str(a.get("severity")), SEVERITY["warning"]) for a in alerts],
                       np.uint8).reshape(-1, 3)  # fmt: skip
    places = np.asarray(positions, float).reshape(-1, 3)
    tops = places + np.array([0.0, 0.0, PIN_HEIGHT_M])
    heads = _coloured(tops, colours)
    pins = None
    if len(tops):
        pairs = zip(places, tops, colours, strict=True)
        pins = pv.merge([_line(np.vstack([p, t]), c) for p, t, c in pairs])
    return Markers(heads, [str(a["id"]) for a in alerts]), pins
