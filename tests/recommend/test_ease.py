"""EASE against its closed form computed directly with numpy on a hand-made shop."""

from __future__ import annotations

import numpy as np
import pytest
from handmade import ITEMS, SHOP_POPULAR_ORDER

from tailor.dataset import Dataset
from tailor.recommend import EASE, Recommender


def closed_form(x: np.ndarray, lambda_: float) -> np.ndarray:
    """B of Steck (2019) by the textbook formula, item by item."""
    p = np.linalg.inv(x.T @ x + lambda_ * np.eye(x.shape[1]))
    b = np.empty_like(p)
    for j in range(p.shape[1]):
        b[:, j] = -p[:, j] / p[j, j]
    b[np.diag_indices_from(b)] = 0.0
    return b


def test_scores_are_the_history_times_the_closed_form(shop: Dataset):
    model = EASE(lambda_=0.5).fit(shop)
    x = (shop.interactions > 0).toarray().astype(np.float64)
    b = closed_form(x, 0.5)
    np.testing.assert_allclose(model.weights_, b, atol=1e-6)
    assert np.all(np.diag(model.weights_) == 0)
    rows = np.arange(shop.n_customers)
    tie = 1e-6 * model.cold_start_ / model.cold_start_.max()
    np.testing.assert_allclose(model._score(rows), x @ b + tie, atol=1e-6)


def test_items_outside_max_items_fill_the_tail_by_popularity(shop: Dataset):
    # Buyers: A 3, B 2, C 2, D 1, E 1, F 0 -> max_items=2 models A and B only.
    model = EASE(lambda_=0.5, max_items=2).fit(shop)
    assert shop.item_ids[model.items_].tolist() == ["A", "B"]
    frame = model.recommend([2], k=6)
    order = frame["item_id"].tolist()
    assert sorted(order) == list(ITEMS["item_id"])  # the list is full
    tail = [item for item in order if item not in ("A", "B")]
    assert tail == [item for item in SHOP_POPULAR_ORDER if item not in ("A", "B")]
    # Customer 2 bought A; B is modelled and co-bought with A (customers 1 and 5), so B leads.
    assert order[0] == "B"
    reasons = dict(zip(frame["item_id"], frame["reason"], strict=True))
    assert reasons["B"] == "customers who buy Milk also buy this"
    assert reasons["C"] == "you bought this before"
    assert reasons["E"] == "popular now with other customers"


def test_save_and_load_give_the_same_lists(shop: Dataset, tmp_path):
    model = EASE(lambda_=0.5).fit(shop)
    ids = [1, 2, 3, 4, 5, 99]
    before = model.recommend(ids, k=6)
    model.save(tmp_path / "ease.pkl")
    loaded = Recommender.load(tmp_path / "ease.pkl", shop)
    assert loaded.recommend(ids, k=6).equals(before)


@pytest.mark.parametrize("lambda_", [0.1, 500.0])
def test_the_list_is_always_full(shop: Dataset, lambda_: float):
    frame = EASE(lambda_=lambda_).fit(shop).recommend([1, 3], k=6, exclude_purchased=True)
    assert frame.groupby("customer_id").size().tolist() == [4, 5]
