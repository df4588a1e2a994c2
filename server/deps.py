"""Request-scoped access to the shared state."""

from __future__ import annotations

from fastapi import Request

from server.state import TwinState


def get_state(request: Request) -> TwinState:
    state: TwinState = request.app.state.twin
    return state
