"""Customer intelligence in one call: every customer's 360 features, RFM segment, cluster,
lifetime value, churn risk, anomaly flag and predicted attributes, with the profiles and the
honest evaluations behind them.

:func:`analyse_customers` reads the warehouse (SQL for the features, frames for the models) as it
stood before ``as_of`` and returns a :class:`CustomerIntelligence`, which the build saves into its
``customers/`` folder and the CLI, the API and the dashboard read back with :meth:`load`.

A part that the data cannot support (too few buyers to cluster, a churn test period with a single
outcome, no repeat purchases for lifetime value) is skipped with its reason in ``skipped``; its
columns are then empty. Anything else that goes wrong fails the whole analysis, and so the build.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tailor.customers.anomalies import detect
from tailor.customers.attributes import predict_attributes
from tailor.customers.churn import Snapshots, data_end, evaluate_churn, fit_churn
from tailor.customers.clv import clv_report
from tailor.customers.features import PurchaseTable
from tailor.customers.segments import RFM_SEGMENTS, cluster_customers, rfm_segment, segment_profiles
from tailor.errors import TailorError
from tailor.privacy.crypto import read_build_file, reading, write_build_file, writing
from tailor.store.warehouse import Warehouse

CHURN_HORIZON_DAYS = 28
CLV_HORIZON_DAYS = 365

# The columns of `tailor customers` in order; the 360 features follow them.
SUMMARY_COLUMNS = [
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_segment",
    "segment_reason",
    "cluster",
    "cluster_description",
    "clv",
    "p_alive",
    "expected_purchases",
    "clv_reason",
    "churn_probability",
    "churn_reason",
    "anomaly_score",
    "anomaly_reason",
]


class NoPurchases(TailorError):
    """The data has no purchases to analyse customers by (e.g. a ratings-only shop)."""


@dataclass
class CustomerIntelligence:
    """Everything :func:`analyse_customers` found.

    Attributes
    ----------
    customers : DataFrame
        One row per customer: :data:`SUMMARY_COLUMNS`, then the 360 features
        (see :mod:`tailor.customers.features`).
    segments : DataFrame
        RFM segment profiles (:func:`tailor.customers.segments.segment_profiles`).
    clusters : DataFrame
        Behavioural cluster profiles (cluster, size, share, revenue_share, description, means).
    anomalies : DataFrame
        What is unusual in the last week of the data, highest score first.
    attribute_predictions, attribute_evaluation : DataFrame
        Predicted missing attributes (published ones only) and the accuracy check of each.
    summary : dict
        as_of, reference day, horizons, CLV parameters and holdout, churn evaluation, cluster
        silhouettes, skipped parts with reasons, seconds per step.
    """

    customers: pd.DataFrame
    segments: pd.DataFrame
    clusters: pd.DataFrame
    anomalies: pd.DataFrame
    attribute_predictions: pd.DataFrame
    attribute_evaluation: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)

    _FRAMES = (
        "customers",
        "segments",
        "clusters",
        "anomalies",
        "attribute_predictions",
        "attribute_evaluation",
    )

    def save(self, folder: Path) -> None:
        """Write each frame as ``<name>.parquet`` and the summary as ``summary.json``."""
        folder.mkdir(parents=True, exist_ok=True)
        for name in self._FRAMES:
            frame = getattr(self, name)
            with writing(folder / f"{name}.parquet") as f:
                _parquet_ready(frame).to_parquet(f, index=False)
        summary = json.dumps(self.summary, indent=2, default=str).encode()
        write_build_file(folder / "summary.json", summary)

    @classmethod
    def load(cls, folder: Path) -> CustomerIntelligence:
        if not (folder / "summary.json").exists():
            raise TailorError("the current build has no customer intelligence; run `tailor build`")
        frames = {n: pd.read_parquet(reading(folder / f"{n}.parquet")) for n in cls._FRAMES}
        summary = json.loads(read_build_file(folder / "summary.json"))
        return cls(**frames, summary=summary)


def analyse_customers(
    wh: Warehouse,
    as_of: pd.Timestamp | None = None,
    churn_horizon_days: int = CHURN_HORIZON_DAYS,
    clv_horizon_days: float = CLV_HORIZON_DAYS,
    progress: Callable[[str, float], None] | None = None,
    random_state: int = 0,
) -> CustomerIntelligence:
    """Analyse every customer as the warehouse stood before ``as_of`` (exclusive bound, see
    :func:`tailor.dataset.as_of_bound`; None = all data)."""
    steps: dict[str, float] = {}
    skipped: dict[str, str] = {}
    summary: dict[str, Any] = {
        "as_of": None if as_of is None else as_of.isoformat(),
        "churn_horizon_days": churn_horizon_days,
        "clv_horizon_days": clv_horizon_days,
        "steps": steps,
        "skipped": skipped,
    }
    parts = ["features", "segments", "lifetime value", "churn", "anomalies", "attributes"]

    def step(name: str) -> _Timer:
        if progress:
            progress("customer intelligence", parts.index(name) / len(parts))
        return _Timer(steps, name)

    bought = wh.con.execute(
        "SELECT count(*) FROM events WHERE event_type = 'purchase'"
        + ("" if as_of is None else " AND timestamp < $bound"),
        {} if as_of is None else {"bound": as_of.to_pydatetime()},
    ).fetchone()[0]
    if not bought:
        raise NoPurchases("customer intelligence: no purchases before as_of")
    end = data_end(wh, as_of)
    with Snapshots(wh, churn_horizon_days, end) as snapshots:
        with step("features"):
            features = snapshots.features(end)
        table = features.table
        summary["reference_day"] = features.reference_day.date().isoformat()
        summary["customers"] = len(table)
        summary["buyers"] = len(features.buyers)
        if features.buyers.empty:
            raise NoPurchases("customer intelligence: no purchases before as_of")
        out = table[["recency_days", "frequency", "monetary", "r_score", "f_score", "m_score"]]
        out = out.copy()

        with step("segments"):
            out["rfm_segment"] = rfm_segment(table["r_score"], table["f_score"], table["m_score"])
            out["segment_reason"] = _segment_reasons(out)
            segments = segment_profiles(features, out["rfm_segment"])
            clustering = cluster_customers(features, random_state=random_state)
            out["cluster"] = clustering.labels.astype("int64")
            words = dict(
                zip(clustering.profiles["cluster"], clustering.profiles["description"], strict=True)
            )
            described = out["cluster"].map(words).astype(object)
            out["cluster_description"] = described.where(described.notna(), "")
            summary["clusters"] = {
                "k": clustering.k,
                "silhouette": {str(k): round(v, 4) for k, v in clustering.silhouette.items()},
            }
            if clustering.k == 0:
                skipped["clusters"] = "too few buyers to cluster"

        with step("lifetime value"):
            purchases = snapshots.purchases(end)
            clv_columns = ["clv", "p_alive", "expected_purchases", "clv_reason"]
            try:
                clv = clv_report(purchases, as_of=end, horizon_days=clv_horizon_days)
            except TailorError as exc:
                skipped["lifetime value"] = str(exc)
                out[clv_columns] = np.nan
            else:
                found = clv.customers.set_index("customer_id")[clv_columns]
                out = out.join(found, how="left")
                out["clv_reason"] = out["clv_reason"].fillna("has not bought yet")
                summary["clv"] = {
                    "parameters": clv.parameters,
                    "penalizer": clv.penalizer,
                    "holdout": clv.holdout,
                }

        with step("churn"):
            try:
                evaluation = evaluate_churn(snapshots, end, random_state=random_state)
                model = fit_churn(snapshots, end, random_state=random_state)
            except TailorError as exc:
                skipped["churn"] = str(exc)
                out["churn_probability"] = np.nan
                out["churn_reason"] = ""
            else:
                scored = model.predict(snapshots.inputs(end), table.index)
                out = out.join(scored, how="left")
                summary["churn"] = evaluation.as_dict()
                summary["churn"]["model_cutoffs"] = [c.isoformat() for c in model.cutoffs]

    with step("anomalies"):
        # Weeks are compared whole: a week the data ends inside is left out, else its few days
        # would be set against full weeks.
        week_end = end.normalize() - pd.Timedelta(days=end.normalize().day_of_week)
        events = wh.con.execute(_EVENTS_SQL, {"bound": week_end.to_pydatetime()}).df()
        found = detect(events, as_of=week_end)
        anomaly = found.customers.set_index("customer_id")
        out = out.join(anomaly[["anomaly_score", "anomaly_reason"]], how="left")
        out["anomaly_score"] = out["anomaly_score"].fillna(0.0)
        out["anomaly_reason"] = out["anomaly_reason"].fillna("no events")
        summary["anomalies"] = {
            "last_week": str(found.last_week.date()) if found.last_week is not None else None,
            "flags": len(found.flags),
            "threshold": found.threshold,
        }

    with step("attributes"):
        attributes = wh.con.execute(
            "SELECT * EXCLUDE (ingest_id) FROM customers ORDER BY customer_id"
        ).df()
        try:
            predicted = predict_attributes(table, attributes.set_index("customer_id"))
        except TailorError as exc:
            skipped["attributes"] = str(exc)
            predicted = None
    if progress:
        progress("customer intelligence", 1.0)

    customers = out.join(table.drop(columns=out.columns, errors="ignore"))
    customers = customers.rename_axis("customer_id").reset_index()
    return CustomerIntelligence(
        customers=customers[
            [*SUMMARY_COLUMNS, *[c for c in customers if c not in SUMMARY_COLUMNS]]
        ],
        segments=segments,
        clusters=clustering.profiles,
        anomalies=found.flags,
        attribute_predictions=pd.DataFrame() if predicted is None else predicted.predictions,
        attribute_evaluation=pd.DataFrame() if predicted is None else predicted.evaluation,
        summary=summary,
    )


def purchase_values(wh: Warehouse, bound: pd.Timestamp | None = None) -> pd.DataFrame:
    """customer_id, timestamp, value of every purchase before ``bound`` (all when None); the
    value is quantity x catalogue price where a file gave none."""
    with PurchaseTable(wh, bound) as table:
        return table.purchases()


# Anomalies count purchase lines rather than units: some shops record fuel in litres or other
# measures, and one fill-up would read as hundreds of items.
_EVENTS_SQL = """
SELECT customer_id, timestamp, CAST(event_type AS VARCHAR) AS event_type,
       CAST(1.0 AS DOUBLE) AS quantity, CAST(value AS DOUBLE) AS value,
       CAST(dense_rank() OVER (ORDER BY customer_id, basket_id,
           CASE WHEN basket_id IS NULL THEN timestamp END) AS BIGINT) AS basket
