"""Side-by-side evaluation: every recommender on the same split, the same customers, one run.

Used by ``tailor evaluate`` and by the build, which picks its default recommender on a
validation split carved from the training data (never from the test period).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

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
from tailor.store.warehouse import Warehouse

Factory = Callable[[], Recommender]
SELECTION_METRIC = "ndcg"
CURVE_KS: tuple[int, ...] = (1, 5, 10, 20, 50)  # the cuts of the report's recall curve
SEGMENT_METRICS: tuple[str, ...] = ("recall", "ndcg", "precision")  # per segment, @k


@dataclass(frozen=True)
class RankedLists:
    """What one model showed the evaluated customers, kept for audits after the run.

    Attributes
    ----------
    users : ndarray of shape (n_users,), int64
        Customer rows of the training dataset, the customers evaluated.
    items, scores : ndarray of shape (n_users, width)
        Each customer's list, best first (-1 = padding), and its scores; the first ``k``
        columns are the list every figure was computed on.
    truth : csr_matrix of shape (n_users, n_items)
        The relevant test items of each customer, as the figures counted them.
    per_user : dict of str to ndarray of shape (n_users,)
        The per-customer metrics @k (:func:`tailor.evaluate.metrics.ranking_metrics`).
    """

    users: np.ndarray
    items: np.ndarray
    scores: np.ndarray
    truth: sp.csr_matrix
    per_user: dict[str, np.ndarray]


def split(
    dataset: Dataset,
    kind: str,
    test_days: float = 28,
    test_fraction: float = 0.2,
    random_state: int = 0,
    holdout_by: str = "customer",
) -> tuple[Dataset, Dataset]:
    """(train, test) by name: ``temporal``, ``last-basket`` or ``random`` (a share of each
    customer's items, or with ``holdout_by="item"`` of each item's customers)."""
    if kind == "temporal":
        return dataset.temporal_split(test_days)
    if kind == "last-basket":
        return dataset.last_basket_split()
    if kind == "random":
        return dataset.holdout_split(test_fraction, random_state, by=holdout_by)
    raise TailorError(f"unknown split {kind!r}; use temporal, last-basket or random")


def rfm_segments(wh: Warehouse, dataset: Dataset) -> np.ndarray | None:
    """The RFM segment of each customer row of ``dataset``, as of its cut, or None.

    Features are computed on what the warehouse held before ``dataset.as_of`` (the training
    cut, so that the test period never decides a customer's segment); a customer without a
    purchase by then is "No purchase yet". None when nobody has bought anything (rating-only
    data, say): there is nothing to segment by.

    Returns
    -------
    ndarray of object of shape (n_customers,) or None
    """
    from tailor.customers.features import customer_features
    from tailor.customers.segments import NO_PURCHASE, rfm_segment

    features = customer_features(wh, bound=dataset.as_of)
    buyers = features.buyers
    if buyers.empty:
        return None
    labels = pd.Series(
        rfm_segment(buyers["r_score"], buyers["f_score"], buyers["m_score"]), index=buyers.index
    )
    row = dataset.customer_index(labels.index.to_numpy())
    segments = np.full(dataset.n_customers, NO_PURCHASE, dtype=object)
    known = row >= 0
    segments[row[known]] = labels.to_numpy()[known]
    return segments


def evaluate_models(
    train: Dataset,
    test: Dataset,
    models: Mapping[str, Factory],
    k: int = 20,
    exclude_purchased: bool = False,
    progress: Callable[[str, float], None] | None = None,
    confidence: bool = True,
    curve_ks: Sequence[int] | None = None,
    relevance_threshold: float | None = None,
    segments: Sequence[Any] | np.ndarray | None = None,
    fitted: MutableMapping[str, tuple[Recommender, float]] | None = None,
    lists: MutableMapping[str, RankedLists] | None = None,
    lists_width: int = 0,
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

    Parameters
    ----------
    relevance_threshold : float, optional
        For ratings: a test interaction is relevant only when its weight (the customer's latest
        rating of the item, under the default weights) is at least this; None counts every
        positive interaction.
    segments : array-like of shape (train.n_customers,), optional
        A label per customer row (an RFM segment, say). Each model's figures then hold
        ``"segments"``: label -> {"customers": n, "recall@k", "ndcg@k", "precision@k"}, the
        means over the evaluated customers with that label, largest segment first.
    fitted : dict, optional
        Models already fitted on ``train``, name -> (model, fit seconds): a model found there
        is not fitted again, one fitted here is added. Lets several tasks on one split (the
        repeat-aware and the exploration list) share their fits.
    lists : dict, optional
        Filled with name -> :class:`RankedLists`, each model's lists, scores, truth and
        per-customer metrics, for audits that must see the very lists the figures come from
        (:mod:`tailor.evaluate.fairness`).
    lists_width : int
        Recommend lists at least this long (kept in ``lists``: candidates for re-ranking);
        the figures still come from their first ``k`` items.
    """
    history = (train.interactions > 0).astype(np.float32).tocsr()
    truth = _relevant(test.interactions, relevance_threshold)
    if exclude_purchased:
        truth = (truth - truth.multiply(history)).tocsr()
        truth.eliminate_zeros()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    if len(users) == 0:
        raise TailorError("no customer has anything to find in the test period")
    labels = None
    if segments is not None:
        labels = np.asarray(segments, dtype=object)
        if labels.shape != (train.n_customers,):
            raise TailorError(
                f"segments must hold one label per customer ({train.n_customers}), "
                f"got shape {labels.shape}"
            )
        labels = labels[users]
    truth_u, history_u = truth[users], history[users]
    popularity = item_popularity(history)
    groups = item_groups(train)
    cuts = sorted({int(c) for c in curve_ks}) if curve_ks else []
    if cuts and cuts[0] < 1:
        raise TailorError(f"recall curve cut-offs must be at least 1, got {cuts[0]}")
    width = max([k, *cuts, lists_width])
    results: dict[str, dict[str, Any]] = {}
    for n, (name, factory) in enumerate(models.items()):
        if progress:
            progress(f"evaluating {name}", n / len(models))
        if fitted is not None and name in fitted:
            model, fit_seconds = fitted[name]
        else:
            start = time.perf_counter()
            model = factory().fit(train)
            fit_seconds = time.perf_counter() - start
            if fitted is not None:
                fitted[name] = (model, fit_seconds)
        started = time.perf_counter()
        ranked, scores = model.recommend_rows(users, width, exclude_purchased=exclude_purchased)
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
                "fit_seconds": round(fit_seconds, 3),
                "recommend_seconds": round(done - started, 3),
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
        if labels is not None:
            figures["segments"] = segment_figures(per_user, labels, k)
        if lists is not None:
            lists[name] = RankedLists(users, ranked, scores, truth_u, per_user)
        results[name] = figures
    if progress:
        progress("evaluating", 1.0)
    return results


def segment_figures(
    per_user: Mapping[str, np.ndarray], labels: np.ndarray, k: int
) -> dict[str, dict[str, Any]]:
    """Per-user metrics averaged within each segment.

    Parameters
    ----------
    per_user : dict of str to ndarray of shape (n_users,)
        As :func:`tailor.evaluate.metrics.ranking_metrics` returns them.
    labels : ndarray of shape (n_users,)
        The segment of each user.
    k : int
        The cut-off (names the keys).

    Returns
    -------
    dict
        str(label) -> {"customers": n, "recall@k", "ndcg@k", "precision@k"} (means over the
        segment's users with truth), largest segment first, then by label.
    """
    names, codes, sizes = np.unique(labels.astype(str), return_inverse=True, return_counts=True)
    result = {}
    for code in sorted(range(len(names)), key=lambda c: (-sizes[c], names[c])):
        members = codes == code
        figures: dict[str, Any] = {"customers": int(sizes[code])}
        for metric in SEGMENT_METRICS:
            figures[f"{metric}@{k}"] = _mean(np.asarray(per_user[metric])[members])
        result[str(names[code])] = figures
    return result


def pick_default(results: Mapping[str, Mapping[str, Any]], k: int) -> str:
    """The model with the best validation NDCG@k (recall@k breaks ties)."""
    return max(
        results,
        key=lambda name: (results[name][f"{SELECTION_METRIC}@{k}"], results[name][f"recall@{k}"]),
    )


def _relevant(interactions: sp.csr_matrix, threshold: float | None) -> sp.csr_matrix:
    """1.0 where a test interaction counts as relevant: weight > 0, and >= threshold if set."""
    if threshold is not None and not threshold > 0:
        # A threshold of 0 or less would count every unrated item as relevant.
        raise TailorError(f"relevance threshold must be positive, got {threshold}")
    relevant = interactions >= threshold if threshold is not None else interactions > 0
    matrix = sp.csr_matrix(relevant, dtype=np.float32)
    matrix.eliminate_zeros()
    return matrix


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")
