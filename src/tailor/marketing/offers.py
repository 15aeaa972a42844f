"""Offer response: the probability that a customer redeems a campaign's coupons.

An example is one (customer, campaign) pair; its label is 1 when the customer redeemed at least one
of the campaign's offers. Its features are taken just before the campaign starts (the *cut*), so
nothing after the cut leaks in:

* the customer's 360 features at the cut (:mod:`tailor.customers.features`);
* their coupon history: redemptions, campaigns received and redeemed, days since the last
  redemption, redemptions in campaigns of the same type;
* their affinity to the campaign's offers: purchases of the offered items before the cut (lines,
  spend, distinct items, how many of the campaign's coupons cover something they bought), recent
  purchases of them, and the share of their spend those items take — the personal-frequency score
  of the offer's items, which in grocery is the strongest recommendation signal;
* the campaign: its type, length, and how many coupons and items it holds.

Training examples are the members of past campaigns (those are the customers who got the
coupons). The honest evaluation (:func:`evaluate_offers`) holds out the last campaigns by start
date, trains on the ones before, and puts two baselines beside the model on the same held-out
members: "target everyone in the campaign" (every member scores the same) and "target by past
redemption count". It reports AUC and the lift of the top decile (the redemption rate among the
10% highest scores over the rate among all), with ties in a baseline's scores shared out evenly,
so a constant score has lift exactly 1.

The model is LightGBM; reasons are its TreeSHAP contributions, the two strongest towards a high
response, in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from tailor.customers.features import PurchaseTable, reference_day
from tailor.errors import TailorError
from tailor.store.schema import ANALYTICS_CONSENTED
from tailor.store.warehouse import Warehouse

# Customer 360 columns the response model reads (the rest describe a customer's habits in ways
# that did not help it predict redemption: store and channel mix, quintile scores of columns it
# has anyway).
CUSTOMER_COLUMNS = [
    "recency_days", "frequency", "monetary", "tenure_days", "purchase_days",
    "active_week_share", "interpurchase_days", "avg_basket_value", "avg_basket_lines",
    "discount_line_share", "discount_value_share", "coupon_rate", "spend_last_28d",
    "baskets_last_28d", "baskets_last_91d", "spend_trend",
]  # fmt: skip

LGBM_PARAMS = {
    "min_child_samples": 30,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "verbose": -1,
    "n_jobs": 1,
}

# The compact grid the validation campaigns choose from: a few hundred examples per campaign make
# deep, long boosting overfit, so the grid runs from the churn model's setting to much smaller ones.
GRID = [
    {"n_estimators": 300, "learning_rate": 0.03, "num_leaves": 15},
    {"n_estimators": 150, "learning_rate": 0.03, "num_leaves": 7},
    {"n_estimators": 200, "learning_rate": 0.05, "num_leaves": 4},
    {"n_estimators": 100, "learning_rate": 0.05, "num_leaves": 4},
]

MIN_EXAMPLES = 50
"""Fewer training examples (or no redeemer among them) is an error: nothing to learn from."""


class NoCampaigns(TailorError):
    """The warehouse holds too little campaign history for an offer model."""


def campaigns(wh: Warehouse, bound: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per campaign that started before ``bound`` (all when None): campaign_id, type,
    start, end, offers (coupons), items (distinct items they cover), members and redeemers
    (redemptions before ``bound``); sorted by start."""
    return wh.con.execute(_CAMPAIGNS_SQL, {"bound": _bound(bound)}).df().set_index("campaign_id")


def _bound(bound: pd.Timestamp | None) -> object:
    return "infinity" if bound is None else bound.to_pydatetime()


_CAMPAIGNS_SQL = """
SELECT c.campaign_id, coalesce(c.type, 'unknown') AS type, c.start, c."end",
    coalesce(o.offers, 0) AS offers, coalesce(o.items, 0) AS items,
    coalesce(m.members, 0) AS members, coalesce(r.redeemers, 0) AS redeemers
FROM campaigns c
LEFT JOIN (SELECT campaign_id, count(DISTINCT offer_id) AS offers,
                  count(DISTINCT item_id) AS items FROM offers GROUP BY ALL) o USING (campaign_id)
LEFT JOIN (SELECT campaign_id, count(*) AS members FROM campaign_members GROUP BY ALL) m
    USING (campaign_id)
LEFT JOIN (SELECT campaign_id, count(DISTINCT customer_id) AS redeemers FROM redemptions
           WHERE timestamp < $bound GROUP BY ALL) r USING (campaign_id)
WHERE c.start IS NOT NULL AND c.start < $bound
ORDER BY c.start, c.campaign_id
"""


