"""One table from domain exceptions to HTTP status codes; domain code never imports FastAPI.

Every error body is ``{"detail": message, "error": ExceptionName}``, except a 422: its
``detail`` is always FastAPI's documented array, one item per field at fault (``loc``, ``msg``,
``type``, and a short, JSON-safe echo of the ``input``), whether the request failed
validation or a domain check (an unknown source, a time out of bounds).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from scenes.db import StoreUnavailable
from scenes.errors import (
    AlertNotFound,
    AlertTransitionError,
    AppConfigError,
    AppNotFound,
    DuplicateObservationError,
    ObservationError,
    RuleError,
    SceneError,
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
    (DuplicateObservationError, 409),
    (AppNotFound, 404),
    (WatchlistNotFound, 404),
    (AppConfigError, 422),
    (WatchlistValueError, 422),
    (ObservationError, 422),
    (InputError, 422),
    (WorkspaceError, 503),
    (StoreUnavailable, 503),
    (RuleError, 500),
    (SceneError, 500),
    (TilesError, 500),
    (TwinError, 500),
)
RETRY_AFTER_S = 1  # a 503's hint: the database or workspace may be back in a moment
ECHO_CHARS = 120
"""Longest echo of a bad input in a 422 (characters of its JSON): a 20 MiB bad body must not
come back as a 60 MB answer."""


def status_for(exc: Exception) -> int:
    """HTTP status for a domain exception (500 when unmapped)."""
    for cls, status in STATUS_CODES:
        if isinstance(exc, cls):
            return status
    return 500


def _message(exc: Exception) -> str:
    return exc.one_line() if isinstance(exc, TwinError) else " ".join(str(exc).split())


def echo(value: Any, budget: int = ECHO_CHARS) -> Any:
    """`value` made safe to send back as JSON: non-finite numbers and strings holding lone
    surrogates become their escaped text, and anything longer than `budget` characters is cut
    to a string of that length ending in ``…``."""
    plain = _plain(value, [budget])
    text = json.dumps(plain, ensure_ascii=False)
    return plain if len(text) <= budget else text[: budget - 1] + "…"


def _plain(value: Any, left: list[int]) -> Any:
    """JSON-safe copy of `value`, walking no further than `left[0]` characters' worth."""
    left[0] -= 1
    if left[0] < 0:
        return "…"
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        cut = value[: max(left[0], 0)]
        left[0] -= len(value)
        return cut.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {_plain(str(k), left): _plain(v, left) for k, v in _bounded(value.items(), left)}
    if isinstance(value, list | tuple):
        return [_plain(v, left) for v in _bounded(value, left)]
    return _plain(repr(value), left)


def _bounded(items: Any, left: list[int]) -> list[Any]:
    """The first items of `items` while budget remains."""
    taken = []
    for item in items:
        if left[0] <= 0:
            break
        taken.append(item)
    return taken


def problem(loc: Sequence[str | int], msg: str, kind: str = "value_error", **extra: Any) -> dict:
    """One item of a 422 ``detail`` array."""
    item: dict[str, Any] = {"type": kind, "loc": list(loc), "msg": msg}
    if "input" in extra:
        item["input"] = echo(extra["input"])
    return item


def invalid(param: str, message: str, value: Any = None) -> RequestValidationError:
    """A 422 naming query parameter `param`, shaped like FastAPI's own."""
    return RequestValidationError([problem(("query", param), message, input=value)])


def _unprocessable(items: list[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": items}, status_code=422)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body, with every echoed input short and JSON-safe (NaN, Infinity and lone
    surrogates used to make the 422 itself fail with a 500)."""
    assert isinstance(exc, RequestValidationError)
    items = []
    for error in exc.errors():
        extra = {"input": error["input"]} if "input" in error else {}
        msg = str(error.get("msg", ""))
        if error.get("type") == "json_invalid" and "error" in error.get("ctx", {}):
            msg = f"{msg}: {error['ctx']['error']}"  # e.g. NaN is not a JSON number
        items.append(problem(error.get("loc", ()), msg, str(error.get("type", "value_error")),
                             **extra))  # fmt: skip
    return _unprocessable(items)


def _loc(exc: Exception) -> list[str | int]:
    """Where in the request a domain error points: ``body`` plus the path the domain gives
    (``observations``, index, field); empty when it names no field."""
    path = getattr(exc, "path", ())
    return ["body", *path] if path else []


async def domain_error_handler(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status == 422:
        return _unprocessable([problem(_loc(exc), _message(exc))])
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse(
        {"detail": _message(exc), "error": type(exc).__name__}, status, headers=headers
    )


def add_exception_handlers(app: FastAPI) -> None:
    """Register the table and the 422 handler on `app`."""
    for root in (TwinError, SceneError, TilesError):
        app.add_exception_handler(root, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
