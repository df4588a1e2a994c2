"""The access log and request metrics: one ASGI middleware around the whole app times every
HTTP request and, once it is answered, counts it (`server.metrics`) and logs it on
``twin.access`` with its route template, status, latency and the caller's role. The log
never holds a token: no query string (a ``?token=`` may be there) and no header."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import Principal
from server.metrics import Metrics
from server.routing import RouteTable

log = logging.getLogger("twin.access")
MAX_PATH = 300  # characters of a path written to the log (escaped: one request, one line)


class AccessLog:
    """ASGI middleware: count and log every answered HTTP request."""

    def __init__(self, app: ASGIApp, routes: RouteTable, metrics: Metrics) -> None:
        self.app, self.routes, self.metrics = app, routes, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the client gets when the app fails before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            seconds = time.perf_counter() - start
            route, method = self.routes.label(scope), scope["method"]
            path = scope["path"][:MAX_PATH].encode("unicode_escape").decode("ascii")
            self.metrics.request(route, method, status, seconds)
            principal = scope.get("state", {}).get("principal")
            role = principal.role if isinstance(principal, Principal) else None
            log.info(
                "%s %s %d %.1f ms %s", method, path, status, seconds * 1000.0, role or "-",
                extra={"method": method, "route": route, "path": path,
                       "status": status, "latency_ms": round(seconds * 1000.0, 3),
                       "role": role, "client": (scope.get("client") or ("-",))[0]},
            )  # fmt: skip
