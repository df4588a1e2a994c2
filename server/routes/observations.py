"""POST /api/observations (ingest permission): store, evaluate rules, publish."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from server.auth import Principal, require
from server.crops import frame_crops
from server.deps import get_state
from server.schemas import IngestResponse, ObservationBatch
from server.state import TwinState

router = APIRouter(prefix="/api", tags=["live"])


@router.post("/observations", response_model=IngestResponse)
async def post_observations(
    batch: ObservationBatch,
    _: Annotated[Principal, Depends(require("ingest"))],
    state: TwinState = Depends(get_state),
) -> IngestResponse:
    """Store a batch durably (committed before the reply), update live entities, run the rules,
    and publish ``entity`` then ``alert`` messages (and coalesced ``entities`` batches, see
    server.bus). An alert whose observation has a box and whose camera pushed a recent frame
    keeps a crop of it (``evidence.crop``). A source that is not a camera or sensor of the
    catalog rejects the whole batch with 422."""
    result = await run_in_threadpool(state.live.ingest, batch.observations, frame_crops(state))
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
