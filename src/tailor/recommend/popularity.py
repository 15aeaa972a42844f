"""Popularity: what many customers bought lately. The cold-start list, and a baseline."""

from __future__ import annotations

import numpy as np

from tailor.dataset import Dataset
from tailor.recommend.base import Recommender, _distinct_buyers, customers


class Popularity(Recommender):
    """Items ranked by distinct buyers in the last ``window_days`` (ties: all-time buyers).

    Parameters
    ----------
    window_days : int
        How far back "lately" reaches, in days before the dataset's cut.
    """

    name = "popularity"

    def __init__(self, window_days: int = 28) -> None:
        self.window_days = window_days

    def _fit(self, dataset: Dataset) -> None:
        ev = dataset.events
        positive = ev["weight"].to_numpy() > 0
        start = np.datetime64(self.now_ - np.timedelta64(self.window_days, "D"))
        recent = positive & (ev["timestamp"].to_numpy() >= start)
        self.recent_buyers_ = _distinct_buyers(ev, recent, dataset.n_items)
        overall = _distinct_buyers(ev, positive, dataset.n_items)
        self.scores_ = (self.recent_buyers_ + overall / (overall.max() + 1.0)).astype(np.float32)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(rows), len(self.scores_))).copy()

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        reasons = np.full(items.shape, "", dtype=object)
        valid = items >= 0
        buyers = self.recent_buyers_[items[valid]].astype(int)
        reasons[valid] = [
            f"popular: bought by {customers(b)} in the last {self.window_days} days" for b in buyers
        ]
        return reasons
