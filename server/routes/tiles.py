"""GET /tiles/{path} (open): the workspace's 3D Tiles (from WS/tiles or WS/tiles.3tz), with
strong ETags, 304s and gzip bodies (JSON; every deflated archive entry)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse

from server.archive import ArchiveError
from server.deps import get_state
from server.files import BadTilePath, TileFile, check_relative
from server.schemas import errors
from server.state import TwinState

router = APIRouter(tags=["tiles"])


def _cache_control(tile: TileFile) -> str:
    if tile.media_type == "application/json":
        return "public, max-age=60, must-revalidate"
    return "public, max-age=3600"


def _accepts_gzip(request: Request) -> bool:
    for item in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*") and params.replace(" ", "") not in (
            "q=0",
            "q=0.0",
        ):
            return True
    return False


def _matches(if_none_match: str, etag: str) -> bool:
    """Weak comparison (RFC 9110 §13.1.2), as If-None-Match requires."""
    if if_none_match.strip() == "*":
        return True
    wanted = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == wanted for tag in if_none_match.split(","))


@router.get(
    "/tiles/{path:path}",
    response_class=Response,
    responses={
        200: {"description": "The tile file (JSON, glb, subtree, pnts, image)"},
        304: {"description": "Not modified (If-None-Match)"},
        **errors(400, 404, 503),
    },
)
def get_tile(path: str, request: Request, state: TwinState = Depends(get_state)) -> Response:
    """A file under WS/tiles, or an entry of WS/tiles.3tz. Paths that are absolute, hold `..` or
    encoded separators, or that resolve outside the folder (symlinks) are refused."""
    try:
        relative = check_relative(path, request.scope.get("raw_path", b""))
    except BadTilePath as exc:
        raise HTTPException(400, f"bad tile path: {exc}") from None
    tile = state.tiles.find(relative)
    if tile is None:
        raise HTTPException(404, "no such tile")
    gzipped = tile.gzip and _accepts_gzip(request)
    etag = tile.gzip_etag if gzipped else tile.etag
    headers = {"ETag": etag, "Cache-Control": _cache_control(tile)}
    if tile.gzip:
        headers["Vary"] = "Accept-Encoding"
    if _matches(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers=headers)
    try:
        body = tile.body(gzipped)
    except ArchiveError as exc:
        raise HTTPException(503, f"tile archive: {exc}") from None
    if gzipped:
        headers["Content-Encoding"] = "gzip"
    if isinstance(body, Path):
        return FileResponse(body, media_type=tile.media_type, headers=headers)
    return Response(body, media_type=tile.media_type, headers=headers)
