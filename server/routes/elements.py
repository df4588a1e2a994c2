"""Element search, the one-click record and picking (read permission)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from server.auth import Principal, require
from server.deps import get_state
from server.errors import invalid
from server.records import element_record
from server.schemas import Offset, errors
from server.state import TwinState
from twin.catalog import KINDS
from twin.errors import NotFoundError

router = APIRouter(prefix="/api", tags=["elements"], responses=errors(401, 403))
Reader = Annotated[Principal, Depends(require("read"))]


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """``minlon,minlat,maxlon,maxlat`` (deg) → tuple; a 422 naming ``bbox`` when malformed."""
    if text is None or text == "":
        return None
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or any(v != v for v in values):
        raise invalid("bbox", "must be 'minlon,minlat,maxlon,maxlat' (4 numbers, deg)", text)
    minlon, minlat, maxlon, maxlat = values
    if not (-180 <= minlon <= maxlon <= 180 and -90 <= minlat <= maxlat <= 90):
        raise invalid(
            "bbox", "must have -180<=minlon<=maxlon<=180 and -90<=minlat<=maxlat<=90", text
        )
    return minlon, minlat, maxlon, maxlat


@router.get("/elements")
def search_elements(
    _: Reader,
    state: TwinState = Depends(get_state),
    q: Annotated[str | None, Query(max_length=200, description="Text in name or id")] = None,
    kind: Annotated[
        str | None, Query(pattern=f"^({'|'.join(KINDS)})$", description="Element kind")
    ] = None,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (deg)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Offset = 0,
    geometry: Annotated[bool, Query(description="Include GeoJSON geometry")] = True,
) -> dict[str, Any]:
    """Search the catalog: ``{"items": [...], "total": N, "more": bool}``. A text query
    ranks and counts at most its first 1,000 matches; ``more`` says it matched more."""
    found = state.catalog.search(q=q, kind=kind, bbox=parse_bbox(bbox), limit=limit,
                                 offset=offset)  # fmt: skip
    return {"items": [el.to_dict(with_geometry=geometry) for el in found.items],
            "total": found.total, "more": found.more}  # fmt: skip


@router.get("/elements/{element_id:path}", responses=errors(404))
async def get_element(
    element_id: str, _: Reader, state: TwinState = Depends(get_state)
) -> dict[str, Any]:
    """The one-click record of an element; 404 for an unknown id."""
    el = await run_in_threadpool(state.catalog.get, element_id)
    if el is None:
        raise NotFoundError(f"no element '{element_id}'")
    return await run_in_threadpool(element_record, state, el)


@router.get("/pick", responses=errors(404))
async def pick(
    _: Reader,
    lon: Annotated[float, Query(ge=-180, le=180, description="Longitude, deg")],
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude, deg")],
    state: TwinState = Depends(get_state),
) -> dict[str, Any]:
    """The record of the element a click at lon/lat means; 404 when nothing is there."""
    el = await run_in_threadpool(state.catalog.pick, lon, lat)
    if el is None:
        raise NotFoundError(f"nothing at {lon:.7f}, {lat:.7f}")
    return await run_in_threadpool(element_record, state, el)
