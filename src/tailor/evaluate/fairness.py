"""The fairness audit: whom the lists serve well, what they show, and what parity would cost.

It reads the very lists ``tailor evaluate`` scored (:class:`~tailor.evaluate.runner.RankedLists`)
and answers three questions.

**Customer groups.** For each customer attribute that forms a handful of groups (2 to
:data:`MAX_GROUP_LEVELS` values: age band, income band, household size, ...; ids, free text and
measures with many values are left out, and so are the consent flags), the evaluated customers
of each group, their mean recall@k and NDCG@k (the runner's per-customer figures, averaged as
:func:`~tailor.evaluate.runner.segment_figures` averages segments) and a 95 % bootstrap interval
over the group's customers (:func:`~tailor.evaluate.metrics.bootstrap_ci`). Customers without a
value form the group :data:`UNKNOWN`. The **worst/best ratio** of a metric is the lowest group
mean divided by the highest, over the groups with a known value and at least ``min_customers``
customers (smaller groups' means are mostly noise): 1 is parity, 0.8 means the worst-served
group gets 80 % of what the best-served one gets.

**Item exposure.** For each item attribute with 2 to :data:`MAX_EXPOSURE_LEVELS` values
(department, brand: national or private label, ...), each value's share of the recommendation
slots (every item shown in a top-k list is one slot) against its share of the purchases in the
training data (purchase events; positive interactions where the data has no purchases). The
purchases are the training data's, not the test period's, because that is what a shop knows
when it makes the lists, and what :func:`parity_rerank` can aim at. ``ratio`` is slot share /
purchase share (above 1: shown more than it sells). The **exposure gap** is the total variation
distance between the two mixes, half the sum of the absolute differences of the shares: the
share of slots that would have to change value for the lists to mirror the purchases (0 to 1).

**Exposure parity.** :func:`parity_rerank` re-picks each list of k from the model's top
candidates so that, over all lists, the slot shares of one attribute move a fraction
``strength`` of the way towards the purchase shares (1: all the way), giving up as little of
the model's ranking as it can; :func:`exposure_parity` reports the accuracy with and without
it, and the exposure gap with and without it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.evaluate.metrics import _first_occurrences, bootstrap_ci, ranking_metrics, summarize
from tailor.evaluate.runner import RankedLists, segment_figures
from tailor.recommend.base import STOCK_COUNTS, STOCK_FLAGS

MAX_GROUP_LEVELS = 12
"""A customer attribute with more distinct values than this is not a grouping (an id, a date)."""

MAX_EXPOSURE_LEVELS = 50
"""An item attribute with more distinct values than this is not audited for exposure."""

MIN_CUSTOMERS = 30
"""Groups smaller than this are shown but left out of the worst/best ratio."""

UNKNOWN = "unknown"
"""The group of customers (the value of items) without a value for the attribute."""

FAIRNESS_METRICS: tuple[str, ...] = ("recall", "ndcg")
"""The metrics compared across customer groups, @k."""

PARITY_ITERATIONS = 200
"""Rounds of the price search in :func:`parity_rerank` (it stops early once on target)."""

_PARITY_TOLERANCE = 1e-3  # a gap to the target below 0.1 % of the slots is on target


def parity_candidates(k: int) -> int:
    """How many candidates the parity re-rank picks each list of ``k`` from: the length the
    diversity re-rank of ``Recommender.recommend`` takes, max(5 k, 50)."""
    return max(5 * k, 50)


# -- attributes -----------------------------------------------------------------------------------


def attribute_labels(
    frame: pd.DataFrame,
    max_levels: int,
    columns: Sequence[str] | None = None,
    skip: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """A label per row for each attribute column of ``frame`` that forms a few groups.

    Parameters
    ----------
    frame : DataFrame
        ``Dataset.customers`` or ``Dataset.items`` (one row per customer row / item column).
    max_levels : int
        Columns with fewer than 2 or more than this many distinct values are left out, and so
        are measures (floats that are not whole numbers).
    columns : sequence of str, optional
        The columns to label, whatever their number of values; default: every column that
        qualifies, but for ``skip``.
    skip : sequence of str
        Columns never chosen by default (the id, flags that are not attributes).

    Returns
    -------
    dict of str to ndarray of object of shape (len(frame),)
        Column -> the value of each row as text (whole floats written as integers), or
        :data:`UNKNOWN` where missing.
    """
    chosen = list(columns) if columns is not None else []
    if columns is None:
        for column in frame.columns:
            if column in skip or not _is_grouping(frame[column], max_levels):
                continue
            chosen.append(column)
    labels = {}
    for column in chosen:
        if column not in frame.columns:
            raise TailorError(
                f"no attribute {column!r}; known: {', '.join(map(str, frame.columns))}"
            )
        labels[column] = _labels(frame[column])
    return labels


def customer_attributes(
    dataset: Dataset, columns: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The group of every customer row under each demographic attribute (see the module
    docstring); ``columns`` names them instead of choosing."""
    frame = dataset.customers
    # The consent flags (consent_<purpose>) are a customer's choices, not a group of customers.
    skip = ["customer_id", *(c for c in frame.columns if str(c).startswith("consent_"))]
    return attribute_labels(frame, MAX_GROUP_LEVELS, columns, skip)


