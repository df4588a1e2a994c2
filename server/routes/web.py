"""The war-room page: ``/`` → web/index.html, ``/app/`` → web/src, ``/cesium/`` → CesiumJS's
build from npm, ``/config.json`` → the server settings the page follows (when live entities
fade and leave the map). Open (no token). Without ``make install`` the page answers 503
saying so."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

WEB_ROOT = Path(__file__).resolve().parent.parent.parent / "web"
CESIUM_BUILD = Path("node_modules") / "cesium" / "Build" / "Cesium"

_MISSING = """<!doctype html><html><head><meta charset="utf-8"><title>Not installed</title></head>
<body><h1>The web page is not installed</h1><p>{what} is missing. Run <code>make install</code>
in the repository, then restart the server.</p></body></html>"""


def mount_web(app: FastAPI, web_root: Path = WEB_ROOT) -> None:
    """Add the page routes and static mounts to `app` (missing parts answer 503)."""
    index = web_root / "index.html"
    cesium = web_root / CESIUM_BUILD
    router = APIRouter(tags=["web"], include_in_schema=False)

    @router.get("/")
    def page() -> Response:
        for needed in (index, cesium / "Cesium.js"):
            if not needed.is_file():
                return HTMLResponse(_MISSING.format(what=needed.name), status_code=503)
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    @router.get("/config.json")
    def config(request: Request) -> dict[str, float]:
        settings = request.app.state.twin.settings
        return {"entity_stale_s": settings.entity_stale_s, "live_ttl_s": settings.live_ttl_s}

    app.include_router(router)
    if (web_root / "src").is_dir():
        app.mount("/app", StaticFiles(directory=web_root / "src"), name="app")
    if cesium.is_dir():
        app.mount("/cesium", StaticFiles(directory=cesium), name="cesium")
