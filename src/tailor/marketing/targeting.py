"""Next-best offers and campaign targeting from the offer response model.

The build scores every customer for every *open* campaign — one running or not yet started at the
data's end, which is what a marketer can still send — with the response model of
:mod:`tailor.marketing.offers`, and stores the scores (:class:`OfferScores`). Selection then runs
on those scores when asked, so contact rules and budgets need no rebuild:

* :func:`next_best_offers`: per customer, the open campaigns with the highest expected value,
  at most ``max_per_customer`` of them;
* :func:`target_campaign`: for one campaign and a budget (a number of customers, or a cost with a
  cost per contact), the customers with the highest redemption probability — the list that
  maximizes expected redemptions.

Customers who opted out of marketing (``consent_marketing = false`` in the customer table) are
never scored, so they appear in no list and no export.

Expected value = probability x the value of one redemption. A campaign's own ``value`` column
(an attribute of the campaign table, e.g. the margin a redemption brings) is used when given;
otherwise the value is estimated from history: what the redeemers of past campaigns of the same
type (of any type when none) spent on those campaigns' coupon products during the campaign.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailor.customers.features import PurchaseTable, reference_day
from tailor.errors import TailorError
from tailor.marketing.offers import (
    NoCampaigns,
    OfferModel,
    campaigns,
    evaluate_offers,
    fit_offers,
    member_examples,
    pair_features,
)
from tailor.privacy.crypto import read_build_file, reading, write_build_file, writing
from tailor.store.schema import ANALYTICS_CONSENTED, consented
from tailor.store.warehouse import Warehouse

COLUMNS = [
    "customer_id",
    "campaign_id",
    "offer_id",
    "probability",
    "value",
    "expected_value",
    "reason",
]


@dataclass
class OfferScores:
    """What the build publishes about offers.

    Attributes
    ----------
    scores : DataFrame
        One row per (customer, open campaign): :data:`COLUMNS`; ``offer_id`` is the campaign's
        coupon whose products the customer bought most (missing when they bought none). Ids
        keep the warehouse's type.
    campaigns : DataFrame
        The open campaigns: campaign_id, type, start, end, offers, items, members, value,
        value_source.
    summary : dict
        as_of, the evaluation of the model against the baselines, training campaigns, skipped
        parts with reasons, seconds per step.
    """

    scores: pd.DataFrame
    campaigns: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name, frame in (("scores", self.scores), ("campaigns", self.campaigns)):
            with writing(folder / f"{name}.parquet") as f:
                frame.to_parquet(f, index=False)
        summary = json.dumps(self.summary, indent=2, default=str).encode()
        write_build_file(folder / "summary.json", summary)

    @classmethod
    def load(cls, folder: Path) -> OfferScores:
        if not (folder / "summary.json").exists():
            raise TailorError("the current build has no offer scores; run `tailor build`")
        summary = json.loads(read_build_file(folder / "summary.json"))
        return cls(
            pd.read_parquet(reading(folder / "scores.parquet")),
            pd.read_parquet(reading(folder / "campaigns.parquet")),
            summary,
        )


def analyse_offers(
    wh: Warehouse,
    as_of: pd.Timestamp | None = None,
    progress: Callable[[str, float], None] | None = None,
    random_state: int = 0,
) -> OfferScores:
    """Evaluate the response model on held-out campaigns, fit it on all, and score every
    consenting customer for every open campaign, as the warehouse stood before ``as_of``.

    Raises :class:`NoCampaigns` when the history cannot support a model.
    """
    ref = reference_day(wh, as_of)
    if ref is None:
        raise NoCampaigns("offers: the warehouse has no events")
    end = as_of if as_of is not None else ref + pd.Timedelta(days=1)
    summary: dict[str, Any] = {"as_of": None if as_of is None else as_of.isoformat()}
    with PurchaseTable(wh, end) as purchases:
        if progress:
            progress("offer model", 0.0)
        examples = member_examples(purchases)
        if progress:
            progress("offer model", 0.4)
        try:
            summary["evaluation"] = evaluate_offers(examples, random_state=random_state).as_dict()
        except NoCampaigns as exc:
            summary["evaluation"] = {"skipped": str(exc)}
        model = fit_offers(examples, random_state=random_state)
        if progress:
            progress("offer model", 0.6)
        summary["train_campaigns"] = [str(c) for c in model.campaigns]
        summary["redemption_rate"] = model.redemption_rate
        open_campaigns = _open_campaigns(wh, ref, end)
        scores = score(purchases, model, open_campaigns, end)
        if progress:
            progress("offer model", 1.0)
    summary["open_campaigns"] = len(open_campaigns)
    summary["scored_customers"] = int(scores["customer_id"].nunique()) if len(scores) else 0
    return OfferScores(scores, open_campaigns.reset_index(), summary)


def _open_campaigns(wh: Warehouse, ref: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The campaigns running on or starting after the reference day, with their value."""
    every = campaigns(wh)
    open_ = every.loc[every["end"].isna() | (every["end"] >= ref)].copy()
    history = wh.con.execute(_REDEEMER_VALUE_SQL, {"bound": end.to_pydatetime()}).df()
    by_type = history.groupby("type")["value"].mean()
    overall = history["value"].mean() if len(history) else np.nan
    estimated = open_["type"].map(by_type).fillna(overall)
    given = _given_values(wh, open_.index)
    open_["value"] = given.fillna(estimated)
    open_["value_source"] = np.select(
        [given.notna(), open_["type"].isin(by_type.index), np.isfinite(overall)],
        [
            "campaign value column",
            "mean spend of past redeemers in campaigns of this type",
            "mean spend of past redeemers in all campaigns",
        ],
        "unknown: no value column and no past campaign with redeemers",
    )
    return open_


