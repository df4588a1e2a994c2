"""The element catalog in PostgreSQL 15 + PostGIS 3 (``TWIN_DATABASE_URL``), for several server
processes and hosts: the same questions as `twin.catalog.Catalog`, answered with a GiST index on
a ``geometry(Geometry, 4326)`` column (boxes, `near`, `containing`, `pick`) and a GIN index on a
``tsvector`` of the same search tokens (`twin.catalog.search_tokens`), so both engines find the
same elements for the same words.

`load_catalog` copies a workspace's built catalog in when the database holds another build: in
one transaction under an advisory lock, so a second server starting at the same moment waits
and then finds it loaded, and readers see the old catalog until the new one is committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import shapely
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from twin.catalog import (
    SEARCH_CANDIDATES,
    Catalog,
    Element,
    SearchPage,
    candidate_page,
    element_tokens,
    radius_box,
    row_to_element,
    search_tsquery,
    within,
)
from twin.errors import WorkspaceError

log = logging.getLogger("twin.catalog")
LOCK_KEY = 8_151_052  # pg_advisory_xact_lock key of catalog loads and schema
POOL_SIZE = 8
POOL_WAIT_S = 5.0
_COLUMNS = (
    "rid", "id", "kind", "name", "layer", "source_id", "lon", "lat", "base_height", "height",
    "geometry", "attributes", "jurisdiction_id", "unit", "site_id", "minlon", "minlat",
    "maxlon", "maxlat",
)  # fmt: skip
_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE TABLE IF NOT EXISTS elements (
    rid BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    name TEXT,
    layer TEXT NOT NULL,
    source_id TEXT,
    lon DOUBLE PRECISION NOT NULL, lat DOUBLE PRECISION NOT NULL,
    base_height DOUBLE PRECISION NOT NULL DEFAULT 0,
    height DOUBLE PRECISION NOT NULL DEFAULT 0,
    geometry TEXT NOT NULL,
    attributes TEXT NOT NULL DEFAULT '{}',
    jurisdiction_id TEXT, unit TEXT, site_id TEXT,
    minlon DOUBLE PRECISION NOT NULL, minlat DOUBLE PRECISION NOT NULL,
    maxlon DOUBLE PRECISION NOT NULL, maxlat DOUBLE PRECISION NOT NULL,
    geom geometry(Geometry, 4326) NOT NULL,
    search_text TEXT NOT NULL,
    search tsvector GENERATED ALWAYS AS (to_tsvector('simple', search_text)) STORED
);
CREATE INDEX IF NOT EXISTS elements_geom ON elements USING GIST (geom);
CREATE INDEX IF NOT EXISTS elements_search ON elements USING GIN (search);
CREATE INDEX IF NOT EXISTS elements_listing ON elements (kind, (name IS NULL), name, id);
CREATE TABLE IF NOT EXISTS catalog_build (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    digest TEXT NOT NULL,
    elements BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


def catalog_digest(path: Path) -> str:
    """SHA-256 of a built catalog file: the build it holds."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_catalog(path: Path, url: str) -> int:
    """Copy the SQLite catalog at `path` into the database at `url` unless it holds that build
    already; how many elements were copied (0 when already current)."""
    digest = catalog_digest(path)
    with psycopg.connect(url) as db:  # one transaction, committed on leaving
        db.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        for statement in filter(None, (s.strip() for s in _SCHEMA.split(";"))):
            db.execute(statement)
        row = db.execute("SELECT digest FROM catalog_build").fetchone()
        if row is not None and row[0] == digest:
            return 0
        db.execute("TRUNCATE elements")
        count = _copy(path, db)
        db.execute(
            "INSERT INTO catalog_build (one, digest, elements) VALUES (1, %s, %s) ON CONFLICT"
            " (one) DO UPDATE SET digest = excluded.digest, elements = excluded.elements,"
            " loaded_at = now()",
            (digest, count),
        )
    log.info("catalog: %d element(s) of build %s loaded into PostgreSQL", count, digest[:12])
    return count


def _copy(path: Path, db: psycopg.Connection[Any], batch: int = 20_000) -> int:
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    source.row_factory = sqlite3.Row
    if "maxlat" not in {row[1] for row in source.execute("PRAGMA table_info(elements)")}:
        source.close()
        raise WorkspaceError(f"{path} was built by an older version", hint="rebuild the workspace")
    count = 0
    columns = ", ".join((*_COLUMNS, "geom", "search_text"))
    try:
        with db.cursor().copy(f"COPY elements ({columns}) FROM STDIN") as copy:
            cursor = source.execute(f"SELECT {', '.join(_COLUMNS)} FROM elements ORDER BY rid")
            while rows := cursor.fetchmany(batch):
                geoms = shapely.set_srid(shapely.from_geojson([r["geometry"] for r in rows]), 4326)
                ewkb = shapely.to_wkb(geoms, hex=True, include_srid=True)
                for row, geom in zip(rows, np.asarray(ewkb).tolist(), strict=True):
                    tokens = element_tokens(row["name"], row["id"], json.loads(row["attributes"]))
                    copy.write_row((*tuple(row), geom, tokens))
                count += len(rows)
    finally:
        source.close()
    return count


