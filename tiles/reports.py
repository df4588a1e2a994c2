"""The reports of the terrain and point-cloud writers (`LayerResult.report`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TerrainReport:
    """What `write_terrain_tree` wrote: tiles, glbs, bytes, levels, the largest glb, the
    largest texture side (px) and the finest level's vertex count."""

    tiles: int = 0
    glbs: int = 0
    bytes: int = 0
    levels: int = 0
    largest_glb: int = 0
    largest_texture_px: int = 0
    leaf_vertices: int = 0


@dataclass
class PointCloudReport:
    """What `write_pointcloud` wrote: points, tiles, glb files, bytes, deepest level."""

    points: int = 0
    tiles: int = 0
    glbs: int = 0
    bytes: int = 0
    levels: int = 0
