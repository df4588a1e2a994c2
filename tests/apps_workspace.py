"""The tiny workspace (tests/tiny_workspace.py) plus what the shipped scenario apps need:
jurisdictions with a ``service`` (police, traffic, city-management), sites tagged with a
``zone_role`` (dormitory gate, crowd watch, closed area, loiter watch), a gate reader and a
PM2.5 sensor with a limit. Built with the real `CatalogWriter`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import tiny_workspace as tiny
from shapely.geometry import Point, box

from twin.catalog import CatalogWriter, Element

TRAFFIC_UNIT = "Huangpu Traffic Police Squad"
CITY_UNIT = "Huangpu City Management"
GATE = (121.4915, 31.2395)  # a factory-dormitory gate, inside the small (police) jurisdiction
GATE_READER = "sensor:dorm-gate-reader"
PLAZA = (121.4884, 31.2374)  # crowd-watch site, in the big jurisdiction only
CLOSED = (121.4930, 31.2408)  # closed-area site
LOITER = (121.4943, 31.2383)  # loiter-watch site


def _site(el_id: str, name: str, centre: tuple[float, float], half: float, role: str) -> Element:
    lon, lat = centre
    geom = box(lon - half, lat - half, lon + half, lat + half)
    return Element(id=el_id, kind="site", name=name, layer="sites", lon=lon, lat=lat,
                   geometry=geom, source_id=el_id.split(":")[1],
                   attributes={"zone_role": role})  # fmt: skip


def _point(el_id: str, kind: str, where: tuple[float, float], **attributes: object) -> Element:
    return Element(id=el_id, kind=kind, name=el_id, layer=kind + "s", lon=where[0], lat=where[1],
                   geometry=Point(*where), source_id=el_id.split(":")[1],
                   attributes=dict(attributes))  # fmt: skip


def elements() -> list[Element]:
    els = []
    for el in tiny.elements():
        if el.kind == "jurisdiction":
            el = dataclasses.replace(el, attributes={**el.attributes, "service": "police"})
        if el.id == tiny.SENSOR_ID:
            el = dataclasses.replace(
                el, attributes={**el.attributes, "limit": 75, "unit_of_measure": "ug/m3"}
            )
        els.append(el)
    for el_id, unit, service, bounds in (
        ("jurisdiction:traffic", TRAFFIC_UNIT, "traffic", (121.485, 31.235, 121.495, 31.245)),
        ("jurisdiction:city", CITY_UNIT, "city-management", (121.479, 31.229, 121.501, 31.251)),
    ):
        geom = box(*bounds)
        els.append(Element(id=el_id, kind="jurisdiction", name=unit, layer="jurisdictions",
                           lon=geom.centroid.x, lat=geom.centroid.y, geometry=geom,
                           source_id=el_id.split(":")[1], unit=unit,
                           attributes={"unit": unit, "service": service}))  # fmt: skip
    els += [
        _point("site:dorm-gate", "site", GATE, zone_role="dormitory-gate"),
        _point(GATE_READER, "sensor", GATE, sensor_kind="gate"),
        _site("site:plaza", "Plaza", PLAZA, 0.0004, "crowd-watch"),
        _site("site:substation", "Substation", CLOSED, 0.0004, "closed-area"),
        _site("site:atm", "ATM corner", LOITER, 0.0003, "loiter-watch"),
    ]
    return els


def build(root: Path) -> Path:
    """The tiny workspace at `root` with the catalog above and no rule file (only apps)."""
    tiny.build(root, rules=False)
    (root / "catalog.sqlite").unlink()
    writer = CatalogWriter(root / "catalog.sqlite")
    writer.add(elements())
    writer.close()
    return root
