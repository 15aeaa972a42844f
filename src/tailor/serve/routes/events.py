"""Events as they happen: stored durably, counted in the next lists at once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, status

from tailor.serve.deps import State, Writer
from tailor.serve.models import EventIn, EventsAccepted, EventsIn
from tailor.serve.routes._common import KEYED
from tailor.serve.state import id_key

router = APIRouter(tags=["events"], dependencies=[Writer], responses=KEYED)


def event_columns(
    events: list[EventIn], customer_key: Callable[[Any], str] = id_key
) -> dict[str, list]:
    """The events as :func:`tailor.store.append.append_events` reads them (ids as text, customer
    ids through ``customer_key``: pseudonyms where the warehouse has them), by column; plain
    lists, so that a request costs no DataFrame (the writer makes one per batch)."""
    now = datetime.now(UTC).replace(tzinfo=None)
    kinds = [
        # As the warehouse stores it: a purchase of a negative quantity is a return.
        "return"
        if e.event_type == "purchase"
        and ((e.quantity or 0) < 0 or (e.quantity is None and (e.value or 0) < 0))
        else e.event_type
        for e in events
    ]
    return {
        "event_id": [None if e.event_id is None else id_key(e.event_id) for e in events],
        "customer_id": [customer_key(e.customer_id) for e in events],
        "item_id": [id_key(e.item_id) for e in events],
        "event_type": kinds,
        "timestamp": [e.timestamp or now for e in events],
        "quantity": [e.quantity for e in events],
        "value": [e.value for e in events],
        "basket_id": [None if e.basket_id is None else id_key(e.basket_id) for e in events],
    }


@router.post(
    "/events",
    response_model=EventsAccepted,
    status_code=status.HTTP_201_CREATED,
    responses={503: {"description": "The events could not be stored; send them again."}},
)
async def post_events(
    body: Annotated[EventIn | EventsIn, Body(description="One event or a list of them.")],
    state: State,
) -> dict:
    """Store events in the warehouse (committed before this answers) and count them in the
    customers' lists from the next request. An ``event_id`` makes retries safe."""
    events = body if isinstance(body, list) else [body]
    future = state.accept(event_columns(events, state.customer_key))
    try:
        await asyncio.wrap_future(future)
    except Exception:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "the events could not be stored; send them again"
        ) from None
    return {"accepted": len(events)}
