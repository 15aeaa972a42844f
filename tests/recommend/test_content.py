"""Content-based: profiles from what customers bought, worked by hand on a small catalogue."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from handmade import events_frame
from sklearn.preprocessing import normalize

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend import REGISTRY, ContentBased

# Two yogurts of one brand, a yogurt of another, a cheese of the first brand, a dog food; N is
# new (nobody bought it) and a yogurt of brand Y.
CATALOGUE = pd.DataFrame(
    {
        "item_id": ["Y1", "Y2", "Z1", "C1", "D1", "N"],
        "title": ["Yo strawberry yogurt", "Yo peach yogurt", "Zed plain yogurt",
                  "Yo cheddar cheese", "Woof dog food", "Yo mango yogurt"],
        "department": ["DAIRY", "DAIRY", "DAIRY", "DAIRY", "PET", "DAIRY"],
        "category": ["YOGURT", "YOGURT", "YOGURT", "CHEESE", "DOG", "YOGURT"],
        "brand": ["Yo", "Yo", "Zed", "Yo", "Woof", "Yo"],
    }
)  # fmt: skip
ROWS = [
    (1, "Y1", "2024-03-01 10:00"), (1, "Y1", "2024-03-08 10:00"),
    (2, "D1", "2024-03-02 10:00"),
    (3, "Z1", "2024-03-03 10:00"), (3, "C1", "2024-03-04 10:00"),
]  # fmt: skip


@pytest.fixture(scope="module")
def dataset(make_warehouse) -> Dataset:
    wh = make_warehouse(items=CATALOGUE, events=events_frame(ROWS))
    return Dataset.from_warehouse(wh, as_of="2024-03-31")


def test_scores_are_cosines_to_the_profile_plus_the_prior(dataset: Dataset):
    model = ContentBased(popularity_weight=0.0).fit(dataset)
    vectors = model.item_vectors_.toarray()
    # Rows are unit vectors: one-hot block and TF-IDF block each normalised, then the whole.
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    row = dataset.customer_index([1])[0]
    profile = normalize(dataset.interactions[row] @ model.item_vectors_).toarray()[0]
    np.testing.assert_allclose(model._score(np.array([row]))[0], vectors @ profile, rtol=1e-5)


def test_a_yogurt_buyer_gets_the_brands_new_yogurt_first(dataset: Dataset):
    model = ContentBased(popularity_weight=0.0).fit(dataset)
    frame = model.recommend([1], k=3, exclude_purchased=True)
    # Y2 and N share department, category, brand and the word "yogurt" with Y1; N was never
    # bought, and is reached all the same.
    assert set(frame["item_id"].iloc[:2]) == {"Y2", "N"}
    assert frame["item_id"].iloc[2] == "Z1"  # a yogurt of another brand before a cheese
    first = frame["reason"].iloc[0]
    assert first.startswith("similar to Yo strawberry yogurt you bought (same ")
    assert "brand" in first


def test_the_pet_owner_is_offered_nothing_of_dairy_first(dataset: Dataset):
    frame = ContentBased(popularity_weight=0.0).fit(dataset).recommend([2], k=6)
    assert frame["item_id"].iloc[0] == "D1"
    assert frame["reason"].iloc[0].startswith("you bought this before")


def test_similar_content_ranks_by_cosine(dataset: Dataset):
    model = ContentBased().fit(dataset)
    frame = model.similar_content(["Y1"], k=5)
    assert frame["similar_item_id"].iloc[-1] == "D1"  # nothing in common
    assert (np.diff(frame["score"]) <= 1e-9).all()
    with pytest.raises(TailorError, match="unknown item"):
        model.similar_content(["nope"])


def test_a_catalogue_without_attributes_is_a_clear_error(make_warehouse):
    items = pd.DataFrame({"item_id": ["A", "B"], "price": [1.0, 2.0]})
    wh = make_warehouse(items=items, events=events_frame([(1, "A", "2024-03-01 10:00")]))
    with pytest.raises(TailorError, match="content: the catalogue has none"):
        ContentBased().fit(Dataset.from_warehouse(wh))


def test_registered():
    assert isinstance(REGISTRY["content"](), ContentBased)
