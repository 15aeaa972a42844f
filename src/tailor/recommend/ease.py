"""EASE: a shallow linear item-to-item model with a closed-form solution (Steck, WWW 2019).

``B = argmin ||X - X B||² + λ ||B||²`` subject to ``diag(B) = 0`` has the closed form
``P = (XᵀX + λI)⁻¹``, ``B = -P / diag(P)`` (column-wise), ``diag(B) = 0``. It is one matrix
inversion, so it is written here with numpy rather than taken from a library (``implicit`` has
no EASE).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from tailor.dataset import Dataset
from tailor.recommend.base import Recommender, describe_items


class EASE(Recommender):
    """Score = the customer's binary history times the learned item-item weights ``B``.

    Parameters
    ----------
    lambda_ : float
        L2 penalty λ added to the diagonal of the Gram matrix; larger = smoother weights.
    max_items : int
        Only the ``max_items`` items with the most distinct buyers are modelled. Every other item
        scores 0 (what full EASE gives an item it knows nothing about) plus the popularity
        tie-break, so lists are always full and the tail comes in order of recent popularity.
    """

    name = "ease"
    fold_out = "retrain"  # B is an inverse of everyone's Gram matrix

    def __init__(self, lambda_: float = 500.0, max_items: int = 5000) -> None:
        self.lambda_ = lambda_
        self.max_items = max_items

    def _fit(self, dataset: Dataset) -> None:
        buyers = np.asarray(self.history_.sum(axis=0)).ravel()
        n_kept = min(self.max_items, dataset.n_items)
        # Most buyers first; ties by lower column so the choice is deterministic.
        order = np.lexsort((np.arange(len(buyers)), -buyers))
        self.items_ = np.sort(order[:n_kept]).astype(np.int64)
        self.column_ = np.full(dataset.n_items, -1, dtype=np.int64)  # item -> column of B
        self.column_[self.items_] = np.arange(n_kept)
        x = self.history_[:, self.items_].astype(np.float64)
        # The only dense items x items matrices here (the Gram matrix, its inverse and B): EASE
        # needs the full inverse, which is dense even when XᵀX is sparse. They are bounded by
        # max_items (5000² float64 = 200 MB at most, B kept in float32), never by the catalogue.
        gram = (x.T @ x).toarray()
        gram[np.diag_indices_from(gram)] += self.lambda_
        inverse = np.linalg.inv(gram)
        weights = -inverse / np.diag(inverse)[None, :]
        np.fill_diagonal(weights, 0.0)
        self.weights_ = weights.astype(np.float32)
        self.tie_ = (1e-6 * self._popularity_tie()).astype(np.float32)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        history = sp.csr_matrix(self.history_[rows][:, self.items_])
        scores = np.tile(self.tie_, (len(rows), 1))
        scores[:, self.items_] += np.asarray(history @ self.weights_, dtype=np.float32)
        return scores

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        reasons = np.full(items.shape, "popular now with other customers", dtype=object)
        for n, row in enumerate(rows):
            bought = self.history_[row].indices
            bought_columns = self.column_[bought]
            modelled = bought_columns >= 0
            bought, bought_columns = bought[modelled], bought_columns[modelled]
            candidates = items[n]
            candidate_columns = np.where(candidates >= 0, self.column_[candidates], -1)
            again = np.isin(candidates, self.history_[row].indices) & (candidates >= 0)
            reasons[n, again] = "you bought this before"
            slots = np.flatnonzero(candidate_columns >= 0)
            if len(bought) == 0 or len(slots) == 0:
                continue
            # B's zero diagonal means an item never explains itself.
            contrib = self.weights_[np.ix_(bought_columns, candidate_columns[slots])]
            best = contrib.argmax(axis=0)
            has = contrib.max(axis=0) > 0
            names = describe_items(self.dataset_, bought[best])
            for slot, name, ok in zip(slots, names, has, strict=True):
                if ok:
                    reasons[n, slot] = f"customers who buy {name} also buy this"
        return reasons
