"""The tileset checker itself (`tiles_helpers.validate_tileset_tree`): implicit inner tiles
without content are fine, leaves without content are not."""

from __future__ import annotations

import json
from pathlib import Path

from synthetic_city import FRAME, synthetic_city
from tiles_helpers import validate_tileset_tree, walk_tiles

from tiles import BuildingsWriter, TilesetOptions, write_tileset


def test_implicit_inner_tiles_without_content_are_not_leaves(tmp_path: Path) -> None:
    out = tmp_path / "tiles"
    city = synthetic_city(120)
    options = TilesetOptions(tiling="implicit", compression="none", lod=False, max_features=10)
    write_tileset(out, FRAME.enu_to_ecef_matrix(), [BuildingsWriter(city)], options)
    tileset = out / "tileset.json"
    placed = [p for p in walk_tiles(tileset) if "/implicit/" in p.pointer]
    inner = [p for p in placed if not p.is_leaf]
    assert inner and all("content" not in p.tile for p in inner)  # no LOD: inner tiles empty
    assert all("content" in p.tile for p in placed if p.is_leaf)
    assert validate_tileset_tree(tileset) == []


def test_an_explicit_leaf_without_content_is_a_problem(tmp_path: Path) -> None:
    out = tmp_path / "tiles"
    options = TilesetOptions(compression="none", lod=False, max_features=10)
    write_tileset(out, FRAME.enu_to_ecef_matrix(), [BuildingsWriter(synthetic_city(40))], options)
    tileset = out / "tileset.json"
    doc = json.loads(tileset.read_text())
    tile = doc["root"]["children"][0]
    while tile.get("children"):
        tile = tile["children"][0]
    del tile["content"]
    tileset.write_text(json.dumps(doc))
    problems = validate_tileset_tree(tileset)
    assert len(problems) == 1 and problems[0].endswith("a leaf without content")
