"""A data subject access report: everything the warehouse holds on one customer.

:func:`held_data` reads every table with a ``customer_id`` column (the customer record with its
consent flags, events, campaign memberships, redemptions) for one customer; the API adds what
the published build derived from it (360 features, segment, scores, offers) and the current
recommendations with the reason for each, so a retailer can answer an access request (GDPR
art. 15, CCPA "right to know") from one call.
"""

from __future__ import annotations

import json
from typing import Any

from tailor.errors import TailorError
from tailor.privacy.consent import typed_customer
from tailor.store.schema import KINDS, SYSTEM_COLUMNS, quote
from tailor.store.warehouse import Warehouse

# The tables that hold rows about a customer, with why Tailor keeps them.
PURPOSE = {
    "customers": "the customer record: attributes and consent flags",
    "events": "purchases, returns, views, carts and ratings: what recommendations and analyses "
    "learn from",
    "campaign_members": "campaigns the customer was sent: what the offer model learns from",
    "redemptions": "coupons the customer redeemed: what the offer model learns from",
}


def held_data(wh: Warehouse, customer_id: Any) -> dict[str, Any]:
    """{table: {"purpose": str, "rows": [dict, ...]}} for every warehouse table that holds the
    customer, system columns left out, rows in time order where the table has a timestamp.
    Raises TailorError when no table holds them."""
    try:
        typed = typed_customer(wh, customer_id)
    except TailorError:
        raise TailorError(f"the warehouse holds nothing on customer {customer_id!r}") from None
    found: dict[str, Any] = {}
    for spec in KINDS.values():
        if "customer_id" not in spec.names:
            continue
        columns = [c for c in wh.columns(spec.table) if c not in SYSTEM_COLUMNS]
        order = " ORDER BY timestamp" if "timestamp" in columns else ""
        frame = wh.con.execute(
            f"SELECT {', '.join(quote(c) for c in columns)} FROM {spec.table} "
            f"WHERE customer_id = $id{order}",
            {"id": typed},
        ).df()
        plain = frame.astype(object).where(frame.notna(), None)
        rows = json.loads(json.dumps(plain.to_dict(orient="records"), default=str))
        found[spec.table] = {"purpose": PURPOSE.get(spec.table, ""), "rows": rows}
    if not any(part["rows"] for part in found.values()):
        raise TailorError(f"the warehouse holds nothing on customer {customer_id!r}")
    return found
