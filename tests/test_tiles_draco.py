"""KHR_draco_mesh_compression content (``compression="draco"``): every glb is valid, decoding
with DracoPy gives the source positions within the 16-bit quantisation step, texture
coordinates within the 12-bit step, and per-vertex feature ids that name the same buildings as
the uncompressed build; `twin build` takes ``build.compression: draco``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import DracoPy
import numpy as np
import pytest
import yaml
from build_helpers import small_source, twin_build
from numpy.typing import NDArray
from PIL import Image
from synthetic_city import FRAME, grid_terrain, synthetic_city
from synthetic_terrain import FINEST, LEAF, hills, texture, to_enu
from tiles_helpers import decode_glb_features, validate_tileset_tree, walk_tiles

from tiles import BuildingsWriter, TerrainWriter, TilesetOptions, mesh, write_tileset
from tiles.content import DRACO_BITS
from tiles.glb import DRACO, Glb, read_glb
from tiles.model import FeatureMesh, TerrainMesh
from tiles.terrain import TerrainGrid

MAX_FEATURES = 40
UV_TOLERANCE = 1 / (2 * (2 ** DRACO_BITS["TEXCOORD_0"] - 1)) + 1e-6


def position_tolerance(side: float) -> float:
    """Largest per-axis error (metres) of a Draco position quantised in `DRACO_BITS` bits over
    a box whose largest side is `side` metres: half a grid step, plus float32 rounding."""
    return side / (2 * (2 ** DRACO_BITS["POSITION"] - 1)) + 1e-6 * side


def textured_terrain() -> TerrainMesh:
    """`grid_terrain` with uvs spanning its square and a 64 px PNG."""
    terrain = grid_terrain()
    xy = terrain.positions[:, :2]
    uvs = (xy - xy.min(axis=0)) / np.ptp(xy, axis=0)
    uvs[:, 1] = 1 - uvs[:, 1]
    png = io.BytesIO()
    Image.new("RGB", (64, 64), (90, 120, 70)).save(png, format="PNG")
    return TerrainMesh(terrain.positions, terrain.triangles, uvs, png.getvalue(), "image/png")


@pytest.fixture(scope="module")
def city() -> list[FeatureMesh]:
    return synthetic_city(300)


@pytest.fixture(scope="module")
def builds(city: list[FeatureMesh], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same city and textured terrain written uncompressed and with Draco (LOD tree)."""
    root = tmp_path_factory.mktemp("draco")
    for compression in ("none", "draco"):
        write_tileset(
            root / compression,
            FRAME.enu_to_ecef_matrix(),
            [BuildingsWriter(city), TerrainWriter(textured_terrain())],
            TilesetOptions(compression=compression, max_features=MAX_FEATURES),
        )
    return {name: root / name / "tileset.json" for name in ("none", "draco")}


def decoded(path: Path) -> tuple[dict[str, NDArray[Any]], NDArray[np.float64]]:
    """A Draco glb decoded with DracoPy: its attributes by glTF name (as stored, glTF y-up
    around the node's translation) and its positions placed in the ENU frame (metres)."""
    glb = read_glb(path)
    node = glb.document["nodes"][0]
    draco = glb.document["meshes"][0]["primitives"][0]["extensions"][DRACO]
    stream = DracoPy.decode(glb.view_bytes(draco["bufferView"]))
    values = {
        name: np.asarray(stream.get_attribute_by_unique_id(unique_id)["data"])
        for name, unique_id in draco["attributes"].items()
    }
    assert "scale" not in node
    placed = mesh.gltf_to_enu(values["POSITION"].astype(float) + node["translation"])
    return values, placed


def plain_positions(glb: Glb) -> NDArray[np.float64]:
    """ENU positions (metres) of an uncompressed glb's primitive."""
    primitive = glb.document["meshes"][0]["primitives"][0]
    local = glb.accessor(primitive["attributes"]["POSITION"]).astype(float)
    return mesh.gltf_to_enu(local + glb.document["nodes"][0]["translation"])


def nearest_gap(points: NDArray[np.float64], targets: NDArray[np.float64]) -> NDArray[np.float64]:
    """For each point, the per-axis (Chebyshev) distance to its nearest target (metres)."""
    return np.array([np.abs(targets - p).max(axis=1).min() for p in points])


def leaf_glbs(tileset: Path) -> list[Path]:
    """Finest-level building glbs of a tileset."""
    return sorted(
        placed.file.parent / placed.tile["content"]["uri"]
        for placed in walk_tiles(tileset)
        if placed.is_leaf and placed.tile.get("content", {}).get("uri", "").startswith("buildings/")
    )


def test_draco_tileset_is_valid_and_every_primitive_is_draco(builds: dict[str, Path]) -> None:
    assert validate_tileset_tree(builds["draco"]) == []
    glbs = sorted(builds["draco"].parent.rglob("*.glb"))
    assert len(glbs) > 10
    for path in glbs:
        document = read_glb(path).document
        assert document["extensionsRequired"] == [DRACO], path
        assert DRACO in document["extensionsUsed"]
        primitive = document["meshes"][0]["primitives"][0]
        extension = primitive["extensions"][DRACO]
        assert set(extension["attributes"]) == set(primitive["attributes"])
        assert all("bufferView" not in accessor for accessor in document["accessors"])
        assert "min" in document["accessors"][primitive["attributes"]["POSITION"]]
    terrain = read_glb(builds["draco"].parent / "terrain/terrain.glb").document
    assert set(terrain["meshes"][0]["primitives"][0]["attributes"]) == {
        "POSITION",
        "NORMAL",
        "TEXCOORD_0",
    }
    assert terrain["images"][0]["mimeType"] == "image/png"


