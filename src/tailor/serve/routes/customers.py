"""Customer 360 and segments, from the build's customer intelligence."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from tailor.serve.deps import Current, Reader, State
from tailor.serve.models import Customer360, Segments
from tailor.serve.routes._common import KEYED, NOT_FOUND, PathId
from tailor.serve.state import Served, id_key
from tailor.serve.views import (
    customer_360,
    customer_row,
    recent_purchases,
    records,
    suggested_actions,
)

router = APIRouter(tags=["customers"], dependencies=[Reader], responses={**KEYED, **NOT_FOUND})


def _intelligence(served: Served):
    if served.intelligence is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"build {served.build_id} has no customer intelligence"
        )
    return served.intelligence


@router.get("/customers/{customer_id}", response_model=Customer360)
def customer(customer_id: PathId, served: Current, state: State) -> dict:
    """One customer: profile, RFM segment, cluster, lifetime value, churn risk and anomaly,
    each with its reason; recent purchases; suggested actions."""
    found = _intelligence(served)
    row = served.customer_rows.get(id_key(customer_id))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown customer {customer_id!r}")
    data = customer_row(found.customers, row)
    with state.reading() as wh:
        purchases = recent_purchases(wh, data["customer_id"])
    threshold = (found.summary.get("anomalies") or {}).get("threshold")
    return {
        **customer_360(data),
        "customer_id": data["customer_id"],
        "build_id": served.build_id,
        "recent_purchases": purchases,
        "actions": suggested_actions(data, threshold),
    }


@router.get("/segments", response_model=Segments)
def segments(served: Current) -> dict:
    """RFM segment profiles and behavioural clusters: size, share of revenue, description."""
    found = _intelligence(served)
    return {
        "build_id": served.build_id,
        "rfm_segments": records(found.segments),
        "clusters": records(found.clusters),
        "silhouette": found.summary.get("clusters", {}).get("silhouette", {}),
    }
