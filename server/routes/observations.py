"""POST /api/observations (ingest permission): store, evaluate rules, publish."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from server.auth import Principal, require
from server.crops import frame_crops
from server.deps import get_state
from server.jsonbody import StrictJSONRoute
from server.metrics import server_metrics
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
    result = await run_in_threadpool(state.live.ingest, batch.observations, frame_crops(state))
    state.feeds.seen(obs.source for obs in result.observations)
    counters = server_metrics(state)
    counters.observations.inc(len(result.observations))
    for alert in result.alerts:
        counters.alert(alert.app, alert.status.value)
    if state.bus.wants("entity"):
        for entity in result.entities:
            state.bus.publish("entity", entity.model_dump(mode="json"))
    for alert in result.alerts:
        state.bus.publish("alert", alert.model_dump(mode="json"))
    state.bus.publish_entities(
        zip((e.id for e in result.entities), result.entity_json, strict=True)
    )
    return IngestResponse(
        accepted=len(result.observations),
        ids=[obs.id or "" for obs in result.observations],
        alerts=[alert.id for alert in result.alerts],
    )
