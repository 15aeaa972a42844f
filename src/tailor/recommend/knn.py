"""Item-based collaborative filtering: items bought by the same customers.

The neighbour lists come from ``implicit``'s item-item cosine (``CosineRecommender``, compiled,
top-K per item, so never a dense items x items matrix); Tailor scores a customer's items through
them and explains each recommendation by the bought item that contributed most.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp

from tailor.dataset import Dataset
from tailor.recommend.base import Recommender, describe_items


class ItemKNN(Recommender):
    """Score = sum over the customer's items of their cosine similarity to the candidate.

    Parameters
    ----------
    neighbours : int
        Neighbours kept per item (K of implicit's ItemItemRecommender).
    """

    name = "item_knn"
    fold_out = "retrain"  # top-k neighbours cannot be un-counted: who fell out is lost

    def __init__(self, neighbours: int = 100) -> None:
        self.neighbours = neighbours

    def _fit(self, dataset: Dataset) -> None:
        from implicit.nearest_neighbours import CosineRecommender

        model = CosineRecommender(K=self.neighbours)
        with warnings.catch_warnings():
            # implicit warns about a COO matrix it builds itself from our CSR input.
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model.fit(self.history_, show_progress=False)
        self.similarity_ = sp.csr_matrix(model.similarity, dtype=np.float32)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        scores = (self.history_[rows] @ self.similarity_).toarray()
        tie = self._popularity_tie()
        return scores + 1e-6 * tie

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        reasons = np.full(items.shape, "popular now with other customers", dtype=object)
        for n, row in enumerate(rows):
            bought = self.history_[row].indices
            valid = items[n] >= 0
            if len(bought) == 0 or not valid.any():
                continue
            candidates = items[n][valid]
            contrib = self.similarity_[bought][:, candidates].toarray()
            own = bought[:, None] == candidates[None, :]
            contrib[own] = 0  # an item similar to itself explains nothing
            best = contrib.argmax(axis=0)
            names = describe_items(self.dataset_, bought[best])
            has = contrib.max(axis=0) > 0
            slots = np.flatnonzero(valid)
            for slot, name, ok, again in zip(slots, names, has, own.any(axis=0), strict=True):
                if ok:
                    reasons[n, slot] = f"often bought by customers who bought {name}"
                elif again:
                    reasons[n, slot] = "you bought this before"
        return reasons
