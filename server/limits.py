"""Request bodies bounded before they are read, and writes without a valid token refused
before their body is read.

Each route class has its own limit (`body_limits`): an observation batch, a camera frame,
everything else (PTZ moves, telemetry, app settings: small JSON). A request whose
``Content-Length`` passes its limit is answered 413 at once; one sent in chunks is cut off
with a 413 as soon as the bytes read pass it. A ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` under
``/api`` (every one needs a token with a role) without a valid bearer token is answered 401
before any of its body is read; the role's permission (403) is checked by the route.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fastapi import HTTPException, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.auth import TokenTable, unauthorized_detail
from server.routing import RouteTable
from server.settings import TwinSettings

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
KIB = 1024


@dataclass(frozen=True)
class BodyLimits:
    """Most bytes of a request body per route (path template), and for any other route."""

    by_route: Mapping[str, int]
    default: int

    def limit(self, route: str) -> int:
        return self.by_route.get(route, self.default)


def body_limits(settings: TwinSettings) -> BodyLimits:
    """The limits the settings give: observations, frames, everything else."""
    return BodyLimits(
        by_route={
            "/api/observations": int(settings.max_observations_body_mib * KIB * KIB),
            "/api/cameras/{camera_id}/frame": int(settings.max_frame_mib * KIB * KIB),
        },
        default=int(settings.max_body_kib * KIB),
    )


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit; an HTTPException, so
    FastAPI's body parsing lets it through and it is answered 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"request body over {limit:,} bytes"
        )


class GuardBodies:
    """ASGI middleware applying `BodyLimits` and the token check before any body is read."""

    def __init__(
        self, app: ASGIApp, routes: RouteTable, limits: BodyLimits, tokens: TokenTable
    ) -> None:
        self.app, self.routes, self.limits, self.tokens = app, routes, limits, tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        limit = self.limits.limit(self.routes.label(scope))
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            too_large = declared.isdigit()
            code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if too_large else 400
            detail = BodyTooLarge(limit).detail if too_large else "bad Content-Length"
            await JSONResponse({"detail": detail}, code)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)

    def _refusal(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        """A 401 for a write under /api without a valid bearer token, else None."""
        if scope["method"] not in WRITE_METHODS or not scope["path"].startswith("/api/"):
            return None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        if token and self.tokens.lookup(token) is not None:
            return None
        return JSONResponse(
            {"detail": unauthorized_detail(token)}, 401, headers={"WWW-Authenticate": "Bearer"}
        )
