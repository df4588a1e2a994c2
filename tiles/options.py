"""`TilesetOptions`: the tiling, compression and level-of-detail choices every layer writer
shares, with their literal types and defaults (the defaults of twin.yaml's ``build:`` keys and
of ``twin build``'s options)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from tiles.errors import TilesError

Tiling = Literal["explicit", "implicit"]
Compression = Literal["none", "meshopt", "draco"]
TILINGS: tuple[Tiling, ...] = get_args(Tiling)
COMPRESSIONS: tuple[Compression, ...] = get_args(Compression)


@dataclass(frozen=True)
class TilesetOptions:
    """How a tileset is written.

    Parameters
    ----------
    tiling
        ``explicit``: every tile in tileset.json; ``implicit``: 3D Tiles 1.1 implicit tiling
        (quadtrees for buildings and terrain, octrees for point clouds; template URIs and
        ``.subtree`` files).
    compression
        glb content: ``none`` (float32 attributes), ``meshopt`` (KHR_mesh_quantization +
        EXT_meshopt_compression) or ``draco`` (KHR_draco_mesh_compression; point clouds are
        written plain then).
    lod
        Inner building tiles draw simplified forms of their largest buildings (refine
        REPLACE); leaves keep every building at full detail.
    max_features
        Most buildings in one glb (leaves; and the most coarse buildings an inner LOD tile
        draws).
    archive
        Also write the tileset folder as one ``.3tz`` archive beside it.

    Raises `TilesError` for a value outside its literal type or a `max_features` below 1.
    """

    tiling: Tiling = "explicit"
    compression: Compression = "meshopt"
    lod: bool = True
    max_features: int = 400
    archive: bool = False

    def __post_init__(self) -> None:
        if self.tiling not in TILINGS:
            raise TilesError(f"tiling must be explicit or implicit, got {self.tiling!r}")
        if self.compression not in COMPRESSIONS:
            raise TilesError(f"compression must be one of {COMPRESSIONS}, got {self.compression!r}")
        if self.max_features < 1:
            raise TilesError(f"max_features must be at least 1, got {self.max_features}")

    @property
    def implicit(self) -> bool:
        """Whether tile trees are written as implicit tiling."""
        return self.tiling == "implicit"
