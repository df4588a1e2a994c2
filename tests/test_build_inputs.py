"""Inputs a build has to fix, said where the user sees them: implausible building heights
refused (bounded, configurable), footprints repaired or skipped, all printed in the build
summary and fatal under ``--strict``; string columns empty in every feature of a tile pass
the 3D Tiles validator's property-table checks."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pytest
from build_helpers import sample_buildings, write_source
from paths import TWIN
from shapely.geometry import Polygon
from tiles_helpers import decode_glb_features, property_table_problems, run_gltf_validator

from twin.builder.buildings import building_height
from twin.config import BuildOptions
from twin.workspace import Manifest, WorkspacePaths

OPTIONS = BuildOptions()


@pytest.mark.parametrize(
    ("height", "levels", "metres", "source", "refused"),
    [
        (25, None, 25.0, "attribute", []),
        ("30 m", 4, 30.0, "attribute", []),
        (-5, None, 9.0, "default", [("height", "not above 0")]),
        (0, 4, 12.0, "levels", [("height", "not above 0")]),
        ("abc", None, 9.0, "default", [("height", "not a number")]),
        (1e6, None, 9.0, "default", [("height", "over max_height_m (1000 m)")]),
        (0.5, None, 9.0, "default", [("height", "under min_height_m (1 m)")]),
        (None, 1e6, 9.0, "default", [("levels", "over max_height_m (1000 m)")]),
        (None, "", 9.0, "default", []),  # blank is missing, not refused
        (float("nan"), None, 9.0, "default", []),
    ],
)
def test_implausible_heights_are_refused_and_replaced(
    height: Any, levels: Any, metres: float, source: str, refused: list[tuple[str, str]]
) -> None:
    h = building_height(height, levels, OPTIONS)
    assert (h.height, h.source) == (metres, source)
    assert [(r.field, r.reason) for r in h.refused] == refused


def test_the_bounds_are_build_options() -> None:
    tall = BuildOptions(max_height_m=2000.0)
    assert building_height(1500, None, tall).source == "attribute"
    assert building_height(1500, None, OPTIONS).source == "default"


def _build(src: Path, ws: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TWIN, "build", str(src), "-o", str(ws), *flags],
                          capture_output=True, text=True, timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def flawed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GeoPackage of eight sample buildings: four bad heights, a bow-tie footprint, a null
    geometry, a NaN corner; names empty in every feature, an address column all blank."""
    src = tmp_path_factory.mktemp("flawed") / "src"
    src.mkdir()
    frame = sample_buildings(8)
    frame["height"] = frame["height"].astype(object)
    for row, value in enumerate(["abc", -5, 0, 1e6]):
        frame.loc[row, "height"] = value
    x0, y0, x1, y1 = frame.geometry[4].bounds
    frame.loc[4, "geometry"] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1)])
    frame.loc[5, "geometry"] = None
    with np.errstate(invalid="ignore"):
        frame.loc[6, "geometry"] = Polygon([(x0, y0), (float("nan"), y1), (x1, y0)])
    frame["name"] = None
    frame["addr_street"] = ""
    gpd.GeoDataFrame(frame, crs="EPSG:4326").to_file(src / "survey.gpkg", driver="GPKG")
    layer = {"path": "survey.gpkg", "id": "id", "name": "name", "height": "height"}
    return write_source(src, {"name": "flawed", "layers": {"buildings": layer}})


def test_the_summary_says_what_was_fixed(flawed: Path, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    result = _build(flawed, ws)
    assert result.returncode == 0, result.stderr
    fixed = [line.strip() for line in result.stderr.splitlines() if "fixed" in line]
    assert fixed == [
        "fixed buildings: 2 skipped or set aside (1 NaN or infinite coordinates, 1 no geometry)",
        "fixed buildings: 1 invalid footprint(s) repaired (make_valid)",
        "fixed buildings: 4 height value(s) refused (1 not a number, 2 not above 0, 1 over "
        "max_height_m (1000 m)); the next height source was used",
    ]
    assert "Warning" not in result.stderr
    report = Manifest.read(WorkspacePaths(ws).manifest).report
    assert report["heights_refused"] == {
        "height": {"not a number": 1, "not above 0": 2, "over max_height_m (1000 m)": 1}
    }
    heights = {f["element_id"]: f["height"] for f in _features(ws)}
    assert max(heights.values()) < 1000 and len(heights) == 6


def test_strict_fails_in_one_line_naming_the_first_refused_height(
    flawed: Path, tmp_path: Path
) -> None:
    ws = tmp_path / "ws"
    result = _build(flawed, ws, "--strict")
    assert result.returncode != 0 and not ws.exists()
    [line] = result.stderr.splitlines()
    for words in ("survey.gpkg", "layer buildings", "field height", "row 0", "'abc' refused",
                  "--strict: 7 input fix(es)"):  # fmt: skip
        assert words in line, (words, line)


def test_strings_empty_in_every_feature_pass_the_validators(flawed: Path, tmp_path: Path):
    """The name and address columns are empty for every building: their property-table
    columns are left out (a 0-byte values buffer view cannot exist in glTF, and the 1-byte
    stand-in failed the 3D Tiles validator: METADATA_INVALID_LENGTH)."""
    ws = tmp_path / "ws"
    assert _build(flawed, ws).returncode == 0
    glbs = sorted(WorkspacePaths(ws).tiles.rglob("*.glb"))
    assert glbs and [p for glb in glbs for p in property_table_problems(glb)] == []
    assert [r["file"] for r in run_gltf_validator(glbs) if r["numErrors"]] == []
    features = _features(ws)
    assert {f["name"] for f in features} == {""} and {f["address"] for f in features} == {""}


def _features(ws: Path) -> list[dict[str, Any]]:
    """Every building feature of the full-detail tiles, decoded."""
    tiles = WorkspacePaths(ws).tiles / "buildings"
    return [f for glb in sorted(tiles.rglob("*.glb")) for f in decode_glb_features(glb)]
