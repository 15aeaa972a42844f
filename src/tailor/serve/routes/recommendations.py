"""Lists for customers (known, new, or just seen buying) and for anonymous sessions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tailor.privacy.consent import non_personalized
from tailor.serve.deps import Current, CustomerKey, Reader, State
from tailor.serve.models import RecommendationList, SessionList, SessionRequest
from tailor.serve.routes._common import KEYED, PathId
from tailor.serve.state import id_key
from tailor.serve.views import listed

router = APIRouter(tags=["recommendations"], dependencies=[Reader], responses=KEYED)


@router.get("/customers/{customer_id}/recommendations", response_model=RecommendationList)
def customer_recommendations(
    customer_id: PathId,
    key: CustomerKey,
    served: Current,
    state: State,
    k: Annotated[int, Query(ge=1, le=1000, description="Items in the list.")] = 10,
    exclude_purchased: Annotated[
        bool, Query(description="Leave out what the customer bought, carted or viewed.")
    ] = False,
    diversity: Annotated[
        float, Query(ge=0.0, le=1.0, description="MMR variety across categories; 0 = relevance.")
    ] = 0.0,
) -> dict:
    """The customer's top ``k`` items with a reason each. Events posted since the build count
    at once; a customer the build does not know gets a list from their events since, else the
    cold-start list (the reason says so)."""
    if key in state.opted_out["personalization"]:
        frame = non_personalized(served.recommender, [key], k)
        return {"customer_id": key, "build_id": served.build_id, "items": listed(frame, "item_id")}
    recent = state.recent.frame(key)
    cached = (key, k, exclude_purchased, diversity)
    if recent is None and (answer := served.lists.get(cached)) is not None:
        return answer
    frame = served.recommender.recommend(
        [key], k=k, exclude_purchased=exclude_purchased, diversity=diversity, recent=recent
    )
    named = frame["customer_id"].tolist()[0] if len(frame) else key
    answer = {"customer_id": named, "build_id": served.build_id, "items": listed(frame, "item_id")}
    if recent is None:
        served.lists.put(cached, answer)
    return answer


@router.post("/sessions/recommendations", response_model=SessionList)
def session_recommendations(body: SessionRequest, served: Current) -> dict:
    """A list for an anonymous visitor from the items of their session alone (unknown items
    are ignored; with none known, the cold-start list)."""
    frame = served.recommender.recommend_session([id_key(i) for i in body.items], k=body.k)
    return {"build_id": served.build_id, "items": listed(frame, "item_id")}
