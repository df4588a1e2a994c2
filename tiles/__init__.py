"""3D Tiles 1.1 writing: spec-shaped tileset objects, glb content with EXT_mesh_features and
EXT_structural_metadata, spatial tiling. Knows nothing of scenes or HTTP."""