def test_decoded_positions_are_within_the_quantisation_step(
    builds: dict[str, Path], city: list[FeatureMesh]
) -> None:
    source = {b.element_id: b.positions for b in city}
    worst = 0.0
    for path in leaf_glbs(builds["draco"]):
        values, placed = decoded(path)
        ids = values["_FEATURE_ID_0"].ravel()
        rows = decode_glb_features(path)
        side = float(np.ptp(placed, axis=0).max())
        tolerance = position_tolerance(side)
        for feature, row in enumerate(rows):
            original = source[row["element_id"]]
            gaps = nearest_gap(placed[ids == feature], original)
            back = nearest_gap(original, placed[ids == feature])
            assert max(gaps.max(), back.max()) <= tolerance, (path.name, row["element_id"])
            worst = max(worst, float(gaps.max()) / tolerance)
    # The quantisation is real: some vertex moved by more than a tenth of the bound.
    assert worst > 0.1


def test_decoded_terrain_keeps_positions_and_texture_coordinates(builds: dict[str, Path]) -> None:
    terrain = textured_terrain()
    assert terrain.uvs is not None
    values, placed = decoded(builds["draco"].parent / "terrain/terrain.glb")
    assert len(placed) == len(terrain.positions)
    tolerance = position_tolerance(float(np.ptp(terrain.positions, axis=0).max()))
    nearest = np.array([np.abs(terrain.positions - p).max(axis=1).argmin() for p in placed])
    assert np.abs(placed - terrain.positions[nearest]).max() <= tolerance
    assert np.abs(values["TEXCOORD_0"] - terrain.uvs[nearest]).max() <= UV_TOLERANCE
    normals = values["NORMAL"]
    assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-2)


def test_feature_ids_name_the_same_buildings_as_the_uncompressed_build(
    builds: dict[str, Path], city: list[FeatureMesh]
) -> None:
    leaves = leaf_glbs(builds["draco"])
    plain_root = builds["none"].parent
    assert [p.relative_to(builds["draco"].parent) for p in leaves] == [
        p.relative_to(plain_root) for p in leaf_glbs(builds["none"])
    ]
    seen: list[str] = []
    for path in leaves:
        values, placed = decoded(path)
        draco_ids = [row["element_id"] for row in decode_glb_features(path)]
        vertex_ids = np.array(draco_ids)[values["_FEATURE_ID_0"].ravel().astype(int)]
        plain_path = plain_root / path.relative_to(builds["draco"].parent)
        plain = read_glb(plain_path)
        plain_ids = np.array([row["element_id"] for row in decode_glb_features(plain_path)])
        primitive = plain.document["meshes"][0]["primitives"][0]
        plain_vertex_ids = plain_ids[
            plain.accessor(primitive["attributes"]["_FEATURE_ID_0"]).astype(int)
        ]
        plain_placed = plain_positions(plain)
        assert sorted(draco_ids) == sorted(plain_ids.tolist())
        tolerance = position_tolerance(float(np.ptp(plain_placed, axis=0).max()))
        for element_id in draco_ids:
            ours = placed[vertex_ids == element_id]
            theirs = plain_placed[plain_vertex_ids == element_id]
            assert len(ours) == len(theirs), (path.name, element_id)
            assert nearest_gap(ours, theirs).max() <= tolerance, (path.name, element_id)
        seen += draco_ids
    assert sorted(seen) == sorted(b.element_id for b in city)


@pytest.mark.slow
def test_textured_terrain_tree_is_draco(tmp_path: Path) -> None:
    grid = TerrainGrid(hills(), to_enu, texture, finest_error=FINEST, leaf_cells=LEAF)
    options = TilesetOptions(compression="draco")
    write_tileset(tmp_path, FRAME.enu_to_ecef_matrix(), [TerrainWriter(grid)], options)
    assert validate_tileset_tree(tmp_path / "tileset.json") == []
    glbs = sorted((tmp_path / "terrain").rglob("*.glb"))
    assert len(glbs) > 4
    for path in glbs:
        values, _ = decoded(path)
        assert set(values) == {"POSITION", "NORMAL", "TEXCOORD_0"}
        assert values["TEXCOORD_0"].min() >= -UV_TOLERANCE
        assert values["TEXCOORD_0"].max() <= 1 + UV_TOLERANCE


def test_draco_is_smaller_than_uncompressed(builds: dict[str, Path]) -> None:
    sizes = {
        name: sum(p.stat().st_size for p in tileset.parent.rglob("*.glb"))
        for name, tileset in builds.items()
    }
    assert sizes["draco"] < sizes["none"] / 3


def test_twin_build_takes_draco_from_twin_yaml(tmp_path: Path) -> None:
    src = small_source(tmp_path / "src", limit=12)
    config = yaml.safe_load((src / "twin.yaml").read_text("utf-8"))
    config["build"] = {"compression": "draco", "tile_max_features": 4}
    (src / "twin.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    ws = tmp_path / "ws"
    twin_build(src, ws)
    tileset = ws / "tiles" / "tileset.json"
    assert validate_tileset_tree(tileset) == []
    glbs = list(tileset.parent.rglob("*.glb"))
    assert glbs
    assert all(read_glb(p).document["extensionsRequired"] == [DRACO] for p in glbs)
