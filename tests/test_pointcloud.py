"""Point clouds in `twin build`: LAS/LAZ (real Autzen data) → 3D Tiles 1.1 point tiles under the
root tileset; every point kept once and inside its boxes; CRS and feet handled; bad files fail
in one line."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import laspy
import numpy as np
import pytest
from build_helpers import write_source
from pyproj import CRS, Transformer
from rich.console import Console
from shapely.geometry import box
from tiles_helpers import glb_positions, validate_tileset_tree, walk_tiles

import tiles.pointcloud as tiles_pointcloud
import twin.build.pointcloud as twin_pointcloud
from tiles.glb import read_glb
from twin.build.pipeline import build_workspace
from twin.errors import InputError
from twin.geo import LocalFrame
from twin.workspace import Manifest, WorkspacePaths

LIDAR = Path(__file__).resolve().parent / "data" / "lidar"
AUTZEN = LIDAR / "autzen_trim.laz"
SIMPLE = LIDAR / "simple.las"
SIMPLE_CRS = "EPSG:2992"  # NAD83 / Oregon GIC Lambert (ft): see tests/data/lidar/README.md
QUIET = Console(quiet=True)


def _source(folder: Path, clouds: list[Path], crs: str | None) -> Path:
    """A source folder: one building near the clouds' centre and the clouds."""
    folder.mkdir(parents=True, exist_ok=True)
    to_lonlat = Transformer.from_crs(SIMPLE_CRS, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(636600.0, 849200.0)
    frame = gpd.GeoDataFrame(
        {"id": ["b1"], "height": [12.0]},
        geometry=[box(lon, lat, lon + 0.0002, lat + 0.0002)],
        crs="EPSG:4326",
    )
    frame.to_file(folder / "buildings.geojson", driver="GeoJSON")
    names = []
    for cloud in clouds:
        (folder / cloud.name).write_bytes(cloud.read_bytes())
        names.append(cloud.name)
    config = {
        "name": "autzen",
        "layers": {"buildings": {"path": "buildings.geojson", "id": "id", "height": "height"}},
        "drone": {"pointcloud": names},
    }
    if crs:
        config["crs"] = crs
    return write_source(folder, config)


def _expected_enu(path: Path, crs: CRS, frame: LocalFrame) -> tuple[np.ndarray, laspy.LasData]:
    """Every point of a file in ENU metres, read whole (the build streams it): lon/lat from the
    projected CRS, heights from international feet to metres."""
    las = laspy.read(path)
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(las.x, las.y)
    assert crs.axis_info[0].unit_name == "foot"
    return frame.to_enu(lon, lat, np.asarray(las.z) * 0.3048), las


def _same_points(got: np.ndarray, expected: np.ndarray, tol: float = 0.01) -> bool:
    """Equal counts and, on each axis, the sorted coordinates within `tol` metres (a point
    lost, moved or written twice changes them)."""
    if got.shape != expected.shape:
        return False
    return bool(np.abs(np.sort(got, axis=0) - np.sort(expected, axis=0)).max() < tol)


def _cloud_points(tileset: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ENU positions, classification and intensity of every point of a point tileset, after
    checking each glb's points lie in its tile's box."""
    positions, classes, intensity = [], [], []
    for placed in walk_tiles(tileset):
        uri = placed.tile.get("content", {}).get("uri", "")
        if not uri.endswith(".glb"):
            continue
        glb = read_glb(placed.file.parent / uri)
        for points, primitive in glb_positions(glb):
            assert primitive["mode"] == 0
            attrs = primitive["attributes"]
            positions.append(points)
            classes.append(glb.accessor(attrs["_CLASSIFICATION"]))
            intensity.append(glb.accessor(attrs["_INTENSITY"]))
            assert glb.accessor(attrs["COLOR_0"]).dtype == np.uint8
    return np.concatenate(positions), np.concatenate(classes), np.concatenate(intensity)


@pytest.fixture(scope="module")
def autzen_ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("autzen")
    src = _source(tmp / "src", [AUTZEN, SIMPLE], SIMPLE_CRS)
    ws = tmp / "ws"
    build_workspace(src, ws, console=QUIET)
    return ws


def test_point_tiles_are_valid_and_hang_under_the_root(autzen_ws: Path) -> None:
    tileset = WorkspacePaths(autzen_ws).tiles / "tileset.json"
    assert validate_tileset_tree(tileset) == []
    root = json.loads(tileset.read_text())["root"]
    uris = [c.get("content", {}).get("uri") for c in root["children"]]
    assert "pointcloud/0-autzen_trim/tileset.json" in uris
    assert "pointcloud/1-simple/tileset.json" in uris
    report = Manifest.read(WorkspacePaths(autzen_ws).manifest).report["pointcloud"]
    assert [r["points"] for r in report] == [110_000, 1065]
    assert report[0]["z_metres_per_unit"] == pytest.approx(0.3048)


def test_every_point_is_kept_once_where_it_belongs(autzen_ws: Path) -> None:
    manifest = Manifest.read(WorkspacePaths(autzen_ws).manifest)
    frame = LocalFrame(**manifest.origin)
    folder = WorkspacePaths(autzen_ws).tiles / "pointcloud"
    for name, path, crs in [
        ("0-autzen_trim", AUTZEN, laspy.read(AUTZEN).header.parse_crs()),
        ("1-simple", SIMPLE, CRS.from_user_input(SIMPLE_CRS)),
    ]:
        expected, las = _expected_enu(path, crs, frame)
        got, classes, intensity = _cloud_points(folder / name / "tileset.json")
        assert len(got) == len(expected) == las.header.point_count
        # The same points (to 1 cm after float32 storage), none lost and none twice.
        assert _same_points(got, expected)
        assert np.bincount(classes).tolist() == np.bincount(las.classification).tolist()
        assert int(intensity.astype(np.int64).sum()) == int(np.sum(las.intensity, dtype=np.int64))
        # The reference to the cloud in the root tileset holds every point.
        root = json.loads((WorkspacePaths(autzen_ws).tiles / "tileset.json").read_text())["root"]
        (ref,) = [c for c in root["children"] if name in c.get("content", {}).get("uri", "")]
        lo, hi = np.array(ref["boundingVolume"]["box"][:3]), np.array(ref["boundingVolume"]["box"])
        half = np.abs(hi[3:].reshape(3, 3)).sum(axis=0)
        assert (np.abs(expected - lo) <= half + 1e-6).all()


def test_large_clouds_have_a_level_of_detail_tree(autzen_ws: Path) -> None:
    tileset = WorkspacePaths(autzen_ws).tiles / "pointcloud" / "0-autzen_trim" / "tileset.json"
    root = json.loads(tileset.read_text())["root"]
    assert root["refine"] == "ADD" and root["children"] and "content" in root
    assert root["geometricError"] > 0
    assert all(c["geometricError"] <= root["geometricError"] for c in root["children"])


def test_parallel_pyramid_keeps_every_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two spawned workers over two ranges, 4 binning cells merged by the pyramid."""
    monkeypatch.setattr(twin_pointcloud, "PARALLEL_POINTS", 50_000)
    monkeypatch.setattr(tiles_pointcloud, "CELL_POINTS", 30_000)
    cloud = twin_pointcloud.open_cloud(AUTZEN, None)
    frame = LocalFrame(-123.0725, 44.0585, 120.0)
    tile, report = twin_pointcloud.write_cloud_tiles(cloud, frame, tmp_path, "a", workers=2)
    assert report.points == 110_000
    tileset = tmp_path / "pointcloud" / "a" / "tileset.json"
    root = json.loads(tileset.read_text())["root"]
    assert any(c["content"]["uri"].startswith("c") for c in _descendants(root) if "content" in c)
    assert root["content"]["uri"].startswith("p1_")
    got, _, _ = _cloud_points(tileset)
    expected, _ = _expected_enu(AUTZEN, laspy.read(AUTZEN).header.parse_crs(), frame)
    assert _same_points(got, expected)
    assert tile.bounding_volume.contains(expected)
    assert validate_tileset_tree(tileset) == []


def _descendants(tile: dict) -> list[dict]:
    out = []
    for child in tile.get("children", []):
        out += [child, *_descendants(child)]
    return out


def test_a_cloud_without_crs_needs_one_in_twin_yaml(tmp_path: Path) -> None:
    src = _source(tmp_path / "src", [SIMPLE], None)
    with pytest.raises(InputError) as err:
        build_workspace(src, tmp_path / "ws", console=QUIET)
    line = err.value.one_line()
    assert "\n" not in line and "simple.las" in line and "no CRS" in line
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
def test_a_corrupt_cloud_fails_in_one_line(tmp_path: Path, kind: str) -> None:
    bad = tmp_path / ("bad.las" if kind == "garbage" else "bad.laz")
    data = AUTZEN.read_bytes()
    bad.write_bytes(b"not a las file at all" * 20 if kind == "garbage" else data[: len(data) // 3])
    src = _source(tmp_path / "src", [bad], SIMPLE_CRS)
    with pytest.raises(InputError) as err:
        build_workspace(src, tmp_path / "ws", console=QUIET)
    line = err.value.one_line()
    assert "\n" not in line and bad.name in line and "point cloud" in line
    assert not (tmp_path / "ws").exists()
