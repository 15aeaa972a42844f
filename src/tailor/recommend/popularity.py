"""Popularity: what many customers bought lately. The cold-start list, and a baseline."""

from __future__ import annotations

import numpy as np

from tailor.dataset import Dataset
from tailor.recommend.base import Recommender, _popularity, customers


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
        self.recent_buyers_, self.scores_ = _popularity(dataset, self.now_, self.window_days)

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
