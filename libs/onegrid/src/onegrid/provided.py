"""What a service hands its endpoints (engine, desk, settings), for endpoints written as module-level
functions with `Annotated` dependencies instead of closures inside a router factory.

    deps: Provided[DeskDeps] = Provided("dispatch")
    Deps = Annotated[DeskDeps, Depends(deps)]
    routes = APIRouter()

    @routes.get("/cases")
    async def cases(d: Deps) -> ...: ...

    def router(engine, desk) -> APIRouter:
        r = APIRouter(prefix="/v1", dependencies=[deps.bind(DeskDeps(engine, desk))])
        r.include_router(routes)
        return r

The router's own dependency (`bind`) runs before the endpoint's (FastAPI solves a route's
dependencies before its parameters), so each request sees the objects of the router that served
it: two apps in one process (tests) never share them.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import Depends, Request

T = TypeVar("T")


class Provided(Generic[T]):
    def __init__(self, name: str) -> None:
        self._key = f"onegrid_provided_{name}"

    def bind(self, value: T) -> Any:
        """The router-level dependency that hands `value` to this router's endpoints."""

        async def provide(request: Request) -> None:
            setattr(request.state, self._key, value)

        return Depends(provide)

    def __call__(self, request: Request) -> T:
        try:
            value: T = getattr(request.state, self._key)
        except AttributeError:
            raise RuntimeError(
                f"{self._key} is not bound: include the routes through their router()"
            ) from None
        return value
