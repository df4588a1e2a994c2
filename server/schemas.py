"""Request and response bodies of the HTTP API (the domain models live in `scenes.models`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from scenes.models import Alert, Entity, Observation

MAX_BATCH = 1000
MAX_OFFSET = 1_000_000
"""Deepest page start of a listing (SQLite refuses offsets past 2**63 - 1 with a crash)."""
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]


class ErrorBody(BaseModel):
    """Every error but a 422: a one-line message and, for a domain error, its kind."""

    detail: str = Field(title="What went wrong, one line")
    error: str | None = Field(default=None, title="Exception name of a domain error")


ERROR_DESCRIPTIONS = {
    400: "Malformed request (header, path)",
    401: "No valid bearer token (writes are refused before their body is read)",
    403: "The token's role may not do this",
    404: "No such thing",
    409: "Conflicts with the current state (an alert's status, an observation id taken)",
    413: "Body over its limit (TWIN_MAX_*), refused before it is read",
    415: "Unsupported media type",
    503: "The workspace cannot serve this now",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for error statuses a route can answer (body `ErrorBody`)."""
    return {code: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


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
