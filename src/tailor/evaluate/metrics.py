"""Ranking and beyond-accuracy metrics of recommendation lists, vectorised over users.

Inputs
------
* ``recommended``: an int array of shape (n_users, width) of item columns in rank order (rank 1
  first); ``-1`` is padding (no item). Only the first ``k`` columns count for the metrics @k.
* ``truth``: a (n_users, n_items) sparse matrix; a nonzero entry marks a relevant item (binary
  relevance: the value does not matter). Row ``u`` of ``truth`` belongs to row ``u`` of
  ``recommended``.

A list is read the way a customer would see it: padding is a miss, and an item shown twice is a
hit at most once, at its first position; later copies are misses (and count as nothing in the
coverage, diversity and novelty of a list).

Ranking metrics @k
------------------
Per user, with ``hit_r`` = 1 when the item at rank ``r`` is relevant, ``hits`` = the number of
hits in the top k and ``R`` = the number of relevant items (the conventions of ranx, which the
tests check to 1e-9, and of Microsoft Recommenders):

* precision@k = hits / k (padding counts in the k);
* recall@k = hits / R;
* f1@k = the harmonic mean of precision@k and recall@k, 0 when both are 0 (= 2 hits / (k + R));
* ndcg@k = DCG / IDCG, DCG = sum of hit_r / log2(r + 1) over r <= k, IDCG the DCG of a list
  with min(R, k) hits at its top;
* map@k = sum over the hit ranks r <= k of precision@r, divided by **R** -- ranx's ``map@k``
  (and Microsoft Recommenders' ``map``). Spark's and Recommenders' ``map_at_k`` divide by
  min(R, k) instead; with R's divisor a perfect list scores k / R, not 1, when R > k;
* mrr@k = 1 / the rank of the first hit within the top k, else 0;
* hit_rate@k = 1 when there is at least one hit in the top k, else 0.

A user without any relevant item gets NaN in every metric and drops out of :func:`summarize`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

RANKING_METRICS: tuple[str, ...] = ("precision", "recall", "f1", "ndcg", "map", "mrr", "hit_rate")
"""The keys of :func:`ranking_metrics`, in the order of its result."""

_BOOTSTRAP_BLOCK = 1 << 22
"""Resampled values drawn at once by :func:`bootstrap_ci` (bounds its memory at ~32 MiB)."""


def ranking_metrics(
    recommended: np.ndarray, truth: sp.csr_matrix | sp.sparray, k: int
) -> dict[str, np.ndarray]:
    """Per-user ranking metrics @k of recommendation lists against the relevant items.

    Parameters
    ----------
    recommended : ndarray of shape (n_users, width), int, width >= k
        Item columns in rank order; -1 is padding.
    truth : sparse matrix of shape (n_users, n_items)
        Nonzero entries are the relevant items of each user.
    k : int
        Cut-off, >= 1.

    Returns
    -------
    dict of str to ndarray of shape (n_users,), float64
        Keys :data:`RANKING_METRICS` ("precision", "recall", "f1", "ndcg", "map", "mrr",
        "hit_rate"), each @k as defined in the module docstring; NaN for users without any
        relevant item.
    """
    relevant = _binary(truth)
    top = _check_recommended(recommended, relevant.shape[1], k)
    _check_rows(top, relevant, "truth")
    hit = _hit_matrix(top, relevant)
    n_relevant = np.diff(relevant.indptr).astype(np.float64)
    has_truth = n_relevant > 0
    n_hits = hit.sum(axis=1, dtype=np.float64)
    ranks = np.arange(1, k + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    ideal = np.concatenate(([0.0], np.cumsum(discount)))[np.minimum(n_relevant, k).astype(int)]
    precision_at_hits = np.cumsum(hit, axis=1) / ranks * hit
    first_hit = np.argmax(hit, axis=1)
    any_hit = hit.any(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        result = {
            "precision": n_hits / k,
            "recall": n_hits / n_relevant,
            # The harmonic mean of hits/k and hits/R, written without its 0/0 case.
            "f1": 2.0 * n_hits / (k + n_relevant),
            "ndcg": (hit @ discount) / ideal,
            "map": precision_at_hits.sum(axis=1) / n_relevant,
            "mrr": np.where(any_hit, 1.0 / (first_hit + 1.0), 0.0),
            "hit_rate": any_hit.astype(np.float64),
        }
    return {name: np.where(has_truth, values, np.nan) for name, values in result.items()}


def summarize(per_user: dict[str, np.ndarray], k: int) -> dict[str, float]:
    """Means over the users with truth of per-user metrics.

    Parameters
    ----------
    per_user : dict of str to ndarray of shape (n_users,)
        As returned by :func:`ranking_metrics`; NaN marks a user without truth.
    k : int
        The cut-off the metrics were computed at (names the keys).

    Returns
    -------
    dict of str to float
        ``"<metric>@<k>"`` (e.g. ``"precision@20"``) to the mean over users whose value is not
        NaN; NaN where no user has truth.
    """
    summary = {}
    for name, values in per_user.items():
        values = np.asarray(values, dtype=np.float64)
        known = values[~np.isnan(values)]
        summary[f"{name}@{k}"] = float(known.mean()) if known.size else float("nan")
    return summary


def catalog_coverage(recommended: np.ndarray, n_items: int) -> float:
    """Share of the catalogue's items that appear in at least one list.

    Parameters
    ----------
    recommended : ndarray of shape (n_users, width), int
        Item columns (-1 is padding); pass ``recommended[:, :k]`` for coverage@k.
    n_items : int
        Size of the catalogue.

    Returns
    -------
    float
        Distinct recommended items / n_items, in [0, 1].
    """
    if n_items <= 0:
        raise ValueError(f"n_items must be positive, got {n_items}")
    lists = _check_recommended(recommended, n_items)
    shown = np.zeros(n_items, dtype=bool)
    shown[lists[lists >= 0]] = True
    return float(shown.mean())


def intra_list_diversity(recommended: np.ndarray, item_groups: np.ndarray) -> float:
    """Mean over lists of the share of item pairs whose items are in different groups.

    Parameters
    ----------
    recommended : ndarray of shape (n_users, width), int
        Item columns (-1 is padding); pass ``recommended[:, :k]`` for diversity@k.
    item_groups : ndarray of shape (n_items,), int
        Group code of each item (a category, a brand); a negative code (-1) is unknown and makes
        the item a group of its own.

    Returns
    -------
    float
        Mean over lists with at least 2 distinct items of (pairs in different groups) /
        (all pairs), in [0, 1]; NaN when no list has 2 items.
    """
    groups = np.asarray(item_groups)
    if groups.ndim != 1 or groups.dtype.kind not in "iu":
        raise ValueError("item_groups must be a 1-d integer array, one group code per item")
    lists = _check_recommended(recommended, len(groups))
    rows, cols = np.nonzero(_first_occurrences(lists))
    items = lists[rows, cols].astype(np.int64)
    # Unknown groups become -1 - item: distinct per item and apart from the known codes (>= 0).
    code = np.where(groups[items] < 0, -1 - items, groups[items].astype(np.int64))
    _, code = np.unique(code, return_inverse=True)
    n_codes = int(code.max()) + 1 if code.size else 1
    row_group, size = np.unique(rows * n_codes + code.ravel(), return_counts=True)
    same_pairs = np.bincount(
        row_group // n_codes, weights=size * (size - 1) / 2.0, minlength=len(lists)
    )
    length = np.bincount(rows, minlength=len(lists)).astype(np.float64)
    scored = length >= 2
    if not scored.any():
        return float("nan")
    pairs = length[scored] * (length[scored] - 1) / 2.0
    return float(np.mean(1.0 - same_pairs[scored] / pairs))


def item_popularity(history: sp.csr_matrix | sp.sparray) -> np.ndarray:
    """Share of users who interacted with each item, floored at 1 / n_users.

    Parameters
    ----------
    history : sparse matrix of shape (n_users, n_items)
        Training interactions; a nonzero entry is an interaction.

    Returns
    -------
    ndarray of shape (n_items,), float64
        p_i in [1 / n_users, 1], the input :func:`novelty` expects.
    """
    seen = _binary(history)
    n_users = seen.shape[0]
    if n_users == 0:
        raise ValueError("history has no users")
    users_per_item = np.bincount(seen.indices, minlength=seen.shape[1])
    return np.maximum(users_per_item / n_users, 1.0 / n_users)


def novelty(
    recommended: np.ndarray, item_popularity: np.ndarray, n_users: int | None = None
) -> float:
    """Mean self-information -log2(p_i) of the recommended items, in bits.

    Parameters
    ----------
    recommended : ndarray of shape (n_users, width), int
        Item columns (-1 is padding); pass ``recommended[:, :k]`` for novelty@k.
    item_popularity : ndarray of shape (n_items,), float
        p_i, the share of training users who interacted with item i (see
        :func:`item_popularity`, which floors it at 1 / n_users already).
    n_users : int, optional
        Number of training users: when given, p_i is floored at 1 / n_users here, so that an item
        no one bought scores log2(n_users) bits. Without it every recommended p_i must be > 0.

    Returns
    -------
    float
        Mean of -log2(p_i) over every (list, distinct item) shown; NaN when no item is shown.
    """
    popularity = np.asarray(item_popularity, dtype=np.float64)
    if popularity.ndim != 1:
        raise ValueError("item_popularity must be a 1-d array, one share per item")
    lists = _check_recommended(recommended, len(popularity))
    shares = popularity[lists[_first_occurrences(lists)]]
    if shares.size == 0:
        return float("nan")
    if n_users is not None:
        if n_users <= 0:
            raise ValueError(f"n_users must be positive, got {n_users}")
        shares = np.maximum(shares, 1.0 / n_users)
    if np.any(shares <= 0) or np.any(shares > 1) or np.any(np.isnan(shares)):
        raise ValueError(
            "item_popularity must be shares in (0, 1] for the recommended items; pass n_users "
            "to floor unseen items at 1 / n_users, or use item_popularity(history)"
        )
    return float(np.mean(-np.log2(shares)))


def split_recall(
    recommended: np.ndarray,
    truth: sp.csr_matrix | sp.sparray,
    history: sp.csr_matrix | sp.sparray,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Recall@k split into repeat items (in the user's history) and items new to the user.

    Parameters
    ----------
    recommended : ndarray of shape (n_users, width), int, width >= k
        Item columns in rank order; -1 is padding.
    truth : sparse matrix of shape (n_users, n_items)
        Nonzero entries are the relevant items.
    history : sparse matrix of shape (n_users, n_items)
        Nonzero entries are the items each user had before (e.g. the training interactions).
    k : int
        Cut-off, >= 1.

    Returns
    -------
    repeat_recall, explore_recall : ndarray of shape (n_users,), float64
        Hits in the top k among the relevant items in (not in) the user's history, divided by
        how many relevant items are in (not in) it; NaN where that part of the truth is empty.
    """
    relevant = _binary(truth)
    seen = _binary(history)
    if seen.shape != relevant.shape:
        raise ValueError(f"history has shape {seen.shape}, truth {relevant.shape}")
    top = _check_recommended(recommended, relevant.shape[1], k)
    _check_rows(top, relevant, "truth")
    repeat = _binary(relevant.multiply(seen))
    explore = _binary(relevant - repeat)
    return _recall(top, repeat), _recall(top, explore)


