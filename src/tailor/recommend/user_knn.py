"""User-based collaborative filtering: what customers with the same baskets bought.

Neighbours are found with sparse products, a batch of customers at a time: cosine over items of
one batch against every customer (batch x customers, sparse), the top ``neighbours`` kept per
customer, then their items summed with those weights. No library offers user-user KNN on sparse
implicit data with explanations (``implicit`` has item-item only), so it is written here.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tailor.dataset import Dataset
from tailor.recommend.base import Recommender, customers


class UserKNN(Recommender):
    """Score = sum over the customer's nearest neighbours of cosine x their having bought it.

    Parameters
    ----------
    neighbours : int
        Neighbours kept per customer.
    shrinkage : float
        Cosine shrunk by shared / (shared + shrinkage) items, so that two customers alike on
        one item are not close neighbours.
    """

    name = "user_knn"

    def __init__(self, neighbours: int = 50, shrinkage: float = 10.0) -> None:
        self.neighbours = neighbours
        self.shrinkage = shrinkage

    def _fit(self, dataset: Dataset) -> None:
        self.history_t_ = self.history_.T.tocsr()
        self.norms_ = np.sqrt(np.asarray(self.history_.sum(axis=1)).ravel()).astype(np.float32)

    def _neighbours(self, rows: np.ndarray) -> sp.csr_matrix:
        """rows x customers weights: each row's top ``neighbours`` shrunk cosines."""
        shared = (self.history_[rows] @ self.history_t_).tocsr()
        row_of = np.repeat(np.arange(len(rows)), np.diff(shared.indptr))
        count = shared.data.astype(np.float32)
        norm = self.norms_[rows][row_of] * self.norms_[shared.indices]
        weight = count / np.maximum(norm, 1e-9) * count / (count + self.shrinkage)
        weight[shared.indices == rows[row_of]] = 0.0  # not one's own neighbour
        keep = np.zeros(len(weight), dtype=bool)
        for r in range(len(rows)):  # top-k within each sparse row
            start, stop = shared.indptr[r], shared.indptr[r + 1]
            if stop - start > self.neighbours:
                top = np.argpartition(-weight[start:stop], self.neighbours - 1)
                keep[start + top[: self.neighbours]] = True
            else:
                keep[start:stop] = True
        keep &= weight > 0
        return sp.csr_matrix(
            (weight[keep], (row_of[keep], shared.indices[keep])), shape=shared.shape
        )

    def _score(self, rows: np.ndarray) -> np.ndarray:
        weights = self._neighbours(rows)
        scores = np.asarray((weights @ self.history_).todense(), dtype=np.float32)
        tie = self._popularity_tie()
        return scores + 1e-6 * tie

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        weights = self._neighbours(rows)
        reasons = np.full(items.shape, "popular now with other customers", dtype=object)
        for n in range(len(rows)):  # formatting, one small product per customer
            valid = items[n] >= 0
            near = weights[n].indices
            if not len(near) or not valid.any():
                continue
            bought = self.history_t_[items[n][valid]][:, near].getnnz(axis=1)
            reasons[n, valid] = [
                f"bought by {customers(int(b))} of the {len(near)} customers whose baskets are "
                "most like yours"
                if b
                else "popular now with other customers"
                for b in bought
            ]
        return reasons