def pair_features(purchases: PurchaseTable, pairs: pd.DataFrame) -> pd.DataFrame:
    """Model inputs of (customer, campaign) pairs, each as the warehouse stood before its cut.

    Parameters
    ----------
    purchases : PurchaseTable
        Open purchase table whose end is at or after every cut.
    pairs : DataFrame with columns customer_id, campaign_id, cut (Timestamp)

    Returns
    -------
    DataFrame indexed like ``pairs``, one column per input (see the module docstring).
    """
    con = purchases.wh.con
    frames = []
    for cut, group in pairs.groupby("cut", sort=True):  # one per campaign start: a few dozen
        table = purchases.features(pd.Timestamp(cut)).table
        frames.append(
            group[["customer_id"]]
            .join(table[CUSTOMER_COLUMNS], on="customer_id")
            .drop(columns="customer_id")
        )
    customer = pd.concat(frames).reindex(pairs.index)
    keyed = pairs[["customer_id", "campaign_id", "cut"]].assign(pair=np.arange(len(pairs)))
    con.register("__pairs", keyed)
    try:
        history = con.execute(_HISTORY_SQL).df().set_index("pair").sort_index()
        affinity = con.execute(_AFFINITY_SQL).df().set_index("pair").sort_index()
    finally:
        con.unregister("__pairs")
    of_pair = campaigns(purchases.wh).reindex(pairs["campaign_id"])
    campaign = pd.DataFrame(
        {
            "campaign_type": of_pair["type"].to_numpy(),
            # Calendar days from the start's day to the end's (as DuckDB's date_diff counts).
            "campaign_days": (
                of_pair["end"].dt.normalize() - of_pair["start"].dt.normalize()
            ).dt.days.to_numpy(),
            "campaign_offers": of_pair["offers"].to_numpy(),
            "campaign_items": of_pair["items"].to_numpy(),
        }
    )
    x = pd.concat([history, affinity, campaign], axis=1).reindex(np.arange(len(pairs)))
    x.index = pairs.index
    x = pd.concat([customer, x], axis=1)
    counts = [c for c in x if c.startswith(("offer_", "redemptions", "campaigns_"))]
    x[counts] = x[counts].fillna(0.0)
    x["offer_spend_share"] = x["offer_item_spend"] / x["monetary"].where(x["monetary"] > 0)
    x["redeemed_share"] = x["campaigns_redeemed"] / x["campaigns_before"].where(
        x["campaigns_before"] > 0
    )
    x["campaign_type"] = x["campaign_type"].astype("category")
    return x


# Coupon history of each pair's customer before the cut.
_HISTORY_SQL = """
SELECT p.pair,
    count(r.customer_id) AS redemptions_before,
    count(DISTINCT r.campaign_id) AS campaigns_redeemed,
    count(r.customer_id) FILTER (WHERE rc.type = pc.type) AS redemptions_same_type,
    date_diff('day', max(r.timestamp), p.cut) AS days_since_redemption,
    (SELECT count(*) FROM campaign_members m JOIN campaigns c USING (campaign_id)
     WHERE m.customer_id = p.customer_id AND c.start < p.cut
       AND m.campaign_id <> p.campaign_id) AS campaigns_before
FROM __pairs p
JOIN campaigns pc ON pc.campaign_id = p.campaign_id
LEFT JOIN redemptions r ON r.customer_id = p.customer_id AND r.timestamp < p.cut
    AND r.campaign_id IS DISTINCT FROM p.campaign_id
LEFT JOIN campaigns rc ON rc.campaign_id = r.campaign_id
GROUP BY p.pair, p.customer_id, p.campaign_id, p.cut
"""

# Purchases, before the cut, of the items the pair's campaign offers coupons on.
_AFFINITY_SQL = """
WITH offer_items AS (
    SELECT DISTINCT campaign_id, item_id FROM offers
), bought AS (
    SELECT p.pair, b.item_id, b.spend, b.timestamp, p.cut
    FROM __pairs p
    JOIN __purchases b ON b.customer_id = p.customer_id AND b.timestamp < p.cut
        AND b.event_type = 'purchase'
    JOIN offer_items o ON o.campaign_id = p.campaign_id AND o.item_id = b.item_id
), coupons AS (
    SELECT p.pair, count(DISTINCT o.offer_id) AS offer_coupons_bought
    FROM __pairs p
    JOIN (SELECT DISTINCT customer_id, item_id, min(timestamp) AS first FROM __purchases
          WHERE event_type = 'purchase' GROUP BY ALL) b
        ON b.customer_id = p.customer_id AND b.first < p.cut
    JOIN offers o ON o.campaign_id = p.campaign_id AND o.item_id = b.item_id
    GROUP BY p.pair
)
SELECT pair, count(*) AS offer_item_lines, sum(spend) AS offer_item_spend,
    count(DISTINCT item_id) AS offer_items_bought,
    count(*) FILTER (WHERE timestamp >= cut - INTERVAL 91 DAY) AS offer_item_lines_91d,
    count(*) FILTER (WHERE timestamp >= cut - INTERVAL 28 DAY) AS offer_item_lines_28d,
    any_value(c.offer_coupons_bought) AS offer_coupons_bought
FROM bought LEFT JOIN coupons c USING (pair)
GROUP BY pair
"""


