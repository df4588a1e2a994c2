"""The element catalog: every building, road, site, water body, jurisdiction, camera and sensor
with a stable id, stored in SQLite with an R-tree on lon/lat bounds.

Written once by `twin build` (`CatalogWriter`), read by everything else (`Catalog`). Positions
are WGS84 lon/lat degrees; ``base_height`` is the ellipsoidal height of the ground at the element
(m); ``height`` is the element's own height above that ground (m: building height, camera mount
height, 0 for flat things).
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

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
    jurisdiction_id TEXT, unit TEXT, site_id TEXT,
    minlon REAL, minlat REAL, maxlon REAL, maxlat REAL
);
CREATE INDEX elements_kind ON elements(kind);
CREATE INDEX elements_name ON elements(name COLLATE NOCASE);
CREATE INDEX elements_listing ON elements(kind, name IS NULL, name, id);
CREATE VIRTUAL TABLE elements_rtree USING rtree(rid, minlon, maxlon, minlat, maxlat);
CREATE VIRTUAL TABLE elements_search USING fts5(
    tokens, content='', tokenize='unicode61 remove_diacritics 2'
);
"""
_WORD = re.compile(r"\w+")
SEARCH_TEXT_CHARS = 256  # of an element's attribute values that search looks into
SEARCH_CANDIDATES = 1000  # matches of a name search ranked for its pages (see Catalog.search)


class SearchPage(NamedTuple):
    """One page of a catalog search: the elements, the matches counted (every match of a
    box or kind listing; a name search counts at most `SEARCH_CANDIDATES`), and whether a
    name search matched more than it counted."""

    items: list[Element]
    total: int
    more: bool = False


def candidate_page(
    candidates: Sequence[tuple[int, str, str | None, str]], limit: int, offset: int
) -> tuple[list[int], int, bool]:
    """One page of a name search from its `candidates` ``(rid, kind, name, id)``, at most
    ``SEARCH_CANDIDATES + 1`` of them: the page's row ids (by kind, named first, by name in
    code points, by id — the same on every engine), the count, and whether there were more."""
    more = len(candidates) > SEARCH_CANDIDATES
    total = len(candidates) - more
    ordered = sorted(candidates[:total], key=lambda c: (c[1], c[2] is None, c[2] or "", c[3]))
    return [c[0] for c in ordered[offset : offset + limit]], total, more


def search_tokens(text: str, whole: str = "") -> str:
    """What the search index holds of `text`: per word (case-folded), its two-character
    pieces in order, then its characters; and the words of `whole` (an id: found by whole
    words only, so digits of ids do not flood every short query). A substring of a word
    (Chinese names have no spaces) is then found as the phrase of its own pieces, whatever its
    length (see `search_match`)."""
    tokens: list[str] = []
    for word in _WORD.findall(text.casefold()):
        tokens.extend(word[i : i + 2] for i in range(len(word) - 1))
        tokens.extend(word)
    tokens.extend(_WORD.findall(whole.casefold()))
    return " ".join(tokens)


def search_match(query: str) -> str | None:
    """The FTS5 query finding elements whose name or attribute values hold every word of
    `query` as a substring of a word, or whose id holds it as a word; None when `query` has
    no word."""
    terms = []
    for word in _WORD.findall(query.casefold()):
        if len(word) == 1:
            terms.append(f'"{word}"')
        else:
            pieces = " ".join(word[i : i + 2] for i in range(len(word) - 1))
            terms.append(f'("{pieces}" OR "{word}")')
    return " AND ".join(terms) or None


def search_tsquery(query: str) -> str | None:
    """`search_match` for PostgreSQL: the same terms as a ``to_tsquery('simple', ...)`` text,
    pieces joined by the phrase operator ``<->``."""
    terms = []
    for word in _WORD.findall(query.casefold()):
        if len(word) == 1:
            terms.append(f"'{word}'")
        else:
            pieces = " <-> ".join(f"'{word[i : i + 2]}'" for i in range(len(word) - 1))
            terms.append(f"({pieces} | '{word}')")
    return " & ".join(terms) or None


