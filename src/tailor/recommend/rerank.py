"""Re-ranking a list for variety: MMR diversity and "at most N per category".

Maximal marginal relevance (Carbonell & Goldstein, 1998) picks, position by position, the
candidate with the best ``(1 - diversity) * relevance - diversity * redundancy``, where relevance
is the recommender's score scaled to [0, 1] within the customer's candidates and redundancy is 1
when an item of the same category is already in the list. ``diversity = 0`` keeps the ranking
as it is. Written by hand because it is a few vectorised lines over the candidate block: the loop
runs over list positions (k), never over customers or items.
"""

from __future__ import annotations

import numpy as np

from tailor.dataset import Dataset


def item_groups(dataset: Dataset) -> np.ndarray:
    """A category code per item (the finest of category, department, subcategory the catalog
    fills), -1 where unknown."""
    for column in ("category", "department", "subcategory"):
        if column in dataset.items.columns and dataset.items[column].notna().any():
            codes, _ = dataset.items[column].factorize()
            return codes.astype(np.int64)
    return np.full(dataset.n_items, -1, dtype=np.int64)


def rerank(
    items: np.ndarray,
    scores: np.ndarray,
    groups: np.ndarray,
    k: int,
    diversity: float = 0.0,
    max_per_group: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pick ``k`` of each row's candidates, best first, for relevance and variety.

    Parameters
    ----------
    items, scores : ndarray of shape (n, c)
        Candidates in rank order (-1 = none) and their scores.
    groups : ndarray of shape (n_items,)
        Category code per item; -1 (unknown) is a group of its own for every item.
    diversity : float in [0, 1]
        MMR's trade-off: 0 = relevance only.
    max_per_group : int, optional
        At most this many items of one category per list.

    Returns
    -------
    items, scores : ndarray of shape (n, k); the original scores of the chosen items.
    """
    n, c = items.shape
    valid = items >= 0
    group = np.where(valid, groups[np.maximum(items, 0)], -1)
    own = group < 0
    # Unknown categories never repeat: give each such candidate a code of its own.
    group = np.where(own, -(np.arange(n * c).reshape(n, c) + 2), group)  # -1 means "none"
    finite = np.where(valid & np.isfinite(scores), scores, np.nan)
    low = np.nanmin(finite, axis=1, keepdims=True) if c else np.zeros((n, 1))
    high = np.nanmax(finite, axis=1, keepdims=True) if c else np.zeros((n, 1))
    span = np.where(high - low > 0, high - low, 1.0)
    relevance = np.nan_to_num((finite - low) / span, nan=0.0)
    taken = ~valid
    chosen = np.full((n, k), -1, dtype=np.int64)
    chosen_scores = np.full((n, k), -np.inf, dtype=np.float32)
    picked_groups: list[np.ndarray] = []
    rows = np.arange(n)
    for position in range(min(k, c)):
        if picked_groups:
            previous = np.stack(picked_groups, axis=1)  # (n, position)
            same = (group[:, :, None] == previous[:, None, :]) & (previous[:, None, :] != -1)
            count = same.sum(axis=2)
        else:
            count = np.zeros((n, c), dtype=np.int64)
        value = (1.0 - diversity) * relevance - diversity * (count > 0)
        blocked = taken | ((count >= max_per_group) if max_per_group is not None else False)
        value = np.where(blocked, -np.inf, value)
        best = np.argmax(value, axis=1)
        ok = np.isfinite(value[rows, best])
        chosen[ok, position] = items[rows[ok], best[ok]]
        chosen_scores[ok, position] = scores[rows[ok], best[ok]]
        taken[rows[ok], best[ok]] = True
        picked = np.where(ok, group[rows, best], -1)
        picked_groups.append(np.where(ok, picked, -1))
    # Slots no candidate could fill stay -1 at the end of the list.
    order = np.argsort(chosen < 0, axis=1, kind="stable")
    return np.take_along_axis(chosen, order, axis=1), np.take_along_axis(
        chosen_scores, order, axis=1
    )