@dataclass
class Examples:
    """Campaign members as training examples, sorted by campaign start.

    Attributes
    ----------
    x : DataFrame
        Model inputs (:func:`pair_features`), one row per member.
    y : ndarray of int, shape (len(x),)
        1 where the member redeemed one of the campaign's offers.
    pairs : DataFrame with columns customer_id, campaign_id, cut
    """

    x: pd.DataFrame
    y: np.ndarray
    pairs: pd.DataFrame

    @property
    def campaigns(self) -> list:
        """The campaigns, in order of start."""
        return self.pairs["campaign_id"].drop_duplicates().tolist()

    def of(self, campaign_ids: list) -> Examples:
        keep = self.pairs["campaign_id"].isin(campaign_ids).to_numpy()
        return Examples(self.x.loc[keep], self.y[keep], self.pairs.loc[keep])


def member_examples(purchases: PurchaseTable, campaign_ids: list | None = None) -> Examples:
    """The members of ``campaign_ids`` (default: :func:`usable_campaigns`), cut at each
    campaign's start; a label counts the redemptions before the table's end."""
    if campaign_ids is None:
        campaign_ids = usable_campaigns(purchases)
    if not campaign_ids:
        raise NoCampaigns(
            "offers: no campaign with members started after the first event; load campaigns, "
            "campaign members, offers and redemptions to learn who responds"
        )
    pairs = purchases.wh.con.execute(
        "SELECT m.customer_id, m.campaign_id, c.start AS cut, "
        "EXISTS (SELECT 1 FROM redemptions r WHERE r.customer_id = m.customer_id "
        "        AND r.campaign_id = m.campaign_id AND r.timestamp < $bound) AS redeemed "
        "FROM campaign_members m JOIN campaigns c USING (campaign_id) "
        f"WHERE list_contains($ids, m.campaign_id) AND m.{ANALYTICS_CONSENTED} "
        "ORDER BY c.start, m.campaign_id, m.customer_id",
        {"ids": list(campaign_ids), "bound": _bound(purchases.end)},
    ).df()
    y = pairs.pop("redeemed").to_numpy(dtype=int)
    return Examples(pair_features(purchases, pairs), y, pairs)


def usable_campaigns(purchases: PurchaseTable) -> list:
    """Campaigns with members that started after the first event and ended before the table's
    end: a campaign still running has redeemers to come, and would teach that they did not."""
    table = campaigns(purchases.wh, purchases.end)
    first = purchases.wh.con.execute("SELECT min(timestamp) FROM events").fetchone()[0]
    usable = table.loc[table["members"] > 0]
    if first is not None:
        usable = usable.loc[usable["start"] > pd.Timestamp(first)]
    end = purchases.end
    if end is None:  # the whole history: up to midnight after the last event's day
        last = reference_day(purchases.wh, None)
        end = None if last is None else last + pd.Timedelta(days=1)
    if end is not None:
        usable = usable.loc[usable["end"].notna() & (usable["end"] < end)]
    return list(usable.index)


@dataclass
class OfferModel:
    """A fitted response model and what it was trained on.

    Attributes
    ----------
    columns : list of str
        The inputs, in order.
    classifier : LGBMClassifier
    campaigns : list
        The campaigns whose members it learnt from.
    redemption_rate : float
        Share of training examples that redeemed.
    """

    columns: list[str]
    classifier: lgb.LGBMClassifier
    campaigns: list = field(default_factory=list)
    redemption_rate: float = float("nan")

    def probability(self, x: pd.DataFrame) -> np.ndarray:
        """Probability of redemption per row of ``x``: ndarray of shape (len(x),)."""
        return self.classifier.predict_proba(x[self.columns])[:, 1]

    def reasons(self, x: pd.DataFrame) -> list[str]:
        """The two inputs that push each row's response furthest up, in words."""
        x = x[self.columns]
        contrib = self.classifier.predict(x, pred_contrib=True)[:, :-1]  # last column: bias
        top = np.argsort(-contrib, axis=1)[:, :2]
        numeric = x.drop(columns="campaign_type")
        position = {c: i for i, c in enumerate(numeric.columns)}
        values = numeric.to_numpy(dtype=float)
        kinds = x["campaign_type"].astype(str).to_numpy()
        out = []
        for i in range(len(x)):  # only the string formatting is per row
            words = []
            for j in top[i]:
                if contrib[i, j] <= 0:
                    continue
                column = self.columns[j]
                if column == "campaign_type":
                    words.append(f"{kinds[i]} campaigns draw more redemptions")
                else:
                    words.append(describe(column, values[i, position[column]]))
            out.append("; ".join(words) if words else "close to the average member")
        return out


