"""Rule zones → areas: catalog elements (by id or selection) or inline polygons in any CRS,
grown by a buffer in metres, all as lon/lat (deg) polygons with a spatial index for lookups.

Buffers are computed on a local equirectangular projection around each geometry (good to well
under 1 % over the few kilometres a zone spans).
"""

from __future__ import annotations

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from scenes.errors import RuleError
from scenes.evaluate import Area
from scenes.rules import Zone
from twin.catalog import Catalog, Element
from twin.geo import WGS84, metres_per_degree

_POLYGONS = ("Polygon", "MultiPolygon")


def buffer_m(geometry: BaseGeometry, metres: float) -> BaseGeometry:
    """`geometry` (lon/lat deg) grown by `metres` on every side."""
    centre = geometry.centroid
    origin = np.array([centre.x, centre.y])
    scale = np.array(metres_per_degree(centre.y))
    local = shapely.transform(geometry, lambda xy: (xy - origin) * scale)
    return shapely.transform(local.buffer(metres), lambda xy: xy / scale + origin)


def _element_area(rule_id: str, el: Element, metres: float) -> Area:
    geometry = el.geometry
    if metres > 0:
        geometry = buffer_m(geometry, metres)
    elif geometry.geom_type not in _POLYGONS:
        raise RuleError(
            f"rule '{rule_id}': zone element '{el.id}' is a {geometry.geom_type}, not a polygon"
            " (give zone.buffer_m to grow it)"
        )
    return Area(el.id, geometry, el.id)


def _selected(zone: Zone, catalog: Catalog) -> list[Element]:
    assert zone.select is not None
    wanted = zone.select.attributes
    return [
        el for el in catalog.all(zone.select.kind)
        if all(el.attributes.get(key) == value for key, value in wanted.items())
    ]  # fmt: skip


def _polygon_area(rule_id: str, zone: Zone) -> Area:
    assert zone.polygon is not None
    try:
        crs = CRS.from_user_input(zone.crs)
    except CRSError as exc:
        raise RuleError(f"rule '{rule_id}': zone.crs '{zone.crs}' is not a known CRS") from exc
    ring = list(zone.polygon)
    if not crs.equals(WGS84):
        to_wgs84 = Transformer.from_crs(crs, WGS84, always_xy=True)
        ring = [to_wgs84.transform(x, y) for x, y in ring]
    polygon: BaseGeometry = Polygon(ring)
    if not polygon.is_valid or polygon.area == 0:
        raise RuleError(f"rule '{rule_id}': zone.polygon is not a valid polygon")
    if zone.buffer_m > 0:
        polygon = buffer_m(polygon, zone.buffer_m)
    return Area(f"{rule_id}#polygon", polygon, None)


def zone_areas(rule_id: str, zone: Zone, catalog: Catalog) -> list[Area]:
    """The areas of `zone`; `RuleError` for an unknown element or a non-polygon without buffer.
    A selection may be empty (the rule then never fires)."""
    if zone.polygon is not None:
        return [_polygon_area(rule_id, zone)]
    if zone.select is not None:
        return [_element_area(rule_id, el, zone.buffer_m) for el in _selected(zone, catalog)]
    areas = []
    for element_id in zone.elements if zone.elements is not None else [zone.element or ""]:
        el = catalog.get(element_id)
        if el is None:
            raise RuleError(f"rule '{rule_id}': zone element '{element_id}' is not in the catalog")
        areas.append(_element_area(rule_id, el, zone.buffer_m))
    return areas


class AreaIndex:
    """Which areas hold a lon/lat point (STRtree over prepared polygons)."""

    def __init__(self, areas: list[Area]) -> None:
        self.areas = areas
        for area in areas:
            shapely.prepare(area.geometry)
        self._tree = STRtree([a.geometry for a in areas]) if len(areas) > 4 else None

    def holding(self, lon: float, lat: float) -> list[Area]:
        """Areas containing lon/lat (deg), in zone order."""
        if self._tree is None:
            candidates = self.areas
        else:
            hits = self._tree.query(shapely.Point(lon, lat))
            candidates = [self.areas[i] for i in sorted(int(i) for i in hits)]
        return [a for a in candidates if shapely.contains_xy(a.geometry, lon, lat)]