class PgCatalog(Catalog):
    """Read access to the catalog in PostgreSQL at `url` (loaded by `load_catalog` from the
    workspace's file at `path`); safe to share between threads (a small pool of connections).
    A `Catalog` in every answer, so everything that takes one takes this."""

    def __init__(self, url: str, path: Path) -> None:
        self.path = Path(path)
        self.pool: ConnectionPool[Any] = ConnectionPool(
            url, min_size=1, max_size=POOL_SIZE, open=True, check=ConnectionPool.check_connection,
            kwargs={"autocommit": True, "row_factory": dict_row},
        )  # fmt: skip
        [row] = self._rows("SELECT to_regclass('catalog_build') IS NOT NULL AS loaded")
        if not row["loaded"]:
            raise WorkspaceError("no catalog in the database", hint="start the server once")

    def close(self) -> None:
        self.pool.close()

    def _rows(self, sql: str, args: Iterable[object] = ()) -> list[Any]:
        """Rows of `sql` as dicts; `WorkspaceError` (503) while the database is unreachable
        (the pool drops the broken connection and opens another next time)."""
        try:
            with self.pool.connection(timeout=POOL_WAIT_S) as db:
                return list(db.execute(sql, tuple(args)).fetchall())
        except (psycopg.OperationalError, PoolTimeout) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise WorkspaceError(f"the catalog's database is unreachable: {first}") from exc

    def get(self, element_id: str) -> Element | None:
        rows = self._rows("SELECT * FROM elements WHERE id = %s", (element_id,))
        return row_to_element(rows[0]) if rows else None

    def all(self, kind: str | None = None) -> Iterator[Element]:
        where, args = (" WHERE kind = %s", (kind,)) if kind else ("", ())
        return map(row_to_element, self._rows(f"SELECT * FROM elements{where} ORDER BY rid", args))

    def counts(self) -> dict[str, int]:
        rows = self._rows("SELECT kind, count(*) AS n FROM elements GROUP BY kind")
        return {r["kind"]: int(r["n"]) for r in rows}

    def search(
        self,
        q: str | None = None,
        kind: str | None = None,
        bbox: tuple[float, float, float, float] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> SearchPage:
        """As `twin.catalog.Catalog.search`, through the tsvector and GiST indexes."""
        where: list[str] = []
        args: list[object] = []
        if q:
            match = search_tsquery(q)
            if match is None:
                return SearchPage([], 0)
            where.append("search @@ to_tsquery('simple', %s)")
            args.append(match)
        if kind:
            where.append("kind = %s")
            args.append(kind)
        if bbox:  # the GiST index's single-precision box, then the exact bounds
            where.append("geom && ST_MakeEnvelope(%s, %s, %s, %s, 4326) AND maxlon >= %s AND"
                         " minlon <= %s AND maxlat >= %s AND minlat <= %s")  # fmt: skip
            args += [*bbox, bbox[0], bbox[2], bbox[1], bbox[3]]
        found = "FROM elements" + ((" WHERE " + " AND ".join(where)) if where else "")
        if q:  # one pass over a bounded set of candidates, ranked as on SQLite
            sql = f"SELECT rid, kind, name, id {found} LIMIT {SEARCH_CANDIDATES + 1}"
            candidates = [(r["rid"], r["kind"], r["name"], r["id"]) for r in self._rows(sql, args)]
            rids, total, more = candidate_page(candidates, limit, offset)
        else:
            more = False
            total = int(self._rows(f"SELECT count(*) AS n {found}", args)[0]["n"])
            order = "ORDER BY kind, name IS NULL, name, id LIMIT %s OFFSET %s"
            rids = [r["rid"] for r in self._rows(f"SELECT rid {found} {order}",
                                                 [*args, limit, offset])]  # fmt: skip
        rows = self._rows("SELECT * FROM elements WHERE rid = ANY(%s)", (rids,))
        by_rid = {row["rid"]: row for row in rows}
        return SearchPage([row_to_element(by_rid[rid]) for rid in rids], total, more)

    def near(
        self, lon: float, lat: float, radius_m: float, kinds: Iterable[str] | None = None
    ) -> list[tuple[Element, float]]:
        """As `twin.catalog.Catalog.near`: the box through the GiST index, then the same
        distances."""
        box = radius_box(lon, lat, radius_m)
        rows = self._rows("SELECT * FROM elements WHERE geom && ST_MakeEnvelope(%s, %s, %s, %s,"
                          " 4326)", box)  # fmt: skip
        return within(map(row_to_element, rows), lon, lat, radius_m, kinds)
