"""Attribute prediction: fill in missing customer attributes (has kids, income band) from behaviour.

Every attribute column of the customer table (``consent_*`` columns are consent flags, not
demographics, and are left out) with at most ``max_classes`` distinct known values is a
classification problem: the customers whose value is known are the examples, their 360 features
(:func:`tailor.customers.features.customer_features`) the inputs. Numbers with few distinct values
(kids_count "0", "1", "2", "3+"; household_size) are classes like text; ordered bands (income
"50-74K") are classes too, their order unused.

An attribute is *published* only where the model beats guessing the most common value:

* ``accuracy`` is the stratified ``folds``-fold cross-validated accuracy on the known customers;
* ``baseline_accuracy`` is that of the majority class, measured on the same folds (the most
  common value of each training fold predicted for its test fold);
* ``p_value`` is an exact one-sided McNemar test on the out-of-fold predictions: of the customers
  where exactly one of model and baseline is right, how surprising the share where it is the
  model would be if both were equally good (binomial, p = 1/2).

Published means ``accuracy > baseline_accuracy`` and ``p_value < alpha``; only then are the
customers whose value is missing given a prediction (known values are never overwritten).

The model is a multinomial logistic regression on *normal scores* of the features (each
feature's rank among all customers mapped to a standard normal quantile; a missing value is the
median, 0), its L2 strength chosen from ``CS`` by an inner cross-validation inside each training
fold, so that the outer accuracy stays honest. Chosen over LightGBM and histogram gradient
boosting: on The Complete Journey the trees were less accurate on every attribute (marital status
56% and 55% against 58%; demographics are only faintly visible in baskets and trees overfit the
faint signal) and several times slower; and the reasons of a linear model are exact. A class's
log-odds are a sum of coefficient x normal score, so the features pushing a customer towards the
predicted class, measured from the typical (median) customer, are read off the model without an
approximation such as TreeSHAP. Normal scores make skewed money and count features comparable
and keep outliers (a 17,000-unit fuel basket) from dominating; ranking uses no attribute, so it is
done once on every customer.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import ndtri
from scipy.stats import binomtest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from tailor.customers.churn import describe
from tailor.errors import TailorError

CS = (0.01, 0.1, 1.0)
"""Inverse L2 strengths the logistic regression chooses from, per training set. Faint signals
(demographics in The Complete Journey's baskets) need the strongest, else the model strays from
the prior and loses to the majority class; a clear one needs a weak penalty, else the shrunken
slope moves the class boundary towards the minority class."""

SOLVER = "newton-cg"  # ten times faster than lbfgs here: few features, many classes

TOP_REASONS = 3
"""Features named in a prediction's reason, at most."""

_EXCLUDED = {"r_score", "f_score", "m_score"}  # rank transforms of recency, frequency, monetary

# Phrases for features that churn's ``describe`` words generically; the others go to it.
_PHRASES = {
    "avg_basket_items": "{:.1f} items per basket",
    "avg_basket_lines": "{:.1f} different products per basket",
    "discount_value_share": "{:.0%} of the price saved through discounts",
    "active_week_share": "shops in {:.0%} of weeks",
    "active_4week_share": "shops in {:.0%} of 4-week periods",
    "interpurchase_cv": "gaps between shopping days vary by {:.0%}",
    "last_gap_days": "{:.0f} days between the last two shopping days",
    "stores": "shops at {:.0f} stores",
    "channels": "shops in {:.0f} channels",
    "top_channel_share": "{:.0%} of trips in one channel",
    "views": "{:.0f} product views",
    "carts": "{:.0f} cart additions",
    "campaigns_received": "received {:.0f} campaigns",
    "campaigns_running": "{:.0f} campaigns running",
}
_BASKETS_LAST = re.compile(r"baskets_last_(\d+)d")


@dataclass(frozen=True)
class AttributePredictions:
    """How well each attribute is predicted from behaviour, and the published predictions.

    Attributes
    ----------
    evaluation : DataFrame
        One row per attribute considered, in the order of the attribute table: ``attribute``,
        ``known`` and ``missing`` (customers of the feature table with and without a value),
        ``classes`` (distinct known values), ``accuracy`` and ``baseline_accuracy`` (shares in
        [0, 1], out of fold; NaN where the attribute was skipped), ``lift`` (accuracy /
        baseline_accuracy), ``p_value`` (one-sided exact McNemar, model better than baseline),
        ``published`` (bool) and ``reason`` (in words).
    predictions : DataFrame
        One row per (customer whose value is missing, published attribute): ``customer_id``,
        ``attribute``, ``predicted`` (one of the known values, as stored), ``confidence`` (the
        model's probability of it, in [0, 1]) and ``reason`` (the behaviour behind it, in words).
    """

    evaluation: pd.DataFrame
    predictions: pd.DataFrame


def predict_attributes(
    features: pd.DataFrame,
    attributes: pd.DataFrame,
    min_known: int = 50,
    max_classes: int = 12,
    random_state: int = 0,
    folds: int = 5,
    alpha: float = 0.05,
) -> AttributePredictions:
    """Predict each customer's missing attributes from their behaviour, where it beats guessing.

    Parameters
    ----------
    features : DataFrame of shape (n_customers, n_features)
        Behaviour, indexed by ``customer_id`` (e.g. ``customer_features(wh).table``); numeric and
        boolean columns are used, NaN allowed. Its customers are the ones predicted.
    attributes : DataFrame of shape (n_stored, n_attributes)
        Stored attributes indexed by ``customer_id``, NA where unknown; ``consent_*`` columns are
        ignored. A customer of ``features`` without a row here has every attribute missing; a
        row for a customer absent from ``features`` is not used.
    min_known : int
        Fewest known values an attribute needs to be modelled.
    max_classes : int
        Most distinct known values an attribute may have (more, e.g. a continuous number, is
        skipped).
    random_state : int
        Seed of the fold split.
    folds : int
        Folds of the stratified cross-validation (fewer when the largest class is smaller).
    alpha : float
        Significance level of the test against the majority class.

    Returns
    -------
    AttributePredictions
    """
    if not features.index.is_unique:
        raise TailorError("attribute prediction: features has more than one row per customer")
    if not attributes.index.is_unique:
        raise TailorError("attribute prediction: attributes has more than one row per customer")
    if folds < 2:
        raise TailorError(f"attribute prediction: folds must be at least 2, got {folds}")
    raw = _inputs(features)
    scores, standing = _normal_scores(raw)
    columns = [c for c in attributes.columns if not str(c).startswith("consent_")]
    rows, parts = [], []
    for attribute in columns:  # one model per attribute: a handful of columns
        values = attributes[attribute].reindex(features.index)
        known = values.notna().to_numpy()
        labels, classes = _codes(values[known])
        row = {
            "attribute": attribute,
            "known": int(known.sum()),
            "missing": int((~known).sum()),
            "classes": len(classes),
        }
        skip = _skip_reason(row, min_known, max_classes)
        if skip is not None:
            rows.append({**row, **_NOT_EVALUATED, "reason": skip})
            continue
        model_right, baseline_right = _cross_validate(scores[known], labels, folds, random_state)
        row |= _compare(model_right, baseline_right, alpha)
        rows.append(row)
        if row["published"] and (~known).any():
            model = _fit(scores[known], labels, random_state)
            parts.append(
                _predict(
                    model,
                    classes,
                    attribute,
                    features.index[~known],
                    scores[~known],
                    standing[~known],
                    raw[~known],
                )
            )
    evaluation = pd.DataFrame(rows, columns=_EVALUATION_COLUMNS)
    evaluation["published"] = evaluation["published"].astype(bool)
    predictions = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame(columns=["customer_id", "attribute", "predicted", "confidence", "reason"])
    )
    return AttributePredictions(evaluation=evaluation, predictions=predictions)


