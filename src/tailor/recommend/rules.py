"""Frequently bought together: association rules over baskets.

A basket is one basket code of :attr:`tailor.dataset.Dataset.events` holding at least one
purchase (views, carts and ratings are not bought; a return is an event of its own type, so
returned goods never make a basket). The *support* of an itemset is the share of those baskets
holding all of its items; a rule ``A -> C`` has

* ``support``: support of A ∪ C,
* ``confidence``: support(A ∪ C) / support(A), the share of baskets with A that also hold C,
* ``lift``: confidence / support(C), how much more often C comes with A than by chance.

Pairs are counted with one sparse product: B is the baskets x items 0/1 matrix (CSR), restricted
first to the items whose own support reaches ``min_support`` (an itemset is never more frequent
than its items, so nothing is lost, and the product stays small), and ``B.T @ B`` holds every
pair's basket count. No library does this: mlxtend's FP-growth builds a dense baskets x items
frame, which for 155 k baskets x 92 k items does not fit in memory; the tests check these rules
against mlxtend on samples it can handle. Rules over three or more items (``max_len > 2``) do
come from mlxtend's FP-growth, on the baskets x frequent-items matrix as a sparse frame.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tailor.dataset import Dataset
from tailor.errors import TailorError

RULE_COLUMNS = [
    "antecedents", "consequents", "support", "confidence", "lift",
    "count", "antecedent_count", "consequent_count",
]  # fmt: skip
BUNDLE_COLUMNS = ["item_id", "rank", "bundle_item_id", "support", "confidence", "lift", "reason"]
BOUGHT = "purchase"
"""The event type that puts an item in a basket."""


def association_rules(
    dataset: Dataset,
    min_support: float = 0.0005,
    min_confidence: float = 0.0,
    max_len: int = 2,
) -> pd.DataFrame:
    """Every rule ``A -> C`` between two items bought together often enough.

    Parameters
    ----------
    dataset : Dataset
        Its purchase events make the baskets (see the module docstring).
    min_support : float in (0, 1]
        Least share of baskets holding both items: a pair counts when bought together in at
        least ``ceil(min_support * n_baskets)`` baskets (as mlxtend counts).
    min_confidence : float in [0, 1]
        Least confidence of a rule.
    max_len : int
        Largest itemset (antecedent and consequent together). Pairs come from the sparse
        product; larger itemsets from FP-growth (mlxtend) on the pruned baskets.

    Returns
    -------
    DataFrame with columns antecedents, consequents (tuples of item ids, one id each for a pair:
    ``(1095275,)``), support, confidence, lift (floats), count, antecedent_count,
    consequent_count (baskets holding the whole rule, its antecedent, its consequent). Both
    directions of a pair are rules. Sorted by lift, confidence and count, highest first, then
    by item. ``attrs["baskets"]`` is the number of baskets, ``attrs["min_support"]`` the
    threshold.
    """
    if max_len < 2:
        raise TailorError(f"max_len={max_len}: a rule needs at least two items")
    _check(min_support, min_confidence)
    baskets = basket_matrix(dataset)
    n_baskets = baskets.shape[0]
    min_count = _least_count(min_support, n_baskets)
    item_count = np.asarray(baskets.sum(axis=0)).ravel()
    frequent = np.flatnonzero(item_count >= min_count)
    # Prune the items before the product: B.T @ B over every item could hold billions of pairs.
    kept = baskets[:, frequent]
    together = sp.triu(kept.T @ kept, k=1, format="coo")
    pair = together.data >= min_count
    first, second = frequent[together.row[pair]], frequent[together.col[pair]]
    count = together.data[pair].astype(np.int64)
    antecedent = np.concatenate([first, second])
    consequent = np.concatenate([second, first])
    count = np.concatenate([count, count])
    antecedent_count = item_count[antecedent].astype(np.int64)
    consequent_count = item_count[consequent].astype(np.int64)
    confidence = count / np.maximum(antecedent_count, 1)
    lift = confidence * n_baskets / np.maximum(consequent_count, 1)
    keep = confidence >= min_confidence
    order = np.lexsort(
        (consequent[keep], antecedent[keep], -count[keep], -confidence[keep], -lift[keep])
    )
    rows = np.flatnonzero(keep)[order]
    ids = dataset.item_ids
    rules = pd.DataFrame(
        {
            "antecedents": _itemsets(ids[antecedent[rows]]),
            "consequents": _itemsets(ids[consequent[rows]]),
            "support": count[rows] / max(n_baskets, 1),
            "confidence": confidence[rows],
            "lift": lift[rows],
            "count": count[rows],
            "antecedent_count": antecedent_count[rows],
            "consequent_count": consequent_count[rows],
        },
        columns=RULE_COLUMNS,
    )
    if max_len > 2:
        larger = _larger_rules(kept, frequent, n_baskets, min_support, min_confidence, max_len, ids)
        rules = pd.concat([rules, larger], ignore_index=True)
        rules = rules.sort_values(
            ["lift", "confidence", "count"], ascending=False, kind="stable"
        ).reset_index(drop=True)
    rules.attrs.update(baskets=int(n_baskets), min_support=float(min_support))
    return rules


def _larger_rules(
    kept: sp.csr_matrix,
    frequent: np.ndarray,
    n_baskets: int,
    min_support: float,
    min_confidence: float,
    max_len: int,
    ids: np.ndarray,
) -> pd.DataFrame:
    """Rules over itemsets of 3 to ``max_len`` items, by mlxtend's FP-growth on the baskets x
    frequent-items matrix (sparse: the pruning above keeps it small, and every basket stays, so
    supports share the denominator of the pairs)."""
    from mlxtend.frequent_patterns import association_rules as mlxtend_rules
    from mlxtend.frequent_patterns import fpgrowth

    empty = pd.DataFrame(columns=RULE_COLUMNS)
    if kept.shape[1] < 3:
        return empty
    onehot = pd.DataFrame.sparse.from_spmatrix(
        kept.astype(bool), columns=[str(c) for c in range(kept.shape[1])]
    )
    itemsets = fpgrowth(onehot, min_support=min_support, max_len=max_len)
    if not (itemsets["itemsets"].map(len) >= 3).any():
        return empty
    found = mlxtend_rules(
        itemsets, num_itemsets=n_baskets, metric="confidence", min_threshold=min_confidence
    )
    found = found.loc[found["antecedents"].map(len) + found["consequents"].map(len) >= 3]

    def named(itemset: frozenset) -> tuple:
        return tuple(sorted(ids[frequent[[int(c) for c in itemset]]].tolist()))

    count = np.rint(found["support"].to_numpy() * n_baskets).astype(np.int64)
    return pd.DataFrame(
        {
            "antecedents": found["antecedents"].map(named).tolist(),
            "consequents": found["consequents"].map(named).tolist(),
            "support": count / n_baskets,
            "confidence": found["confidence"].to_numpy(),
            "lift": found["lift"].to_numpy(),
            "count": count,
            "antecedent_count": np.rint(found["antecedent support"] * n_baskets).astype(np.int64),
            "consequent_count": np.rint(found["consequent support"] * n_baskets).astype(np.int64),
        },
        columns=RULE_COLUMNS,
    )


def stricter_rules(
    rules: pd.DataFrame, min_support: float, min_confidence: float = 0.0
) -> pd.DataFrame:
    """The rules of ``rules`` (as :func:`association_rules` returns them) that meet stricter
    thresholds: the same rules :func:`association_rules` would find with them.

    ``min_support`` must be at least ``rules.attrs["min_support"]``: rules below it were never
    counted.
    """
    _check(min_support, min_confidence)
    if min_support < rules.attrs["min_support"]:
        raise TailorError(
            f"min_support {min_support}: these rules were counted from "
            f"{rules.attrs['min_support']}; count them again with association_rules"
        )
    least = _least_count(min_support, rules.attrs["baskets"])
    kept = rules.loc[(rules["count"] >= least) & (rules["confidence"] >= min_confidence)]
    kept = kept.reset_index(drop=True)
    kept.attrs = {**rules.attrs, "min_support": float(min_support)}
    return kept


def basket_matrix(dataset: Dataset) -> sp.csr_matrix:
    """The baskets x items 0/1 matrix of purchases, int32, one row per basket with a purchase.

    Returns
    -------
    csr_matrix of shape (n_baskets, n_items)
    """
    events = dataset.events
    bought = (events["event_type"] == BOUGHT).to_numpy() & (events["weight"].to_numpy() > 0)
    basket = events["basket"].to_numpy()[bought]
    item = events["item"].to_numpy(np.int64)[bought]
    _, row = np.unique(basket, return_inverse=True)
    matrix = sp.csr_matrix(
        (np.ones(len(row), dtype=np.int32), (row.ravel(), item)),
        shape=(int(row.max()) + 1 if len(row) else 0, dataset.n_items),
    )
    matrix.data[:] = 1  # an item twice in one basket is in it once
    return matrix


def bundles(rules: pd.DataFrame, item_id: Any, k: int = 10) -> pd.DataFrame:
    """The items most often bought with ``item_id``: its rules' consequents by lift, then
    confidence.

    ``item_id`` is an id as the rules hold it (an int for a shop with integer ids). Returns a
    DataFrame with columns item_id, rank (1-based), bundle_item_id, support, confidence, lift,
    reason ("bought together in 412 baskets (lift 3.1)"); empty when no rule starts from the
    item.
    """
    antecedents, consequents = rules["antecedents"].str, rules["consequents"].str
    mine = rules.loc[
        (antecedents.len() == 1) & (antecedents[0] == item_id) & (consequents.len() == 1)
    ]
    mine = mine.sort_values(["lift", "confidence", "count"], ascending=False, kind="stable")
    mine = mine.head(k)
    return pd.DataFrame(
        {
            "item_id": [item_id] * len(mine),
            "rank": np.arange(1, len(mine) + 1),
            "bundle_item_id": mine["consequents"].str[0].to_numpy(),
            "support": mine["support"].to_numpy(np.float64),
            "confidence": mine["confidence"].to_numpy(np.float64),
            "lift": mine["lift"].to_numpy(np.float64),
            "reason": [
                f"bought together in {_baskets(c)} (lift {lift:.1f})"
                for c, lift in zip(mine["count"], mine["lift"], strict=True)
            ],
        },
        columns=BUNDLE_COLUMNS,
    )


def _check(min_support: float, min_confidence: float) -> None:
    if not 0 < min_support <= 1:
        raise TailorError(f"min_support {min_support}: give a share of baskets in (0, 1]")
    if not 0 <= min_confidence <= 1:
        raise TailorError(f"min_confidence {min_confidence}: give a share in [0, 1]")


def _least_count(min_support: float, n_baskets: int) -> int:
    """Baskets a pair needs: ``ceil(min_support * n_baskets)``, at least 1 (as mlxtend)."""
    return max(1, math.ceil(min_support * n_baskets))


def _itemsets(ids: np.ndarray) -> list[tuple]:
    """One-item tuples of plain Python ids (ints stay ints in JSON, not numpy scalars)."""
    return [(i,) for i in ids.tolist()]


def _baskets(n: int) -> str:
    return "1 basket" if n == 1 else f"{n:,} baskets"
