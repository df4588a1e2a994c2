"""GET /healthz (open): liveness plus the district name and element count. GET /api/me: who the
caller is (role) and what that role may do, so a page shows only the controls it can use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from server.auth import Principal, require
from server.deps import get_state
from server.state import TwinState
from twin.settings import ROLE_PERMISSIONS

router = APIRouter(tags=["health"])


class Me(BaseModel):
    """The caller: role, log label and permissions (see `twin.settings.ROLE_PERMISSIONS`)."""

    role: str | None = Field(title="Role of the token; None for anonymous public reads")
    label: str = Field(title="How the server names the caller in records and logs")
    permissions: list[str] = Field(
        title="What the role may do: read, alerts (alert actions), ingest, admin (apps, watchlists)"
    )


@router.get("/healthz")
def healthz(state: TwinState = Depends(get_state)) -> dict[str, Any]:
    """Open: ``{"status": "ok", "name": district, "elements": N}``."""
    return {
        "status": "ok",
        "name": state.manifest.name,
        "elements": sum(state.manifest.counts.values()),
    }


@router.get("/api/me", response_model=Me)
def me(who: Annotated[Principal, Depends(require("read"))]) -> Me:
    """The caller's role and permissions; 401 without a valid token (unless public reads are
    on: then an anonymous caller may read)."""
    permissions = ROLE_PERMISSIONS.get(who.role, frozenset()) if who.role else {"read"}
    return Me(role=who.role, label=who.label, permissions=sorted(permissions))
