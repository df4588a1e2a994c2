"""Which route a request goes to, asked before (or without) the router: for body limits, the
``Allow`` header and the route label of metrics and access logs."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

UNMATCHED = "unmatched"
"""Route label of a request no route takes (a 404): one label, whatever the path."""
STATIC_METHODS = frozenset({"GET", "HEAD"})
LABEL_KEY = "twin.route"
"""Scope key holding a request's route label once a middleware has worked it out."""


class RouteTable:
    """The app's routes as one flat list (FastAPI keeps included routers as lazy groups),
    flattened on first use, once every route is in place."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._source = routes
        self._flat: list[BaseRoute] | None = None

    @property
    def routes(self) -> list[BaseRoute]:
        if self._flat is None:
            self._flat = [context.original_route for context in iter_route_contexts(self._source)]
        return self._flat

    def find(self, scope: Scope) -> BaseRoute | None:
        """The route the router will give `scope` (method included), else the first that
        serves its path with another method, else None."""
        partial = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return route
            if match is Match.PARTIAL and partial is None:
                partial = route
        return partial

    def label(self, scope: Scope) -> str:
        """The path template of the route that takes `scope`, e.g.
        ``/api/alerts/{alert_id}/ack``, or `UNMATCHED`; kept in the scope once known."""
        if LABEL_KEY not in scope:
            path = getattr(self.find(scope), "path", None)
            scope[LABEL_KEY] = path if isinstance(path, str) and path else UNMATCHED
        label: str = scope[LABEL_KEY]
        return label

    def allowed(self, scope: Scope) -> frozenset[str]:
        """Every method some route serves at `scope`'s path; empty when none serves it."""
        methods: set[str] = set()
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.NONE:
                continue
            if isinstance(route, Mount):
                methods |= STATIC_METHODS
            elif isinstance(route, Route) and route.methods:
                methods |= route.methods
        return frozenset(methods)
