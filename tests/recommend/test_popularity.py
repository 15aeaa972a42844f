"""Popularity: distinct buyers in a recent window, worked by hand on the shop of handmade.py."""

from __future__ import annotations

import numpy as np
from handmade import SHOP_POPULAR_ORDER, SHOP_POPULARITY

from tailor.dataset import Dataset
from tailor.recommend import Popularity


def test_distinct_buyers_in_the_window_with_old_buyers_breaking_ties(shop: Dataset):
    model = Popularity().fit(shop)
    frame = model.recommend([4], k=6)
    # Customer 3 bought E five times, but E counts one buyer: it stays below A (3 buyers), B (2)
    # and C (1 in the window, tied with E, ahead on customer 4's purchase in January).
    assert frame["item_id"].tolist() == SHOP_POPULAR_ORDER
    np.testing.assert_allclose(frame["score"], [SHOP_POPULARITY[i] for i in SHOP_POPULAR_ORDER])
    np.testing.assert_array_equal(model.recent_buyers_, [3, 2, 1, 0, 1, 0])  # A..F


def test_the_reason_states_the_count(shop: Dataset):
    frame = Popularity().fit(shop).recommend([4], k=6)
    reasons = dict(zip(frame["item_id"], frame["reason"], strict=True))
    assert reasons["A"] == "popular: bought by 3 customers in the last 28 days"
    assert reasons["C"] == "popular: bought by 1 customer in the last 28 days"
    assert reasons["D"] == "popular: bought by 0 customers in the last 28 days"


def test_the_window_reaches_back_window_days_from_the_cut(shop: Dataset):
    # From 03-27 00:00: A has customer 1 (03-30), B customers 1 and 5; C, D and E none.
    # Scores 1 + 3/4, 2 + 2/4, 0 + 2/4, 0 + 1/4, 0 + 1/4, 0: B, A, C, then D and E tied (the
    # lower column first), F.
    frame = Popularity(window_days=5).fit(shop).recommend([4], k=6)
    assert frame["item_id"].tolist() == ["B", "A", "C", "D", "E", "F"]
    np.testing.assert_allclose(frame["score"], [2.5, 1.75, 0.5, 0.25, 0.25, 0.0])
    assert frame["reason"].iloc[0] == "popular: bought by 2 customers in the last 5 days"


def test_every_customer_gets_the_same_list(shop: Dataset):
    frame = Popularity().fit(shop).recommend([1, 2, 3, 4, 5], k=3)
    assert frame.groupby("customer_id")["item_id"].apply(list).tolist() == [["A", "B", "C"]] * 5
