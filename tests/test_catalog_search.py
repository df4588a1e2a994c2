"""Name search over the catalog's search index (`twin.catalog`): substrings of Chinese names
(which have no spaces) of any length, Latin case-insensitive, ids, attribute values, several
words, and a catalog built before the index (scanned)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from shapely.geometry import Point

from twin.catalog import (
    SEARCH_CANDIDATES,
    Catalog,
    CatalogWriter,
    Element,
    search_match,
    search_tokens,
)


def element(rid: int, name: str | None, **attributes: object) -> Element:
    where = Point(121.49, 31.24)
    return Element(id=f"site:{rid}", kind="site", name=name, layer="sites", lon=where.x,
                   lat=where.y, geometry=where, attributes=dict(attributes))  # fmt: skip


NAMES = ["上海外滩中心", "外滩派出所", "中山东一路", "Bund Center", "Peace Hotel", None]


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    writer = CatalogWriter(tmp_path / "catalog.sqlite")
    elements = [element(i, name) for i, name in enumerate(NAMES)]
    elements.append(element(99, None, address="黄浦区南京东路20号", levels=3))
    writer.add(elements)
    writer.close()
    return Catalog(tmp_path / "catalog.sqlite")


def names(catalog: Catalog, q: str) -> list[str]:
    items, total, more = catalog.search(q)
    assert total == len(items) and not more
    return sorted(str(el.name or el.id) for el in items)


@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("外滩", ["上海外滩中心", "外滩派出所"]),  # two characters, in the middle of a name
        ("滩", ["上海外滩中心", "外滩派出所"]),
        ("外滩中心", ["上海外滩中心"]),
        ("滩派", ["外滩派出所"]),
        ("中", ["上海外滩中心", "中山东一路"]),
        ("bund", ["Bund Center"]),
        ("CENT", ["Bund Center"]),
        ("bund hotel", []),  # every word must be found
        ("peace hot", ["Peace Hotel"]),
        ("site:99", ["site:99"]),  # an id, by its whole words
        ("site:9", []),
        ("南京东路", ["site:99"]),  # an attribute value
        ("外滩心", []),  # not a substring
        ("%%", []),  # no word at all
    ],
)
def test_search_finds_substrings(catalog: Catalog, q: str, found: list[str]) -> None:
    assert names(catalog, q) == found


def test_tokens_and_query_agree() -> None:
    assert search_tokens("外滩·中心", "site:12") == "外滩 外 滩 中心 中 心 site 12"
    assert search_match("外滩中 x") == '("外滩 滩中" OR "外滩中") AND "x"'


def test_a_catalog_without_the_index_is_scanned(catalog: Catalog, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        db.execute("DROP TABLE elements_search")
    old = Catalog(tmp_path / "catalog.sqlite")
    assert names(old, "外滩") == ["上海外滩中心", "外滩派出所"]


def test_a_broad_query_ranks_its_first_thousand_and_says_there_are_more(tmp_path: Path) -> None:
    writer = CatalogWriter(tmp_path / "catalog.sqlite")
    writer.add([element(i, f"Bund kiosk {i:04d}") for i in range(SEARCH_CANDIDATES + 200)])
    writer.add([element(5000, "Bund Aardvark Arcade"), element(5001, None, note="Bund gate")])
    writer.close()
    catalog = Catalog(tmp_path / "catalog.sqlite")
    first = catalog.search("bund", limit=10)
    assert (first.total, first.more) == (SEARCH_CANDIDATES, True)
    names = [el.name for el in first.items if el.name is not None]
    assert names == sorted(names) and len(names) == 10  # ranked: by name, named first
    last = catalog.search("bund", limit=10, offset=SEARCH_CANDIDATES - 5)
    assert len(last.items) == 5 and last.more  # pages end where the count ends
    narrow = catalog.search("kiosk 0007")
    assert (narrow.total, narrow.more) == (1, False) and narrow.items[0].name == "Bund kiosk 0007"
    listing = catalog.search(kind="site", limit=1)
    assert (listing.total, listing.more) == (SEARCH_CANDIDATES + 202, False)  # counted exactly