def _given_values(wh: Warehouse, ids: pd.Index) -> pd.Series:
    columns = {row[0] for row in wh.con.execute("DESCRIBE campaigns").fetchall()}
    if "value" not in columns:
        return pd.Series(np.nan, index=ids)
    given = wh.con.execute(
        "SELECT campaign_id, TRY_CAST(value AS DOUBLE) AS value FROM campaigns"
    ).df()
    return given.set_index("campaign_id")["value"].reindex(ids)


# Per past campaign (ended before the bound): what each redeemer spent on its coupon products
# during the campaign, averaged over its redeemers.
_REDEEMER_VALUE_SQL = """
WITH redeemers AS (
    SELECT DISTINCT r.campaign_id, r.customer_id FROM redemptions r
    WHERE r.timestamp < $bound
), spend AS (
    SELECT d.campaign_id, d.customer_id, sum(b.spend) AS spend
    FROM redeemers d
    JOIN campaigns c USING (campaign_id)
    JOIN __purchases b ON b.customer_id = d.customer_id AND b.event_type = 'purchase'
        AND b.timestamp >= c.start AND b.timestamp < c."end" + INTERVAL 1 DAY
    WHERE c."end" < $bound
      AND b.item_id IN (SELECT item_id FROM offers o WHERE o.campaign_id = d.campaign_id)
    GROUP BY ALL
)
SELECT s.campaign_id, coalesce(c.type, 'unknown') AS type, avg(s.spend) AS value
FROM spend s JOIN campaigns c USING (campaign_id) GROUP BY ALL
"""


def score(
    purchases: PurchaseTable, model: OfferModel, open_campaigns: pd.DataFrame, cut: pd.Timestamp
) -> pd.DataFrame:
    """:data:`COLUMNS` for every consenting customer x every campaign of ``open_campaigns``,
    with features as of ``cut``; highest expected value first."""
    con = purchases.wh.con
    customers = con.execute(_CONSENTING_SQL, {"bound": cut.to_pydatetime()}).df()["customer_id"]
    if open_campaigns.empty or customers.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in COLUMNS})
    pairs = pd.DataFrame(
        {
            "customer_id": np.repeat(customers.to_numpy(), len(open_campaigns)),
            "campaign_id": np.tile(open_campaigns.index.to_numpy(), len(customers)),
            "cut": cut,
        }
    )
    x = pair_features(purchases, pairs)
    out = pairs[["customer_id", "campaign_id"]].copy()
    out["offer_id"] = _best_coupon(purchases, pairs)
    out["probability"] = model.probability(x)
    out["value"] = pairs["campaign_id"].map(open_campaigns["value"]).to_numpy()
    out["expected_value"] = out["probability"] * out["value"]
    out["reason"] = [
        f"{p:.0%} likely to redeem: {why}"
        for p, why in zip(out["probability"], model.reasons(x), strict=True)
    ]
    return out.sort_values(
        ["expected_value", "probability", "customer_id"], ascending=[False, False, True]
    ).reset_index(drop=True)[COLUMNS]


