"""GET /readyz (open): whether this server can do its work now — its live store answers, its
bus carries messages — and which feeds (catalog cameras and sensors) have sent nothing for
``TWIN_FEED_STALE_S``. 200 while ready (``ok``, or ``degraded`` with stale feeds), 503 when a
check fails. Stale feed ids are listed for callers with read permission; others get counts.
/healthz stays the cheap liveness probe."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from server.auth import OPTIONAL_BEARER, bearer_token
from server.deps import get_state
from server.state import TwinState

router = APIRouter(tags=["health"])
STORE_TIMEOUT_S = 2.0
Status = Literal["ok", "degraded", "fail"]


class Check(BaseModel):
    status: Status
    detail: str = Field(title="What was checked, or why it failed")
    figures: dict[str, float] = Field(default_factory=dict, title="Numbers behind the status")


class Feeds(BaseModel):
    status: Status = Field(title="degraded when a feed is stale")
    total: int = Field(title="Catalog cameras and sensors")
    stale_count: int
    stale_after_s: float = Field(title="TWIN_FEED_STALE_S")
    stale: list[str] | None = Field(title="Ids of the stale feeds (null without read permission)")


class Readiness(BaseModel):
    status: Status = Field(title="fail: some check failed (503); degraded: stale feeds")
    store: Check
    bus: Check
    feeds: Feeds


def _store_answers(state: TwinState) -> float:
    """One read of the live store (raises sqlite3.Error); returns the WAL size in bytes."""
    with state.live.store.snapshot() as db:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
    return float(state.live.store.wal_bytes())


async def _store_check(state: TwinState) -> Check:
    try:
        wal = await asyncio.wait_for(run_in_threadpool(_store_answers, state), STORE_TIMEOUT_S)
    except TimeoutError:
        return Check(status="fail", detail=f"live store did not answer in {STORE_TIMEOUT_S} s")
    except Exception as exc:  # any failure of the store is a failed check, not a 500
        return Check(status="fail", detail=f"live store: {type(exc).__name__}: {exc}")
    return Check(status="ok", detail="live store answers a read", figures={"wal_bytes": wal})


def _bus_check(state: TwinState) -> Check:
    stats = state.bus.stats()
    figures = {
        "subscribers": float(stats["subscribers"]),
        "queued": float(sum(c["queued"] for c in stats["clients"])),
        "dropped": float(stats["totals"]["dropped"]),
    }
    return Check(status="ok", detail="in-process bus", figures=figures)


def _may_read(state: TwinState, token: str | None) -> bool:
    if not token:
        return state.tokens.public_read
    principal = state.tokens.lookup(token)
    return principal is not None and principal.can("read")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness}},
    openapi_extra=OPTIONAL_BEARER,
)
async def readyz(request: Request, state: TwinState = Depends(get_state)) -> JSONResponse:
    """Store, bus and feed status (see the module docstring)."""
    stale = state.feeds.stale()
    feeds = Feeds(
        status="degraded" if stale else "ok", total=len(state.feeds.ages()),
        stale_count=len(stale), stale_after_s=state.feeds.stale_s,
        stale=stale if _may_read(state, bearer_token(request)) else None,
    )  # fmt: skip
    store, bus = await _store_check(state), _bus_check(state)
    statuses = {store.status, bus.status, feeds.status}
    overall: Status = next(s for s in ("fail", "degraded", "ok") if s in statuses)
    body = Readiness(status=overall, store=store, bus=bus, feeds=feeds)
    return JSONResponse(body.model_dump(mode="json"), 503 if overall == "fail" else 200)
