"""The evaluation runner: every figure of one hand-worked case, the splits by name, the choice of
the default, and the bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.evaluate.metrics import RANKING_METRICS
from tailor.evaluate.runner import evaluate_models, pick_default, split
from tailor.recommend import PersonalFrequency, Popularity, Recommender

ITEMS = pd.DataFrame(
    {
        "item_id": ["A", "B", "C", "D", "E", "F"],
        "department": ["DAIRY", "DAIRY", "BAKERY", "BAKERY", "PET", "PET"],
    }
)
# Training: March, cut at the end of 03-31 (the popularity window opens on 03-04).
#   window buyers A {1, 2, 5} = 3, B {1, 5} = 2, C {2} = 1, D 0, E {3} = 1, F 0;
#   all-time A 3, B 2, C {2, 4} = 2, D 1, E 1, F 0; popularity = window + all-time / 4:
#   A 3.75, B 2.5, C 1.5, E 1.25, D 0.25, F 0.
TRAIN = [
    (1, "A", "2024-03-10", "purchase"),
    (1, "A", "2024-03-20", "purchase"),
    (1, "B", "2024-03-29", "purchase"),
    (2, "A", "2024-03-25", "purchase"),
    (2, "C", "2024-03-15", "purchase"),
    (3, "E", "2024-03-21", "purchase"),
    (3, "E", "2024-03-22", "purchase"),
    (4, "C", "2024-01-10", "purchase"),
    (4, "D", "2024-01-10", "purchase"),
    (5, "A", "2024-03-26", "purchase"),
    (5, "B", "2024-03-30", "purchase"),
]
# Test: April. Truth: 1 {A (had it), C (new)}, 2 {F (new)}, 5 {B (had it)}, 6 {A} (a customer
# new in April). Customer 3 buys nothing, and customer 4's return of D is no preference: neither
# has truth.
TEST = [
    (1, "A", "2024-04-02", "purchase"),
    (1, "C", "2024-04-03", "purchase"),
    (2, "F", "2024-04-02", "purchase"),
    (4, "D", "2024-04-03", "return"),
    (5, "B", "2024-04-04", "purchase"),
    (6, "A", "2024-04-05", "purchase"),
]
CUT = "2024-03-31"


@pytest.fixture(scope="module")
def full(make_warehouse) -> Dataset:
    events = pd.DataFrame(
        TRAIN + TEST, columns=["customer_id", "item_id", "timestamp", "event_type"]
    ).assign(quantity=1)
    return Dataset.from_warehouse(make_warehouse(items=ITEMS, events=events))


@pytest.fixture(scope="module")
def train_test(full: Dataset) -> tuple[Dataset, Dataset]:
    after = full.events["timestamp"].to_numpy() >= np.datetime64("2024-04-01")
    return full.cut(CUT), full.with_events(after)


def test_popularity_figures_worked_by_hand(train_test):
    train, test = train_test
    figures = evaluate_models(train, test, {"popularity": Popularity}, k=2)["popularity"]
    # Everyone gets [A, B]. Per customer with truth (1, 2, 5, 6):
    #   1 {A, C}: A at rank 1 -> precision 1/2, recall 1/2, ndcg 1 / (1 + 1/log2 3), f1 2/4
    #   2 {F}:    no hit      -> all 0
    #   5 {B}:    B at rank 2 -> precision 1/2, recall 1, ndcg 1/log2 3, mrr 1/2, f1 2/3
    #   6 {A}:    A at rank 1 -> precision 1/2, recall 1, ndcg 1, mrr 1, f1 2/3
    assert figures["customers"] == 4
    assert figures["precision@2"] == pytest.approx(1.5 / 4)
    assert figures["recall@2"] == pytest.approx(2.5 / 4)
    assert figures["hit_rate@2"] == pytest.approx(3 / 4)
    assert figures["mrr@2"] == pytest.approx(2.5 / 4)
    assert figures["f1@2"] == pytest.approx((0.5 + 2 / 3 + 2 / 3) / 4)
    assert figures["map@2"] == pytest.approx((0.5 + 0.5 + 1) / 4)
    ndcg_1 = 1 / (1 + 1 / np.log2(3))
    assert figures["ndcg@2"] == pytest.approx((ndcg_1 + 1 / np.log2(3) + 1) / 4)
    # Repeat truth: 1's A and 5's B, both found. New items: 1's C, 2's F (missed), 6's A (found).
    assert figures["repeat_recall@2"] == pytest.approx(1.0)
    assert figures["explore_recall@2"] == pytest.approx(1 / 3)
    assert figures["coverage"] == pytest.approx(2 / 6)
    assert figures["diversity"] == 0.0  # A and B are both DAIRY
    # Novelty: A was bought by 3 of the 6 customers, B by 2: (log2 2 + log2 3) / 2 bits.
    assert figures["novelty"] == pytest.approx((1 + np.log2(3)) / 2)
    assert figures["fit_seconds"] >= 0 and figures["recommend_seconds"] >= 0


def test_exclude_purchased_keeps_only_new_items_as_truth(train_test):
    train, test = train_test
    figures = evaluate_models(train, test, {"popularity": Popularity}, k=2, exclude_purchased=True)
    # Truth without what each customer had: 1 {C}, 2 {F}, 6 {A}; 5's B was bought before, so 5
    # drops out. Lists without history: 1 (had A, B) [C, E]: hit; 2 (had A, C) [B, E]: miss;
    # 6 [A, B]: hit.
    figures = figures["popularity"]
    assert figures["customers"] == 3
    assert figures["recall@2"] == pytest.approx(2 / 3)
    assert figures["precision@2"] == pytest.approx(1 / 3)
    assert figures["explore_recall@2"] == pytest.approx(2 / 3)
    assert np.isnan(figures["repeat_recall@2"])  # no repeat truth is left


def test_every_model_is_scored_on_the_same_customers(train_test):
    train, test = train_test
    calls = []
    results = evaluate_models(
        train, test, {"popularity": Popularity, "personal_frequency": PersonalFrequency}, k=2,
        progress=lambda step, fraction: calls.append((step, fraction)),
    )  # fmt: skip
    assert list(results) == ["popularity", "personal_frequency"]
    assert {figures["customers"] for figures in results.values()} == {4}
    # Personal frequency: 1 [A (2 days), B], 2 [A, C] (tied, A more popular), 5 [A, B], 6 the
    # popular [A, B]: the same hits as popularity, but C shown to customer 2 as well.
    assert results["personal_frequency"]["recall@2"] == pytest.approx(2.5 / 4)
    assert results["personal_frequency"]["coverage"] == pytest.approx(3 / 6)
    assert calls[0] == ("evaluating popularity", 0.0)
    assert calls[-1] == ("evaluating", 1.0)


def test_confidence_intervals_contain_the_mean(train_test):
    train, test = train_test
    figures = evaluate_models(train, test, {"popularity": Popularity}, k=2)["popularity"]
    assert set(figures["ci95"]) == {f"{m}@2" for m in RANKING_METRICS}
    for name, (low, high) in figures["ci95"].items():
        assert low <= figures[name] <= high
    assert figures["ci95"]["recall@2"][0] < figures["ci95"]["recall@2"][1]
    quick = evaluate_models(train, test, {"popularity": Popularity}, k=2, confidence=False)
    assert "ci95" not in quick["popularity"]


def test_no_truth_is_an_error(train_test):
    train, _ = train_test
    nothing = train.with_events(np.zeros(len(train.events), dtype=bool))
    with pytest.raises(TailorError, match="no customer has anything to find"):
        evaluate_models(train, nothing, {"popularity": Popularity}, k=2)


def test_pick_default_takes_the_best_ndcg_then_recall():
    results = {
        "a": {"ndcg@10": 0.30, "recall@10": 0.90},
        "b": {"ndcg@10": 0.50, "recall@10": 0.10},
        "c": {"ndcg@10": 0.50, "recall@10": 0.20},
    }
    assert pick_default(results, 10) == "c"
    assert pick_default({"a": results["a"], "b": results["b"]}, 10) == "b"


def test_split_by_name(full: Dataset):
    train, test = split(full, "temporal", test_days=5)
    expected_train, expected_test = full.temporal_split(5)
    pd.testing.assert_frame_equal(train.events, expected_train.events)
    pd.testing.assert_frame_equal(test.events, expected_test.events)
    # The last event is 04-05 00:00: the test holds what came after 03-31 00:00, April's.
    assert train.events["timestamp"].max() <= pd.Timestamp("2024-03-31")
    assert len(test.events) == len(TEST)
    assert len(train.events) + len(test.events) == len(full.events)

    train, test = split(full, "last-basket")
    assert len(train.events) + len(test.events) == len(full.events)
    assert test.events.groupby("customer")["basket"].nunique().max() == 1

    train, test = split(full, "random", test_fraction=0.5, random_state=1)
    again = split(full, "random", test_fraction=0.5, random_state=1)[1]
    pd.testing.assert_frame_equal(test.events, again.events)
    held = set(zip(test.events["customer"], test.events["item"], strict=True))
    kept = set(zip(train.events["customer"], train.events["item"], strict=True))
    assert held and not held & kept  # a held-out pair takes all its events with it

    with pytest.raises(TailorError, match="unknown split 'weekly'"):
        split(full, "weekly")


# -- relevance threshold, segments, shared fits -------------------------------------------------


class Fixed(Recommender):
    """Scores every item by a fixed order, the same for every customer: A > B > C > D."""

    name = "fixed"

    def _fit(self, dataset: Dataset) -> None:
        self.order_ = np.arange(dataset.n_items, 0, -1, dtype=np.float32)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        return np.tile(self.order_, (len(rows), 1))


# Ratings: every train rating is 3 or more (2 or less is negative feedback, which would hide the
# item from that customer's list).
RATINGS_TRAIN = [(1, "A", 5), (1, "B", 4), (2, "A", 3), (3, "B", 3), (4, "D", 4)]
RATINGS_TEST = [(1, "C", 5), (1, "D", 3), (2, "B", 4), (2, "C", 2), (3, "A", 3), (3, "D", 5),
                (4, "C", 3)]  # fmt: skip


@pytest.fixture(scope="module")
def rated(make_warehouse) -> tuple[Dataset, Dataset]:
    rows = [(*r, "2024-01-10") for r in RATINGS_TRAIN] + [(*r, "2024-02-10") for r in RATINGS_TEST]
    events = pd.DataFrame(rows, columns=["customer_id", "item_id", "value", "timestamp"])
    ds = Dataset.from_warehouse(make_warehouse(events=events.assign(event_type="rating")))
    after = ds.events["timestamp"].to_numpy() >= np.datetime64("2024-02-01")
    return ds.cut("2024-01-31"), ds.with_events(after)


def test_relevance_threshold_worked_by_hand(rated):
    train, test = rated
    # Lists of 2 without what each customer rated: 1 [C, D], 2 [B, C], 3 [A, C], 4 [A, B].
    # Every test rating relevant: 1 {C, D} 2/2, 2 {B, C} 2/2, 3 {A, D} 1/2, 4 {C} 0/1.
    every = evaluate_models(train, test, {"fixed": Fixed}, k=2, exclude_purchased=True)["fixed"]
    assert every["customers"] == 4
    assert every["recall@2"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    assert every["precision@2"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)
    # Only ratings >= 4: 1 {C} found at rank 1, 2 {B} at rank 1, 3 {D} missed; 4 rated C a 3
    # and drops out.
    four = evaluate_models(
        train, test, {"fixed": Fixed}, k=2, exclude_purchased=True, relevance_threshold=4
    )["fixed"]
    assert four["customers"] == 3
    assert four["recall@2"] == pytest.approx(2 / 3)
    assert four["precision@2"] == pytest.approx(1 / 3)
    assert four["ndcg@2"] == pytest.approx(2 / 3)
    assert four["hit_rate@2"] == pytest.approx(2 / 3)
    # A threshold above every rating leaves nothing to find; one of 0 or less would count
    # unrated items.
    with pytest.raises(TailorError, match="no customer has anything to find"):
        evaluate_models(train, test, {"fixed": Fixed}, k=2, relevance_threshold=6)
    with pytest.raises(TailorError, match="relevance threshold must be positive"):
        evaluate_models(train, test, {"fixed": Fixed}, k=2, relevance_threshold=0)


def test_segment_figures_are_the_metrics_of_each_segment_alone(train_test, full: Dataset):
    train, test = train_test
    # Rows of customers 1-6: segments x = {1, 2, 6}, y = {3, 4, 5}; evaluated (with truth): 1, 2,
    # 5 and 6, so x has 3 customers and y 1.
    labels = np.array(["x", "x", "y", "y", "y", "x"], dtype=object)
    models = {"popularity": Popularity, "personal_frequency": PersonalFrequency}
    results = evaluate_models(train, test, models, k=2, segments=labels)
    for name, figures in results.items():
        segments = figures["segments"]
        assert list(segments) == ["x", "y"]  # largest first
        assert sum(s["customers"] for s in segments.values()) == figures["customers"]
        for label, seg in segments.items():
            rows = np.flatnonzero(labels == label)
            only = test.with_events(np.isin(test.events["customer"], rows))
            alone = evaluate_models(train, only, {name: models[name]}, k=2, confidence=False)
            assert seg["customers"] == alone[name]["customers"]
            assert set(seg) == {"customers", "recall@2", "ndcg@2", "precision@2"}
            for metric in ("recall@2", "ndcg@2", "precision@2"):
                assert seg[metric] == pytest.approx(alone[name][metric]), (name, label, metric)
    # By hand for popularity ([A, B] for all): x = 1 (recall 1/2), 2 (0), 6 (1); y = 5 (1).
    assert results["popularity"]["segments"]["x"]["recall@2"] == pytest.approx(1.5 / 3)
    assert results["popularity"]["segments"]["y"]["recall@2"] == pytest.approx(1.0)
    assert (
        "segments"
        not in evaluate_models(train, test, {"popularity": Popularity}, k=2)["popularity"]
    )
    with pytest.raises(TailorError, match="one label per customer"):
        evaluate_models(train, test, {"popularity": Popularity}, k=2, segments=labels[:3])


def test_segments_on_a_generated_shop_sum_and_agree(synthetic_dataset: Dataset):
    train, test = synthetic_dataset.temporal_split(28)
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array(["a", "b", "c"], dtype=object), size=train.n_customers)
    figures = evaluate_models(train, test, {"pf": PersonalFrequency}, k=10, segments=labels,
                              confidence=False)["pf"]  # fmt: skip
    segments = figures["segments"]
    assert sum(s["customers"] for s in segments.values()) == figures["customers"]
    # The overall mean is the size-weighted mean of the segments' means.
    for metric in ("recall@10", "ndcg@10", "precision@10"):
        weighted = sum(s["customers"] * s[metric] for s in segments.values())
        assert weighted / figures["customers"] == pytest.approx(figures[metric])


def test_fitted_models_are_shared_between_tasks(train_test):
    train, test = train_test
    made = []

    def counted() -> Popularity:
        made.append(1)
        return Popularity()

    fitted: dict = {}
    first = evaluate_models(train, test, {"p": counted}, k=2, fitted=fitted)["p"]
    second = evaluate_models(train, test, {"p": counted}, k=2, exclude_purchased=True,
                             fitted=fitted)["p"]  # fmt: skip
    assert len(made) == 1 and set(fitted) == {"p"}
    assert second["fit_seconds"] == first["fit_seconds"]
    alone = evaluate_models(train, test, {"p": Popularity}, k=2, exclude_purchased=True)["p"]
    assert second["recall@2"] == alone["recall@2"]


def test_split_random_by_item(full: Dataset):
    train, test = split(full, "random", test_fraction=0.5, random_state=1, holdout_by="item")
    expected = full.holdout_split(0.5, 1, by="item")[1]
    pd.testing.assert_frame_equal(test.events, expected.events)


def test_rfm_segments_as_of_the_training_cut(synthetic_db, synthetic_dataset: Dataset):
    from tailor.customers.features import customer_features
    from tailor.customers.segments import NO_PURCHASE, rfm_segment
    from tailor.evaluate.runner import rfm_segments
    from tailor.store import Warehouse

    train, _ = synthetic_dataset.temporal_split(28)
    with Warehouse(synthetic_db, read_only=True) as wh:
        labels = rfm_segments(wh, train)
        table = customer_features(wh, bound=train.as_of).table
    assert labels.shape == (train.n_customers,)
    # A second computation, customer by customer.
    for row, customer in enumerate(train.customer_ids):
        if customer in table.index and table.loc[customer, "frequency"] > 0:
            r, f, m = table.loc[customer, ["r_score", "f_score", "m_score"]]
            assert labels[row] == rfm_segment([r], [f], [m])[0]
        else:
            assert labels[row] == NO_PURCHASE
    assert len(set(labels)) > 3


def test_rfm_segments_without_purchases_is_none(make_warehouse):
    from tailor.evaluate.runner import rfm_segments

    events = pd.DataFrame(
        {"customer_id": [1, 2], "item_id": [10, 11], "event_type": "rating",
         "value": [4.0, 5.0], "timestamp": ["2024-01-01", "2024-01-02"]}
    )  # fmt: skip
    wh = make_warehouse(events=events)
    assert rfm_segments(wh, Dataset.from_warehouse(wh)) is None
