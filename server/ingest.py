"""Ingest a batch of observations and publish what it did: the one step behind ``POST
/api/observations`` and the MQTT bridge, so both store, evaluate, count and publish alike."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from scenes.live import IngestResult
from scenes.models import Observation
from server.publish import publish_ingest
from server.state import TwinState


async def ingest(state: TwinState, observations: Sequence[Observation]) -> IngestResult:
    """Store `observations` durably (`scenes.live.LiveService.ingest`, committed before it
    returns; alert crops from the cameras' recent frames), mark their feeds seen, count them,
    and publish ``entity`` then ``alert`` messages (and coalesced ``entities`` batches, see
    server.bus). With rules shared by several processes (`server.rules`), the batch is stored
    here and the leader raises and publishes its alerts. Raises the service's `SceneError`s
    (nothing stored)."""
    if state.rules is not None:  # several processes: the rules leader raises and publishes
        result = await run_in_threadpool(state.rules.ingest, observations)
    else:
        result = await run_in_threadpool(state.live.ingest, observations, state.crops)
    state.feeds.seen(obs.source for obs in result.observations)
    counters = state.metrics
    counters.observations.inc(len(result.observations))
    for alert in result.alerts:
        counters.alert(alert.app, alert.status.value)
    publish_ingest(state.bus, result, alerts=state.rules is None)
    return result
