"""The element catalog: every building, road, site, water body, jurisdiction, camera and sensor
with a stable id, stored in SQLite with an R-tree on lon/lat bounds.

Written once by `twin build` (`CatalogWriter`), read by everything else (`Catalog`). Positions
are WGS84 lon/lat degrees; ``base_height`` is the ellipsoidal height of the ground at the element
(m); ``height`` is the element's own height above that ground (m: building height, camera mount
height, 0 for flat things).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely import from_geojson, to_geojson
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry

from twin.errors import WorkspaceError
from twin.geo import metres_per_degree

KINDS = ("building", "site", "road", "water", "jurisdiction", "camera", "sensor")

_SCHEMA = """
CREATE TABLE elements (
    rid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT,
    layer TEXT NOT NULL,
    source_id TEXT,
    lon REAL NOT NULL, lat REAL NOT NULL,
    base_height REAL NOT NULL DEFAULT 0,
    height REAL NOT NULL DEFAULT 0,
    geometry TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    jurisdiction_id TEXT, unit TEXT, site_id TEXT
);
CREATE INDEX elements_kind ON elements(kind);
CREATE INDEX elements_name ON elements(name COLLATE NOCASE);
CREATE VIRTUAL TABLE elements_rtree USING rtree(rid, minlon, maxlon, minlat, maxlat);
"""


@dataclass
class Element:
    """One catalog element. See the module docstring for units."""

    id: str
    kind: str
    name: str | None
    layer: str
    lon: float
    lat: float
    geometry: BaseGeometry
    base_height: float = 0.0
    height: float = 0.0
    source_id: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    jurisdiction_id: str | None = None
    unit: str | None = None
    site_id: str | None = None

    def to_dict(self, *, with_geometry: bool = True) -> dict[str, Any]:
        """JSON-ready record (geometry as a GeoJSON object)."""
        data: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "name": self.name,
            "layer": self.layer,
            "source_id": self.source_id,
            "lon": self.lon,
            "lat": self.lat,
            "base_height": self.base_height,
            "height": self.height,
            "attributes": self.attributes,
            "jurisdiction_id": self.jurisdiction_id,
            "unit": self.unit,
            "site_id": self.site_id,
        }
        if with_geometry:
            data["geometry"] = json.loads(to_geojson(self.geometry))
        return data


class CatalogWriter:
    """Creates a new catalog file and appends elements to it (used by `twin build` only)."""

    def __init__(self, path: Path) -> None:
        if path.exists():
            path.unlink()
        self._db = sqlite3.connect(path)
        self._db.executescript(_SCHEMA)

    def add(self, elements: Iterable[Element]) -> int:
        """Insert elements (one transaction, geometry and bounds vectorised); return how many
        were written."""
        batch = list(elements)
        if not batch:
            return 0
        geometries = np.asarray([el.geometry for el in batch], dtype=object)
        geojson = shapely.to_geojson(geometries).tolist()
        bounds = shapely.bounds(geometries)
        start = self._db.execute("SELECT COALESCE(MAX(rid), 0) FROM elements").fetchone()[0] + 1
        rids = range(start, start + len(batch))
        with self._db:
            self._db.executemany(
                "INSERT INTO elements (rid, id, kind, name, layer, source_id, lon, lat,"
                " base_height, height, geometry, attributes, jurisdiction_id, unit, site_id)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    (
                        rid, el.id, el.kind, el.name, el.layer, el.source_id, el.lon, el.lat,
                        el.base_height, el.height, text,
                        json.dumps(el.attributes, ensure_ascii=False, default=str),
                        el.jurisdiction_id, el.unit, el.site_id,
                    )
                    for rid, el, text in zip(rids, batch, geojson, strict=True)
                ),
            )  # fmt: skip
            self._db.executemany(
                "INSERT INTO elements_rtree VALUES (?,?,?,?,?)",
                zip(rids, bounds[:, 0].tolist(), bounds[:, 2].tolist(), bounds[:, 1].tolist(),
                    bounds[:, 3].tolist(), strict=True),
            )  # fmt: skip
        return len(batch)

    def close(self) -> None:
        self._db.commit()
        self._db.close()


def _row_to_element(row: sqlite3.Row) -> Element:
    return Element(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        layer=row["layer"],
        source_id=row["source_id"],
        lon=row["lon"],
        lat=row["lat"],
        base_height=row["base_height"],
        height=row["height"],
        geometry=from_geojson(row["geometry"]),
        attributes=json.loads(row["attributes"]),
        jurisdiction_id=row["jurisdiction_id"],
        unit=row["unit"],
        site_id=row["site_id"],
    )


_ORIGIN = Point(0.0, 0.0)


def resolve_id(value: str, known: Callable[[str], bool], kinds: Sequence[str]) -> str:
    """The element id `value` means: itself when `known`, else ``{kind}:{value}`` when exactly
    one of `kinds` knows it (a camera named by its layer's own id, ``cam-1`` for
    ``camera:cam-1``); else `value` unchanged (unknown stays unknown)."""
    if known(value):
        return value
    found = [f"{kind}:{value}" for kind in kinds if known(f"{kind}:{value}")]
    return found[0] if len(found) == 1 else value


# Order in which `pick` prefers kinds when several elements lie under a point.
PICK_ORDER = ("building", "camera", "sensor", "site", "road", "water", "jurisdiction")


class Catalog:
    """Read-only access to a built catalog. Safe to share between threads (one connection each)."""

    def __init__(self, path: Path) -> None:
        if not Path(path).is_file():
            raise WorkspaceError(f"no catalog at {path}", hint="run 'twin build SRC -o WS'")
        self.path = Path(path)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        db.row_factory = sqlite3.Row
        return db

    def get(self, element_id: str) -> Element | None:
        """The element with this id, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM elements WHERE id = ?", (element_id,)).fetchone()
        return _row_to_element(row) if row else None

    def resolve(self, value: str, kinds: Sequence[str]) -> str:
        """The id of the element of one of `kinds` that `value` names: its element id, or its
        layer's own id when unambiguous (see `resolve_id`)."""

        def known(element_id: str) -> bool:
            el = self.get(element_id)
            return el is not None and el.kind in kinds

        return resolve_id(value, known, kinds)

    def all(self, kind: str | None = None) -> Iterator[Element]:
        """Every element (of one kind), in insertion order."""
        with self._connect() as db:
            sql, args = "SELECT * FROM elements", tuple[str, ...]()
            if kind:
                sql, args = sql + " WHERE kind = ?", (kind,)
            rows = db.execute(sql + " ORDER BY rid", args).fetchall()
        return (_row_to_element(r) for r in rows)

    def counts(self) -> dict[str, int]:
        """Number of elements per kind."""
        with self._connect() as db:
            rows = db.execute("SELECT kind, COUNT(*) FROM elements GROUP BY kind").fetchall()
        return {kind: n for kind, n in rows}

    def search(
        self,
        q: str | None = None,
        kind: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Element], int]:
        """Elements whose name or id contains `q` (case-insensitive), of `kind`, intersecting
        `bbox` (minlon, minlat, maxlon, maxlat, deg). Returns one page and the total count."""
        where: list[str] = []
        args: list[str | float] = []
        if q:
            where.append("(e.name LIKE ? ESCAPE '\\' OR e.id LIKE ? ESCAPE '\\'"
                         " OR e.attributes LIKE ? ESCAPE '\\')")  # fmt: skip
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [pattern, pattern, pattern]
        if kind:
            where.append("e.kind = ?")
            args.append(kind)
        join = ""
        if bbox:
            join = " JOIN elements_rtree r ON r.rid = e.rid"
            where.append("r.maxlon >= ? AND r.minlon <= ? AND r.maxlat >= ? AND r.minlat <= ?")
            args += [bbox[0], bbox[2], bbox[1], bbox[3]]
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        with self._connect() as db:
            total = db.execute(f"SELECT COUNT(*) FROM elements e{join}{clause}", args).fetchone()[0]
            rows = db.execute(
                f"SELECT e.* FROM elements e{join}{clause} ORDER BY e.kind, e.name IS NULL, e.name,"
                " e.id LIMIT ? OFFSET ?",
                [*args, limit, offset],
            ).fetchall()
        return [_row_to_element(r) for r in rows], total

    def near(
        self, lon: float, lat: float, radius_m: float, kinds: Iterable[str] | None = None
    ) -> list[tuple[Element, float]]:
        """Elements within `radius_m` metres of lon/lat, nearest first, with their distance (m)."""
        mx, my = metres_per_degree(lat)
        dlon, dlat = radius_m / mx, radius_m / my
        wanted = set(kinds) if kinds else None
        with self._connect() as db:
            rows = db.execute(
                "SELECT e.* FROM elements e JOIN elements_rtree r ON r.rid = e.rid"
                " WHERE r.maxlon >= ? AND r.minlon <= ? AND r.maxlat >= ? AND r.minlat <= ?",
                (lon - dlon, lon + dlon, lat - dlat, lat + dlat),
            ).fetchall()
        origin = np.array([lon, lat])
        scale = np.array([mx, my])
        found = []
        for row in rows:
            if wanted and row["kind"] not in wanted:
                continue
            el = _row_to_element(row)
            local = shapely.transform(el.geometry, lambda xy: (xy - origin) * scale)
            dist = float(local.distance(_ORIGIN))
            if dist <= radius_m:
                found.append((el, dist))
        found.sort(key=lambda pair: pair[1])
        return found

    def containing(self, lon: float, lat: float, kind: str | None = None) -> list[Element]:
        """Polygon elements (of `kind`) that contain lon/lat, smallest area first."""
        point = Point(lon, lat)
        return sorted(
            (el for el, dist in self.near(lon, lat, 0.0, [kind] if kind else None)
             if dist == 0.0 and el.geometry.geom_type in ("Polygon", "MultiPolygon")
             and el.geometry.covers(point)),
            key=lambda el: el.geometry.area,
        )  # fmt: skip

    def pick(self, lon: float, lat: float, radius_m: float = 15.0) -> Element | None:
        """The element a click at lon/lat means: a building under the point first, then the
        nearest camera/sensor/site/road/water within `radius_m`, then the jurisdiction."""
        candidates = self.near(lon, lat, radius_m)
        if not candidates:
            return None
        rank = {kind: i for i, kind in enumerate(PICK_ORDER)}
        inside = [(el, d) for el, d in candidates if d == 0.0 and el.geometry.geom_type != "Point"]
        pool = [c for c in inside if c[0].kind != "jurisdiction"] or candidates
        pool.sort(key=lambda pair: (rank.get(pair[0].kind, 99), pair[1]))
        return pool[0][0]
