"""Shared dependencies: the serving state, the build a request uses, and API-key roles."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import APIKeyHeader

from tailor.serve.auth import rank
from tailor.serve.routes._common import PathId
from tailor.serve.state import Served, ServingState

api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key of Tailor.")


async def get_state(request: Request) -> ServingState:
    return request.app.state.serving


State = Annotated[ServingState, Depends(get_state)]


async def get_served(state: State) -> Served:
    """The build this request uses, start to end (a rebuild swaps in another for the next)."""
    served = state.served
    if served is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "no build yet: run `tailor build`, or POST /v1/admin/rebuild",
        )
    return served


Current = Annotated[Served, Depends(get_served)]


async def get_customer_key(customer_id: PathId, state: State) -> str:
    """The path's customer id as the server keys customers: its pseudonym in a pseudonymized
    warehouse (see :mod:`tailor.privacy.pseudonym`), else the id as text."""
    return state.customer_key(customer_id)


CustomerKey = Annotated[str, Depends(get_customer_key)]


def require(role: str) -> Callable[..., Coroutine[Any, Any, str]]:
    """A dependency: the request's key must have ``role`` or a higher one."""

    async def check(state: State, key: Annotated[str | None, Security(api_key)] = None) -> str:
        if not key:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, "an API key is needed: send it as X-API-Key"
            )
        found = state.keys.role(key)
        if found is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "unknown or revoked API key")
        if rank(found) < rank(role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this needs a {role} key; yours is a {found} key"
            )
        return found

    return check


Reader = Depends(require("read"))
Writer = Depends(require("write"))
Admin = Depends(require("admin"))
