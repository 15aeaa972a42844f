"""Segment popularity: what customers like this one bought lately.

Customers are grouped into segments, either by a stored customer attribute (``attribute=``,
e.g. an income band or a segment column a shop loads) or, by default, by what they buy: k-means
on each customer's share of purchases per category (square-rooted, so that distances are
Hellinger distances between the two mixes). An item's score for a customer is the share of the
customer's segment who bought it in the last ``window_days``. It sits between popularity (one
list for all) and the personal recommenders: it needs no history of the customer's own beyond
what places them in a segment, so it helps thin histories and customers known only by attributes.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend.base import Recommender

OVERALL = -1  # the segment of customers no segment describes: everyone's popularity


class SegmentPopularity(Recommender):
    """Items ranked by the share of the customer's segment who bought them lately.

    Parameters
    ----------
    n_segments : int
        Behavioural segments (k of k-means); ignored with ``attribute``.
    attribute : str, optional
        A column of the dataset's customer attributes whose values are the segments.
    category : str
        The item attribute whose mix describes behaviour (falls back to ``department``).
    window_days : int
        How far back "lately" reaches.
    random_state : int
    """

    name = "segment_popularity"

    def __init__(
        self,
        n_segments: int = 8,
        attribute: str | None = None,
        category: str = "category",
        window_days: int = 91,
        random_state: int = 0,
    ) -> None:
        self.n_segments = n_segments
        self.attribute = attribute
        self.category = category
        self.window_days = window_days
        self.random_state = random_state

    def _fit(self, dataset: Dataset) -> None:
        if self.attribute is not None:
            segment, labels = self._attribute_segments(dataset)
        else:
            segment, labels = self._behaviour_segments(dataset)
        self.segment_ = segment  # per customer row, OVERALL where none
        self.labels_ = labels  # per segment, its name in words
        ev = dataset.events
        recent = (ev["weight"].to_numpy() > 0) & (
            ev["timestamp"].to_numpy()
            >= np.datetime64(self.now_ - pd.Timedelta(days=self.window_days))
        )
        pairs = ev.loc[recent, ["customer", "item"]].drop_duplicates()
        seg = segment[pairs["customer"].to_numpy()]
        n = len(labels)
        # Row n is everyone: the list for customers without a segment.
        rows = np.concatenate([np.where(seg >= 0, seg, n), np.full(len(pairs), n)])
        cols = np.concatenate([pairs["item"].to_numpy(), pairs["item"].to_numpy()])
        counts = sp.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n + 1, dataset.n_items)
        ).toarray()
        sizes = np.bincount(np.where(segment >= 0, segment, n), minlength=n + 1).astype(float)
        sizes[n] = len(segment)
        self.buyers_ = counts
        self.sizes_ = sizes
        overall = counts[n] / max(counts[n].max(), 1.0)
        # Share of the segment who bought the item; everyone's popularity breaks ties.
        self.scores_ = (counts / np.maximum(sizes, 1.0)[:, None] + 1e-3 * overall).astype(
            np.float32
        )

    def _attribute_segments(self, dataset: Dataset) -> tuple[np.ndarray, list[str]]:
        if self.attribute not in dataset.customers.columns:
            raise TailorError(f"segment_popularity: no customer attribute {self.attribute!r}")
        values = dataset.customers[self.attribute]
        codes, uniques = pd.factorize(values, sort=True)
        return codes.astype(np.int64), [f"{self.attribute} {u}" for u in uniques]

    def _behaviour_segments(self, dataset: Dataset) -> tuple[np.ndarray, list[str]]:
        items = dataset.items
        column = self.category if self.category in items.columns else "department"
        if column not in items.columns:
            raise TailorError("segment_popularity: items need a category or department")
        codes, names = pd.factorize(items[column].fillna("other"), sort=True)
        onehot = sp.csr_matrix(
            (np.ones(len(codes), dtype=np.float32), (np.arange(len(codes)), codes)),
            shape=(len(codes), len(names)),
        )
        mix = (self.history_ @ onehot).toarray()
        totals = mix.sum(axis=1)
        active = totals > 0
        segment = np.full(dataset.n_customers, OVERALL, dtype=np.int64)
        shares = np.sqrt(mix[active] / totals[active, None])
        k = min(self.n_segments, len(np.unique(shares, axis=0)))
        if k < 2:
            return segment, []
        with threadpool_limits(1):  # small matrices: OpenMP's start-up costs more than it saves
            fit = KMeans(n_clusters=k, n_init=4, random_state=self.random_state).fit(shares)
        segment[active] = fit.labels_
        # A segment is named by the categories its customers favour most over everyone.
        lift = fit.cluster_centers_**2 / np.maximum((shares**2).mean(axis=0), 1e-12)
        top = np.argsort(-lift, axis=1)[:, :2]
        labels = [" and ".join(str(names[j]).lower() for j in row) + " shoppers" for row in top]
        return segment, labels

    def _score(self, rows: np.ndarray) -> np.ndarray:
        segment = self.segment_[rows]
        return self.scores_[np.where(segment >= 0, segment, len(self.labels_))]

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        reasons = np.full(items.shape, "", dtype=object)
        segment = self.segment_[rows]
        seg = np.where(segment >= 0, segment, len(self.labels_))
        for i, j in zip(*np.nonzero(items >= 0), strict=True):  # formatting only
            s = seg[i]
            buyers, size = int(self.buyers_[s, items[i, j]]), int(self.sizes_[s])
            who = (
                "all customers"
                if s == len(self.labels_)
                else f"customers like you ({self.labels_[s]})"
            )
            reasons[i, j] = (
                f"popular with {who}: {buyers} of {size:,} bought it in the last "
                f"{self.window_days} days"
            )
        return reasons
