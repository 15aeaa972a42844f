"""Real-time input and feedback: recent events change lists at once, negative feedback removes
items, an anonymous session gets what goes with its items. Worked on the shop of handmade.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from handmade import ITEMS, SHOP, SHOP_AS_OF, SHOP_POPULAR_ORDER, events_frame

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend import REGISTRY, PersonalFrequency, Popularity, factory


def recent(*rows: tuple) -> pd.DataFrame:
    return pd.DataFrame(
        rows, columns=["customer_id", "item_id", "event_type", "value"][: len(rows[0])]
    )


def test_a_purchase_just_made_is_excluded_at_once(shop: Dataset):
    model = Popularity().fit(shop)
    before = model.recommend([4], k=3, exclude_purchased=True)["item_id"].tolist()
    # Customer 4 bought C and D in January: A, B, E lead.
    assert before == ["A", "B", "E"]
    after = model.recommend([4], k=3, exclude_purchased=True, recent=recent((4, "A", "purchase")))[
        "item_id"
    ].tolist()
    assert after == ["B", "E", "F"]


def test_recent_events_of_other_customers_change_nothing(shop: Dataset):
    model = Popularity().fit(shop)
    frame = model.recommend([4], k=3, exclude_purchased=True, recent=recent((1, "A", "purchase")))
    assert frame["item_id"].tolist() == ["A", "B", "E"]


def test_not_interested_removes_an_item_even_without_exclusion(shop: Dataset):
    model = Popularity().fit(shop)
    frame = model.recommend([4], k=6, recent=recent((4, "A", "not_interested")))
    assert "A" not in frame["item_id"].tolist()
    assert frame["item_id"].tolist() == [i for i in SHOP_POPULAR_ORDER if i != "A"]


def test_a_low_rating_removes_an_item_a_high_one_does_not(shop: Dataset):
    model = Popularity().fit(shop)
    low = model.recommend([4], k=6, recent=recent((4, "B", "rating", 1.0)))
    high = model.recommend([4], k=6, recent=recent((4, "B", "rating", 5.0)))
    assert "B" not in low["item_id"].tolist()
    assert "B" in high["item_id"].tolist()


def test_negative_feedback_in_the_dataset_is_remembered(make_dataset, make_warehouse):
    rows = [*SHOP, (4, "A", "2024-03-30 12:00", "not_interested")]
    dataset = make_dataset(rows, as_of=SHOP_AS_OF)
    for name in ("popularity", "personal_frequency", "item_knn"):
        lists = factory(name)().fit(dataset).recommend([4], k=6)
        assert "A" not in lists["item_id"].tolist(), name
    # A later low rating of one's own favourite removes it too.
    events = events_frame(SHOP).assign(value=np.nan)
    events.loc[len(events)] = [1, "A", "2024-03-30 20:00", "rating", 1, 1.0]
    rated = Dataset.from_warehouse(make_warehouse(items=ITEMS, events=events), as_of=SHOP_AS_OF)
    assert "A" not in PersonalFrequency().fit(rated).recommend([1], k=6)["item_id"].tolist()


def test_a_newcomer_with_recent_events_gets_what_goes_with_them(shop: Dataset):
    model = Popularity().fit(shop)
    cold = model.recommend(["new"], k=2)
    assert cold["reason"].str.startswith("new here").all()
    # Butter (B) was bought by customers 1 and 5, who both bought Milk (A): A comes first
    # (after Butter itself, unless what was just viewed is excluded).
    viewed = recent(("new", "B", "view"))
    assert model.recommend(["new"], k=1, recent=viewed)["item_id"].tolist() == ["B"]
    warm = model.recommend(["new"], k=2, exclude_purchased=True, recent=viewed)
    assert warm["item_id"].iloc[0] == "A"
    assert warm["reason"].iloc[0] == "often bought with Butter (2 customers bought both)"


def test_session_recommendations_by_hand(shop: Dataset):
    model = Popularity().fit(shop)
    frame = model.recommend_session(["C"], k=3)
    # Bread (C) buyers: customers 2 and 4. Customer 2 bought A; customer 4 bought D.
    # cosine(C, A) = 1 / sqrt(2 * 3); cosine(C, D) = 1 / sqrt(2 * 1): D first, then A.
    assert frame["item_id"].tolist()[:2] == ["D", "A"]
    np.testing.assert_allclose(frame["score"].iloc[:2], [1 / np.sqrt(2), 1 / np.sqrt(6)], rtol=1e-4)
    assert frame["reason"].iloc[0] == "often bought with Bread (1 customer bought both)"
    assert "C" not in frame["item_id"].tolist()


def test_a_session_of_unknown_items_gets_the_cold_start_list(shop: Dataset):
    frame = Popularity().fit(shop).recommend_session(["nope"], k=3)
    assert frame["item_id"].tolist() == SHOP_POPULAR_ORDER[:3]


def test_every_registered_recommender_takes_recent_events(shop: Dataset):
    events = recent((4, "A", "purchase"), (4, "B", "not_interested"))
    for name in REGISTRY:
        model = factory(name)().fit(shop)
        frame = model.recommend([4, "new"], k=4, exclude_purchased=True, recent=events)
        items = frame.loc[frame["customer_id"] == 4, "item_id"].tolist()
        assert "A" not in items and "B" not in items, name


def test_recent_events_need_their_columns(shop: Dataset):
    with pytest.raises(TailorError, match="missing column"):
        Popularity().fit(shop).recommend([4], recent=pd.DataFrame({"customer_id": [4]}))
