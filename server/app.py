"""The FastAPI app: a thin layer that wires routers over `twin` (catalog, cameras) and `scenes`
(live store, rules, alerts). `create_app` is the factory; `serve` runs it with uvicorn."""

from __future__ import annotations

import errno
import gc
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from uvicorn.supervisors import Multiprocess

from server.access import AccessLog
from server.allow import AllowMethods
from server.collector import StateCollector
from server.errors import add_exception_handlers
from server.files import BINARY_TYPES
from server.limits import GuardBodies, body_limits
from server.logs import log_config
from server.mqtt import bridging, configured_broker
from server.routes import (
    alerts,
    apps,
    cameras,
    elements,
    health,
    history,
    live,
    metrics,
    observations,
    ready,
    tiles,
    watchlists,
    websocket,
)
from server.routes.web import mount_web
from server.routing import RouteTable
from server.settings import TwinSettings
from server.state import TwinState
from server.webhooks import forwarding
from twin.errors import TwinError

# Allocations between young collections, and young/middle collections per older one. Python's
# defaults (700, 10, 10) run a full collection every ~70 k net allocations: with the catalog,
# rules and live state in memory that pauses the event loop for 50-70 ms under ingest load.
GC_THRESHOLDS = (20_000, 50, 100)
WORKSPACE_ENV = "TWIN_SERVE_WORKSPACE"  # the workspace a `--workers N` worker opens


def create_app(ws: Path, settings: TwinSettings | None = None) -> FastAPI:
    """An app serving workspace `ws`. Opens the workspace and rules now, so a bad workspace or
    rule file fails here (WorkspaceError / RuleError), not on the first request."""
    settings = settings or TwinSettings()
    broker = configured_broker(settings)  # a bad TWIN_MQTT_URL fails here
    state = TwinState.open(Path(ws), settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _calm_garbage_collector()
        await state.start()
        try:
            async with forwarding(state.bus, state.webhooks), bridging(state, broker):
                yield
        finally:
            await state.stop()
            state.close()

    app = FastAPI(
        title=f"District twin · {state.manifest.name}",
        version="0.1.0",
        description="3D Tiles, element catalog, live observations, alerts and the war-room page.",
        lifespan=lifespan,
    )
    app.state.twin = state
    add_middlewares(app, state)
    add_exception_handlers(app)
    state.metrics.registry.register(StateCollector(state))
    for module in (
        health, ready, metrics, tiles, elements, observations, alerts, apps, watchlists, live,
        websocket, cameras, history,
    ):  # fmt: skip
        app.include_router(module.router)
    mount_web(app)
    return app


def add_middlewares(app: FastAPI, state: TwinState) -> None:
    """From the outside in: the access log and request metrics (`server.access`), CORS,
    ``OPTIONS``/``Allow`` (`server.allow`), body limits and the token check before a body is
    read (`server.limits`), gzip."""
    settings, routes = state.settings, RouteTable(app.router.routes)
    origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    app.add_middleware(
        GZipMiddleware, minimum_size=1000, exclude_content_types=tuple(sorted(BINARY_TYPES))
    )
    app.add_middleware(GuardBodies, routes=routes, limits=body_limits(settings),
                       tokens=state.tokens)  # fmt: skip
    app.add_middleware(AllowMethods, routes=routes)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST", "PUT", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "If-None-Match"],
        expose_headers=["ETag", "Content-Encoding"],
    )
    app.add_middleware(AccessLog, routes=routes, metrics=state.metrics)


def _calm_garbage_collector() -> None:
    """Move what start-up loaded (catalog, rules, meshes, modules) out of the collector's
    sight (`gc.freeze`) and collect less often (`GC_THRESHOLDS`): the garbage of a request is
    freed by reference counting, and rare cycles wait a little longer. Cuts the ingest
    latency tail (full collections scanned everything loaded)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to `host`:`port` and listening, so a busy port fails before anything
    starts (a demo's feeds, its printed URL); `TwinError` with a hint when it cannot be had."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise TwinError(
                f"port {port} on {host} is already in use",
                hint="another server holds it (an earlier 'twin serve'?): stop it, or pass "
                "--port with a free port",
            ) from None
        raise TwinError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    sock.set_inheritable(True)
    return sock


def serve(ws: Path, settings: TwinSettings, sock: socket.socket | None = None) -> None:
    """Serve workspace `ws` on `sock` (default: `listen` on ``settings.host:settings.port``)
    until interrupted (blocking), in ``settings.workers`` processes sharing the socket.

    WebSocket messages go out uncompressed: permessage-deflate keeps a compressor per socket, so
    each message would be compressed once per client on the event loop (most of its time under
    load, measured with bench/ingest.py), while the text is otherwise built once for all."""
    sock = sock or listen(settings.host, settings.port)
    options: dict[str, Any] = {"log_config": log_config(settings.log_format),
                               "access_log": False, "ws_per_message_deflate": False}  # fmt: skip
    if settings.workers > 1:  # each worker opens the workspace (TwinSettings from the env)
        os.environ[WORKSPACE_ENV] = str(Path(ws).resolve())
        config = uvicorn.Config(
            "server.app:app_from_environment", factory=True, workers=settings.workers, **options
        )
        Multiprocess(config, sockets=[sock]).run()
        return
    config = uvicorn.Config(create_app(ws, settings), **options)
    uvicorn.Server(config).run(sockets=[sock])


def app_from_environment() -> FastAPI:
    """The app of one worker of ``twin serve --workers N``: the workspace named by the parent
    process, settings from the environment."""
    return create_app(Path(os.environ[WORKSPACE_ENV]), TwinSettings())