FROM events WHERE timestamp < $bound
"""


def _segment_reasons(out: pd.DataFrame) -> list[str]:
    """ "Champions (R5 F5 M4): last bought 2 days ago, 120 baskets, 5,400 spent; bought
    recently, buy often and spend the most"."""
    reasons = []
    rows = zip(
        out["rfm_segment"],
        out["r_score"],
        out["f_score"],
        out["m_score"],
        out["recency_days"],
        out["frequency"],
        out["monetary"],
        strict=True,
    )
    for segment, r, f, m, recency, frequency, monetary in rows:  # string formatting only
        meaning = RFM_SEGMENTS[segment][0]
        if r == 0:
            reasons.append(f"{segment}: {meaning}")
            continue
        reasons.append(
            f"{segment} (R{r} F{f} M{m}): last bought {recency:.0f} days ago, "
            f"{frequency:,} baskets, {monetary:,.0f} spent; {meaning}"
        )
    return reasons


class _Timer:
    def __init__(self, steps: dict[str, float], name: str):
        self.steps, self.name = steps, name

    def __enter__(self) -> _Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.steps[self.name] = round(time.perf_counter() - self.started, 3)


def _parquet_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns mixing types (ids, attribute values) as text, so Parquet can store them."""
    frame = frame.copy()
    for column in frame.columns:
        if frame[column].dtype == object:
            kinds = {type(v) for v in frame[column].dropna()}
            if len(kinds) > 1:
                frame[column] = frame[column].map(lambda v: v if pd.isna(v) else str(v))
    return frame
