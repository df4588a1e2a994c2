"""`twin build`: the sample district, other CRSs and file formats, a DTM, geometry edge cases."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
import yaml
from build_helpers import run_build, sample_buildings, small_source, write_source
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from paths import SAMPLE_SRC
from pyproj import Transformer
from rasterio import Affine
from rich.console import Console
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from tiles_helpers import decode_glb_features, validate_tileset_tree, walk_tiles

from twin.builder.buildings import building_height, extrude
from twin.builder.ids import element_ids, geometry_id, source_id_text
from twin.builder.pipeline import build_workspace
from twin.builder.terrain import read_dtm
from twin.catalog import Catalog, Element
from twin.config import BuildOptions
from twin.geo import LocalFrame
from twin.workspace import Manifest, WorkspacePaths

QUIET = Console(quiet=True)


def _build(src: Path, ws: Path) -> Manifest:
    return build_workspace(src, ws, console=QUIET)


def _by_id(ws: Path, kind: str | None = None) -> dict[str, Element]:
    return {e.id: e for e in Catalog(WorkspacePaths(ws).catalog).all(kind)}


# --- the sample district -------------------------------------------------------------------


def test_sample_manifest_counts_and_report(sample_ws: Path) -> None:
    manifest = Manifest.read(WorkspacePaths(sample_ws).manifest)
    source = gpd.read_file(SAMPLE_SRC / "buildings.geojson")
    polygons = source[source.geom_type.isin(["Polygon", "MultiPolygon"])]
    assert manifest.name == "Lujiazui–Bund sample"
    assert manifest.counts == {
        "building": len(polygons),
        "site": len(gpd.read_file(SAMPLE_SRC / "pois.geojson")),
        "road": len(gpd.read_file(SAMPLE_SRC / "roads.geojson")),
        "water": len(gpd.read_file(SAMPLE_SRC / "water.geojson")),
        "jurisdiction": 3,
        "camera": 3,
        "sensor": 3,
    }
    report = manifest.report
    assert report["skipped"]["buildings"] == {"not a polygon (Point)": len(source) - len(polygons)}
    assert report["skipped"]["buildings"]["not a polygon (Point)"] == 67
    # The sample's (synthetic) DSM and DTM give nearly every building an nDSM height.
    sources = report["height_sources"]
    assert set(sources) == {"attribute", "levels", "default", "ndsm"}
    assert sum(sources.values()) == len(polygons) and sources["ndsm"] > 0.95 * len(polygons)
    minlon, minlat, maxlon, maxlat = manifest.bounds
    assert minlon < manifest.origin["lon"] < maxlon and minlat < manifest.origin["lat"] < maxlat
    assert 0.5 < manifest.origin["height"] < 8.0  # on the synthetic DTM (4 m ± 3 m)
    assert report["tiles"]["features"] == len(polygons)
    rules = WorkspacePaths(sample_ws).rules
    assert rules.read_bytes() == (SAMPLE_SRC / "rules.yaml").read_bytes()


def test_sample_catalog_ids_are_the_glb_feature_ids(sample_ws: Path) -> None:
    """The finest level (leaves, error 0) holds every building once; coarser levels draw some of
    them again, by the same ids, with a positive error."""
    paths = WorkspacePaths(sample_ws)
    assert validate_tileset_tree(paths.tileset) == []
    finest: list[tuple[float, dict[str, Any]]] = []
    coarse: list[tuple[float, dict[str, Any]]] = []
    for placed in walk_tiles(paths.tileset):
        uri = placed.tile.get("content", {}).get("uri", "")
        if not uri.startswith("buildings/"):
            continue
        rows = decode_glb_features(paths.tiles / uri)
        leaf = not placed.tile.get("children") and placed.tile["geometricError"] == 0
        (finest if leaf else coarse).extend((placed.tile["geometricError"], r) for r in rows)
    glb_ids = [row["element_id"] for _, row in finest]
    buildings = _by_id(sample_ws, "building")
    assert len(glb_ids) == len(set(glb_ids)) == len(buildings)
    assert set(glb_ids) == set(buildings)
    assert coarse and all(error > 0 for error, _ in coarse)  # the sample is built with LOD
    assert {row["element_id"] for _, row in coarse} < set(buildings)
    for _, row in finest + coarse:
        element = buildings[row["element_id"]]
        assert row["height"] == pytest.approx(element.height)
        assert row["height_source"] == element.attributes["height_source"]
        assert row["kind"] == "building"
        assert row["source_id"] == element.source_id
        assert row["source_layer"] == "buildings.geojson"
        assert row["unit"] == (element.unit or "")
        assert row["jurisdiction"] == (element.jurisdiction_id or "")
    addressed = [row for _, row in finest if row["address"]]
    assert addressed, "the sample's addr_street/addr_housenumber columns reach the tiles"
    for row in addressed:
        attrs = buildings[row["element_id"]].attributes
        street, number = attrs.get("addr_street"), attrs.get("addr_housenumber")
        assert row["address"] == " ".join(str(p) for p in (street, number) if p)


def test_sample_building_mesh_matches_catalog(sample_ws: Path) -> None:
    paths = WorkspacePaths(sample_ws)
    frame = Manifest.read(paths.manifest).frame
    with np.load(paths.building_mesh) as npz:
        vertices, faces = npz["vertices"], npz["faces"]
        face_element, element_ids = npz["face_element"], npz["element_ids"]
    assert vertices.dtype == np.float64 and faces.dtype == np.int64
    assert face_element.dtype == np.int32 and len(face_element) == len(faces)
    assert faces.min() >= 0 and faces.max() < len(vertices)
    buildings = _by_id(sample_ws, "building")
    assert set(element_ids.tolist()) == set(buildings)
    # Shanghai Tower (632 m in OSM; its nDSM height is lower, as its parts are drawn over its
    # outline in the synthetic DSM): its triangles span base → top, around its footprint.
    tower = next(e for e in buildings.values() if e.name == "上海中心大厦")
    index = int(np.flatnonzero(element_ids == tower.id)[0])
    corners = frame.to_geodetic(vertices[np.unique(faces[face_element == index])])
    assert corners[:, 2].min() == pytest.approx(tower.base_height, abs=1e-3)
    assert corners[:, 2].max() == pytest.approx(tower.base_height + tower.height, abs=1e-3)
    assert tower.height > 500 and tower.attributes["height_source"] == "ndsm"
    footprint = tower.geometry.buffer(1e-7)
    assert all(footprint.covers(Point(lon, lat)) for lon, lat in corners[:, :2])


def test_sample_cameras_and_sensors_have_jurisdiction_and_unit(sample_ws: Path) -> None:
    elements = _by_id(sample_ws)
    jurisdictions = {e.id: e for e in elements.values() if e.kind == "jurisdiction"}
    assert {j.unit for j in jurisdictions.values()} == {
        "Waitan Police Station",
        "Beijing Road Police Station",
        "Lujiazui Traffic Police Squad",
    }
    for element in elements.values():
        if element.kind in ("camera", "sensor"):
            assert element.jurisdiction_id in jurisdictions, element.id
            jurisdiction = jurisdictions[element.jurisdiction_id]
            assert element.unit == jurisdiction.unit
            assert jurisdiction.geometry.covers(Point(element.lon, element.lat))
    road_cam = elements["camera:cam-bund-road"]
    assert road_cam.unit == "Waitan Police Station"
    assert road_cam.height == 6.0 and 0.5 < road_cam.base_height < 8.0  # synthetic DTM
    assert road_cam.attributes | {"illustrative": True} == {
        "camera_kind": "fixed", "heading": 354.0, "pitch": -12.0, "roll": 0.0, "hfov": 60.0,
        "image_width": 810, "image_height": 1080, "stream": "bus.jpg", "illustrative": True,
    }  # fmt: skip
    eagle = elements["camera:cam-pearl-eagle"]
    assert eagle.attributes["camera_kind"] == "eagle-eye" and eagle.height == 260.0
    assert eagle.unit == "Lujiazui Traffic Police Squad"
    sensor = elements["sensor:pm25-bund"]
    assert sensor.attributes["sensor_kind"] == "pm25" and sensor.attributes["limit"] == 75
    assigned = [e for e in elements.values() if e.kind != "jurisdiction"]
    assert sum(e.unit is not None for e in assigned) / len(assigned) > 0.99


def test_sample_water_ids_follow_the_id_rules(sample_ws: Path) -> None:
    water = list(Catalog(WorkspacePaths(sample_ws).catalog).all("water"))
    ids = [e.id for e in water]
    assert len(ids) == len(set(ids))
    assert ids[0] == "water:8002009"  # float id column written without ".0"
    assert "water:8002009~2" in ids
    hashed = [e for e in water if e.source_id is None]
    assert hashed and all(e.id == f"water:{geometry_id(e.geometry)}" for e in hashed)


def test_rebuild_gives_the_same_ids_and_replaces_the_workspace(
    sample_ws: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()  # an empty folder may be built into
    _build(SAMPLE_SRC, ws)
    (ws / "stale.txt").write_text("from an older build")
    WorkspacePaths(ws).live.write_bytes(b"live store")
    _build(SAMPLE_SRC, ws)
    assert not (ws / "stale.txt").exists()
    assert WorkspacePaths(ws).live.read_bytes() == b"live store"  # kept across rebuilds
    assert [p.name for p in tmp_path.iterdir()] == ["ws"]  # no temporary folders left
    first = list(Catalog(WorkspacePaths(sample_ws).catalog).all())
    second = list(Catalog(WorkspacePaths(ws).catalog).all())
    assert [e.id for e in first] == [e.id for e in second]
    assert [(e.lon, e.lat, e.height) for e in first] == [(e.lon, e.lat, e.height) for e in second]


# --- ids -----------------------------------------------------------------------------------


def test_source_id_text() -> None:
    assert source_id_text(8002009.0) == "8002009"
    assert source_id_text(np.int64(-6651434)) == "-6651434"
    assert source_id_text(1.5) == "1.5"
    assert source_id_text(" cam-1 ") == "cam-1"
    assert source_id_text(float("nan")) is None
    assert source_id_text("") is None
    assert source_id_text(None) is None


def test_element_ids_hash_missing_ids_and_number_repeats() -> None:
    square = box(121.5, 31.2, 121.5001, 31.2001)
    nudged = shapely.transform(square, lambda xy: xy + 1e-9)  # below the 1e-7 rounding
    ids = element_ids(
        "water", ["7", None, "7", None, "7"], [square, square, square, nudged, box(0, 0, 1, 1)]
    )
    digest = geometry_id(square)
    assert digest.startswith("g") and len(digest) == 13
    assert ids == ["water:7", f"water:{digest}", "water:7~2", f"water:{digest}~2", "water:7~3"]
    assert geometry_id(box(0, 0, 1, 1)) != digest


# --- other CRSs and formats ----------------------------------------------------------------


def _catalog_coordinates_match(ws: Path, original: gpd.GeoDataFrame, tol: float = 1e-6) -> None:
    buildings = _by_id(ws, "building")
    assert len(buildings) == len(original)
    for _, row in original.iterrows():
        element = buildings[f"building:{row['id']}"]
        got = shapely.get_coordinates(element.geometry)
        want = shapely.get_coordinates(shapely.orient_polygons(row.geometry))
        got_oriented = shapely.get_coordinates(shapely.orient_polygons(element.geometry))
        assert got.shape == want.shape
        assert np.abs(got_oriented - want).max() < tol
        assert element.geometry.covers(Point(element.lon, element.lat))
        point = row.geometry.representative_point()
        assert abs(element.lon - point.x) < tol and abs(element.lat - point.y) < tol


def test_geopackage_in_cgcs2000_gauss_kruger_lands_on_the_original_lon_lat(
    tmp_path: Path,
) -> None:
    original = sample_buildings()
    src = tmp_path / "src"
    src.mkdir()
    # CGCS2000 / 3-degree Gauss-Krüger CM 120°E (the sample straddles 121.5°E, the zone edge).
    original.to_crs("EPSG:4549").to_file(src / "survey.gpkg", layer="footprints", driver="GPKG")
    layer = {"path": "survey.gpkg", "layer": "footprints", "id": "id", "height": "height"}
    write_source(src, {"name": "gk", "layers": {"buildings": layer}})
    manifest = _build(src, tmp_path / "ws")
    assert manifest.report["source_crs"]["buildings"] == "EPSG:4549"
    _catalog_coordinates_match(tmp_path / "ws", original)


def test_zipped_shapefile_in_utm_without_prj_uses_the_yaml_crs(tmp_path: Path) -> None:
    original = sample_buildings(5)
    src = tmp_path / "src"
    shp = tmp_path / "shp"
    shp.mkdir(parents=True)
    utm = original.to_crs("EPSG:32651")
    with pytest.warns(UserWarning, match="crs"):
        utm.set_crs(None, allow_override=True).to_file(shp / "b.shp")
    assert not (shp / "b.prj").exists()
    src.mkdir()
    with zipfile.ZipFile(src / "b.zip", "w") as archive:
        for part in shp.iterdir():
            archive.write(part, part.name)
    write_source(src, {"name": "zip", "crs": "EPSG:32651",
                       "layers": {"buildings": {"path": "b.zip", "height": "height"}}})  # fmt: skip
    _build(src, tmp_path / "ws")
    _catalog_coordinates_match(tmp_path / "ws", original)


# --- DTM and terrain -----------------------------------------------------------------------

UTM51 = "EPSG:32651"
RES = 2.0  # metres per DTM cell


def _plane(x: np.ndarray, x0: float, width: float) -> np.ndarray:
    """The synthetic DTM: 5 m at the west edge rising to 25 m at the east edge (UTM x, m)."""
    return 5.0 + 20.0 * (x - x0) / width


@pytest.fixture(scope="module")
def dtm_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    root = tmp_path_factory.mktemp("dtm")
    src = small_source(root / "src")
    buildings = gpd.read_file(src / "buildings.geojson")
    # Move the road camera onto the slope, amid the buildings.
    cams = gpd.read_file(src / "cameras.geojson").head(1)
    cams = cams.set_geometry([buildings.geometry.union_all().centroid], crs="EPSG:4326")
    cams.to_file(src / "cameras.geojson", driver="GeoJSON")
    x_min, y_min, x_max, y_max = buildings.to_crs(UTM51).total_bounds
    x0, y1 = x_min - 100, y_max + 100
    width, height = (x_max - x_min) + 200, (y_max - y_min) + 200
    cols, rows = int(width / RES), int(height / RES)
    x_centres = x0 + (np.arange(cols) + 0.5) * RES
    grid = np.tile(_plane(x_centres, x0, width), (rows, 1)).astype(np.float32)
    grid[:10, :10] = -9999.0  # a no-data corner, away from the buildings
    profile = {
        "driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": "float32",
        "crs": UTM51, "transform": Affine(RES, 0, x0, 0, -RES, y1), "nodata": -9999.0,
    }  # fmt: skip
    with rasterio.open(src / "dtm.tif", "w", **profile) as out:
        out.write(grid, 1)
    config = yaml.safe_load((src / "twin.yaml").read_text("utf-8"))
    config["drone"] = {"dtm": "dtm.tif"}
    write_source(src, config)
    ws = root / "ws"
    result = run_build(src, ws)
    assert result.returncode == 0, result.stderr
    return ws, {"x0": x0, "width": width, "y1": y1, "rows": rows, "cols": cols}


def test_dtm_sampling_is_bilinear_on_the_plane(dtm_ws: tuple[Path, dict[str, float]]) -> None:
    ws, grid = dtm_ws
    dtm = read_dtm(ws.parent / "src" / "dtm.tif")
    to_lonlat = Transformer.from_crs(UTM51, "EPSG:4326", always_xy=True)
    rng = np.random.default_rng(1)
    x = grid["x0"] + rng.uniform(30, grid["width"] - 30, 200)
    y = grid["y1"] - rng.uniform(30, grid["rows"] * RES - 30, 200)
    lon, lat = to_lonlat.transform(x, y)
    assert np.allclose(dtm.sample(lon, lat), _plane(x, grid["x0"], grid["width"]), atol=1e-3)
    far = dtm.sample([121.0], [31.0])
    assert np.isnan(far).all()
    corner_lon, corner_lat = to_lonlat.transform(grid["x0"] + 3, grid["y1"] - 3)
    assert np.isnan(dtm.sample([corner_lon], [corner_lat])).all()  # no data


def test_building_bases_sit_on_the_dtm(dtm_ws: tuple[Path, dict[str, float]]) -> None:
    ws, grid = dtm_ws
    paths = WorkspacePaths(ws)
    manifest = Manifest.read(paths.manifest)
    frame = manifest.frame
    to_utm = Transformer.from_crs("EPSG:4326", UTM51, always_xy=True)
    ox, _ = to_utm.transform(frame.lon, frame.lat)
    assert frame.height == pytest.approx(_plane(np.array(ox), grid["x0"], grid["width"]), abs=0.05)
    buildings = _by_id(ws, "building")
    assert len(buildings) == 12
    with np.load(paths.building_mesh) as npz:
        vertices, faces, face_element = npz["vertices"], npz["faces"], npz["face_element"]
        element_ids = npz["element_ids"].tolist()
    for element in buildings.values():
        x, _ = to_utm.transform(*shapely.get_coordinates(element.geometry).T)
        lowest = float(_plane(np.asarray(x), grid["x0"], grid["width"]).min())
        assert element.base_height == pytest.approx(lowest, abs=0.5)
        corners = faces[face_element == element_ids.index(element.id)]
        heights = frame.to_geodetic(vertices[np.unique(corners)])[:, 2]
        assert heights.min() == pytest.approx(element.base_height, abs=1e-3)
        assert heights.max() == pytest.approx(element.base_height + element.height, abs=1e-3)
    camera = _by_id(ws, "camera")["camera:cam-bund-road"]
    cx, _ = to_utm.transform(camera.lon, camera.lat)
    assert camera.base_height == pytest.approx(
        _plane(np.array(cx), grid["x0"], grid["width"]), abs=0.05
    )


def test_terrain_tile_and_mesh(dtm_ws: tuple[Path, dict[str, float]]) -> None:
    ws, grid = dtm_ws
    paths = WorkspacePaths(ws)
    assert validate_tileset_tree(paths.tileset) == []
    tileset = json.loads(paths.tileset.read_text())
    uris = [c["content"]["uri"] for c in tileset["root"]["children"] if "content" in c]
    assert any("terrain" in uri for uri in uris)
    frame = Manifest.read(paths.manifest).frame
    with np.load(paths.terrain_mesh) as npz:
        vertices, faces = npz["vertices"], npz["faces"]
    assert len(faces) >= 2 and faces.max() < len(vertices)
    geodetic = frame.to_geodetic(vertices)
    x, _ = Transformer.from_crs("EPSG:4326", UTM51, always_xy=True).transform(
        geodetic[:, 0], geodetic[:, 1]
    )
    assert np.abs(geodetic[:, 2] - _plane(np.asarray(x), grid["x0"], grid["width"])).max() < 0.5
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    assert (np.cross(b - a, c - a)[:, 2] > 0).all()  # counter-clockwise seen from above
    report = Manifest.read(paths.manifest).report
    assert report["terrain"]["max_error_m"] == 0.5


# --- geometry edge cases -------------------------------------------------------------------


def _enu_polygon(geometry: Polygon, frame: LocalFrame, height: float = 0.0) -> Polygon:
    def to_xy(coords: np.ndarray) -> np.ndarray:
        return frame.to_enu(coords[:, 0], coords[:, 1], np.full(len(coords), height))[:, :2]

    return shapely.transform(geometry, to_xy)


def test_extrude_polygon_with_hole_has_outward_faces() -> None:
    frame = LocalFrame(121.5, 31.24, 0.0)
    outer = box(121.4999, 31.2399, 121.5001, 31.2401)
    hole = box(121.49995, 31.23995, 121.50005, 31.24005)
    footprint = Polygon(outer.exterior.coords[::-1], [hole.exterior.coords])  # clockwise input
    positions, triangles = extrude(footprint, 10.0, 20.0, frame)  # type: ignore[misc]
    a, b, c = (positions[triangles[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    roof = normals[:, 2] / np.linalg.norm(normals, axis=1) > 0.5
    roof_area = 0.5 * np.linalg.norm(normals[roof], axis=1).sum()
    assert roof_area == pytest.approx(_enu_polygon(footprint, frame, 30.0).area, rel=1e-5)
    local = _enu_polygon(footprint, frame, 20.0)
    walls = ~roof
    assert walls.sum() == 2 * (4 + 4)
    centres = (a + b + c)[walls] / 3
    unit = normals[walls] / np.linalg.norm(normals[walls], axis=1, keepdims=True)
    outside = centres[:, :2] + 0.05 * unit[:, :2]
    inside = centres[:, :2] - 0.05 * unit[:, :2]
    assert not shapely.covers(local, shapely.points(outside)).any()
    assert shapely.covers(local, shapely.points(inside)).all()
    heights = frame.to_geodetic(positions)[:, 2]
    assert heights.min() == pytest.approx(10.0, abs=1e-6)
    assert heights.max() == pytest.approx(30.0, abs=1e-6)


@settings(max_examples=40, deadline=None)
@given(
    radii=st.lists(st.floats(5.0, 60.0), min_size=3, max_size=24),
    base=st.floats(-50.0, 500.0),
    height=st.floats(0.5, 600.0),
)
def test_extrude_star_polygons(radii: list[float], base: float, height: float) -> None:
    """Any star-shaped footprint: roof area = footprint area, heights from base to top."""
    frame = LocalFrame(121.5, 31.24, 0.0)
    angles = np.linspace(0, 2 * np.pi, len(radii), endpoint=False)
    xy = np.column_stack([np.cos(angles), np.sin(angles)]) * np.asarray(radii)[:, None]
    lonlat = frame.to_geodetic(np.column_stack([xy, np.zeros(len(xy))]))[:, :2]
    footprint = Polygon(lonlat)
    assume(footprint.is_valid and footprint.area > 0)
    result = extrude(footprint, base, height, frame)
    assert result is not None
    positions, triangles = result
    a, b, c = (positions[triangles[:, i]] for i in range(3))
    normals = np.cross(b - a, c - a)
    roof = normals[:, 2] / np.linalg.norm(normals, axis=1) > 0.5
    assert roof.sum() == len(radii) - 2 and (~roof).sum() == 2 * len(radii)
    top = _enu_polygon(footprint, frame, base + height)
    assert 0.5 * np.linalg.norm(normals[roof], axis=1).sum() == pytest.approx(top.area, rel=1e-4)
    heights = frame.to_geodetic(positions)[:, 2]
    assert heights.min() == pytest.approx(base, abs=1e-4)
    assert heights.max() == pytest.approx(base + height, abs=1e-4)


def test_building_height_sources() -> None:
    options = BuildOptions(storey_height_m=3.5, default_height_m=12.0)
    assert building_height("42", 3, options).source == "attribute"
    assert building_height("25 m", None, options).height == 25.0
    levels = building_height(0, "4", options)
    assert (levels.height, levels.source, levels.levels) == (14.0, "levels", 4.0)
    assert building_height(None, None, options).height == 12.0
    assert building_height("tall", -1, options).source == "default"


def test_odd_building_geometries_are_repaired_skipped_or_split(tmp_path: Path) -> None:
    square = box(121.5000, 31.2400, 121.5002, 31.2402)
    bowtie = Polygon([(121.501, 31.24), (121.5012, 31.2402), (121.5012, 31.24), (121.501, 31.2402)])
    parts = MultiPolygon(
        [box(121.502, 31.24, 121.5021, 31.2401), box(121.503, 31.24, 121.5031, 31.2401)]
    )
    frame = gpd.GeoDataFrame(
        {"id": [1, 2, 3, 4, 5], "levels": [None, 2, None, None, None],
         "height": [20.0, None, None, 7.0, None]},
        geometry=[square, bowtie, parts, LineString([(121.5, 31.24), (121.51, 31.25)]),
                  Point(121.505, 31.245)],
        crs="EPSG:4326",
    )  # fmt: skip
    src = tmp_path / "src"
    src.mkdir()
    frame.to_file(src / "b.geojson", driver="GeoJSON")
    write_source(src, {"name": "odd", "layers": {"buildings": {"path": "b.geojson"}},
                       "build": {"storey_height_m": 4.0}})  # fmt: skip
    manifest = _build(src, tmp_path / "ws")
    assert manifest.counts == {"building": 3}
    assert manifest.report["skipped"]["buildings"] == {
        "not a polygon (LineString)": 1,
        "not a polygon (Point)": 1,
    }
    assert manifest.report["repaired"] == {"buildings": 1}
    assert manifest.report["height_sources"] == {"attribute": 1, "levels": 1, "default": 1}
    buildings = _by_id(tmp_path / "ws", "building")
    assert buildings["building:2"].height == 8.0
    assert buildings["building:2"].attributes["levels"] == 2.0
    assert buildings["building:2"].geometry.is_valid
    assert buildings["building:3"].geometry.geom_type == "MultiPolygon"
    with np.load(WorkspacePaths(tmp_path / "ws").building_mesh) as npz:
        ids = npz["element_ids"].tolist()
        faces, face_element, vertices = npz["faces"], npz["face_element"], npz["vertices"]
    corners = vertices[np.unique(faces[face_element == ids.index("building:3")])]
    assert len(corners) == 16  # two boxes: 4 corners at the bottom, 4 on the roof each


def test_cli_builds_a_small_source(tmp_path: Path) -> None:
    src = small_source(tmp_path / "src")
    result = run_build(src, tmp_path / "ws")
    assert result.returncode == 0, result.stderr
    said = " ".join(result.stderr.split())
    assert said.startswith("built") and "12 building, 3 camera" in said
    assert WorkspacePaths(tmp_path / "ws").tileset.is_file()
