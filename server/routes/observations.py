"""POST /api/observations (ingest permission): store, evaluate rules, publish
(`server.ingest`, the step the MQTT bridge shares)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from server.auth import Principal, require
from server.deps import get_state
from server.ingest import ingest
from server.jsonbody import StrictJSONRoute
from server.schemas import IngestResponse, ObservationBatch, errors
from server.state import TwinState

router = APIRouter(prefix="/api", tags=["live"], route_class=StrictJSONRoute)


@router.post("/observations", response_model=IngestResponse, responses=errors(401, 403, 409, 413))
async def post_observations(
    batch: ObservationBatch,
    _: Annotated[Principal, Depends(require("ingest"))],
    state: TwinState = Depends(get_state),
) -> IngestResponse:
    """Store a batch durably (committed before the reply), update live entities, run the rules,
    and publish ``entity`` then ``alert`` messages (and coalesced ``entities`` batches, see
    server.bus). An alert whose observation has a box and whose camera pushed a recent frame
    keeps a crop of it (``evidence.crop``). A source may be named by its element id or its
    layer's own id. The whole batch is refused (nothing stored) with a 422 naming the field at
    fault when a source is not a camera or sensor of the catalog or a time lies outside
    ``TWIN_MAX_OBSERVATION_AGE_S`` before / ``TWIN_MAX_CLOCK_SKEW_S`` after the server's
    clock, and with a 409 naming the id when an observation id is given twice or is already
    stored."""
    result = await ingest(state, batch.observations)
    return IngestResponse(
        accepted=len(result.observations),
        ids=[obs.id or "" for obs in result.observations],
        alerts=[alert.id for alert in result.alerts],
    )
