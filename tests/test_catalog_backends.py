"""One catalog contract on both engines: the bundled sample's catalog in SQLite and, loaded by
`load_catalog`, in a real PostgreSQL 15 + PostGIS (bench/engines.py) — every question answered
the same (get, counts, name search in Chinese and Latin, boxes, near, containing, pick); the
load is idempotent and a second loader started at the same moment waits instead of failing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from twin.catalog import Catalog, CatalogQueries
from twin.catalog_pg import PgCatalog, load_catalog

QUERIES = ["外滩", "路", "中山东一路", "Bund", "bank", "camera", "cam-bund-road", "南京", "x"]
BOXES: list[tuple[float, float, float, float]] = [
    (121.485, 31.236, 121.490, 31.240),
    (121.49, 31.23, 121.50, 31.25),
]
POINTS = [(121.4866, 31.2395), (121.4905, 31.2390), (121.5000, 31.2350), (121.4820, 31.2450)]


@pytest.fixture(scope="module")
def engines(
    sample_ws: Path, postgres: object, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Catalog, PgCatalog]]:
    from bench.engines import Postgres

    assert isinstance(postgres, Postgres)
    url = postgres.create_database(f"catalog_{tmp_path_factory.getbasetemp().name[-8:]}")
    assert load_catalog(sample_ws / "catalog.sqlite", url) > 3000
    assert load_catalog(sample_ws / "catalog.sqlite", url) == 0  # the same build: nothing to do
    pg = PgCatalog(url, sample_ws / "catalog.sqlite")
    yield Catalog(sample_ws / "catalog.sqlite"), pg
    pg.close()


def ids(elements: object) -> list[str]:
    return [el.id for el in elements]  # type: ignore[attr-defined]


def test_get_all_and_counts_agree(engines: tuple[Catalog, PgCatalog]) -> None:
    lite, pg = engines
    assert lite.counts() == pg.counts()
    assert ids(lite.all("camera")) == ids(pg.all("camera"))
    some = next(iter(lite.all("building")))
    assert lite.get(some.id) == pg.get(some.id)
    assert pg.get("building:nope") is None
    assert lite.resolve("cam-bund-road", ("camera",)) == pg.resolve("cam-bund-road", ("camera",))


@pytest.mark.parametrize("q", QUERIES)
def test_name_search_agrees(engines: tuple[Catalog, PgCatalog], q: str) -> None:
    lite, pg = engines
    for kind in (None, "road"):
        got_lite, total_lite, more_lite = lite.search(q, kind=kind, limit=20)
        got_pg, total_pg, more_pg = pg.search(q, kind=kind, limit=20)
        assert (total_lite, more_lite) == (total_pg, more_pg), (q, kind)
        assert ids(got_lite) == ids(got_pg), (q, kind)


@pytest.mark.parametrize("box", BOXES)
def test_boxes_agree(
    engines: tuple[Catalog, PgCatalog], box: tuple[float, float, float, float]
) -> None:
    lite, pg = engines
    assert lite.search(bbox=box, limit=1000) == pg.search(bbox=box, limit=1000)
    assert lite.search("路", bbox=box)[1] == pg.search("路", bbox=box)[1]


@pytest.mark.parametrize("point", POINTS)
def test_near_containing_and_pick_agree(
    engines: tuple[Catalog, PgCatalog], point: tuple[float, float]
) -> None:
    lite, pg = engines
    catalogs: list[CatalogQueries] = [lite, pg]
    near = [[(el.id, round(d, 6)) for el, d in c.near(*point, 150.0)] for c in catalogs]
    assert near[0] == near[1] and near[0]
    assert ids(lite.containing(*point)) == ids(pg.containing(*point))
    picked = [c.pick(*point) for c in catalogs]
    assert picked[0] == picked[1]


def test_two_loaders_at_once(sample_ws: Path, postgres: object) -> None:
    from bench.engines import Postgres

    assert isinstance(postgres, Postgres)
    url = postgres.create_database("catalog_race")
    copied: list[int] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            copied.append(load_catalog(sample_ws / "catalog.sqlite", url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and sorted(copied)[:2] == [0, 0] and max(copied) > 3000