_EVALUATION_COLUMNS = [
    "attribute",
    "known",
    "missing",
    "classes",
    "accuracy",
    "baseline_accuracy",
    "lift",
    "p_value",
    "published",
    "reason",
]
_NOT_EVALUATED = {
    "accuracy": np.nan,
    "baseline_accuracy": np.nan,
    "lift": np.nan,
    "p_value": np.nan,
    "published": False,
}


def _inputs(features: pd.DataFrame) -> pd.DataFrame:
    """The numeric feature columns that vary, as floats."""
    x = features.select_dtypes(include=["number", "bool"]).drop(
        columns=[c for c in _EXCLUDED if c in features.columns]
    )
    x = x.astype("float64")
    x = x.loc[:, x.nunique() > 1]
    if x.shape[1] == 0:
        raise TailorError(
            "attribute prediction: features has no numeric column that varies between customers"
        )
    return x


def _normal_scores(x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(normal scores, standing), both of shape (n_customers, n_features).

    A value's mid-rank among the customers with one, as a share in (0, 1) (ties share their
    average rank), mapped to its standard normal quantile is its score; a missing value scores 0
    (the median). Its standing is the share of customers at or above it where the score is
    positive, at or below it elsewhere ("top 4%", "bottom 56%" for a 0 that 56% share); NaN
    where missing.
    """
    n = x.notna().sum()
    scores = np.nan_to_num(ndtri(((x.rank() - 0.5) / n).to_numpy()), nan=0.0)
    at_most = (x.rank(method="max") / n).to_numpy()
    at_least = ((n - x.rank(method="min") + 1) / n).to_numpy()
    return scores, np.where(scores > 0, at_least, at_most)


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer labels of the known values and the classes they index, sorted where they can be."""
    try:
        labels, classes = pd.factorize(values, sort=True)
    except TypeError:  # values of mixed, unorderable types
        labels, classes = pd.factorize(values)
    return labels, np.asarray(classes, dtype=object)


