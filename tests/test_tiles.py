"""The 3D Tiles writer on a synthetic district around a real origin: the output is checked with
the 3D Tiles JSON schemas, the Khronos glTF-Validator, and by decoding the glb bytes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_city import BOX_TRIANGLES, FRAME, box_building, grid_terrain, synthetic_city
from tiles_helpers import (
    Y_UP_TO_Z_UP,
    assert_json_close,
    decode_glb_features,
    glb_positions,
    node_matrix,
    schema_problems,
    validate_tileset_tree,
    walk_tiles,
)

from tiles import BuildingsWriter, TerrainWriter, TilesetOptions, TilesetReport, write_tileset
from tiles.errors import MeshError, TilesError
from tiles.glb import read_glb
from tiles.model import FeatureMesh
from tiles.partition import quadtree
from tiles.spec import BoundingVolume, Tileset
from twin.geo import geodetic_to_ecef

MAX_FEATURES = 50
# The writer's plain output: float32 glbs, no levels of detail.
PLAIN = TilesetOptions(compression="none", lod=False)


@pytest.fixture(scope="module")
def city() -> list[FeatureMesh]:
    return synthetic_city(300)


@pytest.fixture(scope="module")
def written(
    city: list[FeatureMesh], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, TilesetReport, list[int]]:
    out = tmp_path_factory.mktemp("tiles") / "tileset"
    seen: list[int] = []
    report = write_tileset(
        out,
        FRAME.enu_to_ecef_matrix(),
        [BuildingsWriter(city, seen.append), TerrainWriter(grid_terrain())],
        TilesetOptions(compression="none", lod=False, max_features=MAX_FEATURES),
    )
    return out, report, seen


def building_glbs(out: Path) -> list[Path]:
    return sorted((out / "buildings").glob("*.glb"))


def test_tree_passes_schema_and_gltf_validator(written: tuple[Path, TilesetReport, list[int]]):
    out, report, _ = written
    assert validate_tileset_tree(out / "tileset.json") == []
    doc = json.loads((out / "tileset.json").read_text())
    assert doc["asset"]["version"] == "1.1"
    assert np.allclose(np.reshape(doc["root"]["transform"], (4, 4)).T, FRAME.enu_to_ecef_matrix())
    assert report.glbs == len(building_glbs(out)) + 1
    assert report.tiles == len(list(walk_tiles(out / "tileset.json")))
    assert report.bytes == sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def test_every_feature_written_once_in_small_tiles(
    city: list[FeatureMesh], written: tuple[Path, TilesetReport, list[int]]
):
    out, report, progress = written
    ids: list[str] = []
    for glb in building_glbs(out):
        rows = decode_glb_features(glb)
        assert 0 < len(rows) <= MAX_FEATURES
        ids += [row["element_id"] for row in rows]
    assert sorted(ids) == sorted(b.element_id for b in city)
    assert report.features == len(city)
    assert progress == sorted(progress) and progress[-1] == len(city)


def test_property_table_values_round_trip(
    city: list[FeatureMesh], written: tuple[Path, TilesetReport, list[int]]
):
    out, _, _ = written
    by_id = {b.element_id: b.properties for b in city}
    glb = building_glbs(out)[0]
    schema = read_glb(glb).document["extensions"]["EXT_structural_metadata"]["schema"]
    props = schema["classes"]["building"]["properties"]
    assert list(props)[:5] == ["element_id", "name", "kind", "height", "height_source"]
    assert props["height"]["type"] == "SCALAR" and props["height"]["componentType"] == "FLOAT32"
    assert "metres" in props["height"]["description"]
    assert props["levels"]["componentType"] == "INT32" and "noData" in props["levels"]
    assert props["listed"] == {"type": "BOOLEAN"}
    assert props["_5e74_4ee3"] == {"type": "STRING", "name": "年代"}
    for row in decode_glb_features(glb):
        source = by_id[row["element_id"]]
        assert row["name"] == (source["name"] or "")
        assert row["height"] == pytest.approx(source["height"], rel=1e-6)
        assert row["levels"] == source["levels"]
        assert row["listed"] == source["listed"]
        assert row["_5e74_4ee3"] == source["年代"]


def test_vertices_land_on_the_globe_within_a_centimetre(
    city: list[FeatureMesh], written: tuple[Path, TilesetReport, list[int]]
):
    out, _, _ = written
    by_id = {b.element_id: b for b in city}
    placed = {
        p.tile["content"]["uri"]: p.to_world
        for p in walk_tiles(out / "tileset.json")
        if "content" in p.tile
    }
    for uri, to_ecef in placed.items():
        glb = read_glb(out / uri)
        for points, primitive in glb_positions(glb):
            ecef = points @ to_ecef[:3, :3].T + to_ecef[:3, 3]
            if uri.startswith("terrain"):
                grid = FRAME.to_geodetic(grid_terrain().positions)
                expected = geodetic_to_ecef(grid[:, 0], grid[:, 1], grid[:, 2])
                assert np.linalg.norm(ecef - expected, axis=1).max() < 0.01
                continue
            fid = glb.accessor(primitive["attributes"]["_FEATURE_ID_0"]).astype(int)
            rows = decode_glb_features(out / uri)
            for index, row in enumerate(rows):
                source = by_id[row["element_id"]].positions
                lon_lat_h = FRAME.to_geodetic(source)
                expected = geodetic_to_ecef(lon_lat_h[:, 0], lon_lat_h[:, 1], lon_lat_h[:, 2])
                got = ecef[fid == index]
                gap = np.linalg.norm(got[:, None, :] - expected[None, :, :], axis=2)
                assert gap.min(axis=1).max() < 0.01  # every written vertex is an input vertex
                assert gap.min(axis=0).max() < 0.01  # every input vertex is written


def test_glb_layout_normals_and_precision(written: tuple[Path, TilesetReport, list[int]]):
    out, _, _ = written
    for path in building_glbs(out):
        glb = read_glb(path)
        doc = glb.document
        assert set(doc["extensionsUsed"]) == {"EXT_mesh_features", "EXT_structural_metadata"}
        (primitive,) = doc["meshes"][0]["primitives"]
        assert set(primitive["attributes"]) == {"POSITION", "NORMAL", "_FEATURE_ID_0"}
        assert doc["materials"][0]["doubleSided"] is False
        local = glb.accessor(primitive["attributes"]["POSITION"])
        assert local.dtype == np.float32 and np.abs(local).max() < 2000
        node = node_matrix(doc["nodes"][0])
        assert np.linalg.norm(node[:3, 3]) > 10  # the offset lives in the node, not float32
        # Flat normals: every face's normal points away from its building's centre.
        normals = glb.accessor(primitive["attributes"]["NORMAL"])
        fid = glb.accessor(primitive["attributes"]["_FEATURE_ID_0"])
        triangles = glb.accessor(primitive["indices"]).reshape(-1, 3)
        assert np.allclose(np.linalg.norm(normals, axis=1), 1, atol=1e-6)
        for index in np.unique(fid)[:10]:
            mine = triangles[fid[triangles[:, 0]] == index]
            centre = local[fid == index].mean(axis=0)
            corner_n = normals[mine]
            assert np.allclose(corner_n, corner_n[:, :1], atol=1e-6)  # flat per face
            outward = (local[mine].mean(axis=1) - centre) * corner_n[:, 0]
            assert (outward.sum(axis=1) > 0).all()
            face = np.cross(
                local[mine[:, 1]] - local[mine[:, 0]], local[mine[:, 2]] - local[mine[:, 0]]
            )
            assert ((face * corner_n[:, 0]).sum(axis=1) > 0).all()  # counter-clockwise


def test_bounding_volumes_are_tight_and_nested(written: tuple[Path, TilesetReport, list[int]]):
    out, _, _ = written
    tiles = list(walk_tiles(out / "tileset.json"))
    for placed in tiles:
        box = BoundingVolume.from_dict(placed.tile["boundingVolume"])
        lo, hi = box.corners_min_max()
        for child in placed.tile.get("children", []):
            child_lo, child_hi = BoundingVolume.from_dict(child["boundingVolume"]).corners_min_max()
            assert (child_lo >= lo - 1e-6).all() and (child_hi <= hi + 1e-6).all()
            assert child["geometricError"] <= placed.tile["geometricError"]
        if "content" in placed.tile:
            assert placed.tile["geometricError"] == 0
            (points, _), *_ = glb_positions(read_glb(out / placed.tile["content"]["uri"]))
            assert box.contains(points)
            assert np.allclose(points.min(axis=0), lo, atol=0.02)  # tight: ≤ 2 cm of slack
            assert np.allclose(points.max(axis=0), hi, atol=0.02)


def test_sample_sized_city_is_split(tmp_path: Path):
    report = write_tileset(
        tmp_path, FRAME.enu_to_ecef_matrix(), [BuildingsWriter(synthetic_city(1450, seed=3))], PLAIN
    )
    assert report.features == 1450 and report.glbs >= 4
    counts = [len(decode_glb_features(p)) for p in building_glbs(tmp_path)]
    assert sum(counts) == 1450 and max(counts) <= 400


def test_same_centroid_buildings_are_chunked(tmp_path: Path):
    city = [box_building(i, 0.0, 0.0, 10.0, 10.0, 5.0 + i) for i in range(25)]
    options = TilesetOptions(compression="none", lod=False, max_features=10)
    write_tileset(tmp_path, FRAME.enu_to_ecef_matrix(), [BuildingsWriter(city)], options)
    counts = sorted(len(decode_glb_features(p)) for p in building_glbs(tmp_path))
    assert counts == [5, 10, 10]
    assert validate_tileset_tree(tmp_path / "tileset.json") == []


def test_bad_input_is_named(tmp_path: Path):
    good = box_building(1, 0, 0, 10, 10, 10)
    with pytest.raises(MeshError, match="building:1001"):
        write_tileset(tmp_path, np.eye(4), [BuildingsWriter([good, good])], PLAIN)
    bad = FeatureMesh("building:x", {}, good.positions, BOX_TRIANGLES + 8)
    with pytest.raises(MeshError, match=r"building:x: triangle index out of range"):
        write_tileset(tmp_path, np.eye(4), [BuildingsWriter([bad])], PLAIN)
    flat = FeatureMesh("building:y", {}, np.zeros((3, 3)), np.array([[0, 1, 2]]))
    with pytest.raises(MeshError, match="building:y: no non-degenerate"):
        write_tileset(tmp_path, np.eye(4), [BuildingsWriter([flat])], PLAIN)
    with pytest.raises(TilesError, match="4x4"):
        write_tileset(tmp_path, np.eye(3), [BuildingsWriter([good])], PLAIN)


def test_tree_checks_are_not_vacuous(
    written: tuple[Path, TilesetReport, list[int]], tmp_path: Path
):
    out, _, _ = written
    doc = json.loads((out / "tileset.json").read_text())
    assert schema_problems(doc, "ok") == []
    broken = json.loads(json.dumps(doc))
    broken["root"]["boundingVolume"]["box"] = broken["root"]["boundingVolume"]["box"][:11]
    broken["root"]["children"][0]["geometricError"] = -1
    del broken["asset"]["version"]
    assert len(schema_problems(broken, "broken")) == 3

    shutil.copytree(out, tmp_path / "copy")
    leaf = doc["root"]["children"][1]  # the terrain tile
    leaf["boundingVolume"]["box"][3] /= 2  # half as wide east-west
    leaf["geometricError"] = 1e9
    (tmp_path / "copy" / "tileset.json").write_text(json.dumps(doc))
    problems = validate_tileset_tree(tmp_path / "copy" / "tileset.json")
    assert any("terrain/terrain.glb leaves the bounding box" in p for p in problems)
    assert any("geometricError 1000000000.0 > parent's" in p for p in problems)


def test_golden_layout_of_two_buildings(tmp_path: Path):
    def flat_box(name: str, x: float, height: float) -> FeatureMesh:
        corners = [(x, 0), (x + 10, 0), (x + 10, 10), (x, 10)]
        positions = np.array([(*c, 0.0) for c in corners] + [(*c, height) for c in corners])
        return FeatureMesh(name, {"height": height}, positions, BOX_TRIANGLES)

    city = [flat_box("building:a", 0, 20), flat_box("building:b", 100, 30)]
    options = TilesetOptions(compression="none", lod=False, max_features=1)
    write_tileset(tmp_path, np.eye(4), [BuildingsWriter(city)], options)
    pad = 0.005

    def box(centre: tuple[float, ...], half: tuple[float, ...]) -> dict[str, list[float]]:
        h = [v + pad for v in half]
        return {"box": [*centre, h[0], 0, 0, 0, h[1], 0, 0, 0, h[2]]}

    error = float(np.hypot(110 + 2 * pad, 10 + 2 * pad))
    group = {"boundingVolume": box((55, 5, 15), (55, 5, 15)), "geometricError": error}
    expected = {
        "asset": {"version": "1.1", "generator": "district-twin tiles"},
        "geometricError": error,
        "root": {
            **group,
            "refine": "ADD",
            "transform": np.eye(4).ravel().tolist(),
            "children": [
                {
                    **group,
                    "children": [
                        {
                            "boundingVolume": box((5, 5, 10), (5, 5, 10)),
                            "geometricError": 0.0,
                            "content": {"uri": "buildings/b2.glb"},
                        },
                        {
                            "boundingVolume": box((105, 5, 15), (5, 5, 15)),
                            "geometricError": 0.0,
                            "content": {"uri": "buildings/b3.glb"},
                        },
                    ],
                }
            ],
        },
    }
    got = json.loads((tmp_path / "tileset.json").read_text())
    assert_json_close(got, expected)
    assert [r["element_id"] for r in decode_glb_features(tmp_path / "buildings/b2.glb")] == [
        "building:a"
    ]


def test_spec_round_trip(written: tuple[Path, TilesetReport, list[int]]):
    out, _, _ = written
    doc = json.loads((out / "tileset.json").read_text())
    assert Tileset.from_dict(doc).to_dict() == doc


def test_y_up_convention_matches_gltf():
    # glTF +y (up) is ENU +z and glTF -z is north; Cesium's y-up → z-up rotation.
    assert np.allclose(Y_UP_TO_Z_UP[:3, :3] @ [0, 1, 0], [0, 0, 1])
    assert np.allclose(Y_UP_TO_Z_UP[:3, :3] @ [0, 0, -1], [0, 1, 0])


@settings(max_examples=60, deadline=None)
@given(
    points=st.lists(
        st.tuples(st.integers(-50, 50), st.integers(-50, 50)), min_size=0, max_size=120
    ),
    max_features=st.integers(1, 30),
)
def test_quadtree_partitions_every_point_once(points: list[tuple[int, int]], max_features: int):
    pts = np.array(points, float).reshape(-1, 2)
    leaves = quadtree(pts, max_features).leaves()
    members = np.concatenate([leaf.members for leaf in leaves])
    assert sorted(members.tolist()) == list(range(len(pts)))
    assert all(len(leaf.members) <= max_features for leaf in leaves)
    assert len({leaf.address for leaf in leaves}) == len(leaves)