def bootstrap_ci(
    values: np.ndarray, n_boot: int = 1000, alpha: float = 0.05, random_state: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean over users.

    Parameters
    ----------
    values : ndarray of shape (n_users,), float
        One metric per user; NaN (a user without truth) is left out.
    n_boot : int
        Number of resamples of the users, with replacement.
    alpha : float
        1 - the confidence level (0.05 for a 95% interval).
    random_state : int
        Seed; equal inputs and seeds give equal intervals.

    Returns
    -------
    (low, high) : tuple of float
        The alpha/2 and 1 - alpha/2 quantiles of the resampled means; (NaN, NaN) without values.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be at least 1, got {n_boot}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    known = np.asarray(values, dtype=np.float64).ravel()
    known = known[~np.isnan(known)]
    if known.size == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(random_state)
    means = np.empty(n_boot)
    # Whole resamples are drawn as one matrix; blocks of them keep memory bounded for big samples.
    block = max(1, _BOOTSTRAP_BLOCK // known.size)
    for start in range(0, n_boot, block):
        stop = min(start + block, n_boot)
        draws = rng.integers(0, known.size, size=(stop - start, known.size))
        means[start:stop] = known[draws].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


# -- helpers --------------------------------------------------------------------------------------


def _binary(matrix: sp.csr_matrix | sp.sparray) -> sp.csr_matrix:
    """Canonical CSR copy with 1.0 at every nonzero entry (duplicates summed first)."""
    if not sp.issparse(matrix):
        raise ValueError("expected a scipy sparse matrix (users x items)")
    binary = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    binary.sum_duplicates()
    binary.eliminate_zeros()
    binary.data[:] = 1.0
    return binary


def _check_recommended(recommended: np.ndarray, n_items: int, k: int | None = None) -> np.ndarray:
    """The lists as a 2-d integer array (cut to k columns when k is given), checked."""
    lists = np.asarray(recommended)
    if lists.ndim != 2:
        raise ValueError(f"recommended must be 2-d (n_users, width), got {lists.ndim}-d")
    if lists.size and lists.dtype.kind not in "iu":
        raise ValueError(f"recommended must hold integer item columns, got {lists.dtype}")
    if k is not None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if lists.shape[1] < k:
            raise ValueError(f"recommended has {lists.shape[1]} columns, fewer than k={k}")
        lists = lists[:, :k]
    if lists.size and (lists.min() < -1 or lists.max() >= n_items):
        raise ValueError(f"recommended holds item columns outside -1..{n_items - 1}")
    return lists.astype(np.int64, copy=False)


def _check_rows(lists: np.ndarray, matrix: sp.csr_matrix, name: str) -> None:
    if lists.shape[0] != matrix.shape[0]:
        raise ValueError(f"recommended has {lists.shape[0]} rows, {name} {matrix.shape[0]}")


def _first_occurrences(lists: np.ndarray) -> np.ndarray:
    """Mask of the entries that are items (not padding) shown for the first time in their row."""
    order = np.argsort(lists, axis=1, kind="stable")
    ranked = np.take_along_axis(lists, order, axis=1)
    # A stable sort puts a row's copies of an item in rank order: all but the first repeat it.
    repeat = np.zeros(lists.shape, dtype=bool)
    np.put_along_axis(repeat, order[:, 1:], ranked[:, 1:] == ranked[:, :-1], axis=1)
    return (lists >= 0) & ~repeat


def _hit_matrix(lists: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """Bool (n_users, width): the entry is relevant to its user and shown the first time."""
    n_users, n_items = relevant.shape
    # (user, item) keys of the relevant pairs, sorted: canonical CSR is sorted by row, then item.
    users = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(relevant.indptr))
    relevant_keys = users * n_items + relevant.indices
    if relevant_keys.size == 0:
        return np.zeros(lists.shape, dtype=bool)
    # Padding (-1) makes the key of the previous user's last item; _first_occurrences drops it.
    keys = np.arange(n_users, dtype=np.int64)[:, None] * n_items + lists
    found = np.searchsorted(relevant_keys, keys)
    is_relevant = relevant_keys[np.minimum(found, relevant_keys.size - 1)] == keys
    return is_relevant & _first_occurrences(lists)


def _recall(lists: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    n_relevant = np.diff(relevant.indptr).astype(np.float64)
    n_hits = _hit_matrix(lists, relevant).sum(axis=1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n_relevant > 0, n_hits / n_relevant, np.nan)