def _skip_reason(row: dict, min_known: int, max_classes: int) -> str | None:
    if row["known"] < min_known:
        return f"not enough known values ({row['known']}, at least {min_known} needed)"
    if row["classes"] > max_classes:
        return f"too many classes ({row['classes']} distinct values, at most {max_classes})"
    if row["classes"] < 2:
        return "every known value is the same"
    return None


def _fit(x: np.ndarray, y: np.ndarray, random_state: int) -> LogisticRegression:
    """The model on two or more classes, C chosen by :func:`_choose_c`."""
    c = _choose_c(x, y, random_state)
    return LogisticRegression(C=c, solver=SOLVER, max_iter=1000).fit(x, y)


def _choose_c(x: np.ndarray, y: np.ndarray, random_state: int) -> float:
    """The C of ``CS`` with the least log loss in a stratified 3-fold cross-validation on ``x``
    alone (inside an outer training fold, so that its test fold stays unseen); the middle one
    when a class has fewer than 3 examples.

    Hand-rolled rather than ``LogisticRegressionCV``: its scorer's checks took half the time.
    """
    counts = np.bincount(y)
    if counts[counts > 0].min() < 3:
        return CS[len(CS) // 2]
    inner = StratifiedKFold(n_splits=3, shuffle=True, random_state=random_state)
    loss = np.zeros(len(CS))
    for train, test in inner.split(x, y):
        model = LogisticRegression(solver=SOLVER, max_iter=1000, warm_start=True)
        for i, c in enumerate(CS):  # strongest penalty first: each fit starts from the last
            model.set_params(C=c).fit(x[train], y[train])
            proba = np.zeros((len(test), len(counts)))
            proba[:, model.classes_] = model.predict_proba(x[test])
            loss[i] -= np.log(np.clip(proba[np.arange(len(test)), y[test]], 1e-15, None)).sum()
    return CS[int(np.argmin(loss))]


def _cross_validate(
    x: np.ndarray, y: np.ndarray, folds: int, random_state: int
) -> tuple[np.ndarray, np.ndarray]:
    """Whether the model and the majority class are right on each known customer, out of fold."""
    n_splits = min(folds, int(np.bincount(y).max()))
    split = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    model_says = np.empty_like(y)
    baseline_says = np.empty_like(y)
    with warnings.catch_warnings():
        # A class rarer than the folds leaves some training folds without it; that is fine.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for train, test in split.split(x, y):
            counts = np.bincount(y[train])
            baseline_says[test] = np.argmax(counts)  # ties: the first class
            if len(np.flatnonzero(counts)) == 1:  # a rare class can leave one class to learn
                model_says[test] = baseline_says[test]
            else:
                model_says[test] = _fit(x[train], y[train], random_state).predict(x[test])
    return model_says == y, baseline_says == y


def _compare(model_right: np.ndarray, baseline_right: np.ndarray, alpha: float) -> dict:
    """Accuracies, lift, the paired test and the verdict."""
    accuracy = float(model_right.mean())
    baseline = float(baseline_right.mean())
    model_only = int((model_right & ~baseline_right).sum())
    baseline_only = int((baseline_right & ~model_right).sum())
    discordant = model_only + baseline_only
    p = binomtest(model_only, discordant, 0.5, alternative="greater").pvalue if discordant else 1.0
    published = accuracy > baseline and p < alpha
    points = 100 * (accuracy - baseline)
    if published:
        reason = f"beats the majority class by {points:.0f} points"
    elif points > 0:
        reason = (
            f"does not beat the majority class significantly ({points:+.0f} points, p = {p:.2f})"
        )
    else:
        reason = f"does not beat the majority class ({points:+.0f} points)"
    return {
        "accuracy": accuracy,
        "baseline_accuracy": baseline,
        "lift": accuracy / baseline if baseline > 0 else np.nan,
        "p_value": float(p),
        "published": bool(published),
        "reason": reason,
    }


def _predict(
    model: LogisticRegression,
    classes: np.ndarray,
    attribute: str,
    customers: pd.Index,
    scores: np.ndarray,
    standing: np.ndarray,
    raw: pd.DataFrame,
) -> pd.DataFrame:
    """The predictions for ``customers`` (their value missing), with confidence and reasons."""
    n = len(customers)
    proba = model.predict_proba(scores)
    best = np.argmax(proba, axis=1)
    # Softmax is unchanged by adding the same vector to every class's coefficients, so a feature
    # pushes towards class k by (w_k - mean of w) x score. Binary: one row w, for class 1.
    w = model.coef_
    if w.shape[0] == 1:
        w = np.vstack([-w[0] / 2, w[0] / 2])
    contributions = (w - w.mean(axis=0))[best] * scores
    return pd.DataFrame(
        {
            "customer_id": customers,
            "attribute": attribute,
            "predicted": classes[model.classes_[best]],
            "confidence": proba[np.arange(n), best],
            "reason": _reasons(contributions, scores, standing, raw),
        }
    )


def _reasons(
    contributions: np.ndarray, scores: np.ndarray, standing: np.ndarray, raw: pd.DataFrame
) -> list[str]:
    """The features pushing hardest towards each prediction, in words, with where the customer
    stands among all customers ("top 4%")."""
    top = np.argsort(-contributions, axis=1)[:, :TOP_REASONS]
    rows = np.arange(len(top))[:, None]
    pushes = contributions[rows, top] > 0
    side = np.where(scores[rows, top] > 0, "top", "bottom")
    share = np.maximum(1, np.round(100 * standing[rows, top]))
    values = raw.to_numpy()[rows, top]
    columns = list(raw.columns)
    out = []
    for i in range(len(top)):  # only the string formatting is per customer
        words = [
            f"{_describe(columns[j], values[i, s])} ({side[i, s]} {share[i, s]:.0f}%)"
            for s, j in enumerate(top[i])
            if pushes[i, s]
        ]
        out.append("predicted from behaviour: " + (", ".join(words) if words else _TYPICAL))
    return out


_TYPICAL = "like the typical customer, for whom this is the most likely value"


def _describe(column: str, value: float) -> str:
    match = _BASKETS_LAST.fullmatch(column)
    if match:
        return f"{value:.0f} baskets in the last {match.group(1)} days"
    if column in _PHRASES:
        return _PHRASES[column].format(value)
    return describe(column, value)
