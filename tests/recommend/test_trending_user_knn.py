"""Trending and user-KNN, worked by hand on the shop of handmade.py (as of 2024-03-31; "now" is
2024-04-01 00:00)."""

from __future__ import annotations

import numpy as np

from tailor.dataset import Dataset
from tailor.recommend import REGISTRY, Trending, UserKNN


def test_trending_by_hand(shop: Dataset):
    # Window: from 03-18. Buyers then: A {1, 2, 5} = 3, B {1, 5} = 2, C {2} = 1, E {3} = 1.
    # The 56 days before (01-22 to 03-18): A {1}, C {2}; expected in 14 days = 1/4 each.
    # score = recent x (recent + 5) / (expected + 5):
    #   A 3 x 8 / 5.25, B 2 x 7 / 5, C 1 x 6 / 5.25, E 1 x 6 / 5; D, F 0 (D first on popularity).
    model = Trending().fit(shop)
    frame = model.recommend([4], k=6)
    assert frame["item_id"].tolist() == ["A", "B", "E", "C", "D", "F"]
    np.testing.assert_allclose(
        frame["score"].iloc[:4], [3 * 8 / 5.25, 2 * 7 / 5, 6 / 5, 6 / 5.25], rtol=1e-5
    )
    reasons = dict(zip(frame["item_id"], frame["reason"], strict=True))
    assert (
        reasons["A"]
        == "trending: bought by 3 customers in the last 14 days, 12.0x the weeks before"
    )
    assert reasons["B"] == "trending: bought by 2 customers in the last 14 days"


def test_user_knn_by_hand(shop: Dataset):
    # Customer 5 bought A and B. Customer 1 (A, B): cosine 2 / (sqrt 2 sqrt 2) = 1, shrunk by
    # 2 / (2 + 10); customer 2 (A, C): 1/2 shrunk by 1 / 11. Scores: A = 1/6 + 1/22, B = 1/6,
    # C = 1/22.
    model = UserKNN().fit(shop)
    frame = model.recommend([5], k=3)
    assert frame["item_id"].tolist() == ["A", "B", "C"]
    np.testing.assert_allclose(frame["score"], [1 / 6 + 1 / 22, 1 / 6, 1 / 22], rtol=1e-4)
    new = model.recommend([5], k=1, exclude_purchased=True)
    assert new["item_id"].tolist() == ["C"]
    assert new["reason"].iloc[0] == (
        "bought by 1 customer of the 2 customers whose baskets are most like yours"
    )


def test_user_knn_keeps_at_most_k_neighbours(shop: Dataset):
    model = UserKNN(neighbours=1).fit(shop)
    weights = model._neighbours(shop.customer_index([5]))
    assert weights.nnz == 1 and weights.indices[0] == shop.customer_index([1])[0]


def test_registered():
    assert isinstance(REGISTRY["trending"](), Trending)
    assert isinstance(REGISTRY["user_knn"](), UserKNN)
