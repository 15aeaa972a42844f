"""Rebuilds in the server process (it holds the warehouse) and API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, status

from tailor.serve.deps import Admin, State
from tailor.serve.models import KeyCreated, KeyRequest, Problem, RebuildJob, RebuildRequest
from tailor.serve.routes._common import KEYED, NOT_FOUND, PathId
from tailor.serve.state import RebuildRunning

router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Admin], responses=KEYED)


@router.post(
    "/rebuild",
    response_model=RebuildJob,
    status_code=status.HTTP_202_ACCEPTED,
    responses={409: {"model": Problem, "description": "A rebuild is running."}},
)
def rebuild(state: State, body: Annotated[RebuildRequest | None, Body()] = None) -> dict:
    """Build again from the warehouse in the background; the new build is served once it is
    published and loaded. Poll ``GET /v1/admin/rebuild/{job_id}``."""
    as_of = None if body is None or body.as_of is None else body.as_of.isoformat()
    try:
        job = state.start_rebuild(as_of)
    except RebuildRunning as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return vars(job)


@router.get("/rebuild/{job_id}", response_model=RebuildJob, responses=NOT_FOUND)
def rebuild_status(job_id: PathId, state: State) -> dict:
    job = state.jobs.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown rebuild job {job_id!r}")
    return vars(job)


@router.post("/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
def create_key(body: KeyRequest, state: State) -> dict:
    """A new API key (shown once; stored hashed)."""
    return {"key": state.create_key(body.role), "role": body.role}
