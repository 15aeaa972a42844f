"""Consent: per-customer flags for personalization, marketing and analytics.

The flags are the ``consent_*`` columns of the customer table: ingested with the customer file,
or set one customer at a time with :func:`set_consent` (``tailor consent set``, and
``PUT /v1/customers/{id}/consent``). A missing flag means no objection was recorded; only an
explicit ``false`` opts a customer out.

What each opt-out does:

* **personalization**: the customer's lists are the non-personalized ones (what is trending and
  popular), each reason saying so — at once, in the CLI and the API, without a rebuild;
* **marketing**: never in next-best offers, target lists or their exports — at once (the served
  offer scores are filtered), and not scored at all from the next build on;
* **analytics**: left out of the training data, customer intelligence, offer model and reports
  from the next build on. Tailor then learns nothing from them, so their lists are not
  personalized either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailor.errors import TailorError
from tailor.privacy.crypto import reading, writing
from tailor.recommend.base import Recommender
from tailor.store.warehouse import Warehouse

PURPOSES = ("personalization", "marketing", "analytics")

NOT_PERSONALIZED = "not personalized (the customer opted out of personalization)"


def typed_customer(wh: Warehouse, customer_id: Any) -> Any:
    """The id as the warehouse stores customer ids; a TailorError when it cannot be one."""
    typed = wh.typed_id("customer", customer_id)
    if typed is None:
        raise TailorError(
            f"unknown customer {str(customer_id).strip()!r}: the warehouse's customer ids are "
            "integers"
        )
    return typed


def set_consent(wh: Warehouse, customer_id: Any, **flags: bool | None) -> dict[str, bool | None]:
    """Record the given flags (``personalization=False``, ...) for one customer, in one
    transaction; flags not given keep their value. A customer the customer table does not hold
    yet gets a row. Returns the customer's flags after the change."""
    unknown = set(flags) - set(PURPOSES)
    if unknown:
        raise TailorError(f"unknown consent purpose(s): {', '.join(sorted(unknown))}")
    given = {f"consent_{k}": bool(v) for k, v in flags.items() if v is not None}
    if not given:
        raise TailorError(
            "say what changes: --personalization, --marketing and/or --analytics yes|no"
        )
    typed = typed_customer(wh, customer_id)
    assignments = ", ".join(f"{column} = ${column}" for column in given)
    with wh.transaction():
        updated = wh.con.execute(
            f"UPDATE customers SET {assignments} WHERE customer_id = $id RETURNING customer_id",
            {**given, "id": typed},
        ).fetchall()
        if not updated:
            columns = ", ".join(given)
            values = ", ".join(f"${c}" for c in given)
            wh.con.execute(
                f"INSERT INTO customers (customer_id, {columns}) VALUES ($id, {values})",
                {**given, "id": typed},
            )
    return consent_of(wh, [typed]).iloc[0].to_dict()


def consent_of(wh: Warehouse, customer_ids: list) -> pd.DataFrame:
    """The flags of ``customer_ids`` (True / False / None when not recorded), one row each,
    indexed by the id as text."""
    keys = [str(c).strip() for c in customer_ids]
    rows = wh.con.execute(
        "SELECT CAST(customer_id AS VARCHAR) AS key, consent_personalization AS personalization, "
        "consent_marketing AS marketing, consent_analytics AS analytics FROM customers "
        "WHERE list_contains($keys, CAST(customer_id AS VARCHAR))",
        {"keys": keys},
    ).df()
    found = rows.drop_duplicates("key").set_index("key")
    return found.reindex(keys).astype(object).where(found.reindex(keys).notna(), None)


def opted_out(wh: Warehouse, purpose: str) -> set[str]:
    """The customers (ids as text) who opted out of ``purpose``."""
    if purpose not in PURPOSES:
        raise TailorError(f"unknown consent purpose {purpose!r}")
    rows = wh.con.execute(
        f"SELECT CAST(customer_id AS VARCHAR) FROM customers WHERE consent_{purpose} = false"
    ).fetchall()
    return {r[0] for r in rows}


def non_personalized(recommender: Recommender, customer_ids: list, k: int) -> pd.DataFrame:
    """The cold-start list (trending and popular items) for each of ``customer_ids``, in the
    recommender's columns, each reason saying it is not personalized and why."""
    base = recommender.recommend_session([], k=k)
    ds = recommender.dataset_
    rows = ds.customer_index(list(customer_ids))
    # A known customer under the id as the build stores it (12, not "12"), as in other lists.
    ids = [ds.customer_ids[r] if r >= 0 else c for r, c in zip(rows, customer_ids, strict=True)]
    frames = [base.assign(customer_id=c) for c in ids]
    if not frames:
        return base.iloc[:0].assign(customer_id=[])
    out = pd.concat(frames, ignore_index=True)
    # The cold-start reasons speak to a newcomer ("new here: ..."); this customer is not one.
    reasons = out["reason"].astype(str).str.removeprefix("new here: ")
    out["reason"] = NOT_PERSONALIZED + ": " + reasons
    columns = ["customer_id", *[c for c in base.columns if c != "customer_id"]]
    return out[columns]


def respect_personalization(
    frame: pd.DataFrame, recommender: Recommender, opted: set[str], customer_ids: list, k: int
) -> pd.DataFrame:
    """``frame`` (a recommender's lists for ``customer_ids``) with the lists of the customers in
    ``opted`` replaced by the non-personalized list; customers stay in the order given."""
    ids = [c for c in customer_ids if str(c).strip() in opted]
    if not ids:
        return frame
    keep = frame.loc[~frame["customer_id"].astype(str).isin(opted)]
    out = pd.concat([keep, non_personalized(recommender, ids, k)], ignore_index=True)
    order = {str(c).strip(): n for n, c in enumerate(customer_ids)}
    position = out["customer_id"].astype(str).map(order)
    return out.iloc[np.lexsort((out["rank"].to_numpy(), position.to_numpy()))].reset_index(
        drop=True
    )


def save_opt_outs(wh: Warehouse, path: Path) -> None:
    """The opt-outs as the build saw them (purpose, customer_id as text): what a reader without
    the warehouse (it is held by a running server) falls back on."""
    frames = [
        pd.DataFrame({"purpose": p, "customer_id": sorted(opted_out(wh, p))}) for p in PURPOSES
    ]
    with writing(path) as f:
        pd.concat(frames, ignore_index=True).to_parquet(f, index=False)


def load_opt_outs(path: Path, purpose: str) -> set[str]:
    if not path.exists():
        return set()
    frame = pd.read_parquet(reading(path))
    return set(frame.loc[frame["purpose"] == purpose, "customer_id"])
