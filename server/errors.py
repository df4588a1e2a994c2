"""One table from domain exceptions to HTTP status codes; domain code never imports FastAPI.

Every error body is ``{"detail": message, "error": ExceptionName}``; request validation keeps
FastAPI's 422 body (``detail`` lists each field at fault with its ``loc``).
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from scenes.errors import (
    AlertNotFound,
    AlertTransitionError,
    AppConfigError,
    AppNotFound,
    RuleError,
    SceneError,
    UnknownSourceError,
    WatchlistNotFound,
    WatchlistValueError,
)
from tiles.errors import TilesError
from twin.errors import InputError, NotFoundError, TwinError, WorkspaceError

# Most specific first: the first class an error is an instance of gives its status.
STATUS_CODES: tuple[tuple[type[Exception], int], ...] = (
    (NotFoundError, 404),
    (AlertNotFound, 404),
    (AlertTransitionError, 409),
    (AppNotFound, 404),
    (WatchlistNotFound, 404),
    (AppConfigError, 422),
    (WatchlistValueError, 422),
    (UnknownSourceError, 422),
    (InputError, 422),
    (WorkspaceError, 503),
    (RuleError, 500),
    (SceneError, 500),
    (TilesError, 500),
    (TwinError, 500),
)


def status_for(exc: Exception) -> int:
    """HTTP status for a domain exception (500 when unmapped)."""
    for cls, status in STATUS_CODES:
        if isinstance(exc, cls):
            return status
    return 500


def _message(exc: Exception) -> str:
    return exc.one_line() if isinstance(exc, TwinError) else " ".join(str(exc).split())


async def domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": _message(exc), "error": type(exc).__name__}, status_code=status_for(exc)
    )


def add_exception_handlers(app: FastAPI) -> None:
    """Register the table on `app`."""
    for root in (TwinError, SceneError, TilesError):
        app.add_exception_handler(root, domain_error_handler)
