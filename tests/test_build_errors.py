"""`twin build` on bad inputs: exit non-zero with one line naming the file/layer/field, no
traceback, and the existing workspace left byte for byte as it was."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import pytest
import yaml
from build_helpers import run_build, small_source, tree_hashes, write_source

Breaker = Callable[[Path], None]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A good small source and a workspace built from it."""
    root = tmp_path_factory.mktemp("errors")
    src = small_source(root / "src")
    ws = root / "ws"
    result = run_build(src, ws)
    assert result.returncode == 0, result.stderr
    return src, ws


def _config(src: Path) -> dict:
    return yaml.safe_load((src / "twin.yaml").read_text("utf-8"))


def _set(src: Path, *path_and_value: object) -> None:
    """Set config[path...] = value and rewrite twin.yaml."""
    *path, value = path_and_value
    config = _config(src)
    node = config
    for key in path[:-1]:
        node = node.setdefault(str(key), {})
    node[str(path[-1])] = value
    write_source(src, config)


def corrupt_gpkg(src: Path) -> None:
    (src / "survey.gpkg").write_bytes(os.urandom(4096))
    _set(src, "layers", "buildings", "path", "survey.gpkg")


def missing_height_column(src: Path) -> None:
    _set(src, "layers", "buildings", "height", "hgt")


def unknown_key(src: Path) -> None:
    _set(src, "layers", "buildings", "heigth", "height")


def shapefile_without_crs(src: Path) -> None:
    frame = gpd.read_file(src / "buildings.geojson").to_crs("EPSG:32651")
    with pytest.warns(UserWarning, match="crs"):
        frame.set_crs(None, allow_override=True).to_file(src / "nocrs.shp")
    _set(src, "layers", "buildings", "path", "nocrs.shp")


def unknown_crs(src: Path) -> None:
    _set(src, "crs", "EPSG:999999")


def unknown_layer_crs(src: Path) -> None:
    _set(src, "layers", "buildings", "crs", "+proj=nonsense")


def missing_file(src: Path) -> None:
    _set(src, "layers", "buildings", "path", "nowhere.geojson")


def camera_hfov_out_of_range(src: Path) -> None:
    text = (src / "cameras.geojson").read_text("utf-8")
    (src / "cameras.geojson").write_text(text.replace('"hfov": 50', '"hfov": 200'), "utf-8")


def dtm_not_a_tiff(src: Path) -> None:
    (src / "dtm.tif").write_bytes(b"not a tiff at all")
    _set(src, "drone", "dtm", "dtm.tif")


def gbk_twin_yaml(src: Path) -> None:
    text = (src / "twin.yaml").read_text("utf-8").replace("name: small", "name: 陆家嘴")
    (src / "twin.yaml").write_bytes(text.encode("gbk"))


def zero_feature_layer(src: Path) -> None:
    (src / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    _set(src, "layers", "buildings", "path", "empty.geojson")


def rules_with_an_unknown_key(src: Path) -> None:
    (src / "rules.yaml").write_text("rules:\n  - {id: r1, title: T, kinds: [person], hue: red}\n")
    _set(src, "rules", "rules.yaml")


def rules_with_a_zone_the_catalog_lacks(src: Path) -> None:
    (src / "rules.yaml").write_text(
        "rules:\n  - {id: r1, title: T, kinds: [person], zone: {element: 'site:nowhere'}}\n"
    )
    _set(src, "rules", "rules.yaml")


# Each case: how to break the source, and the words the one-line error must hold.
CASES: dict[str, tuple[Breaker, list[str]]] = {
    "corrupt-gpkg": (corrupt_gpkg, ["survey.gpkg", "layer buildings", "cannot read"]),
    "missing-column": (
        missing_height_column,
        ["buildings.geojson", "layer buildings", "field height", "'hgt'"],
    ),
    "unknown-key": (unknown_key, ["twin.yaml", "unknown key 'layers.buildings.heigth'"]),
    "no-crs": (shapefile_without_crs, ["nocrs.shp", "layer buildings", "field crs", "no CRS"]),
    "unknown-crs": (unknown_crs, ["twin.yaml", "field crs", "unknown CRS 'EPSG:999999'"]),
    "unknown-layer-crs": (
        unknown_layer_crs,
        ["twin.yaml", "layer buildings", "field crs", "+proj=nonsense"],
    ),
    "missing-file": (missing_file, ["nowhere.geojson", "layer buildings", "not found"]),
    "camera-hfov": (
        camera_hfov_out_of_range,
        ["cameras.geojson", "layer cameras", "field hfov", "row 2", "200"],
    ),
    "dtm-not-tiff": (dtm_not_a_tiff, ["dtm.tif", "field dtm"]),
    "gbk-twin-yaml": (gbk_twin_yaml, ["twin.yaml", "not UTF-8", "save twin.yaml as UTF-8"]),
    "zero-features": (zero_feature_layer, ["empty.geojson", "layer buildings", "no features"]),
    # The server would refuse these workspaces: the build fails and the servable one stays.
    "rules-unknown-key": (rules_with_an_unknown_key, ["rules.yaml", "unknown key", "hue"]),
    "rules-zone-not-in-catalog": (rules_with_a_zone_the_catalog_lacks, ["'site:nowhere'"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_in_one_line_and_keeps_the_workspace(
    case: str, good: tuple[Path, Path], tmp_path: Path
) -> None:
    good_src, ws = good
    before = tree_hashes(ws)
    src = tmp_path / "src"
    shutil.copytree(good_src, src)
    breaker, words = CASES[case]
    breaker(src)
    result = run_build(src, ws)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert tree_hashes(ws) == before
    assert sorted(p.name for p in ws.parent.iterdir()) == ["src", "ws"]  # no temporary folders


def test_a_folder_that_is_not_a_workspace_is_never_replaced(
    good: tuple[Path, Path], tmp_path: Path
) -> None:
    src, _ = good
    target = tmp_path / "documents"
    target.mkdir()
    (target / "thesis.txt").write_text("precious")
    result = run_build(src, target)
    assert result.returncode != 0 and len(result.stderr.splitlines()) == 1
    assert "refusing to replace" in result.stderr
    assert [p.name for p in target.iterdir()] == ["thesis.txt"]
