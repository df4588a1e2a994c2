"""Terrain as its own level-of-detail tree: a quadtree of TIN tiles over a height grid.

Level ``k`` of ``L`` splits the grid into ``2^k × 2^k`` cell windows; each window is
triangulated (pydelatin) from the full-resolution grid at a max error of
``finest_error × 2^(L − k)`` metres, and that error is the tile's ``geometricError``
(children refine ``REPLACE``). ``L`` is the least depth at which a leaf window is at most
``leaf_cells`` cells a side, so leaves hold the grid within ``finest_error``. Windows share
their border row/column, so neighbouring tiles meet on the same grid lines (their border
vertices may differ: a crack of at most the level's error, vertically).

Each tile may be textured with its own image (the source's ``texture`` callable, at most
``MAX_TEXTURE_SIDE`` pixels a side), so texture size per glb is bounded whatever the area.
Content URIs: the top tile ``terrain/terrain.glb``, others ``terrain/{level}/{x}/{y}.glb``
(x columns east, y rows south from the grid's top-left corner).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from pydelatin import Delatin

from tiles.content import Compression, GlbContent, terrain_glb
from tiles.errors import TilesError
from tiles.model import TerrainMesh
from tiles.spec import BoundingVolume, Content, Tile
from tiles.texture import image_size

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

TERRAIN_DIR = "terrain"
TOP_URI = f"{TERRAIN_DIR}/terrain.glb"
TILE_URI = f"{TERRAIN_DIR}/{{level}}/{{x}}/{{y}}.glb"
MAX_TEXTURE_SIDE = 1024
LEAF_CELLS = 128
FINEST_ERROR_M = 0.5
BOX_PAD = 0.005

# (cols, rows, heights) → (n, 3) ENU metres; cols/rows index cell centres (may be arrays).
ToEnu = Callable[[F64, F64, F64], F64]
# (n, 3) ENU positions, max texture side (px) → (uvs (n, 2), image bytes, MIME type) or None.
Texturer = Callable[[F64, int], "tuple[F64, bytes, str] | None"]


@dataclass
class TerrainGrid:
    """A height grid the tiler turns into a terrain LOD tree.

    Parameters
    ----------
    heights
        (rows, cols) ground heights, metres; NaN for no data.
    to_enu
        Places cell centres: (cols, rows, heights m) → (n, 3) ENU metres of the tileset frame.
    texture
        Optional: for a tile's ENU vertices and a largest side (px), its texture coordinates
        (glTF convention), encoded image and MIME type; None leaves the tile untextured.
    finest_error
        Max vertical error (m) of the leaves' TINs against the grid.
    leaf_cells
        Largest leaf window side, in cells.
    """

    heights: F64
    to_enu: ToEnu
    texture: Texturer | None = None
    finest_error: float = FINEST_ERROR_M
    leaf_cells: int = LEAF_CELLS


@dataclass
class TerrainReport:
    """What `write_terrain_tree` wrote: tiles, glbs, bytes, levels, the largest glb, the
    largest texture side (px) and the finest level's vertex count."""

    tiles: int = 0
    glbs: int = 0
    bytes: int = 0
    levels: int = 0
    largest_glb: int = 0
    largest_texture_px: int = 0
    leaf_vertices: int = 0


def levels_for(shape: tuple[int, int], leaf_cells: int) -> int:
    """Depth ``L`` of the tree: the least with leaf windows of at most `leaf_cells` a side."""
    side = max(shape)
    return max(0, math.ceil(math.log2(max(side - 1, 1) / leaf_cells)))


def window(shape: tuple[int, int], level: int, x: int, y: int) -> tuple[int, int, int, int]:
    """Cell window (row0, row1, col0, col1), both ends inclusive, of tile (level, x, y)."""
    rows, cols = shape
    n = 2**level
    c0, c1 = (x * (cols - 1)) // n, ((x + 1) * (cols - 1)) // n
    r0, r1 = (y * (rows - 1)) // n, ((y + 1) * (rows - 1)) // n
    return r0, r1, c0, c1


def window_tin(
    heights: F64, win: tuple[int, int, int, int], max_error: float, fill: float
) -> tuple[I64, I64, I64]:
    """TIN of a window of the grid within `max_error` metres: (rows, cols) grid indices of its
    vertices and triangles (k, 3); triangles touching no data are left out. `fill` replaces no
    data before triangulating (far below the ground, so vertices follow its edge)."""
    r0, r1, c0, c1 = win
    part = heights[r0 : r1 + 1, c0 : c1 + 1]
    if part.shape[0] < 2 or part.shape[1] < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    tin = Delatin(np.nan_to_num(part, nan=fill).astype(np.float32), max_error=max_error)
    cols = np.rint(tin.vertices[:, 0]).astype(np.int64)
    rows = (part.shape[0] - 1) - np.rint(tin.vertices[:, 1]).astype(np.int64)  # y is up
    triangles = np.asarray(tin.triangles, np.int64).reshape(-1, 3)
    valid = ~np.isnan(part[rows, cols])
    triangles = triangles[valid[triangles].all(axis=1)]
    used, compact = np.unique(triangles, return_inverse=True)
    return rows[used] + r0, cols[used] + c0, compact.reshape(-1, 3).astype(np.int64)


