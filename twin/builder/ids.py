"""Stable element ids: ``{kind}:{source id}`` (docs/architecture.md, "Element ids").

The source id is the layer's id column as text (integral numbers without ``.0``). A feature
without one gets ``g`` + the first 12 hex digits of the SHA-1 of its geometry's WKB, with lon/lat
rounded to 1e-7 degrees, so the same source always gives the same ids. Repeated ids in one layer
get ``~2``, ``~3``... in file order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

HASH_DIGITS = 12
HASH_DECIMALS = 7


def source_id_text(value: Any) -> str | None:
    """The id column's value as text; None for missing, NaN or blank values."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    text = str(value).strip()
    return text or None


def geometry_id(geometry: BaseGeometry | None) -> str:
    """``g`` + 12 hex digits of the SHA-1 of the geometry's 2D WKB, lon/lat rounded to 1e-7°."""
    if geometry is None or geometry.is_empty:
        return "g" + "0" * HASH_DIGITS
    rounded = shapely.transform(geometry, lambda xy: np.round(xy, HASH_DECIMALS))
    wkb = shapely.to_wkb(rounded, output_dimension=2, byte_order=1)
    return "g" + hashlib.sha1(wkb).hexdigest()[:HASH_DIGITS]


def element_ids(
    kind: str, source_ids: Sequence[str | None], geometries: Iterable[BaseGeometry | None]
) -> list[str]:
    """One id per feature, in file order: ``kind:source_id`` (or the geometry hash), with
    ``~2``, ``~3``... appended to repeats."""
    seen: dict[str, int] = {}
    ids = []
    for source_id, geometry in zip(source_ids, geometries, strict=True):
        base = f"{kind}:{source_id if source_id is not None else geometry_id(geometry)}"
        n = seen.get(base, 0) + 1
        seen[base] = n
        ids.append(base if n == 1 else f"{base}~{n}")
    return ids
