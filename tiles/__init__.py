"""3D Tiles 1.1 writing: spec-shaped tileset objects, glb content with EXT_mesh_features and
EXT_structural_metadata, spatial tiling. Knows nothing of scenes or HTTP.

Modules: `model` (what the writer takes), `writer` (`write_tileset`), `spec` (tileset JSON
objects), `partition` (quadtree split), `content` (building/terrain glb), `metadata` (class
schema and property tables), `mesh` (normals, ENU → glTF y-up), `glb` (binary packing/reading),
`terrain` (terrain LOD quadtree of TIN tiles from a height grid).
"""