def fit_model(
    x: pd.DataFrame, y: np.ndarray, params: dict | None = None, random_state: int = 0
) -> OfferModel:
    """LightGBM on the examples, with ``params`` (default: the grid's first) over LGBM_PARAMS."""
    _check_examples(y)
    settings = {**LGBM_PARAMS, **(params or GRID[0]), "random_state": random_state}
    classifier = lgb.LGBMClassifier(**settings).fit(x, y)
    return OfferModel(list(x.columns), classifier, redemption_rate=float(y.mean()))


def _check_examples(y: np.ndarray) -> None:
    if len(y) < MIN_EXAMPLES or y.sum() == 0 or y.sum() == len(y):
        raise NoCampaigns(
            f"offers: {len(y)} campaign members with {int(y.sum())} redeemers to learn from; "
            f"need at least {MIN_EXAMPLES} members and both redeemers and non-redeemers"
        )


def select_params(examples: Examples, random_state: int = 0) -> tuple[dict, dict[str, float]]:
    """The GRID setting with the best AUC on the last quarter of the campaigns (by start),
    trained on those before; (setting, validation AUC per setting). Falls back to the first
    setting when the validation campaigns have a single outcome."""
    order = examples.campaigns
    n_valid = max(1, round(0.25 * len(order)))
    train, valid = examples.of(order[:-n_valid]), examples.of(order[-n_valid:])
    if len(order) < 2 or len(np.unique(valid.y)) < 2 or len(np.unique(train.y)) < 2:
        return GRID[0], {}
    aucs = {}
    for params in GRID:  # a handful of settings
        model = fit_model(train.x, train.y, params, random_state)
        aucs[_name(params)] = float(roc_auc_score(valid.y, model.probability(valid.x)))
    best = max(GRID, key=lambda p: aucs[_name(p)])
    return best, aucs


