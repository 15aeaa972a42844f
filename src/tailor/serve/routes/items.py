"""Items like an item, and items bought together with it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status

from tailor.recommend.rules import bundles as top_bundles
from tailor.serve.deps import Current, Reader
from tailor.serve.models import Bundles, SimilarItems
from tailor.serve.routes._common import KEYED, NOT_FOUND, PathId
from tailor.serve.state import Served, id_key
from tailor.serve.views import listed

router = APIRouter(
    prefix="/items", tags=["items"], dependencies=[Reader], responses={**KEYED, **NOT_FOUND}
)


def known_item(served: Served, item_id: str) -> Any:
    """The item's id as the build holds it; 404 when the build does not know it."""
    ds = served.recommender.dataset_
    column = ds.item_index([id_key(item_id)])[0]
    if column < 0:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown item {item_id!r}")
    return ds.item_ids[[column]].tolist()[0]


@router.get("/{item_id}/similar", response_model=SimilarItems)
def similar(
    item_id: PathId,
    served: Current,
    k: Annotated[int, Query(ge=1, le=1000, description="How many items.")] = 10,
) -> dict:
    """Items most often bought by the same customers (cosine over customers)."""
    item = known_item(served, item_id)
    frame = served.recommender.similar_items([item], k=k)
    return {"item_id": item, "build_id": served.build_id, "items": listed(frame, "similar_item_id")}


@router.get("/{item_id}/bundles", response_model=Bundles)
def bundles(
    item_id: PathId,
    served: Current,
    k: Annotated[int, Query(ge=1, le=1000, description="How many items.")] = 10,
) -> dict:
    """Items frequently bought together with the item: association rules by lift."""
    item = known_item(served, item_id)
    entries = []
    if served.rules is not None:
        frame = top_bundles(served.rules, item, k=k)
        entries = [
            {
                "item_id": row.bundle_item_id,
                "support": row.support,
                "confidence": row.confidence,
                "lift": row.lift,
                "reason": row.reason,
            }
            for row in frame.itertuples(index=False)  # k rows at most
        ]
    return {"item_id": item, "build_id": served.build_id, "items": entries}
