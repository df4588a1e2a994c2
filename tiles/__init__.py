"""3D Tiles 1.1 writing: spec-shaped tileset objects, glb content with EXT_mesh_features and
EXT_structural_metadata, spatial tiling. Knows nothing of scenes or HTTP.

The interface: a `TilesetOptions` (tiling, compression, LOD, features per tile, archive; the
`Tiling` and `Compression` literal types and every default live in `tiles.options`) and one
`LayerWriter` per layer, each writing its content under the tileset folder and handing back its
top tile in a `LayerResult`: `BuildingsWriter` (building meshes), `TerrainWriter` (a mesh or a
`TerrainGrid` LOD tree) and `PointCloudWriter` (a streamed `PointCloud` as an external
tileset). `write_tileset(out_dir, enu_to_ecef, layers, options, metadata)` runs them and writes
the root ``tileset.json`` (and the ``.3tz`` archive), returning a `TilesetReport`. Reading back:
`read_glb`, `read_subtree`, `decode_property_table`, `gltf_to_enu`.

Modules: `options`, `layer` (the interface), `writer` (root tileset), `buildings`, `terrain`,
`pointcloud` (the layer writers), `reports` (theirs), `model` (what the writers take), `spec`
(tileset JSON objects), `partition` (quadtree split), `hierarchy` and `lod` (building LOD),
`content` (building/terrain glb), `metadata` and `schema` (class schema, property tables,
groups), `mesh` (normals, ENU → glTF y-up), `glb` (binary packing/reading), `implicit`
(subtrees), `archive` (``.3tz``), `precompress` (gzip siblings).

The options, their types and `TilesError` load with the package; the writers and readers
(numpy, mesh and glb libraries) on first use, so ``from tiles import TilesetOptions`` stays
light (the CLI builds its options from it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tiles.errors import TilesError
from tiles.options import COMPRESSIONS, TILINGS, Compression, TilesetOptions, Tiling

if TYPE_CHECKING:
    from tiles.buildings import BuildingsWriter
    from tiles.glb import Glb, read_glb
    from tiles.implicit import read_subtree
    from tiles.layer import LayerResult, LayerWriter
    from tiles.mesh import gltf_to_enu
    from tiles.metadata import decode_property_table
    from tiles.model import FeatureMesh, TerrainMesh, TilesetMetadata
    from tiles.pointcloud import PointChunk, PointCloud, PointCloudWriter, write_pointcloud
    from tiles.precompress import precompress_json
    from tiles.reports import PointCloudReport
    from tiles.terrain import TerrainGrid, TerrainWriter, Texturer
    from tiles.writer import TilesetReport, write_tileset

# Public name → the module defining it, imported on first use (`__getattr__`).
_LAZY = {
    "BuildingsWriter": "tiles.buildings",
    "Glb": "tiles.glb",
    "read_glb": "tiles.glb",
    "read_subtree": "tiles.implicit",
    "LayerResult": "tiles.layer",
    "LayerWriter": "tiles.layer",
    "gltf_to_enu": "tiles.mesh",
    "decode_property_table": "tiles.metadata",
    "FeatureMesh": "tiles.model",
    "TerrainMesh": "tiles.model",
    "TilesetMetadata": "tiles.model",
    "PointChunk": "tiles.pointcloud",
    "PointCloud": "tiles.pointcloud",
    "PointCloudReport": "tiles.reports",
    "PointCloudWriter": "tiles.pointcloud",
    "write_pointcloud": "tiles.pointcloud",
    "precompress_json": "tiles.precompress",
    "TerrainGrid": "tiles.terrain",
    "TerrainWriter": "tiles.terrain",
    "Texturer": "tiles.terrain",
    "TilesetReport": "tiles.writer",
    "write_tileset": "tiles.writer",
}

__all__ = [
    "COMPRESSIONS",
    "TILINGS",
    "BuildingsWriter",
    "Compression",
    "FeatureMesh",
    "Glb",
    "LayerResult",
    "LayerWriter",
    "PointChunk",
    "PointCloud",
    "PointCloudReport",
    "PointCloudWriter",
    "TerrainGrid",
    "TerrainMesh",
    "TerrainWriter",
    "Texturer",
    "TilesError",
    "TilesetMetadata",
    "TilesetOptions",
    "TilesetReport",
    "Tiling",
    "decode_property_table",
    "gltf_to_enu",
    "precompress_json",
    "read_glb",
    "read_subtree",
    "write_pointcloud",
    "write_tileset",
]


def __getattr__(name: str) -> Any:
    """Import a writer or reader name's module on first use (see the module docstring)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'tiles' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value
