"""Next-best offers, campaign target lists and the service desk's view, from the build's offer
scores and customer intelligence."""

from __future__ import annotations

import json
from typing import Annotated

import pandas as pd
from fastapi import APIRouter, HTTPException, Query, status

from tailor.errors import TailorError
from tailor.marketing.service import recent_returns, service_view
from tailor.marketing.targeting import next_best_offers, target_campaign
from tailor.privacy.consent import non_personalized
from tailor.recommend.base import describe_items
from tailor.serve.deps import Current, CustomerKey, Reader, State
from tailor.serve.models import OfferList, ServiceView
from tailor.serve.routes._common import KEYED, NOT_FOUND, PathId
from tailor.serve.state import Served, ServingState
from tailor.serve.views import customer_row, records

router = APIRouter(tags=["marketing"], dependencies=[Reader], responses={**KEYED, **NOT_FOUND})

MaxPerCustomer = Annotated[
    int, Query(ge=1, le=100, description="Contact rule: at most N offers per customer.")
]


def _scores(served: Served, state: ServingState) -> pd.DataFrame:
    """The build's offer scores, less the customers who opted out of marketing since."""
    if served.offers is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"build {served.build_id} has no offer scores"
        )
    out = state.opted_out["marketing"]
    return served.offers.loc[~served.offers.index.isin(out)] if out else served.offers


@router.get("/offers", response_model=OfferList)
def offers(
    served: Current,
    state: State,
    campaign: Annotated[
        str | None, Query(max_length=256, description="Target this open campaign.")
    ] = None,
    budget: Annotated[int | None, Query(ge=0, le=10_000_000, description="At most N rows.")] = None,
    max_per_customer: MaxPerCustomer = 1,
) -> dict:
    """Without ``campaign``: every customer's next best offers, highest expected value first.
    With it: the campaign's customers by redemption probability (the list that maximizes
    expected redemptions for its length). Opted-out customers are never listed."""
    scores = _scores(served, state)
    if campaign is None:
        frame = next_best_offers(scores, max_per_customer)
    else:
        try:
            frame = target_campaign(scores, campaign)
        except TailorError as exc:  # an unknown or closed campaign
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
        frame = frame.groupby("customer_id", sort=False).head(max_per_customer)
    if budget is not None:
        frame = frame.head(budget)
    return {"build_id": served.build_id, "campaign": campaign, "offers": records(frame)}


@router.get("/customers/{customer_id}/offers", response_model=OfferList)
def customer_offers(
    customer_id: PathId,
    key: CustomerKey,
    served: Current,
    state: State,
    max_per_customer: MaxPerCustomer = 1,
) -> dict:
    """The customer's next best offers (none when they opted out of marketing)."""
    mine = _mine(_scores(served, state), key)
    frame = next_best_offers(mine, max_per_customer)
    return {"build_id": served.build_id, "campaign": None, "offers": records(frame)}


def _mine(scores: pd.DataFrame, key: str) -> pd.DataFrame:
    return scores.loc[[key]] if key in scores.index else scores.iloc[:0]


@router.get("/customers/{customer_id}/service", response_model=ServiceView)
def customer_service(
    customer_id: PathId,
    key: CustomerKey,
    served: Current,
    state: State,
    k: Annotated[int, Query(ge=1, le=50, description="Products to suggest.")] = 5,
) -> dict:
    """Talking points for a service agent: segment, value, churn risk and reasons, recent
    returns, the next best offer and products to suggest."""
    if served.intelligence is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"build {served.build_id} has no customer intelligence"
        )
    row = served.customer_rows.get(key)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown customer {customer_id!r}")
    data = customer_row(served.intelligence.customers, row)
    if key in state.opted_out["personalization"]:
        frame = non_personalized(served.recommender, [key], k)
    else:
        frame = served.recommender.recommend(
            [key], k=k, exclude_purchased=True, recent=state.recent.frame(key)
        )
    ds = served.recommender.dataset_
    columns = ds.item_index(frame["item_id"])
    frame["title"] = describe_items(ds, columns) if len(columns) else []
    mine = None if served.offers is None else _mine(_scores(served, state), key)
    with state.reading() as wh:
        returns = recent_returns(wh, data["customer_id"])
    view = service_view(data, mine, frame, returns)
    return {"build_id": served.build_id, **json.loads(json.dumps(view, default=str))}
