"""Element records, search and picking from the workspace alone (no server), shaped as the
server's answers: `record` as ``GET /api/elements/{id}``, `search` as ``GET /api/elements``,
`pick` as ``GET /api/pick``. Offline there is no live store, so ``recent_events`` and
``nearby`` are empty."""

from __future__ import annotations

from typing import Any, Protocol

from twin.catalog import Element
from twin.viewer.district import District


class Records(Protocol):
    """Where the viewer gets records: the workspace offline, the server when connected."""

    def record(self, element_id: str) -> dict[str, Any] | None:
        """The one-click record of an element, None when there is no such element."""
        ...

    def search(self, q: str, limit: int = 50) -> list[dict[str, Any]]:
        """Elements whose name or id contains `q` (API item dicts, with geometry)."""
        ...

    def pick(self, lon: float, lat: float) -> dict[str, Any] | None:
        """The record of what a click at lon/lat (deg) means, None when nothing is there."""
        ...


def _brief(el: Element | None, *extra: str) -> dict[str, Any] | None:
    if el is None:
        return None
    brief: dict[str, Any] = {"id": el.id, "name": el.name}
    for key in extra:
        brief[key] = getattr(el, key)
    return brief


class WorkspaceRecords:
    """`Records` answered from the district's catalog and camera rig."""

    def __init__(self, district: District) -> None:
        self.district = district

    def _record(self, el: Element) -> dict[str, Any]:
        catalog = self.district.catalog
        record = el.to_dict()
        record["jurisdiction"] = _brief(
            catalog.get(el.jurisdiction_id) if el.jurisdiction_id else None, "unit"
        )
        record["site"] = _brief(catalog.get(el.site_id) if el.site_id else None)
        record["cameras"] = self.district.rig.cameras_seeing(el)
        record["recent_events"] = []
        record["nearby"] = []
        return record

    def record(self, element_id: str) -> dict[str, Any] | None:
        el = self.district.catalog.get(element_id)
        return None if el is None else self._record(el)

    def search(self, q: str, limit: int = 50) -> list[dict[str, Any]]:
        found = self.district.catalog.search(q=q or None, limit=limit)
        return [el.to_dict() for el in found.items]

    def pick(self, lon: float, lat: float) -> dict[str, Any] | None:
        el = self.district.catalog.pick(lon, lat)
        return None if el is None else self._record(el)
