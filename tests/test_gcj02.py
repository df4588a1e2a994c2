"""GCJ-02 ("Mars") layers: `crs: GCJ-02` moves coordinates back to WGS84 after reading.

Reference pairs (WGS84 lat, lon → GCJ-02 lat, lon) are the published test cases of the
eviltransform project (googollee/eviltransform, python/test.py, MIT licence): Shanghai, Shenzhen
and Beijing. Its own exact inverse is held to 0.5 m, as here."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from pyproj import Geod

from twin.builder.gcj02 import gcj02_to_wgs84_lonlat, is_gcj02
from twin.builder.sources import read_layer
from twin.config import LayerConfig

# wgs lat, wgs lon, gcj lat, gcj lon (eviltransform python/test.py, TESTS)
PAIRS = [
    (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),  # Shanghai
    (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),  # Shenzhen
    (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),  # Beijing
]
GEOD = Geod(ellps="WGS84")


def _metres(lonlat_a: np.ndarray, lonlat_b: np.ndarray) -> np.ndarray:
    return np.asarray(GEOD.inv(lonlat_a[:, 0], lonlat_a[:, 1], lonlat_b[:, 0], lonlat_b[:, 1])[2])


def test_reference_pairs_come_back_to_wgs84() -> None:
    pairs = np.array(PAIRS)
    gcj, wgs = pairs[:, [3, 2]], pairs[:, [1, 0]]
    assert (_metres(gcj, wgs) > 300).all()  # the offset is real (hundreds of metres)
    assert (_metres(gcj02_to_wgs84_lonlat(gcj), wgs) < 0.5).all()


def test_outside_china_nothing_moves() -> None:
    paris = np.array([[2.3522, 48.8566]])
    assert np.array_equal(gcj02_to_wgs84_lonlat(paris), paris)


def test_names() -> None:
    assert is_gcj02("GCJ-02") and is_gcj02(" gcj02 ") and not is_gcj02("EPSG:4326")
    assert not is_gcj02(None)


@pytest.mark.parametrize("where", ["layer", "top"])
def test_a_gcj02_layer_is_read_in_wgs84(tmp_path: Path, where: str) -> None:
    """`crs: GCJ-02` on the layer (GeoJSON, lon/lat), or at the top of twin.yaml for a file
    without a CRS (a Shapefile without .prj)."""
    pairs = np.array(PAIRS)
    frame = gpd.GeoDataFrame({"id": ["sh", "sz", "bj"]},
                             geometry=gpd.points_from_xy(pairs[:, 3], pairs[:, 2]))  # fmt: skip
    if where == "layer":
        frame.set_crs("EPSG:4326").to_file(tmp_path / "sites.geojson", driver="GeoJSON")
        config, top = LayerConfig(path="sites.geojson", crs="GCJ-02", id="id"), None
    else:
        frame.to_file(tmp_path / "sites.shp")
        assert not (tmp_path / "sites.prj").exists()
        config, top = LayerConfig(path="sites.shp", id="id"), "GCJ-02"
    layer = read_layer(tmp_path, "sites", config, top)
    got = np.column_stack([layer.frame.geometry.x, layer.frame.geometry.y])
    assert layer.source_crs == "GCJ-02"
    assert (_metres(got, pairs[:, [1, 0]]) < 0.5).all()