def _name(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


_PHRASES = {
    "offer_item_lines": "bought this campaign's coupon products {:.0f} times",
    "offer_item_lines_91d": "bought the offer's products {:.0f} times in the last 3 months",
    "offer_item_lines_28d": "bought the offer's products {:.0f} times in the last 4 weeks",
    "offer_item_spend": "spent {:,.0f} on this campaign's coupon products",
    "offer_items_bought": "buys {:.0f} of the products this campaign discounts",
    "offer_coupons_bought": "{:.0f} of this campaign's coupons cover products they buy",
    "offer_spend_share": "{:.0%} of their spend goes to this campaign's coupon products",
    "redemptions_before": "redeemed {:.0f} coupons before",
    "campaigns_redeemed": "redeemed in {:.0f} earlier campaigns",
    "redemptions_same_type": "redeemed {:.0f} coupons in campaigns of this type",
    "days_since_redemption": "last redeemed a coupon {:.0f} days ago",
    "campaigns_before": "received {:.0f} campaigns before",
    "redeemed_share": "redeemed in {:.0%} of the campaigns they received",
    "campaign_days": "a {:.0f}-day campaign",
    "campaign_offers": "a campaign of {:.0f} coupons",
    "campaign_items": "a campaign covering {:.0f} products",
    "recency_days": "last purchase {:.0f} days ago",
    "frequency": "{:.0f} shopping trips so far",
    "monetary": "{:,.0f} spent so far",
    "tenure_days": "a customer for {:.0f} days",
    "purchase_days": "bought on {:.0f} days",
    "active_week_share": "shops in {:.0%} of weeks",
    "interpurchase_days": "shops every {:.1f} days",
    "avg_basket_value": "{:,.2f} per trip",
    "avg_basket_lines": "{:.0f} products per trip",
    "discount_line_share": "{:.0%} of lines bought on discount",
    "discount_value_share": "saves {:.0%} of their spend through discounts",
    "coupon_rate": "{:.2f} coupons per trip",
    "spend_last_28d": "spent {:,.0f} in the last 4 weeks",
    "baskets_last_28d": "{:.0f} trips in the last 4 weeks",
    "baskets_last_91d": "{:.0f} trips in the last 3 months",
    "spend_trend": "spending at {:.0%} of their usual lately",
}

_MISSING = {
    "days_since_redemption": "never redeemed a coupon",
    "redeemed_share": "first campaign they receive",
    "offer_spend_share": "no purchases yet",
    "interpurchase_days": "a single shopping day so far",
    "spend_trend": "under 8 weeks of history",
}


def describe(column: str, value: float) -> str:
    """An input's value in words."""
    if np.isnan(value):
        return _MISSING.get(column, f"no {column.replace('_', ' ')} yet")
    return _PHRASES.get(column, column.replace("_", " ") + " {:.3g}").format(value)


def top_decile_lift(y: np.ndarray, score: np.ndarray, share: float = 0.1) -> float:
    """Redemption rate among the ``share`` highest scores over the rate among all.

    Ties are shared out evenly: a tie group straddling the cut contributes its mean rate for
    the places it fills, which is the expected lift under random tie-breaking (a constant
    score gets exactly 1).
    """
    y = np.asarray(y, dtype=float)
    n_top = share * len(y)
    order = np.argsort(-score, kind="stable")
    s, labels = score[order], y[order]
    # Each distinct score: its count and positives, in descending order.
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    counts = np.diff(np.r_[starts, len(s)])
    positives = np.add.reduceat(labels, starts)
    before = np.r_[0, np.cumsum(counts)[:-1]]
    taken = np.clip(n_top - before, 0, counts)
    hits = np.sum(positives / counts * taken)
    return float(hits / n_top / y.mean())


@dataclass(frozen=True)
class OfferEvaluation:
    """The model and the baselines on the held-out campaigns."""

    train_campaigns: list
    test_campaigns: list
    n_train: int
    n_test: int
    redemption_rate: float
    metrics: pd.DataFrame  # rows: model, baselines; columns: auc, top_decile_lift
    params: dict
    validation_auc: dict[str, float]

    def as_dict(self) -> dict:
        return {
            "train_campaigns": [str(c) for c in self.train_campaigns],
            "test_campaigns": [str(c) for c in self.test_campaigns],
            "n_train": self.n_train,
            "n_test": self.n_test,
            "redemption_rate": self.redemption_rate,
            "metrics": self.metrics.round(4).reset_index().to_dict(orient="records"),
            "params": self.params,
            "validation_auc": {k: round(v, 4) for k, v in self.validation_auc.items()},
        }


def evaluate_offers(
    examples: Examples, test_share: float = 0.25, random_state: int = 0
) -> OfferEvaluation:
    """Train on earlier campaigns' members, test on the last ``test_share`` of the campaigns
    by start date (at least one); the setting is chosen on the training campaigns alone."""
    order = examples.campaigns
    n_test = max(1, round(test_share * len(order)))
    if len(order) - n_test < 1:
        raise NoCampaigns(
            f"offers: {len(order)} campaigns with members; need at least 2 to hold later ones out"
        )
    train, test = examples.of(order[:-n_test]), examples.of(order[-n_test:])
    if len(np.unique(test.y)) < 2:
        raise NoCampaigns("offers: the held-out campaigns have a single outcome; cannot evaluate")
    _check_examples(train.y)
    params, validation = select_params(train, random_state)
    model = fit_model(train.x, train.y, params, random_state)
    scores = {
        "model": model.probability(test.x),
        "everyone in the campaign": np.zeros(len(test.y)),
        "past redemption count": test.x["redemptions_before"].to_numpy(dtype=float),
    }
    metrics = pd.DataFrame(
        {
            name: {
                "auc": float(roc_auc_score(test.y, s)),
                "top_decile_lift": top_decile_lift(test.y, s),
            }
            for name, s in scores.items()
        }
    ).T.rename_axis("model")
    return OfferEvaluation(
        train.campaigns,
        test.campaigns,
        len(train.y),
        len(test.y),
        float(test.y.mean()),
        metrics,
        params,
        validation,
    )


def fit_offers(examples: Examples, random_state: int = 0) -> OfferModel:
    """The published model: trained on every campaign's members (setting chosen as in
    :func:`evaluate_offers`, on the last quarter of those campaigns)."""
    _check_examples(examples.y)
    params, _ = select_params(examples, random_state)
    model = fit_model(examples.x, examples.y, params, random_state)
    model.campaigns = examples.campaigns
    return model
