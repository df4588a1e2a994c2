"""Request and response bodies of the HTTP API (the domain models live in `scenes.models`)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from scenes.models import Alert, Entity, Observation

MAX_BATCH = 1000


class ObservationBatch(BaseModel):
    """POST /api/observations body."""

    model_config = ConfigDict(extra="forbid")

    observations: list[Observation] = Field(min_length=1, max_length=MAX_BATCH)


class IngestResponse(BaseModel):
    accepted: int = Field(title="Observations stored")
    ids: list[str] = Field(title="Their ids, in order")
    alerts: list[str] = Field(title="Ids of the alerts they raised")


class AlertPage(BaseModel):
    items: list[Alert]
    total: int


class EntityList(BaseModel):
    items: list[Entity]
    total: int
