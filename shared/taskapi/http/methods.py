"""405 Method Not Allowed for a path the app serves with other methods, with an Allow header
that names all of them.

Starlette routes a request to the first route matching path and method, and answers 405 only
when no route does. So `GET /api/tasks/bulk` reached `GET /api/tasks/{task_id}` (404 "Task bulk
not found"), and a 405 named the methods of one route only. This route goes first in the app's
routing table and looks at every route: the ones that match the path with the fewest path
parameters are the resource (a fixed path before a template), and a method none of them serves
is answered here, before authentication, as the app's own routing would answer it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException
from fastapi.routing import iter_route_contexts
from starlette.datastructures import URLPath
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send


@dataclass(frozen=True)
class Served:
    """One route as the router matches it: its path (prefix applied) and methods."""

    matches: Callable[[Scope], tuple[Match, Scope]]
    parameters: int
    methods: frozenset[str] | None
    """None: any method (a mount)."""


def served_routes(routes: Sequence[BaseRoute]) -> list[Served]:
    # Since FastAPI 0.137 an included router is one opaque entry of app.routes; its routes, with
    # the prefix applied, come from iter_route_contexts (what FastAPI's OpenAPI document reads).
    return [
        Served(
            matches=route.matches,
            parameters=len(getattr(route, "param_convertors", None) or {}),
            methods=None if route.methods is None else frozenset(route.methods),
        )
        for route in iter_route_contexts(routes)
    ]


def allowed_methods(served: Sequence[Served], scope: Scope) -> frozenset[str] | None:
    """The methods served at the request's path by its most specific matching routes; None
    when no route matches the path, or one that matches serves any method."""
    matching = [route for route in served if route.matches(scope)[0] is not Match.NONE]
    if not matching or any(route.methods is None for route in matching):
        return None
    fewest = min(route.parameters for route in matching)
    return frozenset().union(*(route.methods or () for route in matching if route.parameters == fewest))


class MethodNotAllowedRoute(BaseRoute):
    """Matches a request whose path is served, but not with its method; answers 405 with Allow.
    Not an APIRoute, so it is not in the OpenAPI document."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self.routes = routes  # the router's own list: routes added later are seen too
        self._table: tuple[tuple[int, ...], list[Served]] = ((), [])

    def _served(self) -> list[Served]:
        others = [route for route in self.routes if route is not self]
        key = tuple(map(id, others))
        if self._table[0] != key:
            self._table = (key, served_routes(others))
        return self._table[1]

    def _allowed(self, scope: Scope) -> frozenset[str] | None:
        if scope["type"] != "http":
            return None
        allowed = allowed_methods(self._served(), scope)
        return None if allowed is None or scope["method"] in allowed else allowed

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return (Match.NONE, {}) if self._allowed(scope) is None else (Match.FULL, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        allow = ", ".join(sorted(self._allowed(scope) or ()))
        raise HTTPException(405, detail=f"Method Not Allowed; this path allows {allow}", headers={"Allow": allow})

    def url_path_for(self, name: str, /, **path_params: Any) -> URLPath:
        raise NoMatchFound(name, path_params)
