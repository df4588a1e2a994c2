"""A tiny hand-made workspace for server and scenes tests: a few elements around the Bund, a
minimal tileset and a rule file. Built with the real `CatalogWriter` and `Manifest`."""

from __future__ import annotations

import json
from pathlib import Path

from shapely.geometry import Point, box

from twin.catalog import CatalogWriter, Element
from twin.workspace import Manifest, WorkspacePaths

# Camera on the Bund road, 8 m up, looking north and down; the lane zone lies in front of it.
CAMERA_ID = "camera:cam-bund-road"
SENSOR_ID = "sensor:pm25-1"
BUILDING_ID = "building:101"
FAR_BUILDING_ID = "building:202"
LANE_ID = "site:bund-lane"
SMALL_UNIT = "Bund Police Station"
BIG_UNIT = "Huangpu Public Security Bureau"
INSIDE = (121.4903, 31.2390)  # in the lane zone and the small jurisdiction
OUTSIDE = (121.4950, 31.2350)  # in the big jurisdiction only, outside every zone
RULE_ID = "lane-vehicles"

RULES_YAML = f"""
rules:
  - id: {RULE_ID}
    title: Vehicle in the closed lane
    type: zone
    kinds: [vehicle]
    classes: [car, bus, truck]
    zone: {{element: "{LANE_ID}"}}
    severity: warning
    cooldown_s: 60
  - id: lane-people
    title: Person on the carriageway
    kinds: [person]
    zone:
      polygon: [[121.4897, 31.2386], [121.4910, 31.2386], [121.4910, 31.2398], [121.4897, 31.2398]]
    severity: info
    cooldown_s: 300
"""


def _polygon(el_id: str, kind: str, name: str, bounds: tuple[float, ...], **kw: object) -> Element:
    geom = box(*bounds)
    c = geom.centroid
    return Element(
        id=el_id, kind=kind, name=name, layer=kind + "s", lon=c.x, lat=c.y, geometry=geom,
        source_id=el_id.split(":", 1)[1], **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def elements() -> list[Element]:
    """The catalog of the tiny workspace."""
    cam_lon, cam_lat = 121.4903, 31.2385
    return [
        _polygon(
            "jurisdiction:huangpu",
            "jurisdiction",
            "Huangpu",
            (121.48, 31.23, 121.50, 31.25),
            unit=BIG_UNIT,
            attributes={"unit": BIG_UNIT},
        ),
        _polygon(
            "jurisdiction:bund-ps",
            "jurisdiction",
            "Bund",
            (121.4890, 31.2380, 121.4920, 31.2400),
            unit=SMALL_UNIT,
            attributes={"unit": SMALL_UNIT},
        ),
        _polygon(
            LANE_ID,
            "site",
            "Bund closed lane",
            (121.4897, 31.2386, 121.4910, 31.2398),
            jurisdiction_id="jurisdiction:bund-ps",
            unit=SMALL_UNIT,
        ),
        _polygon(
            BUILDING_ID,
            "building",
            "Customs House",
            (121.4901, 31.2391, 121.4905, 31.2394),
            height=30.0,
            base_height=10.0,
            jurisdiction_id="jurisdiction:bund-ps",
            unit=SMALL_UNIT,
            site_id=LANE_ID,
            attributes={"height_source": "attribute"},
        ),
        _polygon(
            FAR_BUILDING_ID,
            "building",
            "Far tower",
            (121.4948, 31.2348, 121.4952, 31.2352),
            height=100.0,
            jurisdiction_id="jurisdiction:huangpu",
            unit=BIG_UNIT,
        ),
        Element(
            id=CAMERA_ID,
            kind="camera",
            name="Bund road camera",
            layer="cameras",
            lon=cam_lon,
            lat=cam_lat,
            geometry=Point(cam_lon, cam_lat),
            base_height=10.0,
            height=8.0,
            source_id="cam-bund-road",
            attributes={
                "camera_kind": "fixed",
                "heading": 0.0,
                "pitch": -15.0,
                "roll": 0.0,
                "hfov": 70.0,
                "image_width": 1280,
                "image_height": 720,
                "stream": None,
            },
            jurisdiction_id="jurisdiction:bund-ps",
            unit=SMALL_UNIT,
        ),
        Element(
            id=SENSOR_ID,
            kind="sensor",
            name="PM2.5",
            layer="sensors",
            lon=121.4906,
            lat=31.2388,
            geometry=Point(121.4906, 31.2388),
            source_id="pm25-1",
            attributes={"sensor_kind": "pm25"},
        ),
    ]


def build(root: Path, *, rules: bool = True) -> Path:
    """Write the tiny workspace at `root` and return it."""
    paths = WorkspacePaths(root)
    paths.tiles.mkdir(parents=True)
    writer = CatalogWriter(paths.catalog)
    els = elements()
    writer.add(els)
    writer.close()
    counts: dict[str, int] = {}
    for el in els:
        counts[el.kind] = counts.get(el.kind, 0) + 1
    Manifest(
        name="Tiny Bund", crs="EPSG:4326", origin={"lon": 121.49, "lat": 31.239, "height": 10.0},
        bounds=[121.48, 31.23, 121.50, 31.25], counts=counts,
    ).write(paths.manifest)  # fmt: skip
    children = [
        {"boundingVolume": {"region": [2.1203, 0.5452, 2.1206, 0.5455, 0, 50 + i]},
         "geometricError": 0, "content": {"uri": f"buildings/{i}.glb"}}
        for i in range(12)
    ]  # fmt: skip
    tileset = {
        "asset": {"version": "1.1"},
        "geometricError": 500,
        "root": {"boundingVolume": {"region": [2.12, 0.545, 2.121, 0.546, 0, 200]},
                 "geometricError": 100, "refine": "ADD", "children": children},
    }  # fmt: skip
    paths.tileset.write_text(json.dumps(tileset, indent=2))
    (paths.tiles / "buildings").mkdir()
    (paths.tiles / "buildings" / "0.glb").write_bytes(b"glTF\x02\x00\x00\x00" + bytes(32))
    (paths.tiles / "buildings" / "0.subtree").write_bytes(b"subt" + bytes(20))
    (paths.tiles / "buildings" / "0.pnts").write_bytes(b"pnts" + bytes(24))
    (paths.tiles / "ortho.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(16))
    if rules:
        paths.rules.write_text(RULES_YAML)
    return root
