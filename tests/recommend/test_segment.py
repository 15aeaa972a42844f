"""Segment popularity, worked by hand on a shop of dairy shoppers and pet shoppers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from handmade import ITEMS, events_frame

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend import REGISTRY, SegmentPopularity

# Dairy shoppers 1-3 (3 also buys bread), pet shoppers 4-6 (6 also buys bagels); 7 has bought
# nothing. Distinct buyers: A {1,2,3} B {1,2} C {3} D {6} E {4,5,6} F {4,5}.
ROWS = [
    (1, "A", "2024-03-01 10:00"), (1, "B", "2024-03-02 10:00"),
    (2, "A", "2024-03-03 10:00"), (2, "B", "2024-03-04 10:00"),
    (3, "A", "2024-03-05 10:00"), (3, "C", "2024-03-06 10:00"),
    (4, "E", "2024-03-01 10:00"), (4, "F", "2024-03-02 10:00"),
    (5, "E", "2024-03-03 10:00"), (5, "F", "2024-03-04 10:00"),
    (6, "E", "2024-03-05 10:00"), (6, "D", "2024-03-06 10:00"),
]  # fmt: skip
CUSTOMERS = pd.DataFrame(
    {"customer_id": [1, 2, 3, 4, 5, 6, 7], "tier": ["a", "a", "b", "b", "b", "b", "a"]}
)


@pytest.fixture(scope="module")
def dataset(make_warehouse) -> Dataset:
    wh = make_warehouse(items=ITEMS, customers=CUSTOMERS, events=events_frame(ROWS))
    return Dataset.from_warehouse(wh, as_of="2024-03-31")


def test_behaviour_segments_split_dairy_from_pet(dataset: Dataset):
    model = SegmentPopularity(n_segments=2, category="department").fit(dataset)
    seg = model.segment_[dataset.customer_index([1, 2, 3, 4, 5, 6, 7])]
    assert seg[0] == seg[1] == seg[2] != seg[3] == seg[4] == seg[5]
    assert seg[6] == -1  # no purchases: no segment


def test_scores_are_the_share_of_the_segment_who_bought(dataset: Dataset):
    model = SegmentPopularity(n_segments=2, category="department").fit(dataset)
    # Share of the segment + 0.001 x all-time buyers / the most buyers of an item (3).
    dairy = model.recommend([1], k=6)
    assert dairy["item_id"].tolist() == ["A", "B", "C", "E", "F", "D"]
    np.testing.assert_allclose(
        dairy["score"], [1 + 1e-3, 2 / 3 + 2e-3 / 3, 1 / 3 + 1e-3 / 3, 1e-3, 2e-3 / 3, 1e-3 / 3],
        rtol=1e-5,
    )  # fmt: skip
    pet = model.recommend([6], k=3)
    assert pet["item_id"].tolist() == ["E", "F", "D"]
    assert "customers like you" in pet["reason"].iloc[0]
    assert "3 of 3 bought it in the last 91 days" in pet["reason"].iloc[0]


def test_a_customer_without_a_segment_gets_everyones_list(dataset: Dataset):
    model = SegmentPopularity(n_segments=2, category="department").fit(dataset)
    frame = model.recommend([7], k=2)
    # Everyone: A and E have 3 buyers of 7 customers; A is the lower column.
    assert frame["item_id"].tolist() == ["A", "E"]
    assert frame["reason"].iloc[0].startswith("popular with all customers: 3 of 7")


def test_an_attribute_gives_the_segments(dataset: Dataset):
    model = SegmentPopularity(attribute="tier").fit(dataset)
    # Tier a = {1, 2, 7}: A and B bought by 2 of 3; tier b = {3..6}: E by 3 of 4.
    assert model.recommend([7], k=2)["item_id"].tolist() == ["A", "B"]
    top = model.recommend([3], k=1)
    assert top["item_id"].tolist() == ["E"]
    assert "(tier b): 3 of 4" in top["reason"].iloc[0]


def test_an_unknown_attribute_is_a_clear_error(dataset: Dataset):
    with pytest.raises(TailorError, match="no customer attribute 'nope'"):
        SegmentPopularity(attribute="nope").fit(dataset)


def test_registered():
    assert isinstance(REGISTRY["segment_popularity"](), SegmentPopularity)