def _ccw(positions: F64, triangles: I64) -> I64:
    a, b, c = (positions[triangles[:, i], :2] for i in range(3))
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    out = triangles.copy()
    out[cross < 0] = out[cross < 0][:, ::-1]
    return out


@dataclass
class _Job:
    out_dir: Path
    grid: TerrainGrid
    levels: int
    fill: float
    compression: Compression
    group: int | None
    report: TerrainReport


def write_terrain_tree(
    out_dir: Path,
    grid: TerrainGrid,
    *,
    compression: Compression = "none",
    group: int | None = None,
) -> tuple[Tile, TerrainReport]:
    """Write the terrain quadtree's glbs under ``out_dir/terrain`` and return its top tile
    (boxes in the tileset's ENU frame, metres; refine REPLACE) and a report.

    Raises `TilesError` for a grid that is not 2-D, has fewer than 2 × 2 cells or no valid
    height, or leaves nothing to triangulate."""
    heights = np.asarray(grid.heights, np.float64)
    if heights.ndim != 2 or min(heights.shape) < 2:
        raise TilesError(f"terrain grid must be at least 2 x 2 cells, got {heights.shape}")
    if not np.isfinite(heights).any():
        raise TilesError("terrain grid has no valid height")
    if grid.finest_error <= 0 or grid.leaf_cells < 2:
        raise TilesError("terrain finest_error must be > 0 and leaf_cells at least 2")
    shape = (int(heights.shape[0]), int(heights.shape[1]))
    levels = levels_for(shape, grid.leaf_cells)
    fill = float(np.nanmin(heights)) - 100.0
    report = TerrainReport(levels=levels + 1)
    job = _Job(out_dir, replace(grid, heights=heights), levels, fill, compression, group, report)
    top = _tile(job, 0, 0, 0)
    if top is None:
        raise TilesError("the terrain grid has no area of valid cells to triangulate")
    top.refine = "REPLACE"
    return top, report


def level_error(grid: TerrainGrid, levels: int, level: int) -> float:
    """Max error (m) of level `level`'s TINs in a tree of depth `levels`."""
    return grid.finest_error * 2.0 ** (levels - level)


def _tile(job: _Job, level: int, x: int, y: int) -> Tile | None:
    children = []
    if level < job.levels:
        for cy in (2 * y, 2 * y + 1):
            for cx in (2 * x, 2 * x + 1):
                child = _tile(job, level + 1, cx, cy)
                if child is not None:
                    children.append(child)
    error = level_error(job.grid, job.levels, level)
    rows_n, cols_n = job.grid.heights.shape
    win = window((rows_n, cols_n), level, x, y)
    rows, cols, triangles = window_tin(job.grid.heights, win, error, job.fill)
    volumes = [c.bounding_volume for c in children]
    content = None
    if len(triangles):
        uri = TOP_URI if level == 0 else TILE_URI.format(level=level, x=x, y=y)
        glb = _content(job, rows, cols, triangles)
        _save(job, job.out_dir / uri, glb)
        if level == job.levels:
            job.report.leaf_vertices += len(rows)
        volumes.append(BoundingVolume.from_min_max(glb.lo, glb.hi, pad=BOX_PAD))
        content = Content(uri, job.group)
    if not volumes:
        return None
    job.report.tiles += 1
    box = BoundingVolume.union(volumes) if len(volumes) > 1 else volumes[0]
    return Tile(box, error, refine="REPLACE" if children else None, content=content,
                children=children)  # fmt: skip


def _content(job: _Job, rows: I64, cols: I64, triangles: I64) -> GlbContent:
    z = job.grid.heights[rows, cols]
    positions = np.asarray(job.grid.to_enu(cols.astype(float), rows.astype(float), z), float)
    triangles = _ccw(positions, triangles)
    mesh = TerrainMesh(positions, triangles)
    if job.grid.texture is not None:
        textured = job.grid.texture(positions, MAX_TEXTURE_SIDE)
        if textured is not None:
            mesh.uvs, mesh.texture, mesh.texture_mime = textured
            side = max(image_size(mesh.texture, mesh.texture_mime))
            job.report.largest_texture_px = max(job.report.largest_texture_px, side)
    return terrain_glb(mesh, job.compression)


def _save(job: _Job, path: Path, glb: GlbContent) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(glb.data)
    job.report.glbs += 1
    job.report.bytes += len(glb.data)
    job.report.largest_glb = max(job.report.largest_glb, len(glb.data))
