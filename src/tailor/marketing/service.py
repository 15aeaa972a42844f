"""The service desk's view of one customer: what an agent should know and say, in words.

:func:`service_view` puts together what the build knows about a customer — segment, value, churn
risk and its reasons, the next best offer — with what the warehouse shows of their recent
returns and the products the recommender suggests, and turns each into a talking point. It is a
pure function of those inputs; the CLI and the API fetch them.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from tailor.customers.churn import CHURN_HIGH, CHURN_WATCH
from tailor.customers.segments import RFM_SEGMENTS
from tailor.store.warehouse import Warehouse

RETURNS_DAYS = 90
"""Returns in this many days before the data's end count as recent issues."""


def recent_returns(wh: Warehouse, customer_id: Any, days: int = RETURNS_DAYS) -> list[dict]:
    """The customer's returns in the last ``days`` days of the data, newest first: item_id,
    title (when the catalogue has one), timestamp, value."""
    typed = wh.typed_id("customer", customer_id)
    if typed is None:
        return []
    rows = wh.con.execute(
        "SELECT e.item_id, i.title, e.timestamp, e.value FROM events e "
        "LEFT JOIN items i USING (item_id) "
        "WHERE e.customer_id = $c AND e.event_type = 'return' "
        "  AND e.timestamp >= (SELECT max(timestamp) FROM events) - to_days($d) "
        "ORDER BY e.timestamp DESC",
        {"c": typed, "d": days},
    ).fetchall()
    return [
        {"item_id": item, "title": title, "timestamp": stamp, "value": value}
        for item, title, stamp, value in rows
    ]


def service_view(
    customer: dict[str, Any],
    offers: pd.DataFrame | None,
    recommendations: pd.DataFrame | None,
    returns: list[dict],
) -> dict[str, Any]:
    """Talking points for an agent.

    Parameters
    ----------
    customer : dict
        The customer's row of the build's customer intelligence (``tailor customers``).
    offers : DataFrame, optional
        The customer's scored open offers (:data:`tailor.marketing.targeting.COLUMNS`), any
        order; None when the build has no offer scores.
    recommendations : DataFrame, optional
        item_id, score, reason (and title when known) of the products to suggest.
    returns : list of dict
        :func:`recent_returns`.

    Returns
    -------
    dict with customer_id, segment, value, churn, returns, next_best_offer, products and
    talking_points (list of str, most important first).
    """
    points: list[str] = []
    segment = customer.get("rfm_segment")
    meaning, action = RFM_SEGMENTS.get(segment, (None, None))
    churn = _number(customer.get("churn_probability"))
    if churn is not None and churn >= CHURN_HIGH:
        points.append(
            f"At risk of leaving ({churn:.0%}): {customer.get('churn_reason') or 'see profile'}. "
            "Thank them for their custom and make it easy to come back."
        )
    if returns:
        total = sum(_number(r["value"]) or 0.0 for r in returns)
        names = ", ".join(str(_text(r["title"]) or r["item_id"]) for r in returns[:3])
        points.append(
            f"{len(returns)} return(s) in the last {RETURNS_DAYS} days ({total:,.2f}): {names}. "
            "Ask whether the problem was solved."
        )
    if segment:
        meant = meaning or customer.get("segment_reason") or ""
        points.append(f"{segment}: {meant}; {action}" if action else f"{segment}: {meant}")
    clv = _number(customer.get("clv"))
    if clv is not None:
        points.append(
            f"Expected value over the next year {clv:,.2f}: {customer.get('clv_reason') or ''}"
        )
    if churn is not None and CHURN_WATCH <= churn < CHURN_HIGH:
        points.append(
            f"Churn risk worth watching ({churn:.0%}): {customer.get('churn_reason') or ''}"
        )
    best = None
    if offers is not None and len(offers):
        row = offers.sort_values(["expected_value", "probability"], ascending=False).iloc[0]
        best = {
            "customer_id": _plain(row["customer_id"]),
            "campaign_id": _plain(row["campaign_id"]),
            "offer_id": _plain(row["offer_id"]) if pd.notna(row["offer_id"]) else None,
            "probability": float(row["probability"]),
            "value": _number(row["value"]),
            "expected_value": _number(row["expected_value"]),
            "reason": row["reason"],
        }
        coupon = f" (coupon {row['offer_id']})" if pd.notna(row["offer_id"]) else ""
        points.append(f"Offer campaign {row['campaign_id']}{coupon}: {row['reason']}")
    products = []
    if recommendations is not None and len(recommendations):
        products = [
            {"item_id": _plain(r["item_id"]), "title": _text(r.get("title")), "reason": r["reason"]}
            for r in recommendations.to_dict(orient="records")
        ]
        names = ", ".join(str(p["title"] or p["item_id"]) for p in products[:3])
        points.append(f"Suggest: {names} ({products[0]['reason']})")
    return {
        "customer_id": customer.get("customer_id"),
        "segment": segment,
        "segment_meaning": meaning,
        "clv": clv,
        "churn_probability": churn,
        "churn_reason": customer.get("churn_reason"),
        "returns": returns,
        "next_best_offer": best,
        "products": products,
        "talking_points": [p.strip() for p in points],
    }


def _number(value: Any) -> float | None:
    if value is None or pd.isna(value):
        return None
    return float(value)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (JSON writes those as numbers)."""
    return value.item() if hasattr(value, "item") else value


def _text(value: Any) -> str | None:
    """A title, or None where there is none (pandas keeps a missing text as NaN)."""
    return None if value is None or pd.isna(value) else str(value)
