"""Churn: the probability that a customer buys nothing in the next ``horizon_days``.

Label and features are taken at cut-offs: the features from what the warehouse held before a
cut-off, the label from the ``horizon_days`` after it (1 = no purchase). Every customer who had
bought before a cut-off is one example at it. Training stacks several cut-offs ``step_days``
apart (more examples, and seasons of churn instead of one), and the model is LightGBM with
isotonic calibration, so that a probability of 0.3 means about 3 in 10 such customers leave.

The honest evaluation (:func:`evaluate_churn`) keeps the last ``horizon_days`` of the data as the
test period: it trains on cut-offs whose labels end before it, scores the customers at the test
cut-off, and puts single-feature baselines (recency alone, frequency alone, spend alone, each a
logistic regression trained on the same examples) beside the model, with the AUC of every
feature used alone. The published model (:func:`fit_churn`) is then refitted on cut-offs up to
the last one whose labels the data holds, and scores every buyer at the data's end.

Reasons are LightGBM's feature contributions (TreeSHAP) of an uncalibrated twin of the model: the
two features that push a customer's score furthest towards the predicted outcome, in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tailor.customers.features import CustomerFeatures, PurchaseTable, reference_day
from tailor.errors import TailorError
from tailor.store.warehouse import Warehouse

CHURN_HIGH = 0.5
"""A churn probability from which a customer is at risk: act now."""
CHURN_WATCH = 0.3
"""A churn probability from which a customer is worth watching."""

BASELINES = {
    "recency only": "recency_days",
    "frequency only": "frequency",
    "spend only": "monetary",
}
# Not model inputs: rank transforms of columns the model has, and what a customer buys and where
# (category mix, stores, channels, deal use, basket make-up) rather than whether they come back.
# On The Complete Journey these added noise: AUC 0.8823 without them, 0.8804 with them.
_EXCLUDED = {
    "r_score", "f_score", "m_score",
    "stores", "top_store_share", "channels", "top_channel_share",
    "discount_line_share", "discount_value_share", "coupon_rate",
    "avg_basket_items", "avg_basket_lines",
}  # fmt: skip
_EXCLUDED_PREFIXES = ("share_",)

LGBM_PARAMS = {
    "n_estimators": 300,
    "learning_rate": 0.03,
    "num_leaves": 15,
    "min_child_samples": 40,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "reg_lambda": 1.0,
    "verbose": -1,
    "n_jobs": 1,
}


class Snapshots(PurchaseTable):
    """Features and labels at cut-offs before ``end``, each computed once (cut-offs are shared
    between the evaluation and the published model). A context manager, as its base."""

    def __init__(
        self,
        wh: Warehouse,
        horizon_days: int,
        end: pd.Timestamp | None = None,
        departments: list[str] | None = None,
    ):
        super().__init__(wh, end)
        self.horizon = pd.Timedelta(days=horizon_days)
        self.departments = departments
        self._features: dict[pd.Timestamp, CustomerFeatures] = {}

    def features(self, cutoff: pd.Timestamp | None = None, departments=None) -> CustomerFeatures:
        if cutoff not in self._features:
            found = super().features(cutoff, departments or self.departments)
            if self.departments is None:
                self.departments = list(found.departments.values())
            self._features[cutoff] = found
        return self._features[cutoff]

    def inputs(self, cutoff: pd.Timestamp | None = None) -> pd.DataFrame:
        """Model inputs of the buyers before ``cutoff``: their features, how overdue they are,
        and how often a gap of theirs that lasted as long as the current one went on for the
        whole horizon."""
        features = self.features(cutoff)
        ref = features.reference_day
        end = cutoff if cutoff is not None else ref + pd.Timedelta(days=1)
        hazard = self.wh.con.execute(
            _GAP_SQL, {"ref": ref.date(), "bound": end.to_pydatetime(), "h": self.horizon.days}
        ).df()
        x = model_inputs(features)
        return x.join(hazard.set_index("customer_id"), how="left")

    def examples(self, cutoff: pd.Timestamp) -> tuple[pd.DataFrame, np.ndarray]:
        """(model inputs of the buyers before ``cutoff``, 1 where they then bought nothing)."""
        x = self.inputs(cutoff)
        came_back = self.buyers_between(cutoff, cutoff + self.horizon)
        return x, (~x.index.isin(came_back)).astype(int)

    def stack(self, cutoffs: list[pd.Timestamp]) -> tuple[pd.DataFrame, np.ndarray]:
        parts = [self.examples(c) for c in cutoffs]
        return pd.concat([x for x, _ in parts]), np.concatenate([y for _, y in parts])


# Timing features of the churn model, per customer before the cut-off:
# * gap_outlasts_horizon: of the customer's past gaps between purchase days that lasted at least
#   as long as the current one (days since the last purchase), the share that went on for ``h``
#   days more: their own empirical chance of the absence the label asks about;
# * long_gap_share: the share of their gaps longer than ``h``;
# * decayed_days_<n>: purchase days counted with weight exp(-age in days / n);
# * active_weeks_of_last_8, longest_gap_last_91d.
_GAP_SQL = """
WITH days AS (
    SELECT DISTINCT customer_id, day FROM __purchases
    WHERE event_type = 'purchase' AND timestamp < $bound
), gaps AS (
    SELECT customer_id, day - lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap,
        $ref - max(day) OVER (PARTITION BY customer_id) AS current_gap, day
    FROM days
)
SELECT customer_id,
    count(*) FILTER (WHERE gap > current_gap + $h)
        / nullif(count(*) FILTER (WHERE gap > current_gap), 0) AS gap_outlasts_horizon,
    count(*) FILTER (WHERE gap > $h) / nullif(count(gap), 0) AS long_gap_share,
    sum(exp(-($ref - day) / 7.0)) AS decayed_days_7,
    sum(exp(-($ref - day) / 14.0)) AS decayed_days_14,
    sum(exp(-($ref - day) / 28.0)) AS decayed_days_28,
    sum(exp(-($ref - day) / 56.0)) AS decayed_days_56,
    sum(exp(-($ref - day) / 112.0)) AS decayed_days_112,
    count(DISTINCT ($ref - day) // 7) FILTER (WHERE $ref - day < 56) AS active_weeks_of_last_8,
    max(gap) FILTER (WHERE $ref - day < 91) AS longest_gap_last_91d
FROM gaps GROUP BY customer_id
"""


def model_inputs(features: CustomerFeatures) -> pd.DataFrame:
    """The buyers' feature rows the model reads, with the ratio of days since the last purchase
    to the customer's usual gap (how overdue they are)."""
    dropped = [c for c in features.table if c in _EXCLUDED or c.startswith(_EXCLUDED_PREFIXES)]
    x = features.buyers.drop(columns=dropped)
    return x.assign(overdue_ratio=x["recency_days"] / x["interpurchase_days"])


@dataclass
class ChurnModel:
    """A fitted churn model: calibrated probabilities and the reasons behind them.

    Attributes
    ----------
    horizon_days : int
    columns : list of str
        The model inputs, in order.
    calibrated : CalibratedClassifierCV
    explainer : LGBMClassifier
        Same settings, fitted on all training examples; its contributions give the reasons.
    cutoffs : list of Timestamp
        The training cut-offs.
    """

    horizon_days: int
    columns: list[str]
    calibrated: CalibratedClassifierCV
    explainer: lgb.LGBMClassifier
    cutoffs: list[pd.Timestamp] = field(default_factory=list)

    def predict(self, features: pd.DataFrame, customers: pd.Index) -> pd.DataFrame:
        """churn_probability and churn_reason per customer of ``customers``, from the model
        inputs of the buyers among them (:meth:`Snapshots.inputs`).

        Customers who never bought have no probability (NaN) and say so.
        """
        x = features[self.columns]
        out = pd.DataFrame(index=customers)
        out["churn_probability"] = np.nan
        out["churn_reason"] = "has not bought yet"
        if len(x):
            p = self.calibrated.predict_proba(x)[:, 1]
            out.loc[x.index, "churn_probability"] = p
            out.loc[x.index, "churn_reason"] = self.reasons(x, p)
        return out

    def reasons(self, x: pd.DataFrame, p: np.ndarray) -> list[str]:
        """The two strongest contributions towards each customer's predicted outcome, in words."""
        contrib = self.explainer.predict(x, pred_contrib=True)[:, :-1]  # last column: bias
        leaving = p >= 0.5
        signed = np.where(leaving[:, None], contrib, -contrib)
        top = np.argsort(-signed, axis=1)[:, :2]
        values = x.to_numpy(dtype=float)
        lead = np.where(leaving, "likely to leave: ", "likely to come back: ")
        out = []
        for i in range(len(x)):  # only the string formatting is per customer
            words = [describe(self.columns[j], values[i, j]) for j in top[i] if signed[i, j] > 0]
            out.append(lead[i] + ("; ".join(words) if words else "close to the average buyer"))
        return out


_PHRASES = {
    "recency_days": "last purchase {:.0f} days ago",
    "frequency": "{:.0f} baskets so far",
    "monetary": "{:,.0f} spent so far",
    "tenure_days": "a customer for {:.0f} days",
    "purchase_days": "bought on {:.0f} days",
    "interpurchase_days": "usually buys every {:.1f} days",
    "interpurchase_cv": "visit regularity {:.2f} (0 = like clockwork)",
    "avg_basket_value": "{:,.2f} per basket",
    "spend_last_28d": "{:,.0f} spent in the last 4 weeks",
    "spend_trend": "last 4 weeks' spend at {:.0%} of their usual",
    "overdue_ratio": "{:.1f}x their usual gap since the last purchase",
    "gap_outlasts_horizon": "{:.0%} of their past absences this long went on for the horizon",
    "long_gap_share": "{:.0%} of their gaps between purchases were longer than the horizon",
    "discount_line_share": "{:.0%} of lines bought on discount",
    "coupon_rate": "{:.2f} coupons per basket",
    "returns_rate": "returned {:.0%} of what they bought",
    "top_store_share": "{:.0%} of trips at one store",
    "last_gap_days": "{:.0f} days between their last two purchase days",
    "active_week_share": "bought in {:.0%} of weeks since their first purchase",
    "active_4week_share": "bought in {:.0%} of 4-week periods since their first purchase",
    "active_weeks_of_last_8": "bought in {:.0f} of the last 8 weeks",
    "longest_gap_last_91d": "longest gap in the last 3 months {:.0f} days",
    "campaigns_received": "reached by {:.0f} campaigns",
    "campaigns_running": "in {:.0f} running campaigns",
    "stores": "shops at {:.0f} stores",
}
for _days in (7, 14, 28, 56, 91):
    _PHRASES[f"baskets_last_{_days}d"] = f"{{:.0f}} baskets in the last {_days} days"
for _days in (7, 14, 28, 56, 112):
    # An exponentially decayed count of purchase days: each day counts exp(-age / days).
    _PHRASES[f"decayed_days_{_days}"] = (
        f"activity lately: {{:.1f}} purchase days, weighted to the last {_days} days"
    )


_MISSING = {
    "gap_outlasts_horizon": "never away this long before",
    "interpurchase_days": "a single purchase day so far",
    "interpurchase_cv": "a single purchase day so far",
    "last_gap_days": "a single purchase day so far",
    "overdue_ratio": "a single purchase day so far",
    "spend_trend": "under 8 weeks of history",
}


def describe(column: str, value: float) -> str:
    """A feature's value in words."""
    if np.isnan(value):
        return _MISSING.get(column, f"no {column.replace('_', ' ')} yet")
    if column.startswith("share_"):
        return f"{value:.0%} of spend on {column[6:].replace('_', ' ')}"
    return _PHRASES.get(column, column.replace("_", " ") + " {:.3g}").format(value)


def fit_model(
    x: pd.DataFrame, y: np.ndarray, horizon_days: int, random_state: int = 0
) -> ChurnModel:
    """LightGBM with isotonic calibration (3 folds), and its uncalibrated twin for reasons."""
    if len(np.unique(y)) < 2:
        raise TailorError("churn: every training example has the same label; need more history")
    params = {**LGBM_PARAMS, "random_state": random_state}
    calibrated = CalibratedClassifierCV(lgb.LGBMClassifier(**params), method="isotonic", cv=3)
    calibrated.fit(x, y)
    explainer = lgb.LGBMClassifier(**params).fit(x, y)
    return ChurnModel(horizon_days, list(x.columns), calibrated, explainer)


def cutoffs_before(end: pd.Timestamp, n: int, step_days: int) -> list[pd.Timestamp]:
    """``n`` cut-offs ``step_days`` apart, the last at ``end``, oldest first."""
    return [end - pd.Timedelta(days=step_days * k) for k in range(n - 1, -1, -1)]


def data_end(wh: Warehouse, bound: pd.Timestamp | None) -> pd.Timestamp:
    """The exclusive end of the data: ``bound``, or midnight after the last event's day."""
    if bound is not None:
        return bound
    last = reference_day(wh, None)
    if last is None:
        raise TailorError("churn: the warehouse has no events")
    return last + pd.Timedelta(days=1)


@dataclass(frozen=True)
class ChurnEvaluation:
    """Metrics of the model and the baselines on the test cut-off."""

    horizon_days: int
    test_cutoff: pd.Timestamp
    train_cutoffs: list[pd.Timestamp]
    n_train: int
    n_test: int
    churn_rate: float
    metrics: pd.DataFrame  # rows: model, baselines; columns: auc, precision, recall, f1
    single_feature_auc: pd.Series  # each input alone, oriented the better way

    def as_dict(self) -> dict:
        return {
            "horizon_days": self.horizon_days,
            "test_cutoff": self.test_cutoff.isoformat(),
            "train_cutoffs": [c.isoformat() for c in self.train_cutoffs],
            "n_train": self.n_train,
            "n_test": self.n_test,
            "churn_rate": self.churn_rate,
            "metrics": self.metrics.reset_index().to_dict(orient="records"),
            "single_feature_auc": self.single_feature_auc.round(4).to_dict(),
        }


def evaluate_churn(
    snapshots: Snapshots,
    end: pd.Timestamp,
    n_cutoffs: int = 8,
    step_days: int = 14,
    random_state: int = 0,
) -> ChurnEvaluation:
    """Train on cut-offs whose labels end before the last ``horizon`` of the data, test there."""
    horizon = snapshots.horizon
    test_cutoff = end - horizon
    train_cutoffs = cutoffs_before(test_cutoff - horizon, n_cutoffs, step_days)
    x, y = snapshots.stack(train_cutoffs)
    x_test, y_test = snapshots.examples(test_cutoff)
    x_test = x_test[x.columns]
    if len(np.unique(y_test)) < 2:
        raise TailorError("churn: the test period has a single outcome; cannot evaluate")
    model = fit_model(x, y, horizon.days, random_state)
    rows = {"model": _scores(y_test, model.calibrated.predict_proba(x_test[model.columns])[:, 1])}
    for name, column in BASELINES.items():
        baseline = make_pipeline(StandardScaler(), LogisticRegression())
        baseline.fit(x[[column]].fillna(0.0), y)
        rows[name] = _scores(y_test, baseline.predict_proba(x_test[[column]].fillna(0.0))[:, 1])
    single = {}
    for column in x_test.columns:
        values = x_test[column].fillna(x_test[column].median())
        if values.nunique() > 1:
            auc = roc_auc_score(y_test, values)
            single[column] = max(auc, 1 - auc)
    return ChurnEvaluation(
        horizon_days=horizon.days,
        test_cutoff=test_cutoff,
        train_cutoffs=train_cutoffs,
        n_train=len(x),
        n_test=len(x_test),
        churn_rate=float(y_test.mean()),
        metrics=pd.DataFrame(rows).T.rename_axis("model"),
        single_feature_auc=pd.Series(single).sort_values(ascending=False),
    )


def _scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    predicted = p >= 0.5
    return {
        "auc": float(roc_auc_score(y, p)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
    }


def fit_churn(
    snapshots: Snapshots,
    end: pd.Timestamp,
    n_cutoffs: int = 8,
    step_days: int = 14,
    random_state: int = 0,
) -> ChurnModel:
    """The published model: trained on the ``n_cutoffs`` latest cut-offs whose labels the data
    holds (the last one ``horizon`` before ``end``)."""
    cutoffs = cutoffs_before(end - snapshots.horizon, n_cutoffs, step_days)
    x, y = snapshots.stack(cutoffs)
    model = fit_model(x, y, snapshots.horizon.days, random_state)
    model.cutoffs = cutoffs
    return model