def element_tokens(name: str | None, element_id: str, attributes: Mapping[str, Any]) -> str:
    """The search index tokens of an element: its name and (the first `SEARCH_TEXT_CHARS` of)
    its attribute values by pieces, its id by whole words (see `search_tokens`)."""
    values = " ".join(str(v) for v in attributes.values() if isinstance(v, str | int))
    return search_tokens(" ".join(filter(None, (name, values[:SEARCH_TEXT_CHARS]))), element_id)


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
                " base_height, height, geometry, attributes, jurisdiction_id, unit, site_id,"
                " minlon, minlat, maxlon, maxlat)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    (
                        rid, el.id, el.kind, el.name, el.layer, el.source_id, el.lon, el.lat,
                        el.base_height, el.height, text,
                        json.dumps(el.attributes, ensure_ascii=False, default=str),
                        el.jurisdiction_id, el.unit, el.site_id, *box,
                    )
                    for rid, el, text, box in zip(rids, batch, geojson, bounds.tolist(),
                                                  strict=True)
                ),
            )  # fmt: skip
            self._db.executemany(
                "INSERT INTO elements_search (rowid, tokens) VALUES (?, ?)",
                (
                    (rid, element_tokens(el.name, el.id, el.attributes))
                    for rid, el in zip(rids, batch, strict=True)
                ),
            )
            self._db.executemany(
                "INSERT INTO elements_rtree VALUES (?,?,?,?,?)",
                zip(rids, bounds[:, 0].tolist(), bounds[:, 2].tolist(), bounds[:, 1].tolist(),
                    bounds[:, 3].tolist(), strict=True),
            )  # fmt: skip
        return len(batch)

    def close(self) -> None:
        self._db.commit()
        self._db.close()


def row_to_element(row: Mapping[str, Any]) -> Element:
    """The element of a catalog row (SQLite or PostgreSQL, by column name)."""
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


def radius_box(lon: float, lat: float, radius_m: float) -> tuple[float, float, float, float]:
    """The lon/lat box (minlon, minlat, maxlon, maxlat, deg) around lon/lat within
    `radius_m` metres of it (local equirectangular)."""
    mx, my = metres_per_degree(lat)
    dlon, dlat = radius_m / mx, radius_m / my
    return lon - dlon, lat - dlat, lon + dlon, lat + dlat


def within(
    candidates: Iterable[Element],
    lon: float,
    lat: float,
    radius_m: float,
    kinds: Iterable[str] | None = None,
) -> list[tuple[Element, float]]:
    """The `candidates` (of `kinds`) within `radius_m` metres of lon/lat, nearest first (then
    by id), with their distance (m; 0 inside)."""
    mx, my = metres_per_degree(lat)
    origin, scale = np.array([lon, lat]), np.array([mx, my])
    wanted = set(kinds) if kinds else None
    found = []
    for el in candidates:
        if wanted and el.kind not in wanted:
            continue
        local = shapely.transform(el.geometry, lambda xy: (xy - origin) * scale)
        dist = float(local.distance(_ORIGIN))
        if dist <= radius_m:
            found.append((el, dist))
    found.sort(key=lambda pair: (pair[1], pair[0].id))  # ties in a stable order
    return found


# Order in which `pick` prefers kinds when several elements lie under a point.
PICK_ORDER = ("building", "camera", "sensor", "site", "road", "water", "jurisdiction")


class CatalogQueries:
    """What every catalog answers from `get` and `near` (SQLite here, PostgreSQL in
    `twin.catalog_pg`)."""

    def get(self, element_id: str) -> Element | None:
        raise NotImplementedError

    def near(
        self, lon: float, lat: float, radius_m: float, kinds: Iterable[str] | None = None
    ) -> list[tuple[Element, float]]:
        raise NotImplementedError

    def resolve(self, value: str, kinds: Sequence[str]) -> str:
        """The id of the element of one of `kinds` that `value` names: its element id, or its
        layer's own id when unambiguous (see `resolve_id`)."""

        def known(element_id: str) -> bool:
            el = self.get(element_id)
            return el is not None and el.kind in kinds

        return resolve_id(value, known, kinds)

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


