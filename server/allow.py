"""``OPTIONS`` and ``405`` answers that name every method a path serves (RFC 9110 §9.3.7,
§15.5.6): the router alone answers ``OPTIONS`` with a 405 and lists only the methods of the
first route it tried. CORS preflights (``Origin`` plus ``Access-Control-Request-Method``) are
answered by the CORS middleware outside this one."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.routing import RouteTable


class AllowMethods:
    """ASGI middleware: ``OPTIONS`` on a served path → 204 with ``Allow``; every 405 gets the
    full ``Allow``."""

    def __init__(self, app: ASGIApp, routes: RouteTable) -> None:
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            methods = self.routes.allowed(scope)
            if methods:
                response = Response(status_code=204, headers={"Allow": _allow(methods)})
                await response(scope, receive, send)
                return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                headers = MutableHeaders(scope=message)
                headers["Allow"] = _allow(self.routes.allowed(scope))
            await send(message)

        await self.app(scope, receive, send_with_allow)


def _allow(methods: frozenset[str]) -> str:
    return ", ".join(sorted({*methods, "OPTIONS"}))
