"""Bearer-token access: token → role from settings, role → permissions from
`server.settings.ROLE_PERMISSIONS`. Tokens are compared in constant time and never logged; a
principal is known by a label (role plus a short hash of its token)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.settings import ROLE_PERMISSIONS, TwinSettings


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role (None for anonymous public reads) and a label fit for logs."""

    role: str | None
    label: str

    def can(self, permission: str) -> bool:
        return self.role is not None and permission in ROLE_PERMISSIONS.get(self.role, frozenset())


ANONYMOUS = Principal(None, "anonymous")


class TokenTable:
    """The configured tokens; `lookup` compares against every one in constant time."""

    def __init__(self, settings: TwinSettings) -> None:
        self._entries = [(token.encode(), role) for token, role in settings.token_roles.items()]
        self.public_read = settings.public_read

    def lookup(self, token: str) -> Principal | None:
        """The principal for `token`, or None when it is not configured."""
        given = token.encode()
        found: str | None = None
        for known, role in self._entries:
            if hmac.compare_digest(known, given):
                found = role
        if found is None:
            return None
        digest = hashlib.sha256(given).hexdigest()[:8]
        return Principal(found, f"{found}#{digest}")

    def resolve(self, token: str | None, permission: str) -> Principal:
        """The principal allowed `permission` with `token`; raise 401/403 otherwise.

        Without a token, public reads (``settings.public_read``) are allowed anonymously."""
        if not token:
            if permission == "read" and self.public_read:
                return ANONYMOUS
            raise _unauthorized(unauthorized_detail(token))
        principal = self.lookup(token)
        if principal is None:
            raise _unauthorized(unauthorized_detail(token))
        if not principal.can(permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role '{principal.role}' may not {permission}"
            )
        return principal


def unauthorized_detail(token: str | None) -> str:
    """Why a request was refused with 401: no token, or one that is not configured."""
    return "invalid token" if token else "missing bearer token"


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="A token of TWIN_TOKENS: `Authorization: Bearer <token>`",
)
"""The OpenAPI security scheme of every /api route (reads may be open: TWIN_PUBLIC_READ)."""
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)]
OPTIONAL_BEARER: dict[str, Any] = {"security": [{}, {BEARER.scheme_name: []}]}
"""OpenAPI ``security`` of a route open to all that says more to a token (``openapi_extra``)."""


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency that admits callers whose role has `permission` ('read', 'ingest', ...);
    the principal is kept in the request state for the access log (`server.access`)."""

    async def dependency(request: Request, credentials: Credentials) -> Principal:
        tokens: TokenTable = request.app.state.twin.tokens
        principal = tokens.resolve(credentials.credentials if credentials else None, permission)
        request.state.principal = principal
        return principal

    return dependency
