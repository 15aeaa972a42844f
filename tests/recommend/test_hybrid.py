"""Hybrid: the learned ranker on the synthetic shop, and its fallback when there is nothing to
learn from."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailor.dataset import Dataset
from tailor.evaluate.metrics import ranking_metrics
from tailor.recommend import Popularity, Recommender, Repurchase
from tailor.recommend.hybrid import FEATURES, Hybrid


@pytest.fixture(scope="module")
def split(synthetic_dataset: Dataset) -> tuple[Dataset, Dataset]:
    return synthetic_dataset.temporal_split(28)


@pytest.fixture(scope="module")
def hybrid(split: tuple[Dataset, Dataset]) -> Hybrid:
    return Hybrid().fit(split[0])


def recall_at(model: Recommender, train: Dataset, test: Dataset, k: int) -> float:
    truth = (test.interactions > 0).tocsr()
    users = np.flatnonzero(np.diff(truth.indptr) > 0)
    items, _ = model.recommend_rows(users, k)
    return float(np.mean(ranking_metrics(items, truth[users], k)["recall"]))


def test_hybrid_learns_and_lists_k_items_per_customer(hybrid: Hybrid, split):
    train, _ = split
    assert hybrid.ranker_ is not None
    frame = hybrid.recommend(train.customer_ids, k=20)
    sizes = frame.groupby("customer_id").size()
    assert len(sizes) == train.n_customers and (sizes == 20).all()
    assert not frame.duplicated(["customer_id", "item_id"]).any()
    assert (frame["reason"].str.len() > 0).all()
    for _, group in frame.groupby("customer_id"):
        assert (np.diff(group["score"].to_numpy()) <= 0).all()


def test_hybrid_recalls_at_least_what_popularity_does(hybrid: Hybrid, split):
    train, test = split
    popularity = Popularity().fit(train)
    assert recall_at(hybrid, train, test, 20) >= recall_at(popularity, train, test, 20)


def test_feature_importance_names_every_feature(hybrid: Hybrid):
    importance = hybrid.feature_importance()
    assert sorted(importance.index) == sorted(FEATURES)
    assert len(importance) == len(FEATURES)
    assert (importance >= 0).all() and importance.sum() > 0
    assert (np.diff(importance.to_numpy()) <= 0).all()  # largest first


def test_hybrid_round_trips_through_save_and_load(hybrid: Hybrid, split, tmp_path):
    train, _ = split
    hybrid.save(tmp_path / "hybrid.pkl")
    loaded = Recommender.load(tmp_path / "hybrid.pkl", train)
    customers = train.customer_ids[:25]
    pd.testing.assert_frame_equal(
        loaded.recommend(customers, k=10), hybrid.recommend(customers, k=10)
    )


@pytest.mark.parametrize(
    "rows",
    [
        # Ten days of data: the 28 label days leave nothing before them to learn from.
        [(1, "A", "2024-03-01"), (1, "A", "2024-03-05"), (1, "B", "2024-03-10"),
         (2, "C", "2024-03-02")],
        # History, but the label period holds only a newcomer: no positive label for anyone.
        [(1, "A", "2024-01-01"), (1, "A", "2024-01-15"), (1, "B", "2024-01-20"),
         (2, "C", "2024-01-02"), (3, "D", "2024-03-30")],
    ],
    ids=["too-short", "no-positive-label"],
)  # fmt: skip
def test_hybrid_falls_back_on_repurchase_without_labels(make_dataset, rows):
    ds = make_dataset(rows)
    model = Hybrid().fit(ds)
    assert model.ranker_ is None
    assert model.feature_importance().empty
    customers = [1, 2, 3, "999"]
    frame = model.recommend(customers, k=4)
    expected = Repurchase(half_life_days=90.0).fit(ds).recommend(customers, k=4)
    pd.testing.assert_frame_equal(
        frame[["customer_id", "rank", "item_id", "score"]],
        expected[["customer_id", "rank", "item_id", "score"]],
    )
    assert set(frame.loc[frame["customer_id"] == 1, "item_id"].iloc[:2]) == {"A", "B"}
