"""Attribute prediction: planted signals that must be published and predicted right, noise that
must not be, the skips with their reasons, the paired test by hand, invariants with hypothesis,
and the synthetic shop end to end (has_kids is planted in its baby spend, age is not)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailor.customers.attributes import _compare, predict_attributes
from tailor.customers.features import customer_features
from tailor.errors import TailorError
from tailor.store import Warehouse


def behaviour(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` customers (ids 101..) with a baby-spend share, two noise features (one with NaN)
    and a constant column."""
    rng = np.random.default_rng(seed)
    noisy = rng.normal(30.0, 10.0, n)
    noisy[rng.random(n) < 0.2] = np.nan
    return pd.DataFrame(
        {
            "share_baby": rng.uniform(0.0, 0.4, n),
            "avg_basket_value": noisy,
            "frequency": rng.poisson(20, n),
            "channels": np.zeros(n),
        },
        index=pd.Index(np.arange(101, 101 + n), name="customer_id"),
    )


def hide(values: pd.Series, share: float, seed: int = 1) -> pd.Series:
    """``values`` with a random ``share`` of them set to NA."""
    rng = np.random.default_rng(seed)
    return values.astype(object).where(rng.random(len(values)) >= share)


@pytest.fixture(scope="module")
def planted():
    """has_kids is "yes" exactly where baby spend exceeds 15%, hidden for about 30%;
    noise is a coin with 60/40 odds that ignores behaviour."""
    x = behaviour(400)
    truth = pd.Series(np.where(x["share_baby"] > 0.15, "yes", "no"), index=x.index)
    rng = np.random.default_rng(7)
    noise = pd.Series(np.where(rng.random(len(x)) < 0.6, "a", "b"), index=x.index)
    attributes = pd.DataFrame({"has_kids": hide(truth, 0.3), "noise": hide(noise, 0.3, seed=2)})
    return x, truth, attributes, predict_attributes(x, attributes)


def row(result, attribute: str) -> pd.Series:
    return result.evaluation.set_index("attribute").loc[attribute]


def test_a_planted_attribute_is_published_and_predicted_right(planted):
    x, truth, attributes, result = planted
    known = attributes["has_kids"].notna()
    kids = row(result, "has_kids")
    assert kids["published"]
    assert kids["known"] == known.sum() and kids["missing"] == (~known).sum()
    assert kids["classes"] == 2
    assert kids["accuracy"] >= 0.95
    # stratified folds keep every training fold's majority the overall one: "yes" (baby spend
    # is uniform on [0, 0.4], so about 62.5% spend over 15%)
    majority = (attributes.loc[known, "has_kids"] == "yes").mean()
    assert 0.55 < majority < 0.7
    assert kids["baseline_accuracy"] == pytest.approx(majority)
    assert kids["lift"] == pytest.approx(kids["accuracy"] / kids["baseline_accuracy"])
    assert kids["p_value"] < 1e-6
    points = round(100 * (kids["accuracy"] - kids["baseline_accuracy"]))
    assert kids["reason"] == f"beats the majority class by {points} points"

    p = result.predictions.query("attribute == 'has_kids'").set_index("customer_id")
    # exactly the customers whose value is missing: the known ones are never overwritten
    assert sorted(p.index) == sorted(attributes.index[~known])
    assert (p["predicted"] == truth[p.index]).mean() >= 0.95
    # the reason names the baby spend, on the side of its prediction; reasons are measured
    # from the typical customer (baby share 0.2), so just above the boundary (0.15) the baby
    # share does not push towards "yes" and the reason may name other features or none
    assert p["reason"].str.startswith("predicted from behaviour: ").all()
    assert p["reason"].str.contains("of spend on baby").mean() >= 0.8
    baby = x.loc[p.index, "share_baby"]
    assert p.loc[baby > 0.25, "reason"].str.contains(r"of spend on baby \(top").all()
    assert p.loc[baby < 0.1, "reason"].str.contains(r"of spend on baby \(bottom").all()
    assert (p.loc[(baby - 0.15).abs() > 0.05, "confidence"] > 0.5).all()


def test_noise_is_not_published(planted):
    _, _, _, result = planted
    noise = row(result, "noise")
    assert not noise["published"]
    assert noise["reason"].startswith("does not beat the majority class")
    assert noise["p_value"] >= 0.05
    assert 0.5 < noise["baseline_accuracy"] < 0.7
    assert "noise" not in set(result.predictions["attribute"])


