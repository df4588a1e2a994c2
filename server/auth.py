"""Bearer-token access: token → role from settings, role → permissions from
`twin.settings.ROLE_PERMISSIONS`. Tokens are compared in constant time and never logged; a
principal is known by a label (role plus a short hash of its token)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException, Request, status

from twin.settings import ROLE_PERMISSIONS, TwinSettings


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
            raise _unauthorized("missing bearer token")
        principal = self.lookup(token)
        if principal is None:
            raise _unauthorized("invalid token")
        if not principal.can(permission):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"role '{principal.role}' may not {permission}"
            )
        return principal


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"}
    )


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if any."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require(permission: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that admits callers whose role has `permission` ('read', 'ingest', ...)."""

    async def dependency(request: Request) -> Principal:
        tokens: TokenTable = request.app.state.twin.tokens
        return tokens.resolve(bearer_token(request), permission)

    return dependency
