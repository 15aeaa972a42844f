"""Segments: the RFM grid with business names, and behavioural clusters described in words.

The RFM grid places each buyer by recency score R and a frequency-and-spend score
FM = round((F + M) / 2), both 1-5 (see :mod:`tailor.customers.features`), on the grid the
retail trade uses (each of the 25 cells belongs to one segment):

=====================  ==========  ==========
segment                R           FM
=====================  ==========  ==========
Champions              5           4-5
Loyal                  3-5         4-5 (not Champions)
Potential loyalist     4-5         2-3
New                    5           1
Promising              4           1
Need attention         3           3
About to sleep         3           1-2
At risk                1-2         3-4
Can't lose             1-2         5
Hibernating            1-2         1-2 (not Lost)
Lost                   1           1
=====================  ==========  ==========

Clusters are k-means on standardised behaviour (log-scaled amounts, shares and rates), with
k chosen by silhouette within a range; each cluster is described by the features whose
cluster mean lies furthest from the population's, in standard deviations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

from tailor.customers.features import CustomerFeatures

NO_PURCHASE = "No purchase yet"

RFM_SEGMENTS: dict[str, tuple[str, str]] = {
    # segment: (what it means, what to do)
    "Champions": ("bought recently, buy often and spend the most", "reward them; ask for reviews"),
    "Loyal": ("buy often and spend well", "upsell; loyalty programme"),
    "Potential loyalist": ("recent customers with average frequency", "membership offers"),
    "New": ("bought for the first time recently", "onboarding; a second-purchase offer"),
    "Promising": ("recent shoppers who have not spent much", "build the habit; brand awareness"),
    "Need attention": ("average recency, frequency and spend", "limited-time offers"),
    "About to sleep": ("below average recency and frequency", "reactivate with popular items"),
    "At risk": ("spent well and often, but long ago", "personal win-back offers"),
    "Can't lose": ("were among the best, have not come back", "win them back; ask what went wrong"),
    "Hibernating": ("last bought long ago, few orders", "a relevant offer, or let them rest"),
    "Lost": ("lowest recency, frequency and spend", "ignore unless cheap to reach"),
    NO_PURCHASE: ("known, but has not bought", "a first-purchase offer"),
}


def rfm_segment(r: np.ndarray, f: np.ndarray, m: np.ndarray) -> np.ndarray:
    """The grid segment of each customer from quintile scores (0 = never bought).

    Parameters
    ----------
    r, f, m : array-like of int of shape (n,)
        Scores 1-5, or 0 for a customer without a purchase.

    Returns
    -------
    ndarray of object of shape (n,)
    """
    r = np.asarray(r, dtype=int)
    fm = np.floor((np.asarray(f, dtype=int) + np.asarray(m, dtype=int)) / 2 + 0.5).astype(int)
    conditions = [
        r == 0,
        (r == 5) & (fm >= 4),
        (r >= 3) & (fm >= 4),
        (r >= 4) & (fm >= 2),
        (r == 5) & (fm == 1),
        (r == 4) & (fm == 1),
        (r == 3) & (fm == 3),
        (r == 3) & (fm <= 2),
        (r <= 2) & (fm == 5),
        (r <= 2) & (fm >= 3),
        (r == 1) & (fm == 1),
    ]
    names = [
        NO_PURCHASE,
        "Champions",
        "Loyal",
        "Potential loyalist",
        "New",
        "Promising",
        "Need attention",
        "About to sleep",
        "Can't lose",
        "At risk",
        "Lost",
    ]
    return np.select(conditions, names, default="Hibernating").astype(object)


# -- clusters -------------------------------------------------------------------------------------

# Features clustered on, with the words for a cluster far above / below the population.
# Amounts are log-scaled first (spend is long-tailed); department shares are added per table.
_CLUSTER_FEATURES: dict[str, tuple[str, str]] = {
    "recency_days": ("lapsing", "recently active"),
    "frequency": ("frequent shoppers", "rare shoppers"),
    "avg_basket_value": ("large baskets", "small baskets"),
    "avg_basket_lines": ("many different products per trip", "few products per trip"),
    "interpurchase_cv": ("irregular visits", "regular visits"),
    "discount_line_share": ("deal seekers", "pay full price"),
    "coupon_rate": ("coupon users", "no coupons"),
    "spend_trend": ("spending more lately", "spending less lately"),
    "returns_rate": ("return a lot", "rarely return"),
    "top_store_share": ("loyal to one store", "shop around stores"),
}
_LOG_SCALED = {"recency_days", "frequency", "avg_basket_value", "avg_basket_lines"}


@dataclass(frozen=True)
class Clustering:
    """Cluster of each buyer and the profile of each cluster.

    Attributes
    ----------
    labels : Series
        Cluster number (0..k-1) per ``customer_id`` of the buyers; -1 for non-buyers.
    profiles : DataFrame
        One row per cluster: cluster, size, share, revenue_share, description, and the cluster's
        mean of each clustered feature.
    silhouette : dict
        Silhouette score of each k tried.
    """

    labels: pd.Series
    profiles: pd.DataFrame
    silhouette: dict[int, float]

    @property
    def k(self) -> int:
        return len(self.profiles)


def cluster_customers(
    features: CustomerFeatures,
    k_range: tuple[int, int] = (3, 8),
    random_state: int = 0,
    sample_size: int = 5000,
) -> Clustering:
    """k-means clusters of the buyers, k in ``k_range`` (inclusive) picked by silhouette.

    The silhouette is computed on at most ``sample_size`` customers (it is quadratic).
    """
    table = features.table
    buyers = features.buyers
    names = {**_CLUSTER_FEATURES}
    for column, department in features.departments.items():
        names[column] = (f"buy a lot of {department.lower()}", f"little {department.lower()}")
    columns = [c for c in names if c in buyers and buyers[c].notna().any()]
    x = _standardise(buyers[columns])
    labels = np.full(len(table), -1)
    if len(buyers) < 2 * k_range[0]:
        return Clustering(pd.Series(labels, index=table.index), _EMPTY.copy(), {})
    rng = np.random.default_rng(random_state)
    sample = rng.choice(len(x), size=min(sample_size, len(x)), replace=False)
    scores, fits = {}, {}
    for k in range(k_range[0], min(k_range[1], len(x) - 1) + 1):
        # One thread: on customer tables this size, OpenMP's start-up and spinning cost more
        # than they save, and far more on a busy machine.
        with threadpool_limits(1):
            fit = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(x)
        if len(np.unique(fit.labels_[sample])) < 2:
            continue
        scores[k] = float(silhouette_score(x[sample], fit.labels_[sample]))
        fits[k] = fit
    if not scores:  # every fit left the sample in one cluster: the buyers are all alike
        return Clustering(pd.Series(labels, index=table.index), _EMPTY.copy(), {})
    best = max(scores, key=lambda k: (scores[k], -k))
    fit = fits[best]
    # Number clusters by revenue, largest first, so that cluster 0 is the most valuable.
    revenue = pd.Series(buyers["monetary"].to_numpy()).groupby(fit.labels_).sum()
    order = {old: new for new, old in enumerate(revenue.sort_values(ascending=False).index)}
    buyer_labels = np.vectorize(order.get)(fit.labels_)
    labels[table.index.get_indexer(buyers.index)] = buyer_labels
    profiles = _profiles(buyers, columns, x, buyer_labels, names, len(table))
    return Clustering(pd.Series(labels, index=table.index), profiles, scores)


_EMPTY = pd.DataFrame(columns=["cluster", "size", "share", "revenue_share", "description"])


def _standardise(frame: pd.DataFrame) -> np.ndarray:
    """Log-scale amounts, fill missing with the median, then z-score each column."""
    frame = frame.copy()
    for column in frame.columns.intersection(list(_LOG_SCALED)):
        frame[column] = np.log1p(frame[column].clip(lower=0))
    frame = frame.fillna(frame.median()).fillna(0.0)
    sd = frame.std(ddof=0).replace(0.0, 1.0)
    return ((frame - frame.mean()) / sd).to_numpy()


def _profiles(
    buyers: pd.DataFrame,
    columns: list[str],
    x: np.ndarray,
    labels: np.ndarray,
    names: dict[str, tuple[str, str]],
    n_customers: int,
) -> pd.DataFrame:
    z = pd.DataFrame(x, columns=columns).groupby(labels).mean()
    means = buyers[columns].groupby(labels).mean()
    revenue = buyers["monetary"].groupby(labels).sum()
    size = pd.Series(labels).value_counts().sort_index()
    rows = []
    for cluster in z.index:
        distinct = z.loc[cluster].abs().sort_values(ascending=False)
        words = [
            names[c][0] if z.loc[cluster, c] > 0 else names[c][1]
            for c in distinct.index[:3]
            if abs(z.loc[cluster, c]) >= 0.25
        ]
        rows.append(
            {
                "cluster": int(cluster),
                "size": int(size[cluster]),
                "share": float(size[cluster] / n_customers),
                "revenue_share": float(revenue[cluster] / max(revenue.sum(), 1e-12)),
                "description": ", ".join(words) if words else "close to the average customer",
                **{f"mean_{c}": float(means.loc[cluster, c]) for c in columns},
            }
        )
    return pd.DataFrame(rows)


def segment_profiles(features: CustomerFeatures, segments: pd.Series) -> pd.DataFrame:
    """One row per RFM segment: size, share of customers, share of revenue, typical recency,
    frequency and spend, what it means and what to do."""
    table = features.table
    grouped = table.groupby(segments.to_numpy())
    revenue = table["monetary"].sum()
    frame = pd.DataFrame(
        {
            "size": grouped.size(),
            "revenue_share": grouped["monetary"].sum() / revenue if revenue > 0 else 0.0,
            "median_recency_days": grouped["recency_days"].median(),
            "median_frequency": grouped["frequency"].median(),
            "median_monetary": grouped["monetary"].median(),
        }
    )
    frame["share"] = frame["size"] / len(table)
    frame["description"] = [RFM_SEGMENTS[s][0] for s in frame.index]
    frame["action"] = [RFM_SEGMENTS[s][1] for s in frame.index]
    order = [s for s in RFM_SEGMENTS if s in frame.index]
    frame = frame.loc[order].rename_axis("segment").reset_index()
    return frame[
        [
            "segment",
            "size",
            "share",
            "revenue_share",
            "median_recency_days",
            "median_frequency",
            "median_monetary",
            "description",
            "action",
        ]
    ]
