"""GET /healthz (open): liveness plus the district name and element count. GET /api/me: who the
caller is (role) and what that role may do, so a page shows only the controls it can use."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from server.auth import Principal, require
from server.deps import get_state
from server.schemas import errors
from server.settings import ROLE_PERMISSIONS
from server.state import TwinState

router = APIRouter(tags=["health"])


class Me(BaseModel):
    """The caller: role, log label and permissions (see `server.settings.ROLE_PERMISSIONS`)."""

    role: str | None = Field(title="Role of the token; None for anonymous public reads")
    label: str = Field(title="How the server names the caller in records and logs")
    permissions: list[str] = Field(
        title="What the role may do: read, alerts (alert actions), ingest, admin (apps, watchlists)"
    )


@router.get("/healthz")
def healthz(state: TwinState = Depends(get_state)) -> dict[str, Any]:
    """Open and cheap (figures the history mover measured on its last pass): ``{"status":
    "ok" | "warning", "name": district, "elements": N, "disk": {workspace_bytes,
    archive_bytes, archive_files, budget_bytes}, "warnings": [...]}``; a warning from 90 % of
    the disk budget (``TWIN_DISK_BUDGET_GB``)."""
    history = state.mover.status
    warnings = [history.warning] if history.warning else []
    return {
        "status": "warning" if warnings else "ok",
        "name": state.manifest.name,
        "elements": sum(state.manifest.counts.values()),
        "disk": {
            "workspace_bytes": history.workspace_bytes,
            "archive_bytes": history.archive_bytes,
            "archive_files": history.archive_files,
            "budget_bytes": history.budget_bytes,
        },
        "warnings": warnings,
    }


@router.get("/api/me", response_model=Me, responses=errors(401))
def me(who: Annotated[Principal, Depends(require("read"))]) -> Me:
    """The caller's role and permissions; 401 without a valid token (unless public reads are
    on: then an anonymous caller may read)."""
    permissions = ROLE_PERMISSIONS.get(who.role, frozenset()) if who.role else {"read"}
    return Me(role=who.role, label=who.label, permissions=sorted(permissions))
