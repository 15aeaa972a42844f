"""Churn: labels and gap features worked by hand on a tiny shop, and on a generated shop where
half the customers stop buying, a model that finds them (with labels and counts checked against
pandas), calibrated probabilities and reasons in words."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tailor.customers.churn import (
    BASELINES,
    Snapshots,
    cutoffs_before,
    data_end,
    describe,
    evaluate_churn,
    fit_churn,
    fit_model,
)
from tailor.errors import TailorError
from tailor.store import Warehouse

ITEMS = pd.DataFrame({"item_id": [1, 2, 3, 4, 5], "price": [2.0, 3.0, 5.0, 8.0, 13.0]})

# -- describe and cut-offs -------------------------------------------------------------------------


def test_describe_phrases():
    assert describe("recency_days", 12.0) == "last purchase 12 days ago"
    assert describe("monetary", 1234.4) == "1,234 spent so far"
    assert describe("interpurchase_days", 6.25) == "usually buys every 6.2 days"
    assert describe("spend_trend", 0.5) == "last 4 weeks' spend at 50% of their usual"
    assert describe("overdue_ratio", 3.04) == "3.0x their usual gap since the last purchase"
    assert describe("gap_outlasts_horizon", 0.25) == (
        "25% of their past absences this long went on for the horizon"
    )
    assert describe("share_pet_food", 0.25) == "25% of spend on pet food"
    assert describe("interpurchase_days", np.nan) == "a single purchase day so far"
    assert describe("views", np.nan) == "no views yet"
    assert describe("made_up_feature", 1.23456) == "made up feature 1.23"  # no phrase of its own


def test_cutoffs_before():
    end = pd.Timestamp("2024-03-01")
    assert cutoffs_before(end, 3, 14) == [
        pd.Timestamp("2024-02-02"),
        pd.Timestamp("2024-02-16"),
        end,
    ]
    assert cutoffs_before(end, 1, 7) == [end]
    assert cutoffs_before(end, 0, 7) == []


def test_fit_model_needs_both_outcomes():
    x = pd.DataFrame({"recency_days": [1.0, 2.0, 3.0]})
    with pytest.raises(TailorError, match="same label"):
        fit_model(x, np.zeros(3, dtype=int), horizon_days=28)


# -- a tiny shop: labels and gap features by hand --------------------------------------------------

CUTOFF = pd.Timestamp("2024-01-15")  # reference day Jan 14; horizon 7 days: Jan 15 - Jan 21
REF = pd.Timestamp("2024-01-14")
GAPPY_DAYS_BACK = [227, 120, 44, 24, 12, 9, 3, 2]  # customer 7: gaps 107, 76, 20, 12, 3, 6, 1


def tiny_events() -> pd.DataFrame:
    rows = [
        (1, "purchase", "2024-01-10 10:00"),
        (1, "purchase", "2024-01-18 10:00"),  # back within the horizon: 0
        (2, "purchase", "2024-01-05 10:00"),
        (2, "purchase", "2024-01-25 10:00"),  # back after it: 1
        (3, "purchase", "2024-01-16 10:00"),  # first bought after the cut-off: no example
        (4, "purchase", "2024-01-12 10:00"),
        (4, "return", "2024-01-16 10:00"),  # a return and a view are not a purchase: 1
        (4, "view", "2024-01-17 10:00"),
        (5, "purchase", "2024-01-14 23:00"),
        (5, "purchase", "2024-01-22 00:00"),  # the horizon's end is exclusive: 1
        (6, "purchase", "2024-01-03 10:00"),
        (6, "purchase", "2024-01-15 00:00"),  # the cut-off itself is inside: 0
        *((7, "purchase", f"{REF - pd.Timedelta(days=d):%Y-%m-%d} 00:00") for d in GAPPY_DAYS_BACK),
        (7, "purchase", "2024-01-20 10:00"),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "event_type", "timestamp"])
    return frame.assign(
        timestamp=pd.to_datetime(frame["timestamp"]),
        item_id=1,
        quantity=1.0,
        value=10.0,
        basket_id=np.arange(len(frame)),
    )


@pytest.fixture(scope="module")
def tiny(make_warehouse) -> Warehouse:
    customers = pd.DataFrame({"customer_id": [1, 2, 3, 4, 5, 6, 7, 8]})
    return make_warehouse(items=ITEMS, customers=customers, events=tiny_events())


def test_data_end(tiny: Warehouse, make_warehouse):
    assert data_end(tiny, None) == pd.Timestamp("2024-01-26")
    assert data_end(tiny, CUTOFF) == CUTOFF
    with pytest.raises(TailorError, match="no events"):
        data_end(make_warehouse(items=ITEMS), None)


def test_examples_by_hand(tiny: Warehouse):
    with Snapshots(tiny, 7, data_end(tiny, None)) as snapshots:
        x, y = snapshots.examples(CUTOFF)
    assert list(x.index) == [1, 2, 4, 5, 6, 7]
    assert list(y) == [0, 1, 1, 1, 0, 0]
    assert list(x["recency_days"]) == [4.0, 9.0, 2.0, 0.0, 11.0, 2.0]
    for column in ["r_score", "f_score", "m_score"]:
        assert column not in x


def test_stacked_examples(tiny: Warehouse):
    with Snapshots(tiny, 7, data_end(tiny, None)) as snapshots:
        x, y = snapshots.stack([pd.Timestamp("2024-01-08"), CUTOFF])
    # Jan 8 (horizon Jan 8 - 14): 2, 6 and 7 had bought; 7 came back on Jan 11, 2 and 6 not.
    assert list(x.index) == [2, 6, 7, 1, 2, 4, 5, 6, 7]
    assert list(y) == [1, 1, 0, 0, 1, 1, 1, 0, 0]


def test_gap_features_by_hand(tiny: Warehouse):
    with Snapshots(tiny, 7, data_end(tiny, None)) as snapshots:
        x = snapshots.inputs(CUTOFF)
    seven = x.loc[7]
    gaps = np.array([107, 76, 20, 12, 3, 6, 1])
    # Current gap 2 days: of the 6 past gaps over 2 days, 4 went on over 2 + 7 days.
    assert seven.gap_outlasts_horizon == pytest.approx(4 / 6)
    assert seven.long_gap_share == pytest.approx(4 / 7)  # gaps over the 7-day horizon
    back = np.array(GAPPY_DAYS_BACK, dtype=float)
    for tau in (7, 14, 28, 56, 112):
        assert seven[f"decayed_days_{tau}"] == pytest.approx(np.exp(-back / tau).sum())
    # Purchase days 44, 24, 12, 9, 3, 2 days back fall in weeks 6, 3, 1, 1, 0, 0.
    assert seven.active_weeks_of_last_8 == 4
    # The gap of 107 days ended 120 days back: outside the last 91 days.
    assert seven.longest_gap_last_91d == 76
    assert seven.overdue_ratio == pytest.approx(2 / gaps.mean())
    assert seven.interpurchase_days == pytest.approx(gaps.mean())
    # One purchase day: no gaps, so no share of them.
    one = x.loc[1]
    assert pd.isna(one.gap_outlasts_horizon) and pd.isna(one.long_gap_share)
    assert pd.isna(one.overdue_ratio) and pd.isna(one.longest_gap_last_91d)
    assert one.decayed_days_7 == pytest.approx(np.exp(-4 / 7))
    assert one.active_weeks_of_last_8 == 1


def test_gap_that_no_past_gap_reached(make_warehouse):
    # Purchases 15 and 10 days before the reference day: a past gap of 5, now 10 days away.
    days = pd.to_datetime(["2023-12-30 09:00", "2024-01-04 09:00"])
    events = pd.DataFrame({"customer_id": [1, 1], "item_id": [1, 1], "timestamp": days})
    wh = make_warehouse(items=ITEMS, events=events)
    with Snapshots(wh, 7, CUTOFF) as snapshots:
        row = snapshots.inputs(CUTOFF).loc[1]
    assert pd.isna(row.gap_outlasts_horizon)
    assert row.long_gap_share == 0.0
    assert row.recency_days == 10.0
    assert row.overdue_ratio == pytest.approx(10 / 5)


# -- a generated shop where half the customers stop ------------------------------------------------

START = pd.Timestamp("2023-01-02")
DAYS = 280
N_CUSTOMERS = 400
HORIZON = 28
NEVER_BOUGHT = [5001, 5002, 5003]


def stopping_shop(seed: int = 7) -> pd.DataFrame:
    """Purchases of customers who shop every 5-10 days (+- 1 day); half of them, drawn at random,
    stop for good on a random day (some after the data ends)."""
    rng = np.random.default_rng(seed)
    n = N_CUSTOMERS
    cycle = rng.integers(5, 11, n)
    first = rng.integers(0, 10, n)
    churner = rng.permutation(n) < n // 2
    stop = np.where(churner, rng.integers(40, DAYS + 60, n), DAYS)
    trips = np.arange(DAYS // 5 + 1)
    day = first[:, None] + trips[None, :] * cycle[:, None] + rng.integers(-1, 2, (n, len(trips)))
    keep = (day >= 0) & (day < np.minimum(stop, DAYS)[:, None])
    customer = np.broadcast_to(np.arange(1, n + 1)[:, None], day.shape)[keep]
    day = day[keep]
    m = len(day)
    timestamp = (
        START
        + pd.to_timedelta(day, unit="D")
        + pd.to_timedelta(rng.integers(8 * 60, 20 * 60, m), unit="min")
    )
    return pd.DataFrame(
        {
            "customer_id": customer,
            "item_id": rng.integers(1, 6, m),
            "timestamp": timestamp,
            "quantity": rng.integers(1, 4, m).astype(float),
            "value": rng.lognormal(3.3, 0.4, m).round(2),
            "basket_id": np.arange(m),
        }
    ).sort_values("timestamp", ignore_index=True)


@pytest.fixture(scope="module")
def stopping_events() -> pd.DataFrame:
    return stopping_shop()


@pytest.fixture(scope="module")
def stopping(make_warehouse, stopping_events: pd.DataFrame):
    customers = pd.DataFrame({"customer_id": [*range(1, N_CUSTOMERS + 1), *NEVER_BOUGHT]})
    wh = make_warehouse(fmt="parquet", items=ITEMS, customers=customers, events=stopping_events)
    end = data_end(wh, None)
    with Snapshots(wh, HORIZON, end) as snapshots:
        evaluation = evaluate_churn(snapshots, end)
        model = fit_churn(snapshots, end)
        features = snapshots.features(end)
        scored = model.predict(snapshots.inputs(end), features.table.index)
    return {
        "wh": wh,
        "end": end,
        "evaluation": evaluation,
        "model": model,
        "features": features,
        "scored": scored,
    }


def pandas_labels(events: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """1 where a customer who bought before ``cutoff`` bought nothing in the horizon after it."""
    before = set(events.loc[events["timestamp"] < cutoff, "customer_id"])
    inside = events["timestamp"].between(cutoff, cutoff + pd.Timedelta(days=HORIZON), "left")
    came_back = set(events.loc[inside, "customer_id"])
    return pd.Series({c: int(c not in came_back) for c in sorted(before)})


def test_generated_shop_end(stopping, stopping_events: pd.DataFrame):
    last = stopping_events["timestamp"].max().normalize()
    assert stopping["end"] == last + pd.Timedelta(days=1)


def test_evaluation_cutoffs_and_counts(stopping, stopping_events: pd.DataFrame):
    evaluation = stopping["evaluation"]
    end = stopping["end"]
    horizon = pd.Timedelta(days=HORIZON)
    assert evaluation.horizon_days == HORIZON
    assert evaluation.test_cutoff == end - horizon
    assert evaluation.train_cutoffs == cutoffs_before(end - 2 * horizon, 8, 14)
    # Every training label ends before the test period starts.
    assert max(evaluation.train_cutoffs) + horizon <= evaluation.test_cutoff
    # Examples and churn rate against labels taken with pandas.
    test = pandas_labels(stopping_events, evaluation.test_cutoff)
    assert evaluation.n_test == len(test)
    assert evaluation.churn_rate == pytest.approx(test.mean())
    assert 0.2 < evaluation.churn_rate < 0.6
    n_train = sum(len(pandas_labels(stopping_events, c)) for c in evaluation.train_cutoffs)
    assert evaluation.n_train == n_train


def test_labels_match_pandas(stopping, stopping_events: pd.DataFrame):
    evaluation = stopping["evaluation"]
    with Snapshots(stopping["wh"], HORIZON, stopping["end"]) as snapshots:
        for cutoff in [*evaluation.train_cutoffs[::3], evaluation.test_cutoff]:
            x, y = snapshots.examples(cutoff)
            expected = pandas_labels(stopping_events, cutoff)
            assert list(x.index) == list(expected.index), cutoff
            np.testing.assert_array_equal(y, expected.to_numpy(), err_msg=str(cutoff))


def test_model_finds_the_churners(stopping):
    metrics = stopping["evaluation"].metrics
    assert list(metrics.index) == ["model", *BASELINES]
    assert list(metrics.columns) == ["auc", "precision", "recall", "f1"]
    assert ((metrics >= 0) & (metrics <= 1)).all().all()
    assert metrics.loc["model", "auc"] >= 0.8
    assert metrics.loc["model", "f1"] > 0.5
    # Recency alone knows the long-gone: far better than chance too.
    assert metrics.loc["recency only", "auc"] >= 0.7


def test_single_feature_auc(stopping):
    single = stopping["evaluation"].single_feature_auc
    assert ((single >= 0.5) & (single <= 1.0)).all()
    assert single.is_monotonic_decreasing
    assert single["recency_days"] >= 0.7
    assert "r_score" not in single and "overdue_ratio" in single


def test_evaluation_as_dict(stopping):
    evaluation = stopping["evaluation"]
    found = json.loads(json.dumps(evaluation.as_dict()))
    assert found["n_test"] == evaluation.n_test
    assert found["test_cutoff"] == evaluation.test_cutoff.isoformat()
    assert [row["model"] for row in found["metrics"]] == ["model", *BASELINES]
    assert found["metrics"][0]["auc"] == evaluation.metrics.loc["model", "auc"]


def test_published_model_cutoffs(stopping):
    model = stopping["model"]
    end = stopping["end"]
    assert model.horizon_days == HORIZON
    assert model.cutoffs == cutoffs_before(end - pd.Timedelta(days=HORIZON), 8, 14)
    assert "overdue_ratio" in model.columns and "gap_outlasts_horizon" in model.columns


def test_predictions(stopping):
    scored = stopping["scored"]
    table = stopping["features"].table
    assert scored.index.equals(table.index)
    p = scored["churn_probability"]
    bought = table["frequency"] > 0
    assert p[bought].between(0.0, 1.0).all()
    assert p[~bought].isna().all() and list(table.index[~bought]) == NEVER_BOUGHT
    assert (scored.loc[~bought, "churn_reason"] == "has not bought yet").all()
    reasons = scored.loc[bought, "churn_reason"]
    leaving = reasons.str.startswith("likely to leave: ")
    assert (leaving == (p[bought] >= 0.5)).all()
    assert reasons[~leaving].str.startswith("likely to come back: ").all()
    assert leaving.any() and (~leaving).any()
    for reason in reasons:
        assert 1 <= len(reason.split(": ", 1)[1].split("; ")) <= 2
    # The long-gone are likely to leave; those who shopped in the last two days are not.
    recency = table.loc[bought, "recency_days"]
    assert p[bought][recency > 60].min() >= 0.5
    assert p[bought][recency <= 1].mean() < 0.3


def test_reasons_are_in_words(stopping):
    scored = stopping["scored"]
    recency = stopping["features"].table["recency_days"]
    reasons = scored["churn_reason"]
    assert not reasons.str.contains("_").any()  # no raw column names
    gone = reasons[recency > 60]
    assert len(gone) > 20
    # The long-gone are told apart by how long they have been away.
    assert (
        gone.str.contains(
            "last purchase|usual gap|in the last|absences|weighted to the last|of the last 8 weeks"
        ).mean()
        >= 0.9
    )


def test_single_outcome_test_period_raises(make_warehouse):
    # 30 customers who buy every 3 days to the end: nobody ever churns.
    days = np.arange(0, 200, 3)
    events = pd.DataFrame(
        {
            "customer_id": np.repeat(np.arange(1, 31), len(days)),
            "item_id": 1,
            "timestamp": START + pd.to_timedelta(np.tile(days, 30), unit="D"),
            "value": 10.0,
        }
    )
    wh = make_warehouse(fmt="parquet", items=ITEMS, events=events)
    end = data_end(wh, None)
    with Snapshots(wh, HORIZON, end) as snapshots:
        with pytest.raises(TailorError, match="single outcome"):
            evaluate_churn(snapshots, end)
        with pytest.raises(TailorError, match="same label"):
            fit_churn(snapshots, end)