class Catalog(CatalogQueries):
    """Read-only access to a built catalog. Safe to share between threads (one connection each)."""

    def __init__(self, path: Path) -> None:
        if not Path(path).is_file():
            raise WorkspaceError(f"no catalog at {path}", hint="run 'twin build SRC -o WS'")
        self.path = Path(path)
        with self._connect() as db:
            self._indexed = (
                db.execute("SELECT 1 FROM sqlite_master WHERE name = 'elements_search'").fetchone()
                is not None
            )
            columns = {row[1] for row in db.execute("PRAGMA table_info(elements)")}
        self._bounded = "maxlat" in columns  # a catalog built before has only the R-tree box

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        db.row_factory = sqlite3.Row
        return db

    def get(self, element_id: str) -> Element | None:
        """The element with this id, or None."""
        with self._connect() as db:
            row = db.execute("SELECT * FROM elements WHERE id = ?", (element_id,)).fetchone()
        return row_to_element(row) if row else None

    def all(self, kind: str | None = None) -> Iterator[Element]:
        """Every element (of one kind), in insertion order."""
        with self._connect() as db:
            sql, args = "SELECT * FROM elements", tuple[str, ...]()
            if kind:
                sql, args = sql + " WHERE kind = ?", (kind,)
            rows = db.execute(sql + " ORDER BY rid", args).fetchall()
        return (row_to_element(r) for r in rows)

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
    ) -> SearchPage:
        """Elements whose name, id or attribute values hold every word of `q` (case-insensitive,
        each a substring of a word, through the ``elements_search`` index), of `kind`,
        intersecting `bbox` (minlon, minlat, maxlon, maxlat, deg). Returns one page (by kind,
        named first, by name) and the count. A name query matching more than
        `SEARCH_CANDIDATES` elements pages through the first that many the index finds, and
        says so (``more``) instead of counting the rest."""
        where: list[str] = []
        args: list[str | float] = []
        join = ""
        if q and self._indexed:
            match = search_match(q)
            if match is None:
                return SearchPage([], 0)
            join += " JOIN elements_search s ON s.rowid = e.rid"
            where.append("elements_search MATCH ?")
            args.append(match)
        elif q:  # a catalog built before the search index: scan
            where.append("(e.name LIKE ? ESCAPE '\\' OR e.id LIKE ? ESCAPE '\\'"
                         " OR e.attributes LIKE ? ESCAPE '\\')")  # fmt: skip
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            args += [pattern, pattern, pattern]
        if kind:
            where.append("e.kind = ?")
            args.append(kind)
        if bbox:
            join += " JOIN elements_rtree r ON r.rid = e.rid"
            where.append("r.maxlon >= ? AND r.minlon <= ? AND r.maxlat >= ? AND r.minlat <= ?")
            args += [bbox[0], bbox[2], bbox[1], bbox[3]]
            if self._bounded:  # the R-tree's single-precision box, then the exact bounds
                where.append("e.maxlon >= ? AND e.minlon <= ? AND e.maxlat >= ? AND e.minlat <= ?")
                args += [bbox[0], bbox[2], bbox[1], bbox[3]]
        found = f"FROM elements e{join}" + ((" WHERE " + " AND ".join(where)) if where else "")
        with self._connect() as db:
            if q:  # one pass over a bounded set of candidates, ranked by their small columns
                candidates = db.execute(
                    f"SELECT e.rid, e.kind, e.name, e.id {found} LIMIT {SEARCH_CANDIDATES + 1}",
                    args,
                ).fetchall()
                rids, total, more = candidate_page(candidates, limit, offset)
            else:  # the listing index gives this order
                more = False
                total = db.execute(f"SELECT COUNT(*) {found}", args).fetchone()[0]
                page_sql = (f"SELECT e.rid {found} ORDER BY e.kind, name IS NULL, name, id"
                            " LIMIT ? OFFSET ?")  # fmt: skip
                rids = [r[0] for r in db.execute(page_sql, [*args, limit, offset]).fetchall()]
            marks = ",".join("?" * len(rids))
            rows = db.execute(f"SELECT * FROM elements WHERE rid IN ({marks})", rids).fetchall()
        by_rid = {row["rid"]: row for row in rows}
        return SearchPage([row_to_element(by_rid[rid]) for rid in rids], total, more)

    def near(
        self, lon: float, lat: float, radius_m: float, kinds: Iterable[str] | None = None
    ) -> list[tuple[Element, float]]:
        """Elements within `radius_m` metres of lon/lat, nearest first, with their distance (m)."""
        box = radius_box(lon, lat, radius_m)
        with self._connect() as db:
            rows = db.execute(
                "SELECT e.* FROM elements e JOIN elements_rtree r ON r.rid = e.rid"
                " WHERE r.maxlon >= ? AND r.minlon <= ? AND r.maxlat >= ? AND r.minlat <= ?",
                (box[0], box[2], box[1], box[3]),
            ).fetchall()
        return within(map(row_to_element, rows), lon, lat, radius_m, kinds)