# Customers who may be marketed to: everyone known before the bound, less explicit opt-outs.
_CONSENTING_SQL = f"""
SELECT customer_id FROM (
    SELECT customer_id FROM customers
    UNION SELECT DISTINCT customer_id FROM events WHERE timestamp < $bound
)
WHERE {consented("marketing")} AND {ANALYTICS_CONSENTED}
ORDER BY customer_id
"""


def _best_coupon(purchases: PurchaseTable, pairs: pd.DataFrame) -> np.ndarray:
    """Per pair, the campaign's coupon covering the most of the customer's purchase lines
    before the cut (ties: the smallest offer id); missing (<NA>) when they bought none of its
    products."""
    con = purchases.wh.con
    con.register("__pairs", pairs.assign(pair=np.arange(len(pairs))))
    try:
        best = con.execute(_BEST_COUPON_SQL).df().set_index("pair")["offer_id"]
    finally:
        con.unregister("__pairs")
    if pd.api.types.is_integer_dtype(best):
        best = best.astype("Int64")  # integer ids stay integers, with <NA> where none
    return best.reindex(np.arange(len(pairs))).array


_BEST_COUPON_SQL = """
SELECT pair, offer_id FROM (
    SELECT p.pair, o.offer_id, count(*) AS lines
    FROM __pairs p
    JOIN __purchases b ON b.customer_id = p.customer_id AND b.timestamp < p.cut
        AND b.event_type = 'purchase'
    JOIN offers o ON o.campaign_id = p.campaign_id AND o.item_id = b.item_id
    GROUP BY ALL
) QUALIFY row_number() OVER (PARTITION BY pair ORDER BY lines DESC, offer_id) = 1
"""


def next_best_offers(
    scores: pd.DataFrame, max_per_customer: int = 1, campaign: str | None = None
) -> pd.DataFrame:
    """Per customer, the ``max_per_customer`` open campaigns of highest expected value (only
    ``campaign`` when given); highest expected value first."""
    if max_per_customer < 1:
        raise TailorError("offers: --max-per-customer must be at least 1")
    rows = _of_campaign(scores, campaign)
    ranked = rows.sort_values(
        ["expected_value", "probability", "customer_id"], ascending=[False, False, True]
    )
    return ranked.groupby("customer_id", sort=False).head(max_per_customer).reset_index(drop=True)


def target_campaign(
    scores: pd.DataFrame,
    campaign: str,
    budget: int | None = None,
    max_cost: float | None = None,
    contact_cost: float | None = None,
) -> pd.DataFrame:
    """The customers to send ``campaign`` to: the ``budget`` highest redemption probabilities
    (or as many as ``max_cost`` / ``contact_cost`` pays for), which maximizes the expected number
    of redemptions for that many contacts. With ``contact_cost`` alone, everyone whose expected
    value exceeds it."""
    rows = _of_campaign(scores, campaign)
    if max_cost is not None:
        if not contact_cost or contact_cost <= 0:
            raise TailorError("offers: a cost budget needs a positive --contact-cost")
        by_cost = int(max_cost // contact_cost)
        budget = by_cost if budget is None else min(budget, by_cost)
    elif contact_cost is not None:
        rows = rows.loc[rows["expected_value"] > contact_cost]
    ranked = rows.sort_values(["probability", "customer_id"], ascending=[False, True])
    if budget is not None:
        if budget < 0:
            raise TailorError("offers: --budget must not be negative")
        ranked = ranked.head(budget)
    return ranked.reset_index(drop=True)


def _of_campaign(scores: pd.DataFrame, campaign: str | None) -> pd.DataFrame:
    if campaign is None:
        return scores
    rows = scores.loc[scores["campaign_id"].astype(str) == str(campaign)]
    if rows.empty:
        open_ids = sorted(scores["campaign_id"].astype(str).unique())
        raise TailorError(
            f"offers: campaign {campaign} is not open at the build's end "
            f"(open: {', '.join(open_ids) if open_ids else 'none'})"
        )
    return rows
