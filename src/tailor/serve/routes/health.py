"""Is the server up, and which build does it serve (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter

from tailor.serve.deps import State
from tailor.serve.models import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def health(state: State) -> dict:
    served = state.served
    if served is None:
        counts = {"events_since_build": len(state.recent)}
        return {"status": "no build", "build_id": None, "created_at": None,
                "recommender": None, "counts": counts}  # fmt: skip
    dataset = served.info.manifest.get("dataset") or {}
    counts = {k: int(dataset.get(k) or 0) for k in ("customers", "items", "events")}
    counts["events_since_build"] = len(state.recent)
    return {
        "status": "ok",
        "build_id": served.build_id,
        "created_at": served.info.manifest.get("created_at"),
        "recommender": served.recommender.name,
        "counts": counts,
    }