def item_attributes(
    dataset: Dataset, columns: Sequence[str] | None = None
) -> dict[str, np.ndarray]:
    """The value of every item column under each item attribute audited for exposure (see the
    module docstring); ``columns`` names them instead of choosing."""
    skip = ["item_id", *STOCK_FLAGS, *STOCK_COUNTS]  # whether it can be sold is no attribute
    return attribute_labels(dataset.items, MAX_EXPOSURE_LEVELS, columns, skip)


def purchase_counts(dataset: Dataset) -> np.ndarray:
    """Purchase events per item column (positive interactions where there is no purchase).

    Returns
    -------
    ndarray of shape (n_items,), float64
    """
    events = dataset.events
    bought = (events["event_type"].astype(str) == "purchase").to_numpy()
    # Without purchases (ratings and the like), each customer's positive items count once.
    items = events["item"].to_numpy()[bought] if bought.any() else dataset.interactions.indices
    return np.bincount(items, minlength=dataset.n_items).astype(np.float64)


# -- customer groups ------------------------------------------------------------------------------


def group_quality(
    per_user: Mapping[str, np.ndarray],
    labels: np.ndarray,
    k: int,
    min_customers: int = MIN_CUSTOMERS,
    confidence: bool = True,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Recommendation quality per customer group, and the worst/best ratio.

    Parameters
    ----------
    per_user : dict of str to ndarray of shape (n_users,)
        The runner's per-customer metrics @k (at least "recall" and "ndcg").
    labels : ndarray of shape (n_users,)
        The group of each evaluated customer.
    k : int
        The cut-off (names the keys).
    min_customers : int
        Groups smaller than this, and :data:`UNKNOWN`, stay out of the ratio.
    confidence : bool
        Add a 95 % bootstrap interval over the group's customers per metric.

    Returns
    -------
    dict
        ``groups``: label -> {"customers", "recall@k", "ndcg@k", "precision@k", "ci95":
        {"recall@k": [low, high], "ndcg@k": [...]}}, in the labels' natural order (numbers
        as numbers, "Under 15K" before "15-24K", :data:`UNKNOWN` last);
        ``worst_best_ratio``: metric -> lowest / highest group mean among the compared groups
        (NaN with fewer than 2 of them, or when the best is 0); ``worst``, ``best``: metric ->
        the group (None without a ratio); ``compared``: the groups in the ratio.
    """
    labels = np.asarray(labels, dtype=object).astype(str)
    figures = segment_figures(per_user, labels, k)
    groups = {label: figures[label] for label in sorted(figures, key=_natural)}
    if confidence:
        for label, group in groups.items():
            members = labels == label
            group["ci95"] = {
                f"{metric}@{k}": list(bootstrap_ci(per_user[metric][members], n_boot))
                for metric in FAIRNESS_METRICS
            }
    compared = [
        label
        for label, group in groups.items()
        if label != UNKNOWN and group["customers"] >= min_customers
    ]
    ratio: dict[str, float] = {}
    worst: dict[str, str | None] = {}
    best: dict[str, str | None] = {}
    for metric in FAIRNESS_METRICS:
        key = f"{metric}@{k}"
        values = {label: groups[label][key] for label in compared}
        values = {label: value for label, value in values.items() if not np.isnan(value)}
        low = min(values, key=values.__getitem__) if len(values) >= 2 else None
        high = max(values, key=values.__getitem__) if len(values) >= 2 else None
        worst[key], best[key] = low, high
        if low is None or high is None or values[high] <= 0:
            ratio[key] = float("nan")
        else:
            ratio[key] = values[low] / values[high]
    return {
        "groups": groups,
        "worst_best_ratio": ratio,
        "worst": worst,
        "best": best,
        "compared": compared,
    }


# -- item exposure --------------------------------------------------------------------------------


def exposure(lists: np.ndarray, item_labels: np.ndarray, purchases: np.ndarray) -> dict[str, Any]:
    """Each attribute value's share of the recommendation slots against its share of purchases.

    Parameters
    ----------
    lists : ndarray of shape (n_users, k), int
        The lists (-1 = padding, which is no slot; an item shown twice in a list is one slot).
    item_labels : ndarray of shape (n_items,)
        The attribute value of each item.
    purchases : ndarray of shape (n_items,)
        Purchases per item (:func:`purchase_counts`).

    Returns
    -------
    dict
        ``values``: value -> {"slots": share of slots, "purchases": share of purchases,
        "ratio": slots / purchases (NaN for a value nobody bought)}, values that were neither
        shown nor bought left out, largest purchase share first; ``gap``: the total variation
        distance between the two mixes, in [0, 1].
    """
    names, codes = np.unique(np.asarray(item_labels, dtype=object).astype(str), return_inverse=True)
    slots = _slot_shares(lists, codes, len(names))
    bought = _shares(np.bincount(codes, weights=purchases, minlength=len(names)))
    values = {}
    for code in np.lexsort((names, -slots, -bought)):
        if slots[code] == 0 and bought[code] == 0:
            continue
        values[str(names[code])] = {
            "slots": float(slots[code]),
            "purchases": float(bought[code]),
            "ratio": float(slots[code] / bought[code]) if bought[code] > 0 else float("nan"),
        }
    return {"values": values, "gap": exposure_gap(slots, bought)}


def exposure_gap(shares: np.ndarray, target: np.ndarray) -> float:
    """Total variation distance between two mixes: half the sum of absolute differences."""
    return float(0.5 * np.abs(np.asarray(shares) - np.asarray(target)).sum())


# -- exposure parity ------------------------------------------------------------------------------


def parity_rerank(
    items: np.ndarray,
    scores: np.ndarray,
    item_codes: np.ndarray,
    target: np.ndarray,
    k: int,
    strength: float = 1.0,
    iterations: int = PARITY_ITERATIONS,
) -> np.ndarray:
    """Re-pick each list of ``k`` from its candidates so that the slot shares of an attribute
    move towards ``target``.

    The aim is the mix ``(1 - strength) x the lists' own mix + strength x target``. Each
    candidate's relevance is its score scaled to [0, 1] within its customer's candidates (as the
    diversity re-rank scales it); a price per attribute value is added to it, each list keeps
    the k candidates of highest relevance + price, in the model's order. The prices are found
    by a subgradient search on the dual of "maximise the summed relevance with these slot
    shares": a value shown more than its aim gets cheaper, one shown less dearer, with shrinking
    steps; the lists of the round closest to the aim are kept. Every list is re-picked, so the
    cost falls where it is least: on customers for whom another value's item is nearly as
    relevant. Written by hand: it is a few vectorised lines over the candidate block, and no
    library re-ranks for an aggregate mix (fairness libraries re-rank a list at a time).

    Parameters
    ----------
    items, scores : ndarray of shape (n, c)
        Candidates best first (-1 = none) and their scores, c >= k; the first k of each row are
        the list as the model made it.
    item_codes : ndarray of shape (n_items,), int
        The attribute value of each item, as a code in 0 .. len(target) - 1.
    target : ndarray of shape (n_values,)
        The mix to move towards (shares summing to 1).
    k : int
        List length.
    strength : float in [0, 1]
        0 leaves every list as it is; 1 aims at ``target`` itself.
    iterations : int
        Rounds of the price search at most.

    Returns
    -------
    ndarray of shape (n, k), int64
        The lists, each in the model's order (-1 = padding at the end).
    """
    if not 0.0 <= strength <= 1.0:
        raise TailorError(f"parity strength {strength}: use a value between 0 and 1")
    items = np.asarray(items, dtype=np.int64)
    n, c = items.shape
    if c < k:
        raise TailorError(f"parity needs at least k={k} candidates per customer, got {c}")
    target = _shares(np.asarray(target, dtype=np.float64))
    valid = (items >= 0) & np.isfinite(scores)
    code = np.where(valid, np.asarray(item_codes)[np.maximum(items, 0)], 0)
    relevance = _scaled(np.asarray(scores, dtype=np.float64), valid)
    original = _pick(relevance, k)
    share = _picked_shares(original, code, len(target))
    aim = (1.0 - strength) * share + strength * target
    best, best_gap = original, exposure_gap(share, aim)
    prices = np.zeros(len(target))
    step = 0.5
    for _ in range(iterations):
        if best_gap <= _PARITY_TOLERANCE:
            break
        # Relative shortfall in [-1, 1]: small values move as readily as large ones.
        prices += step * (aim - share) / np.maximum(aim + share, 1e-12)
        step *= 0.97
        picked = _pick(relevance + prices[code], k)
        share = _picked_shares(picked, code, len(target))
        gap = exposure_gap(share, aim)
        if gap < best_gap:
            best, best_gap = picked, gap
    chosen = np.take_along_axis(items, np.minimum(best, c - 1), axis=1)
    return np.where(best < c, chosen, -1)


def exposure_parity(
    lists: RankedLists,
    item_labels: np.ndarray,
    purchases: np.ndarray,
    k: int,
    strength: float = 1.0,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Re-rank one model's lists for exposure parity and report what it costs.

    Parameters
    ----------
    lists : RankedLists
        The model's evaluated lists with at least k candidates each (the runner's
        ``lists_width``; :func:`parity_candidates` is what ``tailor evaluate`` takes).
    item_labels : ndarray of shape (n_items,)
        The attribute value of each item.
    purchases : ndarray of shape (n_items,)
        Purchases per item; their mix per value is the target.
    k, strength
        List length and how far to move (see :func:`parity_rerank`).

    Returns
    -------
    dict
        ``strength``, ``candidates`` (per customer); ``before`` and ``after``: {"recall@k",
        "ndcg@k", "exposure_gap"}; ``change``: after - before of each metric, with ``ci95``,
        its 95 % bootstrap interval over customers (paired: the same customers both times);
        ``relative_change``: change / before; ``lists_changed``: the share of customers whose
        list changed; ``exposure``: value -> {"purchases", "slots_before", "slots_after"}.
    """
    names, codes = np.unique(np.asarray(item_labels, dtype=object).astype(str), return_inverse=True)
    bought = _shares(np.bincount(codes, weights=purchases, minlength=len(names)))
    reranked = parity_rerank(lists.items, lists.scores, codes, bought, k, strength)
    before_lists = lists.items[:, :k]
    after_user = ranking_metrics(reranked, lists.truth, k)
    before = summarize({m: lists.per_user[m] for m in FAIRNESS_METRICS}, k)
    after = summarize({m: after_user[m] for m in FAIRNESS_METRICS}, k)
    slots_before = _slot_shares(before_lists, codes, len(names))
    slots_after = _slot_shares(reranked, codes, len(names))
    change, relative, intervals = {}, {}, {}
    for metric in FAIRNESS_METRICS:
        key = f"{metric}@{k}"
        change[key] = after[key] - before[key]
        relative[key] = change[key] / before[key] if before[key] > 0 else float("nan")
        paired = after_user[metric] - lists.per_user[metric]
        intervals[key] = list(bootstrap_ci(paired, n_boot))
    order = np.lexsort((names, -slots_before, -bought))
    return {
        "strength": strength,
        "candidates": int(lists.items.shape[1]),
        "before": {**before, "exposure_gap": exposure_gap(slots_before, bought)},
        "after": {**after, "exposure_gap": exposure_gap(slots_after, bought)},
        "change": {**change, "ci95": intervals},
        "relative_change": relative,
        "lists_changed": float(np.mean(np.any(reranked != before_lists, axis=1))),
        "exposure": {
            str(names[code]): {
                "purchases": float(bought[code]),
                "slots_before": float(slots_before[code]),
                "slots_after": float(slots_after[code]),
            }
            for code in order
            if bought[code] > 0 or slots_before[code] > 0 or slots_after[code] > 0
        },
    }


