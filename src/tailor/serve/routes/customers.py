"""Customer 360 and segments, from the build's customer intelligence."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from tailor.errors import TailorError
from tailor.privacy.access import held_data
from tailor.privacy.consent import non_personalized
from tailor.serve.deps import Admin, Current, CustomerKey, Reader, State, Writer
from tailor.serve.models import (
    Consent,
    ConsentIn,
    Customer360,
    DataReport,
    ErasureReport,
    Segments,
)
from tailor.serve.routes._common import KEYED, NOT_FOUND, PathId
from tailor.serve.state import RebuildRunning, Served
from tailor.serve.views import (
    customer_360,
    customer_row,
    listed,
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
def customer(customer_id: PathId, key: CustomerKey, served: Current, state: State) -> dict:
    """One customer: profile, RFM segment, cluster, lifetime value, churn risk and anomaly,
    each with its reason; recent purchases; suggested actions."""
    found = _intelligence(served)
    row = served.customer_rows.get(key)
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


@router.put("/customers/{customer_id}/consent", response_model=Consent, dependencies=[Writer])
def put_consent(customer_id: PathId, key: CustomerKey, body: ConsentIn, state: State) -> dict:
    """Record a customer's consent (write key). It applies to the next request: opted out of
    personalization, their lists are the non-personalized ones; of marketing, they leave every
    offer list; of analytics, the next build leaves them out."""
    try:
        flags = state.set_consent(key, **body.model_dump())
    except TailorError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from None
    return {"customer_id": key, **flags}


@router.delete(
    "/customers/{customer_id}",
    response_model=ErasureReport,
    dependencies=[Admin],
    responses={status.HTTP_409_CONFLICT: {"description": "A rebuild is running."}},
)
def delete_customer(customer_id: PathId, key: CustomerKey, state: State) -> dict:
    """Forget a customer everywhere (admin key): warehouse rows, the file's freed blocks, every
    build (a new one is published with them folded out), the served lists and events since the
    build. The answer, like the audit log, names them only by a keyed hash."""
    try:
        return state.forget(key).as_dict()
    except RebuildRunning as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/customers/{customer_id}/data", response_model=DataReport, dependencies=[Admin])
def customer_data(customer_id: PathId, key: CustomerKey, served: Current, state: State) -> dict:
    """A data subject access report (admin key): every warehouse row held on the customer and
    why, what the build derived from them, and their current recommendations with the reason
    for each."""
    try:
        with state.reading() as wh:
            held = held_data(wh, key)
    except TailorError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    derived: dict = {"customer_360": None, "offers": []}
    row = served.customer_rows.get(key)
    if served.intelligence is not None and row is not None:
        derived["customer_360"] = customer_row(served.intelligence.customers, row)
    if served.offers is not None and key in served.offers.index:
        derived["offers"] = records(served.offers.loc[[key]])
    if key in state.opted_out["personalization"]:
        frame = non_personalized(served.recommender, [key], 10)
    else:
        frame = served.recommender.recommend([key], k=10, recent=state.recent.frame(key))
    return {
        "customer_id": key,
        "build_id": served.build_id,
        "warehouse": held,
        "derived": derived,
        "recommendations": listed(frame, "item_id"),
    }
