"""The terrain LOD tree (`tiles.terrain`): quadtree structure, errors halving per level down to
the finest max error, leaves within that error of the grid, bounded per-tile textures, valid
3D Tiles and glbs; and the sample district's terrain built that way by `twin build`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from tiles_helpers import glb_positions, run_gltf_validator, validate_tileset_tree, walk_tiles

from tiles.glb import read_glb
from tiles.terrain import MAX_TEXTURE_SIDE, TerrainGrid, levels_for, window
from tiles.texture import image_size
from tiles.writer import write_tileset
from twin.geo import LocalFrame
from twin.workspace import Manifest, WorkspacePaths

FRAME = LocalFrame(121.5, 31.23, 10.0)
CELL = 5.0  # metres
ROWS, COLS = 230, 300
FINEST = 0.5
LEAF = 64


def hills() -> np.ndarray:
    """A rough surface (metres) with a no-data hole."""
    r, c = np.mgrid[0:ROWS, 0:COLS].astype(float)
    z = 20 + 8 * np.sin(c / 17) * np.cos(r / 23) + 0.03 * c + 2 * np.sin(r * c / 900)
    z[40:60, 200:240] = np.nan
    return z


def to_enu(cols: np.ndarray, rows: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """Cell centres on a 5 m grid, row 0 north, centred on the frame's origin."""
    x = (cols + 0.5 - COLS / 2) * CELL
    y = (ROWS / 2 - rows - 0.5) * CELL
    return np.column_stack([x, y, heights])


def texture(positions: np.ndarray, max_side: int) -> tuple[np.ndarray, bytes, str]:
    """One pixel per 0.5 m up to `max_side`, a colour ramp; uvs over the vertices' extent."""
    lo, hi = positions[:, :2].min(axis=0), positions[:, :2].max(axis=0)
    side = int(min(4096, 2 ** np.ceil(np.log2(max(hi - lo) / 0.5))))
    side = min(side, max_side)
    ramp = np.linspace(0, 255, side, dtype=np.uint8)
    image = np.dstack([np.tile(ramp, (side, 1)), np.tile(ramp[:, None], (1, side)),
                       np.full((side, side), 90, np.uint8)])  # fmt: skip
    ok, data = cv2.imencode(".jpg", image)
    assert ok
    uvs = np.column_stack([(positions[:, 0] - lo[0]) / (hi[0] - lo[0]),
                           (hi[1] - positions[:, 1]) / (hi[1] - lo[1])])  # fmt: skip
    return uvs, data.tobytes(), "image/jpeg"


