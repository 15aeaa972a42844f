"""Side-by-side evaluation: every recommender on the same split, the same customers, one run.

Used by ``tailor evaluate`` and by the build, which picks its default recommender on a
validation split carved from the training data (never from the test period).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.evaluate.metrics import (
    bootstrap_ci,
    catalog_coverage,
    intra_list_diversity,
    item_popularity,
    novelty,
    ranking_metrics,
    split_recall,
    summarize,
)
from tailor.recommend.base import Recommender
from tailor.recommend.rerank import item_groups

Factory = Callable[[], Recommender]
SELECTION_METRIC = "ndcg"
CURVE_KS: tuple[int, ...] = (1, 5, 10, 20, 50)  # the cuts of the report's recall curve


def split(dataset: Dataset, kind: str, test_days: float = 28, test_fraction: float = 0.2,
          random_state: int = 0) -> tuple[Dataset, Dataset]:  # fmt: skip
    """(train, test) by name: ``temporal``, ``last-basket`` or ``random``."""
    if kind == "temporal":
        return dataset.temporal_split(test_days)
    if kind == "last-basket":
        return dataset.last_basket_split()
    if kind == "random":
        return dataset.holdout_split(test_fraction, random_state)
    raise TailorError(f"unknown split {kind!r}; use temporal, last-basket or random")


def evaluate_models(
    train: Dataset,
    test: Dataset,
    models: Mapping[str, Factory],
    k: int = 20,
    exclude_purchased: bool = False,
    progress: Callable[[str, float], None] | None = None,
    confidence: bool = True,
    curve_ks: Sequence[int] | None = None,
) -> dict[str, dict[str, Any]]:
    """Fit each model on ``train`` and score its top ``k`` against ``test``.

    The customers evaluated are those with at least one relevant test item (for
    ``exclude_purchased``: one item new to them). Returns, per model, the mean metrics @k
    (precision, recall, f1, ndcg, map, mrr, hit_rate), catalog coverage, intra-list diversity
    (by item category where the catalog has one), novelty in bits, repeat and explore recall,
    fit and recommend seconds, and 95 % bootstrap intervals over customers.

    With ``curve_ks`` (e.g. ``(1, 5, 10, 20, 50)``), each model recommends one list of length
    max(k, max(curve_ks)) and ``figures["recall_curve"]`` maps each cut to its mean recall;
    every other figure is computed on that list's first ``k`` items, as without it (lists are
    ranked best first with ties broken by item column, so a longer list begins with the
    shorter one).
    """
    history = (train.interactions > 0).astype(np.float32).tocsr()
    truth = (test.interactions > 0).astype(np.float32).tocsr()
    if exclude_purchased:
        truth = (truth - truth.multiply(history)).tocsr()
        truth.eliminate_zeros()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if len(users) == 0:
        raise TailorError("no customer has anything to find in the test period")
    truth_u, history_u = truth[users], history[users]
    popularity = item_popularity(history)
    groups = item_groups(train)
    cuts = sorted({int(c) for c in curve_ks}) if curve_ks else []
    if cuts and cuts[0] < 1:
        raise TailorError(f"recall curve cut-offs must be at least 1, got {cuts[0]}")
    width = max([k, *cuts])
    results: dict[str, dict[str, Any]] = {}
    for n, (name, factory) in enumerate(models.items()):
        if progress:
            progress(f"evaluating {name}", n / len(models))
        start = time.perf_counter()
        model = factory().fit(train)
        fitted = time.perf_counter()
        ranked, _ = model.recommend_rows(users, width, exclude_purchased=exclude_purchased)
        done = time.perf_counter()
        items = ranked[:, :k]
        per_user = ranking_metrics(items, truth_u, k)
        figures: dict[str, Any] = summarize(per_user, k)
        repeat, explore = split_recall(items, truth_u, history_u, k)
        figures.update(
            {
                "coverage": catalog_coverage(items, train.n_items),
                "diversity": intra_list_diversity(items, groups),
                "novelty": novelty(items, popularity),
                f"repeat_recall@{k}": _mean(repeat),
                f"explore_recall@{k}": _mean(explore),
                "customers": len(users),
                "fit_seconds": round(fitted - start, 3),
                "recommend_seconds": round(done - fitted, 3),
            }
        )
        if confidence:
            figures["ci95"] = {
                f"{metric}@{k}": list(bootstrap_ci(values)) for metric, values in per_user.items()
            }
        if cuts:
            figures["recall_curve"] = {
                cut: _mean(ranking_metrics(ranked, truth_u, cut)["recall"]) for cut in cuts
            }
        results[name] = figures
    if progress:
        progress("evaluating", 1.0)
    return results


def pick_default(results: Mapping[str, Mapping[str, Any]], k: int) -> str:
    """The model with the best validation NDCG@k (recall@k breaks ties)."""
    return max(
        results,
        key=lambda name: (results[name][f"{SELECTION_METRIC}@{k}"], results[name][f"recall@{k}"]),
    )


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")
