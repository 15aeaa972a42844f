"""Library results shaped for the API: plain, JSON-ready values (no numpy or NaN)."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from tailor.customers.churn import CHURN_HIGH, CHURN_WATCH
from tailor.customers.intelligence import SUMMARY_COLUMNS
from tailor.customers.segments import RFM_SEGMENTS
from tailor.store.warehouse import Warehouse

RECENT_PURCHASES = 10


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, NaN as null."""
    plain = frame.astype(object).where(frame.notna(), None)
    return json.loads(json.dumps(plain.to_dict(orient="records"), default=str))


def listed(frame: pd.DataFrame, id_column: str) -> list[dict[str, Any]]:
    """``item_id, score, reason`` entries of a recommender's frame (ids as Python values)."""
    return [
        {"item_id": item, "score": float(score), "reason": str(reason)}
        for item, score, reason in zip(
            frame[id_column].tolist(), frame["score"].tolist(), frame["reason"].tolist(),
            strict=True,
        )
    ]  # fmt: skip


def customer_row(customers: pd.DataFrame, row: int) -> dict[str, Any]:
    return records(customers.iloc[[row]])[0]


def suggested_actions(row: dict[str, Any], anomaly_threshold: float | None) -> list[dict[str, str]]:
    """What to do about a customer: their RFM segment's action, and one for churn risk or an
    unusual week."""
    actions = []
    segment = row.get("rfm_segment")
    if segment in RFM_SEGMENTS:
        meaning, action = RFM_SEGMENTS[segment]
        actions.append({"action": action, "reason": f"{segment}: {meaning}"})
    churn = row.get("churn_probability")
    if churn is not None and churn >= CHURN_HIGH:
        actions.append(
            {
                "action": "a personal win-back offer now",
                "reason": f"churn risk {churn:.0%}: {row.get('churn_reason') or ''}".strip(),
            }
        )
    elif churn is not None and churn >= CHURN_WATCH:
        actions.append(
            {
                "action": "a reminder of their usual items",
                "reason": f"churn risk {churn:.0%}: {row.get('churn_reason') or ''}".strip(),
            }
        )
    score = row.get("anomaly_score")
    if anomaly_threshold is not None and score is not None and score >= anomaly_threshold > 0:
        actions.append(
            {"action": "look at this week's activity", "reason": row.get("anomaly_reason") or ""}
        )
    return actions


def customer_360(row: dict[str, Any]) -> dict[str, Any]:
    """The summary fields, and every other column as the profile."""
    summary = {c: row.get(c) for c in SUMMARY_COLUMNS}
    profile = {k: v for k, v in row.items() if k not in ("customer_id",)}
    return {**summary, "profile": profile}


def recent_purchases(wh: Warehouse, customer_id: Any, n: int = RECENT_PURCHASES) -> list[dict]:
    """The customer's last ``n`` purchases in the warehouse, newest first."""
    typed = wh.typed_id("customer", customer_id)
    if typed is None:
        return []
    rows = wh.con.execute(
        "SELECT item_id, timestamp, quantity, value FROM events "
        "WHERE customer_id = ? AND event_type = 'purchase' ORDER BY timestamp DESC LIMIT ?",
        [typed, n],
    ).fetchall()
    return [
        {"item_id": item, "timestamp": stamp, "quantity": quantity, "value": value}
        for item, stamp, quantity, value in rows
    ]
