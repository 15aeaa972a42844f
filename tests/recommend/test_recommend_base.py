"""The machinery every recommender shares (tailor.recommend.base), through Popularity and
PersonalFrequency on the hand-made shop of handmade.py."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from handmade import SHOP_POPULAR_ORDER, SHOP_POPULARITY

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend import (
    RECOMMEND_COLUMNS,
    REGISTRY,
    ItemKNN,
    PersonalFrequency,
    Popularity,
    Recommender,
    Repurchase,
)


@pytest.fixture(scope="module")
def popularity(shop: Dataset) -> Popularity:
    return Popularity().fit(shop)


@pytest.fixture(scope="module")
def frequency(shop: Dataset) -> PersonalFrequency:
    return PersonalFrequency().fit(shop)


def items_of(frame: pd.DataFrame, customer) -> list:
    return frame.loc[frame["customer_id"] == customer, "item_id"].tolist()


def test_the_contract_columns_ranks_and_order(frequency: PersonalFrequency):
    frame = frequency.recommend([1, 2, 3], k=4)
    assert list(frame.columns) == RECOMMEND_COLUMNS == [
        "customer_id", "rank", "item_id", "score", "reason",
    ]  # fmt: skip
    assert len(frame) == 12
    for _, group in frame.groupby("customer_id"):
        assert group["rank"].tolist() == [1, 2, 3, 4]
        assert (np.diff(group["score"].to_numpy()) <= 0).all()
    # Customer 1 bought A on 3 days and B on one: their own items first, then the popular ones.
    assert items_of(frame, 1) == ["A", "B", "C", "E"]


def test_customer_ids_given_as_text_come_back_as_the_datasets_integers(
    frequency: PersonalFrequency,
):
    as_text = frequency.recommend(["1", "2"], k=3)
    as_ints = frequency.recommend([1, 2], k=3)
    pd.testing.assert_frame_equal(as_text, as_ints)
    assert as_text["customer_id"].tolist() == [1, 1, 1, 2, 2, 2]
    assert all(isinstance(c, int | np.integer) for c in as_text["customer_id"])


def test_an_unknown_customer_gets_recent_popularity(frequency: PersonalFrequency):
    frame = frequency.recommend(["999", 1], k=6)
    new = frame[frame["customer_id"] == "999"]  # kept as given: the dataset has no such id
    assert new["item_id"].tolist() == SHOP_POPULAR_ORDER
    np.testing.assert_allclose(new["score"], [SHOP_POPULARITY[i] for i in SHOP_POPULAR_ORDER])
    assert new["reason"].str.startswith("new here").all()
    # The count in the reason is the window's distinct buyers (A: customers 1, 2 and 5).
    assert new["reason"].iloc[0] == (
        "new here: popular now, bought by 3 customers in the last 4 weeks"
    )
    assert not frame.loc[frame["customer_id"] == 1, "reason"].str.startswith("new here").any()


def test_exclude_purchased_removes_every_item_the_customer_had(frequency: PersonalFrequency):
    # Customer 1 had A and B; customer 2 had A and C.
    frame = frequency.recommend([1, 2], k=6, exclude_purchased=True)
    assert items_of(frame, 1) == ["C", "E", "D", "F"]  # the rest, by popularity
    assert items_of(frame, 2) == ["B", "E", "D", "F"]


def test_exclude_purchased_covers_views_too(make_dataset):
    # "Interacted": a view is history as well (its weight, 0.1, is positive).
    ds = make_dataset([(1, "A", "2024-03-01"), (1, "C", "2024-03-02", "view"),
                       (2, "B", "2024-03-02")])  # fmt: skip
    frame = Popularity().fit(ds).recommend([1], k=6, exclude_purchased=True)
    assert set(items_of(frame, 1)) == {"B", "D", "E", "F"}


def test_filters(frequency: PersonalFrequency):
    frame = frequency.recommend([1], k=6, filters={"exclude_items": ["A", "nope"]})
    assert items_of(frame, 1) == ["B", "C", "E", "D", "F"]
    frame = frequency.recommend([1], k=6, filters={"department": ["DAIRY"]})
    assert items_of(frame, 1) == ["A", "B"]  # no padding rows after the two dairy items
    assert frame["rank"].tolist() == [1, 2]
    frame = frequency.recommend(
        [1, "999"], k=6, filters={"department": ["BAKERY", "PET"], "exclude_items": ["C"]}
    )
    assert items_of(frame, 1) == ["E", "D", "F"]
    assert items_of(frame, "999") == ["E", "D", "F"]  # cold start is filtered the same way
    with pytest.raises(TailorError, match="'colour': not an item attribute"):
        frequency.recommend([1], filters={"colour": ["red"]})


def test_k_larger_than_the_catalog_gives_only_the_items_there_are(popularity: Popularity):
    frame = popularity.recommend([1, "999"], k=50)
    assert len(frame) == 12
    assert items_of(frame, 1) == SHOP_POPULAR_ORDER
    assert frame.loc[frame["customer_id"] == 1, "rank"].tolist() == [1, 2, 3, 4, 5, 6]
    frame = popularity.recommend([1], k=50, exclude_purchased=True)
    assert items_of(frame, 1) == ["C", "E", "D", "F"]


def test_recommend_rows_pads_with_minus_one(popularity: Popularity, shop: Dataset):
    rows = shop.customer_index([1, 2])
    items, scores = popularity.recommend_rows(np.append(rows, -1), k=8, exclude_purchased=True)
    assert items.shape == scores.shape == (3, 8)
    names = shop.item_ids
    assert names[items[0, :4]].tolist() == ["C", "E", "D", "F"]
    assert items[0, 4:].tolist() == [-1] * 4
    assert np.isneginf(scores[0, 4:]).all()
    assert names[items[1, :4]].tolist() == ["B", "E", "D", "F"]
    assert items[1, 4:].tolist() == [-1] * 4
    # Row -1 (unknown) gets the whole cold-start list, so only the last 2 slots are padding.
    assert names[items[2, :6]].tolist() == SHOP_POPULAR_ORDER
    assert items[2, 6:].tolist() == [-1, -1]


def test_save_and_load_round_trip(shop: Dataset, tmp_path):
    for model in (Popularity().fit(shop), PersonalFrequency(half_life_days=7).fit(shop),
                  Repurchase().fit(shop), ItemKNN().fit(shop)):  # fmt: skip
        path = tmp_path / f"{model.name}.pkl"
        model.save(path)
        with open(path, "rb") as f:
            assert not hasattr(pickle.load(f), "dataset_")  # the build saves the dataset once
        loaded = Recommender.load(path, shop)
        assert type(loaded) is type(model)
        assert loaded.dataset_ is shop
        customers = [1, 2, 3, 4, 5, "999"]
        pd.testing.assert_frame_equal(
            loaded.recommend(customers, k=4, exclude_purchased=True),
            model.recommend(customers, k=4, exclude_purchased=True),
        )
        pd.testing.assert_frame_equal(loaded.similar_items(["A"]), model.similar_items(["A"]))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_an_unfitted_model_raises(name: str):
    model = REGISTRY[name]()
    with pytest.raises(TailorError, match="not fitted"):
        model.recommend([1])
    with pytest.raises(TailorError, match="not fitted"):
        model.recommend_rows(np.array([0]))
    with pytest.raises(TailorError, match="not fitted"):
        model.similar_items(["A"])


def test_similar_items_by_shared_customers(popularity: Popularity):
    # A's buyers are {1, 2, 5}; B's {1, 5}: 2 in common, cosine 2 / sqrt(3 * 2). C's buyers
    # {2, 4} share 1: 1 / sqrt(3 * 2). E and D share none, so they are not listed.
    frame = popularity.similar_items(["A"], k=10)
    assert list(frame.columns) == ["item_id", "rank", "similar_item_id", "score", "reason"]
    assert frame["similar_item_id"].tolist() == ["B", "C"]
    assert frame["rank"].tolist() == [1, 2]
    np.testing.assert_allclose(frame["score"], [2 / np.sqrt(6), 1 / np.sqrt(6)], rtol=1e-6)
    assert frame["reason"].tolist() == ["2 customers bought both", "1 customer bought both"]
    with pytest.raises(TailorError, match="unknown item 'nope'"):
        popularity.similar_items(["nope"])
