"""GET /healthz (open): liveness plus the district name and element count."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from server.deps import get_state
from server.state import TwinState

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz(state: TwinState = Depends(get_state)) -> dict[str, Any]:
    """Open: ``{"status": "ok", "name": district, "elements": N}``."""
    return {
        "status": "ok",
        "name": state.manifest.name,
        "elements": sum(state.manifest.counts.values()),
    }
