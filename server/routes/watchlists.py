"""Watchlists (admin): add and remove entries, list them as keyed hashes. Clear values come in
(request body or path) and are hashed at once; no response carries one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from scenes.errors import SceneError
from scenes.watchlist import Entry, WatchlistStore
from server.auth import Principal, require
from server.deps import get_state
from server.jsonbody import StrictJSONRoute
from server.schemas import errors
from server.state import TwinState
from twin.errors import NotFoundError

router = APIRouter(
    prefix="/api/watchlists",
    tags=["watchlists"],
    route_class=StrictJSONRoute,
    responses=errors(401, 403, 404),
)
Admin = Annotated[Principal, Depends(require("admin"))]
ListName = Annotated[str, Path(max_length=64, description="suspended-licences | wanted-persons")]


class EntryIn(BaseModel):
    """POST body: the clear identifier (a plate or an identity token) and why it is listed."""

    model_config = ConfigDict(extra="forbid")

    value: str = Field(min_length=1, max_length=128, title="Plate or identity token (clear)")
    reason: str = Field(default="", max_length=500, title="Why it is on the list")


class WatchlistView(BaseModel):
    """A list's entries (keyed hashes with masked forms) and how many there are."""

    name: str
    count: int
    entries: list[Entry]


def _store(state: TwinState) -> WatchlistStore:
    if state.live.watchlists is None:
        raise SceneError("watchlists are not configured")
    return state.live.watchlists


@router.post("/{list_name}/entries", response_model=Entry, status_code=201, responses=errors(413))
async def add_entry(
    list_name: ListName, body: EntryIn, who: Admin, state: TwinState = Depends(get_state)
) -> Entry:
    """Put a value on the list (effective for the next observation); returns its hash."""
    store = _store(state)
    return await run_in_threadpool(
        store.add, list_name, body.value, reason=body.reason, by=who.label
    )


@router.delete("/{list_name}/entries/{value}", status_code=204, response_class=Response)
async def remove_entry(
    list_name: ListName,
    value: Annotated[str, Path(min_length=1, max_length=128)],
    _: Admin,
    state: TwinState = Depends(get_state),
) -> Response:
    """Take a value off the list; 404 when it was not on it."""
    if not await run_in_threadpool(_store(state).remove, list_name, value):
        raise NotFoundError(f"the value is not on {list_name}")  # the clear value is not echoed
    return Response(status_code=204)


@router.get("/{list_name}", response_model=WatchlistView)
async def get_list(
    list_name: ListName, _: Admin, state: TwinState = Depends(get_state)
) -> WatchlistView:
    """The entries as keyed hashes with masked forms, newest first."""
    entries = await run_in_threadpool(_store(state).entries, list_name)
    return WatchlistView(name=list_name, count=len(entries), entries=entries)