@pytest.fixture(scope="module", params=["none", "meshopt"])
def terrain_tiles(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("terrain") / "tiles"
    grid = TerrainGrid(hills(), to_enu, texture, finest_error=FINEST, leaf_cells=LEAF)
    write_tileset(out, FRAME.enu_to_ecef_matrix(), [], grid, compression=request.param)
    return out / "tileset.json"


def _terrain_tiles(tileset: Path) -> list[Any]:
    return [p for p in walk_tiles(tileset) if p.pointer.startswith("/root/children/0")]


def test_terrain_tree_is_valid_and_halves_its_error_per_level(terrain_tiles: Path) -> None:
    assert validate_tileset_tree(terrain_tiles) == []
    levels = levels_for((ROWS, COLS), LEAF)
    assert levels == 3  # 300 cells / 64 → 8 leaves a side
    tiles = _terrain_tiles(terrain_tiles)
    depth = {p.pointer: p.pointer.count("/children/") - 1 for p in tiles}
    assert max(depth.values()) == levels
    for placed in tiles:
        tile, level = placed.tile, depth[placed.pointer]
        assert tile["geometricError"] == pytest.approx(FINEST * 2 ** (levels - level))
        assert len(tile.get("children", [])) <= 4
        if tile.get("children"):
            assert tile["refine"] == "REPLACE"
            for child in tile["children"]:
                assert child["geometricError"] == pytest.approx(tile["geometricError"] / 2)
    leaves = [p for p in tiles if not p.tile.get("children")]
    assert len(leaves) == 4**levels  # the hole is inside one leaf, not a whole leaf
    assert all(p.tile["geometricError"] == FINEST for p in leaves)
    top = json.loads(terrain_tiles.read_text())["root"]["children"][0]
    assert top["content"]["uri"] == "terrain/terrain.glb"


def _tin_heights(xy: np.ndarray, triangles: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Height of the TIN (xy + z columns) at `points` (k, 2); NaN where no triangle holds it."""
    out = np.full(len(points), np.nan)
    for tri in triangles:
        a, b, c = xy[tri]
        lo, hi = np.minimum(np.minimum(a, b), c)[:2], np.maximum(np.maximum(a, b), c)[:2]
        near = np.flatnonzero(((points >= lo - 0.01) & (points <= hi + 0.01)).all(axis=1))
        if not len(near):
            continue
        v0, v1, v2 = b[:2] - a[:2], c[:2] - a[:2], points[near] - a[:2]
        den = v0[0] * v1[1] - v1[0] * v0[1]
        s = (v2[:, 0] * v1[1] - v1[0] * v2[:, 1]) / den
        t = (v0[0] * v2[:, 1] - v2[:, 0] * v0[1]) / den
        inside = (s >= -1e-4) & (t >= -1e-4) & (s + t <= 1 + 1e-4)  # quantised corners
        hit = near[inside]
        out[hit] = (1 - s[inside] - t[inside]) * a[2] + s[inside] * b[2] + t[inside] * c[2]
    return out


def test_every_leaf_is_within_the_finest_error_of_the_grid(terrain_tiles: Path) -> None:
    heights = hills()
    levels = levels_for((ROWS, COLS), LEAF)
    leaves = [p for p in _terrain_tiles(terrain_tiles) if not p.tile.get("children")]
    covered = 0
    for placed in leaves:
        x, y = (int(v) for v in Path(placed.tile["content"]["uri"]).with_suffix("").parts[-2:])
        r0, r1, c0, c1 = window((ROWS, COLS), levels, x, y)
        glb = read_glb(terrain_tiles.parent / placed.tile["content"]["uri"])
        ((positions, primitive),) = list(glb_positions(glb))
        triangles = glb.accessor(primitive["indices"]).astype(np.int64).reshape(-1, 3)
        rr, cc = np.mgrid[r0 : r1 + 1, c0 : c1 + 1]
        rr, cc = rr.ravel(), cc.ravel()
        grid_z = heights[rr, cc]
        points = to_enu(cc.astype(float), rr.astype(float), grid_z)
        valid = np.isfinite(grid_z)
        # quantised positions (meshopt) may move the border by a fraction of a millimetre
        inner = np.clip(points[valid, :2], positions[:, :2].min(0), positions[:, :2].max(0))
        tin_z = _tin_heights(positions, triangles, inner)
        found = np.isfinite(tin_z)
        # float32/uint16 storage adds at most a few millimetres
        assert np.abs(tin_z[found] - grid_z[valid][found]).max() <= FINEST + 0.01
        covered += int(found.sum())
        if not np.isnan(heights[r0 : r1 + 1, c0 : c1 + 1]).any():
            assert found.all()  # a leaf without no data covers its whole window
    assert covered >= np.isfinite(heights).sum()  # shared borders count twice


def test_terrain_textures_are_bounded_jpegs(terrain_tiles: Path) -> None:
    glbs = sorted((terrain_tiles.parent / "terrain").rglob("*.glb"))
    assert len(glbs) == 1 + 4 + 16 + 64
    sides = []
    for path in glbs:
        glb = read_glb(path)
        image = glb.document["images"][0]
        assert image["mimeType"] == "image/jpeg"
        sides.append(max(image_size(glb.view_bytes(image["bufferView"]), "image/jpeg")))
        assert path.stat().st_size <= 1_000_000
    assert max(sides) == MAX_TEXTURE_SIDE  # coarse tiles would want 4096 px
    assert min(sides) < MAX_TEXTURE_SIDE  # leaves (160 m) need only 512 px


def test_sample_terrain_is_a_textured_lod_tree(sample_ws: Path) -> None:
    paths = WorkspacePaths(sample_ws)
    tileset = json.loads(paths.tileset.read_text())
    (top,) = [c for c in tileset["root"]["children"] if "terrain" in json.dumps(c.get("content"))]
    assert top["refine"] == "REPLACE" and top["children"]
    assert top["geometricError"] > top["children"][0]["geometricError"] >= 0.5
    glbs = sorted((paths.tiles / "terrain").rglob("*.glb"))
    assert len(glbs) > 5
    reports = run_gltf_validator(glbs)
    assert all(r["numErrors"] == 0 for r in reports), [r for r in reports if r["numErrors"]]
    ortho = Manifest.read(paths.manifest).report["ortho"]
    assert ortho["textures"] == len(glbs) and ortho["max_texture_px"] <= MAX_TEXTURE_SIDE
    assert ortho["coverage"] > 0.9
