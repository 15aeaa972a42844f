"""ItemKNN on a catalogue where the co-purchases are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tailor.dataset import Dataset
from tailor.recommend import ItemKNN

# Customers 1-4 buy A (Milk) and B (Butter) together, customer 1 also D (Bagels); customers 5
# and 6 buy C (Bread), never with A; customer 7 has bought only A.
#   buyers: A {1, 2, 3, 4, 7}, B {1, 2, 3, 4}, C {5, 6}, D {1}
#   cosine(A, B) = 4 / sqrt(5 * 4) = 0.894, cosine(A, D) = 1 / sqrt(5 * 1) = 0.447,
#   cosine(A, C) = 0 (no common buyer).
TOGETHER = [
    *[(c, item, "2024-03-01") for c in (1, 2, 3, 4) for item in ("A", "B")],
    (1, "D", "2024-03-01"),
    (5, "C", "2024-03-02"),
    (6, "C", "2024-03-02"),
    (7, "A", "2024-03-03"),
]


@pytest.fixture(scope="module")
def together(make_dataset) -> Dataset:
    return make_dataset(TOGETHER)


@pytest.fixture(scope="module")
def knn(together: Dataset) -> ItemKNN:
    return ItemKNN().fit(together)


def test_the_similarities_are_the_cosines(knn: ItemKNN, together: Dataset):
    a, b, c, d = together.item_index(["A", "B", "C", "D"])
    sims = knn.similarity_.toarray()
    assert sims[a, b] == pytest.approx(4 / np.sqrt(20), rel=1e-5)
    assert sims[a, d] == pytest.approx(1 / np.sqrt(5), rel=1e-5)
    assert sims[a, c] == 0


def test_a_customer_who_bought_a_gets_b_above_c(knn: ItemKNN):
    frame = knn.recommend([7], k=5, exclude_purchased=True)
    order = frame["item_id"].tolist()
    assert "A" not in order
    assert order[:2] == ["B", "D"]  # scores 0.894 and 0.447; C only has popularity's tie-break
    assert order.index("B") < order.index("C")
    np.testing.assert_allclose(
        frame["score"].iloc[:2], [4 / np.sqrt(20), 1 / np.sqrt(5)], rtol=1e-4
    )
    reasons = dict(zip(frame["item_id"], frame["reason"], strict=True))
    # The item is named by the items table's title.
    assert reasons["B"] == "often bought by customers who bought Milk"
    assert reasons["D"] == "often bought by customers who bought Milk"
    assert reasons["C"] == "popular now with other customers"


def test_the_reason_never_names_the_item_itself(knn: ItemKNN):
    # Customer 7 bought A only: A scores its self-similarity 1 and comes first, but "often bought
    # by customers who bought Milk" would explain Milk by Milk.
    frame = knn.recommend([7, 1], k=3)
    seven = frame[frame["customer_id"] == 7]
    assert seven["item_id"].iloc[0] == "A"
    assert seven["reason"].iloc[0] == "you bought this before"
    # Customer 1 bought A, B and D: A is explained by B, its closest other item.
    one = frame[frame["customer_id"] == 1].set_index("item_id")["reason"]
    assert one["A"] == "often bought by customers who bought Butter"
    assert one["B"] == "often bought by customers who bought Milk"


def test_similar_items_lists_b_first_with_the_shared_buyers(knn: ItemKNN):
    frame = knn.similar_items(["A"], k=5)
    assert frame["similar_item_id"].tolist() == ["B", "D"]  # C shares no customer with A
    assert frame["reason"].tolist() == ["4 customers bought both", "1 customer bought both"]
    np.testing.assert_allclose(frame["score"], [4 / np.sqrt(20), 1 / np.sqrt(5)], rtol=1e-6)
    frame = knn.similar_items(["C", "A"], k=1)
    assert frame[["item_id", "similar_item_id"]].values.tolist() == [["A", "B"]]  # C: none


def test_titles_fall_back_to_brand_and_category(make_dataset):
    items = pd.DataFrame(
        {
            "item_id": ["A", "B"],
            "brand": ["Acme", "Acme"],
            "category": ["milk", "butter"],
        }
    )
    ds = make_dataset([(1, "A", "2024-03-01"), (1, "B", "2024-03-01"),
                       (2, "A", "2024-03-01")], items=items)  # fmt: skip
    frame = ItemKNN().fit(ds).recommend([2], k=1, exclude_purchased=True)
    assert frame["reason"].tolist() == ["often bought by customers who bought Acme Milk"]