def test_skips_say_why():
    x = behaviour(200)
    rng = np.random.default_rng(3)
    attributes = pd.DataFrame(
        {
            "rare": hide(pd.Series(np.where(x["share_baby"] > 0.2, "y", "n"), index=x.index), 0.9),
            "spend_estimate": rng.normal(100, 20, len(x)),  # a continuous number
            "same": "x",
        },
        index=x.index,
    )
    result = predict_attributes(x, attributes)
    rare = row(result, "rare")
    assert rare["known"] < 50
    assert rare["reason"] == f"not enough known values ({rare['known']}, at least 50 needed)"
    assert row(result, "spend_estimate")["reason"] == (
        "too many classes (200 distinct values, at most 12)"
    )
    assert row(result, "same")["reason"] == "every known value is the same"
    assert not result.evaluation["published"].any()
    assert result.evaluation[["accuracy", "baseline_accuracy", "p_value"]].isna().all().all()
    assert result.predictions.empty
    assert list(result.predictions.columns) == [
        "customer_id",
        "attribute",
        "predicted",
        "confidence",
        "reason",
    ]
    # a lower bar lets the rare attribute in
    assert row(predict_attributes(x, attributes, min_known=10), "rare")["known"] == rare["known"]
    assert not np.isnan(row(predict_attributes(x, attributes, min_known=10), "rare")["accuracy"])


def test_a_class_rarer_than_the_folds_is_kept():
    x = behaviour(200)
    values = hide(pd.Series(np.where(x["share_baby"] > 0.2, "yes", "no"), index=x.index), 0.3)
    values.iloc[:2] = "twins"  # fewer than the 5 folds, and than the 3 inner ones
    result = predict_attributes(x, pd.DataFrame({"has_kids": values}))
    kids = row(result, "has_kids")
    assert kids["classes"] == 3 and kids["published"] and kids["accuracy"] > 0.9
    assert set(result.predictions["predicted"]) <= {"yes", "no", "twins"}


def test_consent_columns_are_ignored():
    x = behaviour(200)
    planted_flag = pd.Series(x["share_baby"] > 0.15, index=x.index)
    attributes = pd.DataFrame(
        {
            "consent_marketing": hide(planted_flag, 0.3),  # would be published if it counted
            "has_kids": hide(pd.Series(np.where(planted_flag, "yes", "no"), index=x.index), 0.3),
        }
    )
    result = predict_attributes(x, attributes)
    assert list(result.evaluation["attribute"]) == ["has_kids"]
    assert set(result.predictions["attribute"]) == {"has_kids"}


def test_numbers_with_few_values_are_classes_and_keep_their_values():
    x = behaviour(300)
    kids = pd.cut(x["share_baby"], [0.0, 0.13, 0.27, 0.4], labels=False, include_lowest=True)
    attributes = pd.DataFrame({"kids_count": hide(kids.astype(int), 0.3)})
    result = predict_attributes(x, attributes)
    count = row(result, "kids_count")
    assert count["classes"] == 3 and count["published"] and count["accuracy"] > 0.85
    p = result.predictions.set_index("customer_id")
    assert set(p["predicted"]) <= {0, 1, 2}
    assert (p["predicted"] == kids[p.index]).mean() > 0.85


def test_customers_without_an_attribute_row_are_predicted_and_strangers_unused():
    x = behaviour(300)
    flag = pd.Series(np.where(x["share_baby"] > 0.15, "yes", "no"), index=x.index)
    attributes = pd.DataFrame({"has_kids": flag.iloc[:200]})  # 201.. have no row
    strangers = pd.DataFrame({"has_kids": ["yes"] * 5}, index=range(9001, 9006))
    result = predict_attributes(x, pd.concat([attributes, strangers]))
    kids = row(result, "has_kids")
    assert (kids["known"], kids["missing"]) == (200, 100)
    assert sorted(result.predictions["customer_id"]) == list(x.index[200:])


def test_monotone_changes_of_a_feature_change_nothing_but_words(planted):
    x, _, attributes, result = planted
    bent = x.assign(share_baby=np.exp(10 * x["share_baby"]), frequency=-x["frequency"])
    again = predict_attributes(bent, attributes)
    numbers = ["accuracy", "baseline_accuracy", "p_value", "published"]
    pd.testing.assert_frame_equal(again.evaluation[numbers], result.evaluation[numbers])
    same = ["customer_id", "attribute", "predicted", "confidence"]
    pd.testing.assert_frame_equal(again.predictions[same], result.predictions[same])


