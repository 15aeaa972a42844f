"""Trending: what more customers buy lately than before. A cold-start list that moves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailor.dataset import Dataset
from tailor.recommend.base import Recommender, _distinct_buyers, customers


class Trending(Recommender):
    """Items ranked by recent buyers times their growth over the weeks before.

    score = recent x (recent + s) / (expected + s), where ``recent`` is the distinct buyers in
    the last ``window_days``, ``expected`` the buyers of the ``baseline_days`` before scaled to
    the window's length, and ``s`` a smoothing count that keeps an item going from 0 to 2 buyers
    from outranking one going from 300 to 450.

    Parameters
    ----------
    window_days, baseline_days : int
    smoothing : float
    """

    name = "trending"

    def __init__(self, window_days: int = 14, baseline_days: int = 56, smoothing: float = 5.0):
        self.window_days = window_days
        self.baseline_days = baseline_days
        self.smoothing = smoothing

    def _fit(self, dataset: Dataset) -> None:
        ev = dataset.events
        stamp = ev["timestamp"].to_numpy()
        positive = ev["weight"].to_numpy() > 0
        start = np.datetime64(self.now_ - pd.Timedelta(days=self.window_days))
        before = np.datetime64(start - pd.Timedelta(days=self.baseline_days))
        recent = _distinct_buyers(ev, positive & (stamp >= start), dataset.n_items)
        earlier = _distinct_buyers(ev, positive & (stamp >= before) & (stamp < start),
                                   dataset.n_items)  # fmt: skip
        expected = earlier * self.window_days / self.baseline_days
        growth = (recent + self.smoothing) / (expected + self.smoothing)
        self.recent_ = recent
        self.expected_ = expected
        tie = self._popularity_tie()
        self.scores_ = (recent * growth + 1e-6 * tie).astype(np.float32)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.scores_, (len(rows), len(self.scores_))).copy()

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        reasons = np.full(items.shape, "", dtype=object)
        valid = items >= 0
        recent, expected = self.recent_[items[valid]], self.expected_[items[valid]]
        reasons[valid] = [
            f"trending: bought by {customers(int(r))} in the last {self.window_days} days"
            + (f", {r / e:.1f}x the weeks before" if e > 0 and r > e else "")
            for r, e in zip(recent, expected, strict=True)
        ]
        return reasons
