"""Spec-shaped 3D Tiles 1.1 objects (tileset JSON): one small typed structure per spec object.

Each has ``to_dict()`` (the JSON form, optional members left out when unset) and
``from_dict()``. Matrices are 4×4 numpy-style row-major in Python and column-major (16 numbers)
in JSON, as the specification stores them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Refine = Literal["ADD", "REPLACE"]


@dataclass
class Asset:
    """``asset``: the 3D Tiles version and the tool that wrote the tileset."""

    version: str = "1.1"
    generator: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"version": self.version}
        if self.generator is not None:
            out["generator"] = self.generator
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Asset:
        return cls(version=data["version"], generator=data.get("generator"))


@dataclass
class BoundingVolume:
    """``boundingVolume`` as an oriented ``box``: centre then three half-axis vectors (12 numbers,
    metres, in the frame of the tile that holds it)."""

    box: list[float]

    @classmethod
    def from_min_max(
        cls, lo: ArrayLike, hi: ArrayLike, *, pad: float = 0.0, min_half: float = 0.01
    ) -> BoundingVolume:
        """Axis-aligned box from corner points (metres); `pad` grows it on every side and no
        half-axis is shorter than `min_half` (flat boxes confuse culling)."""
        lo_a = np.asarray(lo, float) - pad
        hi_a = np.asarray(hi, float) + pad
        centre = (lo_a + hi_a) / 2
        half = np.maximum((hi_a - lo_a) / 2, min_half)
        axes = np.diag(half)
        return cls(box=[float(v) for v in (*centre, *axes.ravel())])

    @property
    def centre(self) -> NDArray[np.float64]:
        return np.asarray(self.box[:3], float)

    @property
    def half_axes(self) -> NDArray[np.float64]:
        """(3, 3) rows are the half-axis vectors."""
        return np.asarray(self.box[3:], float).reshape(3, 3)

    def corners_min_max(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Axis-aligned extent (min, max corner) of the box in its frame, metres."""
        reach = np.abs(self.half_axes).sum(axis=0)
        return self.centre - reach, self.centre + reach

    def contains(self, points: ArrayLike, tol: float = 1e-6) -> bool:
        """Whether every (n, 3) point (metres, same frame) lies inside the box."""
        pts = np.asarray(points, float).reshape(-1, 3) - self.centre
        axes = self.half_axes
        lengths2 = (axes**2).sum(axis=1)
        coords = pts @ axes.T / lengths2  # in units of each half axis
        return bool(np.all(np.abs(coords) <= 1 + tol))

    @staticmethod
    def union(volumes: Sequence[BoundingVolume]) -> BoundingVolume:
        """Smallest axis-aligned box that holds every box in `volumes`."""
        los, his = zip(*(v.corners_min_max() for v in volumes), strict=True)
        return BoundingVolume.from_min_max(np.min(los, axis=0), np.max(his, axis=0), min_half=0)

    def to_dict(self) -> dict[str, Any]:
        return {"box": list(self.box)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BoundingVolume:
        if "box" not in data:
            raise ValueError(f"only box bounding volumes are supported, got {sorted(data)}")
        return cls(box=[float(v) for v in data["box"]])


@dataclass
class Content:
    """``content``: a URI relative to the tileset JSON (a template URI under implicit tiling)
    and the index of the metadata group it belongs to."""

    uri: str
    group: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"uri": self.uri}
        if self.group is not None:
            out["group"] = self.group
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Content:
        return cls(uri=data["uri"], group=data.get("group"))


@dataclass
class ImplicitTiling:
    """``implicitTiling`` (quadtree): levels per subtree file, levels in all, and the subtree
    template URI (``{level}``, ``{x}``, ``{y}``)."""

    subtree_levels: int
    available_levels: int
    subtrees_uri: str
    subdivision_scheme: Literal["QUADTREE", "OCTREE"] = "QUADTREE"

    def to_dict(self) -> dict[str, Any]:
        return {
            "subdivisionScheme": self.subdivision_scheme,
            "subtreeLevels": self.subtree_levels,
            "availableLevels": self.available_levels,
            "subtrees": {"uri": self.subtrees_uri},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImplicitTiling:
        return cls(
            subtree_levels=int(data["subtreeLevels"]),
            available_levels=int(data["availableLevels"]),
            subtrees_uri=data["subtrees"]["uri"],
            subdivision_scheme=data["subdivisionScheme"],
        )


@dataclass
class Tile:
    """``tile``: bounding volume, geometric error (metres), refinement, optional transform
    (4×4, to the parent's frame), content and children."""

    bounding_volume: BoundingVolume
    geometric_error: float
    refine: Refine | None = None
    transform: NDArray[np.float64] | None = None
    content: Content | None = None
    children: list[Tile] = field(default_factory=list)
    implicit_tiling: ImplicitTiling | None = None

    def walk(self) -> list[Tile]:
        """This tile and every tile below it, depth first."""
        out = [self]
        for child in self.children:
            out.extend(child.walk())
        return out

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "boundingVolume": self.bounding_volume.to_dict(),
            "geometricError": float(self.geometric_error),
        }
        if self.refine is not None:
            out["refine"] = self.refine
        if self.transform is not None:
            out["transform"] = [float(v) for v in np.asarray(self.transform).T.ravel()]
        if self.content is not None:
            out["content"] = self.content.to_dict()
        if self.implicit_tiling is not None:
            out["implicitTiling"] = self.implicit_tiling.to_dict()
        if self.children:
            out["children"] = [child.to_dict() for child in self.children]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tile:
        transform = data.get("transform")
        return cls(
            bounding_volume=BoundingVolume.from_dict(data["boundingVolume"]),
            geometric_error=float(data["geometricError"]),
            refine=data.get("refine"),
            transform=None if transform is None else np.asarray(transform, float).reshape(4, 4).T,
            content=Content.from_dict(data["content"]) if "content" in data else None,
            children=[cls.from_dict(child) for child in data.get("children", [])],
            implicit_tiling=(
                ImplicitTiling.from_dict(data["implicitTiling"])
                if "implicitTiling" in data
                else None
            ),
        )


@dataclass
class Tileset:
    """The tileset JSON: asset, geometric error (metres), the root tile, and optional metadata
    (``schema``, the tileset ``metadata`` entity and ``groups``, as plain JSON objects)."""

    asset: Asset
    geometric_error: float
    root: Tile
    extensions_used: list[str] = field(default_factory=list)
    schema: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    groups: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"asset": self.asset.to_dict()}
        if self.schema is not None:
            out["schema"] = self.schema
        if self.metadata is not None:
            out["metadata"] = self.metadata
        if self.groups:
            out["groups"] = self.groups
        out["geometricError"] = float(self.geometric_error)
        out["root"] = self.root.to_dict()
        if self.extensions_used:
            out["extensionsUsed"] = list(self.extensions_used)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tileset:
        return cls(
            asset=Asset.from_dict(data["asset"]),
            geometric_error=float(data["geometricError"]),
            root=Tile.from_dict(data["root"]),
            extensions_used=list(data.get("extensionsUsed", [])),
            schema=data.get("schema"),
            metadata=data.get("metadata"),
            groups=list(data.get("groups", [])),
        )