# -- the audit ------------------------------------------------------------------------------------


def audit(
    train: Dataset,
    lists: Mapping[str, RankedLists],
    model: str,
    k: int,
    parity_attribute: str | None = None,
    strength: float = 1.0,
    min_customers: int = MIN_CUSTOMERS,
    customer_columns: Sequence[str] | None = None,
    item_columns: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The fairness section of ``tailor evaluate``: groups, exposure and parity of ``model``,
    and the headline figures of every model in ``lists``.

    Parameters
    ----------
    train : Dataset
        The training data the lists were made from (attributes, purchases).
    lists : dict of str to RankedLists
        As :func:`~tailor.evaluate.runner.evaluate_models` fills them.
    model : str
        The model audited in full (``tailor evaluate`` takes the default).
    k : int
        List length evaluated.
    parity_attribute : str, optional
        An item attribute: also re-rank for exposure parity by it (and for every model).
    strength : float in [0, 1]
        How far the parity re-rank moves towards the purchase mix.
    min_customers : int
        The smallest group in a worst/best ratio.
    customer_columns, item_columns : sequence of str, optional
        The attributes to audit; default: every one that qualifies (module docstring).

    Returns
    -------
    dict
        ``model``, ``min_customers``, ``purchases`` ("training data"); ``groups``: attribute ->
        :func:`group_quality`; ``exposure``: attribute -> :func:`exposure`; with
        ``parity_attribute``, ``parity``: its :func:`exposure_parity` plus ``attribute``;
        ``models``: name -> {"worst_best_ratio": attribute -> metric -> ratio,
        "exposure_gap": attribute -> gap, and with parity "parity": {"change", "after"}};
        ``seconds``: the audit's own time.
    """
    if model not in lists:
        raise TailorError(f"no lists of {model!r} to audit; evaluated: {', '.join(lists)}")
    started = time.perf_counter()
    groups = customer_attributes(train, customer_columns)
    attributes = item_attributes(train, item_columns)
    purchases = purchase_counts(train)
    parity_labels = None
    if parity_attribute is not None:
        if parity_attribute == "item_id":
            raise TailorError("parity by item_id: name an item attribute, e.g. brand")
        parity_labels = attribute_labels(train.items, 0, [parity_attribute])[parity_attribute]
    summaries = {}
    result: dict[str, Any] = {
        "model": model,
        "min_customers": min_customers,
        "purchases": "training data",
    }
    for name, ranked in lists.items():
        full = name == model
        by_group = {
            column: group_quality(
                ranked.per_user, labels[ranked.users], k, min_customers, confidence=full
            )
            for column, labels in groups.items()
        }
        shown = {
            column: exposure(ranked.items[:, :k], labels, purchases)
            for column, labels in attributes.items()
        }
        summary: dict[str, Any] = {
            "worst_best_ratio": {c: g["worst_best_ratio"] for c, g in by_group.items()},
            "exposure_gap": {c: e["gap"] for c, e in shown.items()},
        }
        if parity_labels is not None:
            parity = exposure_parity(ranked, parity_labels, purchases, k, strength)
            summary["parity"] = {"change": parity["change"], "after": parity["after"]}
            if full:
                result["parity"] = {"attribute": parity_attribute, **parity}
        if full:
            result["groups"], result["exposure"] = by_group, shown
        summaries[name] = summary
    result["models"] = summaries
    result["seconds"] = round(time.perf_counter() - started, 3)
    return result


# -- helpers --------------------------------------------------------------------------------------


def _is_grouping(values: pd.Series, max_levels: int) -> bool:
    known = values.dropna()
    if known.empty:
        return False
    if pd.api.types.is_float_dtype(known) and not np.all(np.mod(known.to_numpy(float), 1) == 0):
        return False  # a measure (a price, a weight), not a group
    return 2 <= known.nunique() <= max_levels


def _labels(values: pd.Series) -> np.ndarray:
    """The values as text, whole floats as integers (a column with gaps reads as float)."""
    missing = values.isna().to_numpy()
    if pd.api.types.is_float_dtype(values):
        whole = np.mod(values.fillna(0).to_numpy(float), 1) == 0
        if whole.all():
            values = values.fillna(0).astype(np.int64)
    text = values.astype(object).astype(str).to_numpy(dtype=object)
    text[missing] = UNKNOWN
    return text


def _natural(label: str) -> tuple[int, float, str]:
    """Sort key: labels by their first number ("Under 15K" just below 15), then the rest by
    text, :data:`UNKNOWN` last."""
    if label == UNKNOWN:
        return 2, 0.0, label
    number = re.search(r"\d+(?:\.\d+)?", label)
    if number is None:
        return 1, 0.0, label
    value = float(number.group())
    if re.match(r"\s*(under|below|less than|<)", label, flags=re.IGNORECASE):
        value -= 0.5
    return 0, value, label


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total > 0 else np.zeros(len(counts))


def _slot_shares(lists: np.ndarray, codes: np.ndarray, n_values: int) -> np.ndarray:
    """Share of the slots of ``lists`` (first showings of an item in its list) per value."""
    lists = np.asarray(lists, dtype=np.int64)
    shown = lists[_first_occurrences(lists)]
    return _shares(np.bincount(codes[shown], minlength=n_values).astype(np.float64))


def _scaled(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Scores scaled to [0, 1] within each row's valid candidates; -inf where not valid."""
    finite = np.where(valid, scores, np.nan)
    has = valid.any(axis=1, keepdims=True)
    low = np.nanmin(np.where(has, finite, 0.0), axis=1, keepdims=True)
    high = np.nanmax(np.where(has, finite, 0.0), axis=1, keepdims=True)
    span = np.where(high - low > 0, high - low, 1.0)
    return np.where(valid, (finite - low) / span, -np.inf)


def _pick(value: np.ndarray, k: int) -> np.ndarray:
    """Candidate positions of each row's k best values, ascending (the model's order); ties go
    to the earlier position, a slot without a valid candidate is the position c (none)."""
    n, c = value.shape
    order = np.argsort(-value, axis=1, kind="stable")[:, :k]
    found = np.isfinite(np.take_along_axis(value, order, axis=1))
    return np.sort(np.where(found, order, c), axis=1)


def _picked_shares(picked: np.ndarray, code: np.ndarray, n_values: int) -> np.ndarray:
    n, c = code.shape
    real = picked < c
    rows = np.broadcast_to(np.arange(n)[:, None], picked.shape)
    return _shares(
        np.bincount(code[rows[real], picked[real]], minlength=n_values).astype(np.float64)
    )