def test_paired_test_by_hand():
    # 8 customers only the model gets right, 2 only the baseline: P(X >= 8 | 10, 1/2) = 56/1024
    model = np.array([True] * 8 + [False] * 2 + [True] * 10 + [False] * 5)
    baseline = np.array([False] * 8 + [True] * 2 + [True] * 10 + [False] * 5)
    out = _compare(model, baseline, alpha=0.05)
    assert out["accuracy"] == pytest.approx(18 / 25)
    assert out["baseline_accuracy"] == pytest.approx(12 / 25)
    assert out["p_value"] == pytest.approx(56 / 1024)
    assert not out["published"]
    assert out["reason"] == "does not beat the majority class significantly (+24 points, p = 0.05)"
    # 9 against 1: P(X >= 9 | 10, 1/2) = 11/1024
    model = np.array([True] * 9 + [False] * 1 + [True] * 10 + [False] * 5)
    baseline = np.array([False] * 9 + [True] * 1 + [True] * 10 + [False] * 5)
    out = _compare(model, baseline, alpha=0.05)
    assert out["p_value"] == pytest.approx(11 / 1024)
    assert out["published"]
    assert out["reason"] == "beats the majority class by 32 points"
    # never disagreeing: no evidence
    out = _compare(baseline, baseline, alpha=0.05)
    assert out["p_value"] == 1.0 and not out["published"]
    assert out["reason"] == "does not beat the majority class (+0 points)"


def test_duplicate_customers_are_an_error():
    x = behaviour(60)
    with pytest.raises(TailorError, match="more than one row per customer"):
        predict_attributes(pd.concat([x, x.iloc[:1]]), pd.DataFrame({"a": ["x"] * 60}, x.index))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(60, 160),
    n_classes=st.integers(2, 4),
    names=st.sampled_from(["text", "int", "bool"]),
    missing=st.floats(0.05, 0.6),
    seed=st.integers(0, 2**16),
)
def test_predictions_are_known_classes_with_probabilities(n, n_classes, names, missing, seed):
    if names == "bool":
        n_classes = 2
    x = behaviour(n, seed)
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.uniform(0.05, 0.35, n_classes - 1))
    code = np.searchsorted(cuts, x["share_baby"].to_numpy())
    flip = rng.random(n) < 0.1
    code[flip] = rng.integers(0, n_classes, flip.sum())
    values = {
        "text": np.array(["band A", "band B", "band C", "band D"], dtype=object)[code],
        "int": code,
        "bool": code.astype(bool),
    }[names]
    attributes = pd.DataFrame({"value": hide(pd.Series(values, index=x.index), missing, seed)})
    result = predict_attributes(x, attributes, min_known=10)

    e = result.evaluation.iloc[0]
    known = attributes["value"].dropna()
    assert e["known"] == len(known) and e["missing"] == n - len(known)
    assert e["classes"] == known.nunique()
    if not np.isnan(e["accuracy"]):
        assert 0.0 <= e["accuracy"] <= 1.0 and 0.0 <= e["baseline_accuracy"] <= 1.0
        assert 0.0 <= e["p_value"] <= 1.0
        assert not e["published"] or e["accuracy"] > e["baseline_accuracy"]
    p = result.predictions
    assert e["published"] or p.empty
    if not p.empty:
        assert p["confidence"].between(0.0, 1.0).all()
        assert (p["confidence"] >= 1.0 / e["classes"] - 1e-9).all()  # the most likely class
        assert set(p["predicted"]) <= set(known)
        assert p["customer_id"].is_unique
        assert set(p["customer_id"]) == set(attributes.index[attributes["value"].isna()])


def test_synthetic_shop_end_to_end(synthetic_db: Path):
    """has_kids is planted in the synthetic shop's baby spend; age and income are drawn apart
    from behaviour."""
    with Warehouse(synthetic_db, read_only=True) as wh:
        x = customer_features(wh).table
        stored = wh.con.execute("SELECT * EXCLUDE (ingest_id) FROM customers").df()
    stored = stored.set_index("customer_id")
    attributes = stored.drop(columns=["has_kids"]).assign(
        has_kids=hide(stored["has_kids"], 0.3, seed=0)
    )
    result = predict_attributes(x, attributes)
    evaluation = result.evaluation.set_index("attribute")
    assert not any(a.startswith("consent_") for a in evaluation.index)
    assert evaluation.loc["has_kids", "published"]
    assert evaluation.loc["has_kids", "accuracy"] > evaluation.loc["has_kids", "baseline_accuracy"]
    assert not evaluation.loc[["age_band", "income_band"], "published"].any()
    p = result.predictions.query("attribute == 'has_kids'").set_index("customer_id")
    assert len(p) == attributes["has_kids"].isna().sum()
    right = (p["predicted"] == stored.loc[p.index, "has_kids"]).mean()
    majority = stored["has_kids"].value_counts(normalize=True).max()
    assert right > majority + 0.15
