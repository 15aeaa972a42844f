"""ALS and BPR (through implicit) on the synthetic shop: full, repeatable, better than popular."""

from __future__ import annotations

import numpy as np
import pytest

from tailor.dataset import Dataset
from tailor.evaluate.runner import evaluate_models
from tailor.recommend import ALS, BPR, Popularity, Recommender

FAST = {"als": lambda: ALS(), "bpr": lambda: BPR(iterations=30)}


@pytest.fixture(scope="module")
def fitted(synthetic_dataset: Dataset) -> dict[str, Recommender]:
    return {name: make().fit(synthetic_dataset) for name, make in FAST.items()}


@pytest.mark.parametrize("name", list(FAST))
def test_factors_score_every_item(name: str, fitted, synthetic_dataset: Dataset):
    model = fitted[name]
    ds = synthetic_dataset
    assert model.user_factors_.shape[0] == ds.n_customers
    assert model.item_factors_.shape[0] == ds.n_items
    rows = np.arange(5)
    np.testing.assert_allclose(
        model._score(rows), model.user_factors_[rows] @ model.item_factors_.T, rtol=1e-6
    )
    items, scores = model.recommend_rows(np.arange(ds.n_customers), k=20, exclude_purchased=True)
    assert (items >= 0).all()  # full lists
    assert np.isfinite(scores).all()
    assert not model.history_[np.arange(ds.n_customers)[:, None], items].toarray().any()


@pytest.mark.parametrize("name", list(FAST))
def test_the_same_random_state_gives_the_same_lists(name: str, fitted, synthetic_dataset):
    again = FAST[name]().fit(synthetic_dataset)
    rows = np.arange(synthetic_dataset.n_customers)
    first, _ = fitted[name].recommend_rows(rows, k=20)
    second, _ = again.recommend_rows(rows, k=20)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("name", list(FAST))
def test_reasons_tell_repeat_from_taste(name: str, fitted, synthetic_dataset: Dataset):
    model = fitted[name]
    customer = synthetic_dataset.customer_ids[0]
    frame = model.recommend([customer], k=30)
    bought = set(synthetic_dataset.item_ids[model.history_[0].indices].tolist())
    expected = [
        "you bought this before" if item in bought else "customers with tastes like yours buy this"
        for item in frame["item_id"]
    ]
    assert frame["reason"].tolist() == expected
    assert len(set(expected)) == 2  # the 30 hold both kinds


@pytest.mark.parametrize("name", list(FAST))
def test_save_and_load_give_the_same_lists(name: str, fitted, synthetic_dataset, tmp_path):
    model = fitted[name]
    ids = [*synthetic_dataset.customer_ids[:10], "nobody"]
    before = model.recommend(ids, k=10)
    model.save(tmp_path / f"{name}.pkl")
    loaded = Recommender.load(tmp_path / f"{name}.pkl", synthetic_dataset)
    assert loaded.recommend(ids, k=10).equals(before)


def test_als_recalls_more_than_popularity_on_validation(synthetic_dataset: Dataset):
    train, test = synthetic_dataset.temporal_split(28)
    results = evaluate_models(
        train, test, {"popularity": Popularity, "als": ALS}, k=20, confidence=False
    )
    assert results["als"]["recall@20"] > results["popularity"]["recall@20"]
