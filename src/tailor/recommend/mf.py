"""Matrix factorisation: customers and items as vectors whose dot product ranks the items.

Both models are ``implicit``'s compiled CPU implementations: ALS (Hu, Koren & Volinsky 2008)
on confidence ``alpha x history``, and BPR (Rendle et al. 2009) on the binary history. Only the
factor matrices are kept, so a saved model does not depend on implicit's own pickling.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from tailor.dataset import Dataset
from tailor.recommend.base import Recommender

THREADS = 2  # implicit's own threads (ALS); BPR runs on one, see BPR._fit


class _Factorisation(Recommender):
    """Score = user_factors_[rows] @ item_factors_.T; subclasses fit the factors."""

    customer_state = ("user_factors_",)
    fold_out = "retrain"  # the item factors learned from every customer at once

    def _fit_implicit(self, make_model: Callable[[], Any], user_items: sp.csr_matrix) -> None:
        # implicit parallelises over customers itself and warns (at construction) when BLAS runs
        # a thread pool too; one BLAS thread is its advice and avoids oversubscription.
        with threadpool_limits(1, "blas"), warnings.catch_warnings():
            # implicit warns about a COO matrix it builds itself from our CSR input.
            warnings.filterwarnings("ignore", message="Method expects CSR input")
            model = make_model()
            model.fit(user_items, show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors_ = np.asarray(model.item_factors, dtype=np.float32)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return self.user_factors_[rows] @ self.item_factors_.T

    def _reasons(self, rows: np.ndarray, items: np.ndarray, scores: np.ndarray) -> np.ndarray:
        reasons = np.full(items.shape, "customers with tastes like yours buy this", dtype=object)
        valid = items >= 0
        customer = np.repeat(rows, items.shape[1])[valid.ravel()]
        bought = np.asarray(self.history_[customer, items[valid]]).ravel() > 0
        slots = np.argwhere(valid)[bought]
        reasons[slots[:, 0], slots[:, 1]] = "you bought this before"
        return reasons


class ALS(_Factorisation):
    """Implicit-feedback ALS: factors fitted to preferences weighted by confidence.

    Parameters
    ----------
    factors : int
        Length of each customer and item vector.
    regularization : float
        L2 penalty on the factors.
    iterations : int
        Alternating sweeps over customers and items.
    alpha : float
        Confidence per purchase: a bought item weighs ``alpha``, the rest 0 (implicit adds 1).
    random_state : int
        Seed of the initial factors.
    """

    name = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        iterations: int = 15,
        alpha: float = 10.0,
        random_state: int = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.alpha = alpha
        self.random_state = random_state

    def _fit(self, dataset: Dataset) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        def make() -> AlternatingLeastSquares:
            return AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                iterations=self.iterations,
                num_threads=THREADS,
                random_state=self.random_state,
            )

        self._fit_implicit(make, (self.alpha * self.history_).tocsr())


class BPR(_Factorisation):
    """Bayesian personalised ranking: factors fitted so bought items outrank sampled others.

    Parameters
    ----------
    factors : int
        Length of each customer and item vector.
    learning_rate : float
        Step of the stochastic gradient updates.
    regularization : float
        L2 penalty on the factors.
    iterations : int
        Epochs of sampled (customer, bought, not bought) triples.
    random_state : int
        Seed of the initial factors and the sampling.
    """

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int = 0,
    ) -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.iterations = iterations
        self.random_state = random_state

    def _fit(self, dataset: Dataset) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        def make() -> BayesianPersonalizedRanking:
            # One thread: implicit's BPR updates shared factors lock-free from every thread
            # (Hogwild), so with two the factors, and the lists, change from run to run.
            return BayesianPersonalizedRanking(
                factors=self.factors,
                learning_rate=self.learning_rate,
                regularization=self.regularization,
                iterations=self.iterations,
                num_threads=1,
                random_state=self.random_state,
            )

        self._fit_implicit(make, self.history_)
