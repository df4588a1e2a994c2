"""Strict JSON request bodies: ``NaN``, ``Infinity`` and strings holding a lone UTF-16
surrogate (``"\\ud800"``) are refused with a 422 at parse time. Python's parser takes all
three, but no JSON encoder can write them back, so a value that slipped into a free-form
field (``attributes``) would make every later read of it fail.

Routers that take JSON bodies use `StrictJSONRoute` as their route class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


def strict_loads(body: bytes) -> Any:
    """`body` parsed as standard JSON; `json.JSONDecodeError` for ``NaN``/``Infinity``, for
    strings (keys included) holding a lone surrogate and for bytes that are not UTF-8."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"not UTF-8 ({exc.reason})", "", exc.start) from None
    if _SURROGATE_ESCAPE.search(body) and not _encodable(value):
        raise json.JSONDecodeError("a string holds a lone UTF-16 surrogate", "", 0)
    return value


def _encodable(value: Any) -> bool:
    """Whether every string in `value` can be written as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StrictJSONRequest(Request):
    """A request whose `json` is `strict_loads` of its body."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An API route that parses JSON bodies with `strict_loads`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler
