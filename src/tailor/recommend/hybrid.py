"""Hybrid: a learned ranker (LightGBM LambdaRank) over the candidates of the other recommenders.

Candidates per customer come from their own repeat purchases, item-KNN and recent popularity;
each (customer, item) pair is described by features those families know — how often and how
recently the customer bought it, its purchase cycle and how due it is, the item-KNN score,
popularity now and its trend, the item's price, the customer's shopping rhythm — and LightGBM
learns how to weigh them. It is trained on a period carved from the training data only: the
generators see everything before the last ``label_days``, and the label is whether the customer
bought the item in those days. For recommending, the generators are refitted on all the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend.base import Recommender, _distinct_buyers, _recent_popularity
from tailor.recommend.knn import ItemKNN
from tailor.recommend.repurchase import DAY, Repurchase, _lookup, purchase_days

FEATURES = [
    "purchase_days",
    "decayed_7",
    "decayed_30",
    "decayed_90",
    "days_since_last",
    "cycle_days",
    "due_ratio",
    "knn_score",
    "buyers_recent",
    "buyers_before",
    "buyers_all",
    "trend",
    "item_repeat_rate",
    "price",
    "customer_baskets",
    "customer_days_since_visit",
    "customer_items",
    "customer_repeat_share",
    "personal_rank",
    "knn_rank",
]
NEVER = 10_000.0  # "days since" for something that never happened


CUSTOMER_STATISTICS = (
    "decayed_7", "decayed_30", "decayed_90", "customer_baskets", "customer_days_since_visit",
    "customer_items", "customer_repeat_share",
)  # fmt: skip
"""The generators' attributes with one row per customer."""


class _Generators:
    """The candidate generators and feature sources, fitted on one dataset."""

    def __init__(self, dataset: Dataset, neighbours: int) -> None:
        self.personal = Repurchase(half_life_days=90.0).fit(dataset)
        self.knn = ItemKNN(neighbours=neighbours).fit(dataset)
        now = self.personal.now_
        self.today = self.personal.today_
        days = purchase_days(dataset)
        shape = (dataset.n_customers, dataset.n_items)
        index = (days["customer"].to_numpy(), days["item"].to_numpy())
        age = self.today - days["day"].to_numpy()
        self.decayed_7 = sp.csr_matrix((0.5 ** (age / 7.0), index), shape=shape)
        self.decayed_30 = sp.csr_matrix((0.5 ** (age / 30.0), index), shape=shape)
        self.decayed_90 = sp.csr_matrix((0.5 ** (age / 90.0), index), shape=shape)
        ev = dataset.events
        positive = ev["weight"].to_numpy() > 0
        times = ev["timestamp"].to_numpy()
        recent_start = np.datetime64(now - pd.Timedelta(days=28))
        before_start = np.datetime64(now - pd.Timedelta(days=56))
        self.buyers_recent = _distinct_buyers(
            ev, positive & (times >= recent_start), dataset.n_items
        )
        self.buyers_before = _distinct_buyers(
            ev, positive & (times >= before_start) & (times < recent_start), dataset.n_items
        )
        self.buyers_all = _distinct_buyers(ev, positive, dataset.n_items)
        self.popularity = _recent_popularity(dataset, now)
        quantity = ev["quantity"].fillna(1.0).clip(lower=1.0).to_numpy()
        unit = pd.Series(ev["value"].to_numpy() / quantity).where(positive)
        self.price = unit.groupby(ev["item"].to_numpy()).median().reindex(
            range(dataset.n_items)
        ).fillna(0.0).to_numpy()  # fmt: skip
        by_customer = ev.loc[positive].groupby("customer")
        self.customer_baskets = (
            by_customer["basket"].nunique().reindex(range(dataset.n_customers)).fillna(0)
        ).to_numpy(np.float64)
        last_visit = by_customer["timestamp"].max().reindex(range(dataset.n_customers))
        since = (np.datetime64(now) - last_visit.to_numpy()) / DAY
        self.customer_days_since_visit = np.nan_to_num(since.astype(np.float64), nan=NEVER)
        self.customer_items = np.diff(self.personal.history_.indptr).astype(np.float64)
        # How habitual an item is (share of its buyers who bought it on two days or more), and
        # how habitual a customer is (share of their items bought on two days or more).
        repeat = self.personal.counts_.copy()
        repeat.data = (repeat.data >= 2).astype(np.float64)
        repeated_by = np.asarray(repeat.sum(axis=0)).ravel()
        buyers = np.diff(self.personal.counts_.tocsc().indptr).astype(np.float64)
        self.item_repeat_rate = repeated_by / np.maximum(buyers, 1.0)
        repeated_items = np.asarray(repeat.sum(axis=1)).ravel()
        self.customer_repeat_share = repeated_items / np.maximum(self.customer_items, 1.0)

    def forget(self, dataset: Dataset, keep: np.ndarray) -> None:
        """Drop the rows of forgotten customers (see Recommender.forget); the item statistics
        stay with the ranker until the next build."""
        self.personal.forget(dataset, keep)
        self.knn.forget(dataset, keep)
        for name in CUSTOMER_STATISTICS:
            setattr(self, name, getattr(self, name)[keep])

    def attach(self, dataset: Dataset) -> None:
        """Give the fitted generators back the dataset that saving leaves out of each."""
        self.personal._attach(dataset)
        self.knn._attach(dataset)

    def pairs(
        self, rows: np.ndarray, n_personal: int, n_knn: int, n_popular: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate pairs and their features: (owner, item, X).

        ``owner`` indexes ``rows``; X has shape (n_pairs, len(FEATURES)). Customers are handled
        in blocks, so that each block's dense item-KNN scores are computed once and serve both
        the candidates and the feature.
        """
        popular = np.argsort(-self.popularity, kind="stable")[:n_popular]
        owners, items, features = [], [], []
        for start in range(0, len(rows), 512):
            block = rows[start : start + 512]
            personal_scores = self.personal._score(block)
            knn_scores = self.knn._score(block)
            knn_new = knn_scores.copy()
            _mask(knn_new, self.personal.history_, block)
            personal = _top(personal_scores, n_personal)
            knn = _top(knn_new, n_knn)
            lists = np.hstack([personal, knn, np.tile(popular, (len(block), 1))])
            owner = np.repeat(np.arange(len(block)), lists.shape[1])
            pairs = pd.DataFrame({"owner": owner, "item": lists.ravel()})
            pairs = pairs[pairs["item"] >= 0].drop_duplicates()
            o, i = pairs["owner"].to_numpy(), pairs["item"].to_numpy()
            x = self._features(
                block[o], i, knn_scores[o, i], _ranks(personal, pairs), _ranks(knn, pairs)
            )
            owners.append(o + start)
            items.append(i)
            features.append(x)
        if not owners:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros((0, len(FEATURES)), dtype=np.float32)
        return np.concatenate(owners), np.concatenate(items), np.vstack(features)

    def _features(
        self,
        customers: np.ndarray,
        items: np.ndarray,
        knn_scores: np.ndarray,
        personal_rank: np.ndarray,
        knn_rank: np.ndarray,
    ) -> np.ndarray:
        """Feature matrix (n_pairs, len(FEATURES)) of (customer, item) pairs."""

        def at(matrix: sp.csr_matrix) -> np.ndarray:
            return _lookup(matrix, customers, items[:, None])[:, 0]

        purchase_count = at(self.personal.counts_)
        last = at(self.personal.last_day_) - 1
        since = np.where(purchase_count > 0, self.today - last, NEVER)
        cycle = at(self.personal.cycle_)
        cycle = np.where(cycle >= 1, cycle, 0.0)
        due = np.where(cycle > 0, since / np.maximum(cycle, 1.0), 0.0)
        columns = [
            purchase_count,
            at(self.decayed_7),
            at(self.decayed_30),
            at(self.decayed_90),
            since,
            cycle,
            due,
            knn_scores,
            self.buyers_recent[items],
            self.buyers_before[items],
            self.buyers_all[items],
            (self.buyers_recent[items] + 1.0) / (self.buyers_before[items] + 1.0),
            self.item_repeat_rate[items],
            self.price[items],
            self.customer_baskets[customers],
            self.customer_days_since_visit[customers],
            self.customer_items[customers],
            self.customer_repeat_share[customers],
            personal_rank,
            knn_rank,
        ]
        return np.column_stack(columns).astype(np.float32)


def _top(scores: np.ndarray, n: int) -> np.ndarray:
    top = np.argpartition(-scores, min(n, scores.shape[1] - 1), axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    top[~np.isfinite(np.take_along_axis(scores, top, axis=1))] = -1
    return top


def _mask(scores: np.ndarray, history: sp.csr_matrix, rows: np.ndarray) -> None:
    sub = history[rows].tocoo()
    scores[sub.row, sub.col] = -np.inf


class Hybrid(Recommender):
    """LightGBM LambdaRank over repeat, item-KNN and popular candidates (see module docstring).

    Parameters
    ----------
    label_days : float
        Days at the end of the training data used as labels for the ranker.
    n_personal, n_knn, n_popular : int
        Candidates per customer from each generator.
    n_estimators, learning_rate, num_leaves : LightGBM settings.
    neighbours : int
        Item-KNN neighbours per item.
    random_state : int
    """

    name = "hybrid"
    fold_out = "retrain"  # the ranker learned from every customer's labels

    def __init__(
        self,
        label_days: float = 28.0,
        n_personal: int = 60,
        n_knn: int = 40,
        n_popular: int = 20,
        n_estimators: int = 300,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        neighbours: int = 100,
        random_state: int = 0,
    ) -> None:
        self.label_days = label_days
        self.n_personal = n_personal
        self.n_knn = n_knn
        self.n_popular = n_popular
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.neighbours = neighbours
        self.random_state = random_state

    def _fit(self, dataset: Dataset) -> None:
        from lightgbm import LGBMRanker

        try:
            past, future = dataset.temporal_split(self.label_days)
        except TailorError:
            past, future = dataset, dataset.with_events(np.zeros(len(dataset.events), bool))
        generators = _Generators(past, self.neighbours)
        truth = (future.interactions > 0).tocsr()
        rows = np.flatnonzero(np.diff(past.interactions.indptr) > 0)
        owner, items, x = generators.pairs(rows, self.n_personal, self.n_knn, self.n_popular)
        y = (
            np.asarray(truth[rows[owner], items]).ravel() > 0
            if len(owner)
            else np.zeros(0, dtype=bool)
        )
        self.ranker_ = None
        if y.any() and (~y).any():
            # LambdaRank needs pairs: only customers with both outcomes among candidates teach it.
            positives = np.bincount(owner, weights=y, minlength=len(rows))
            sizes = np.bincount(owner, minlength=len(rows))
            keep = (positives[owner] > 0) & (positives[owner] < sizes[owner])
            order = np.argsort(owner[keep], kind="stable")
            groups = np.bincount(owner[keep][order])
            self.ranker_ = LGBMRanker(
                objective="lambdarank",
                n_estimators=self.n_estimators,
                learning_rate=self.learning_rate,
                num_leaves=self.num_leaves,
                min_child_samples=50,
                subsample=0.8,
                subsample_freq=1,
                colsample_bytree=0.9,
                random_state=self.random_state,
                n_jobs=2,
                verbose=-1,
            )
            self.ranker_.fit(x[keep][order], y[keep][order], group=groups[groups > 0])
        self.generators_ = _Generators(dataset, self.neighbours)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        g = self.generators_
        if self.ranker_ is None:  # too little data to learn from: the repeat list
            return g.personal._score(rows)
        owner, items, x = g.pairs(rows, self.n_personal, self.n_knn, self.n_popular)
        scores = np.full((len(rows), self.dataset_.n_items), -np.inf, dtype=np.float32)
        scores[owner, items] = self.ranker_.predict(x, num_threads=2)
        return scores

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        g = self.generators_
        repeat = _lookup(g.personal.counts_, rows, items) > 0
        reasons = g.knn._reasons(rows, items, scores)
        if repeat.any():
            personal = g.personal._reasons(rows, items, scores)
            reasons[repeat] = personal[repeat]
        return reasons

    def _forget(self, dataset: Dataset, keep: np.ndarray) -> None:
        self.generators_.forget(dataset, keep)

    def _attach(self, dataset: Dataset) -> None:
        super()._attach(dataset)
        self.generators_.attach(dataset)

    def feature_importance(self) -> pd.Series:
        """Gain of each feature in the ranker, largest first."""
        if self.ranker_ is None:
            return pd.Series(dtype=float)
        gains = self.ranker_.booster_.feature_importance(importance_type="gain")
        return pd.Series(gains, index=FEATURES).sort_values(ascending=False)


def _ranks(lists: np.ndarray, pairs: pd.DataFrame) -> np.ndarray:
    """1-based rank of each pair's item in its owner's list; 0 when absent."""
    n, width = lists.shape
    owner = np.repeat(np.arange(n), width)
    ranked = pd.DataFrame(
        {"owner": owner, "item": lists.ravel(), "rank": np.tile(np.arange(1, width + 1), n)}
    )
    ranked = ranked[ranked["item"] >= 0].drop_duplicates(["owner", "item"])
    merged = pairs.merge(ranked, on=["owner", "item"], how="left")
    return merged["rank"].fillna(0).to_numpy(np.float64)
