"""The FastAPI application: ``create_app(settings)``; ``tailor serve`` runs it with uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from tailor import __version__
from tailor.errors import TailorError
from tailor.serve import dashboard
from tailor.serve.routes import (
    admin,
    customers,
    events,
    health,
    items,
    marketing,
    privacy,
    recommendations,
)
from tailor.serve.settings import ServeSettings
from tailor.serve.state import ServingState

PREFIX = "/v1"


def create_app(settings: ServeSettings) -> FastAPI:
    """The API over the warehouse ``settings.db`` and its current build.

    The warehouse is opened here, for writing, and held until the application shuts down.
    """
    state = ServingState(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="Tailor",
        version=__version__,
        description="Recommendations, customer intelligence and real-time events of a Tailor "
        "warehouse's published build. Send an API key as `X-API-Key`.",
        lifespan=lifespan,
    )
    app.state.serving = state
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["X-API-Key", "Content-Type"],
        )
    routers = (health, recommendations, items, customers, marketing, events, admin, privacy)
    for module in routers:
        app.include_router(module.router, prefix=PREFIX)
    app.include_router(dashboard.router)  # the dashboard's pages, then its files
    app.mount("/static", dashboard.static_files(), name="static")

    @app.exception_handler(TailorError)
    async def user_error(request: Request, exc: TailorError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status.HTTP_422_UNPROCESSABLE_ENTITY)

    return app
