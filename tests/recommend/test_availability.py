"""Business rules: items the catalogue marks as not for sale, and excluded attribute values."""

from __future__ import annotations

import pandas as pd
import pytest
from handmade import ITEMS, SHOP, SHOP_AS_OF, events_frame

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend import REGISTRY, Popularity, factory
from tailor.recommend.base import unavailable_items


def test_unavailable_items_by_hand():
    items = pd.DataFrame(
        {
            "in_stock": ["true", "false", None, "no", "1", "0"],
            "stock": [3, 5, 0, None, -1, 2],
        }
    )
    assert unavailable_items(items).tolist() == [False, True, True, True, True, True]
    assert unavailable_items(pd.DataFrame({"active": [True, False, None]})).tolist() == [
        False, True, False,
    ]  # fmt: skip
    assert not unavailable_items(pd.DataFrame({"price": [1.0]})).any()


@pytest.fixture(scope="module")
def stocked(make_warehouse) -> Dataset:
    """The shop of handmade.py with Milk (A) out of stock."""
    items = ITEMS.assign(in_stock=[False, True, True, True, True, True])
    wh = make_warehouse(items=items, events=events_frame(SHOP))
    return Dataset.from_warehouse(wh, as_of=SHOP_AS_OF)


def test_no_recommender_offers_an_item_out_of_stock(stocked: Dataset):
    for name in REGISTRY:
        model = factory(name)().fit(stocked)
        frame = model.recommend([1, 2, 4, "new"], k=6)
        assert "A" not in frame["item_id"].tolist(), name
        assert "A" not in model.recommend_session(["B"], k=6)["item_id"].tolist(), name


def test_exclude_an_attribute_value(shop: Dataset):
    frame = Popularity().fit(shop).recommend([4], k=6, filters={"exclude_department": ["DAIRY"]})
    assert frame["item_id"].tolist() == ["C", "E", "D", "F"]


def test_an_unknown_filter_is_a_clear_error(shop: Dataset):
    with pytest.raises(TailorError, match="not an item attribute"):
        Popularity().fit(shop).recommend([4], filters={"exclude_colour": ["red"]})
