"""Tests for tailor.dataset: interactions worked by hand, id maps, as_of cuts and splits."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.dataset import Dataset, as_of_bound
from tailor.errors import TailorError
from tailor.store import Warehouse
from tailor.synthetic import SyntheticData

# A tiny shop: customers 1-3 and 5 have events, 4 is only in the customers table (and 5 only in
# the events); items 10-13 have events, 14 is only in the catalog. Baskets are given for
# purchases, carts and returns; views and ratings have none (ingest leaves them empty).
EVENTS = pd.DataFrame(
    [
        # customer, item, type, timestamp, quantity, value, basket
        (1, 10, "purchase", "2024-03-01 10:00:00", 1, 2.0, "b1"),
        (1, 11, "purchase", "2024-03-01 10:00:00", 3, 6.0, "b1"),
        (1, 12, "view", "2024-03-01 23:59:00", None, None, None),
        (2, 10, "cart", "2024-03-02 00:00:00", 1, None, "b2"),
        (2, 10, "purchase", "2024-03-02 09:00:00", 1, 2.0, "b3"),
        (2, 11, "purchase", "2024-03-02 09:00:00", 1, 2.0, "b3"),
        (2, 13, "view", "2024-03-03 12:00:00", None, None, None),
        (2, 11, "return", "2024-03-05 09:00:00", 1, 2.0, "b4"),
        (2, 13, "return", "2024-03-05 09:00:00", 1, 5.0, "b4"),
        (3, 10, "purchase", "2024-03-02 15:00:00", 3, 6.0, "b5"),
        (3, 12, "rating", "2024-03-03 18:00:00", None, 4.0, None),
        (3, 12, "rating", "2024-03-04 18:00:00", None, 2.0, None),
        (3, 13, "view", "2024-03-04 18:00:00", None, None, None),
        # a retailer's return: a purchase row with negative quantity and value
        (3, 10, "purchase", "2024-03-06 11:00:00", -3, -6.0, "b6"),
        (5, 13, "purchase", "2024-03-03 10:00:00", 1, 5.0, "b7"),
    ],
    columns=["customer_id", "item_id", "event_type", "timestamp", "quantity", "value", "basket_id"],
)
ITEMS = pd.DataFrame(
    {
        "item_id": [10, 11, 12, 13, 14],
        "department": ["DAIRY", "DAIRY", "BAKERY", "PET", "PET"],
        "price": [2.0, 2.0, 3.5, 5.0, 9.0],
    }
)
CUSTOMERS = pd.DataFrame({"customer_id": [1, 2, 3, 4], "age_band": ["25-34", "35-44", None, "65+"]})
CAMPAIGNS = pd.DataFrame(
    {
        "campaign_id": [1, 2],
        "name": ["Spring", "Easter"],
        "start": ["2024-02-20", "2024-03-04"],
        "end": ["2024-03-10", "2024-03-20"],
    }
)
OFFERS = pd.DataFrame({"offer_id": [100, 200], "campaign_id": [1, 2], "item_id": [10, 12]})
REDEMPTIONS = pd.DataFrame(
    {
        "customer_id": [1, 2],
        "offer_id": [100, 200],
        "campaign_id": [1, 2],
        "timestamp": ["2024-03-01 12:00:00", "2024-03-04 10:00:00"],
    }
)

# Rows customers 1-5, columns items 10-14, with the default weights.
EXPECTED = np.array(
    [
        [1.0, 2.0, 0.1, 0.0, 0.0],  # qty 1 -> 1, qty 3 -> log2(4) = 2, a view 0.1
        [1.5, 0.0, 0.0, 0.0, 0.0],  # cart 0.5 + purchase 1; 11 bought and returned; 13: 0.1 - 1
        [0.0, 0.0, 2.0, 0.1, 0.0],  # 10 bought 3 and returned 3; the latest rating of 12 is 2
        [0.0, 0.0, 0.0, 0.0, 0.0],  # no events
        [0.0, 0.0, 0.0, 1.0, 0.0],
    ]
)


@pytest.fixture(scope="module")
def shop(make_warehouse) -> Warehouse:
    return make_warehouse(
        items=ITEMS,
        customers=CUSTOMERS,
        events=EVENTS,
        campaigns=CAMPAIGNS,
        offers=OFFERS,
        redemptions=REDEMPTIONS,
    )


@pytest.fixture(scope="module")
def ds(shop: Warehouse) -> Dataset:
    return Dataset.from_warehouse(shop)


# --- interactions worked by hand ---------------------------------------------------------------


def test_interactions_by_hand(ds: Dataset):
    matrix = ds.interactions
    assert isinstance(matrix, sp.csr_matrix)
    assert matrix.shape == (5, 5)
    assert matrix.dtype == np.float32
    np.testing.assert_allclose(matrix.toarray(), EXPECTED, rtol=1e-6)
    # Cancelled and floored pairs are absent from the CSR, not stored zeros.
    assert matrix.nnz == 7
    assert (matrix.data > 0).all()
    assert matrix[1, 1] == 0 and matrix[2, 0] == 0


def _with_ids(ds: Dataset, events: pd.DataFrame) -> pd.DataFrame:
    """Events with customer_id, item_id and the event type as text, for reading by eye."""
    return events.assign(
        customer_id=ds.customer_ids[events["customer"]],
        item_id=ds.item_ids[events["item"]],
        event_type=events["event_type"].astype(str),
    )


def test_event_weights_by_hand(ds: Dataset):
    ev = _with_ids(ds, ds.events)
    weight = ev.set_index(["customer_id", "item_id", "timestamp", "event_type"])["weight"]
    assert weight.loc[1, 11, pd.Timestamp("2024-03-01 10:00"), "purchase"] == 2.0
    assert weight.loc[2, 10, pd.Timestamp("2024-03-02 00:00"), "cart"] == 0.5
    assert weight.loc[2, 11, pd.Timestamp("2024-03-05 09:00"), "return"] == -1.0
    # only the latest rating counts, at its value
    assert weight.loc[3, 12, pd.Timestamp("2024-03-03 18:00"), "rating"] == 0.0
    assert weight.loc[3, 12, pd.Timestamp("2024-03-04 18:00"), "rating"] == 2.0
    # the negative-quantity purchase was stored as a return of 3 units
    assert weight.loc[3, 10, pd.Timestamp("2024-03-06 11:00"), "return"] == pytest.approx(-2.0)


def test_custom_weights(shop: Warehouse):
    ds = Dataset.from_warehouse(shop, weights={"purchase": 2.0, "view": 1.0, "rating": 0.5})
    expected = np.array(
        [
            [2.0, 4.0, 1.0, 0.0, 0.0],
            [2.5, 1.0, 0.0, 0.0, 0.0],  # 11: 2 - 1 (returns keep their default weight)
            [2.0, 0.0, 1.0, 1.0, 0.0],  # 10: 2 x 2 - 2; rating 2 x 0.5
            [0.0, 0.0, 0.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 2.0, 0.0],
        ]
    )
    np.testing.assert_allclose(ds.interactions.toarray(), expected, rtol=1e-6)
    assert ds.weights["cart"] == 0.5 and ds.weights["purchase"] == 2.0


def test_event_type_without_weight_weighs_nothing(make_warehouse):
    events = EVENTS.iloc[:2].assign(event_type=["wishlist", "purchase"])
    ds = Dataset.from_warehouse(make_warehouse(events=events))
    np.testing.assert_allclose(ds.interactions.toarray(), [[0.0, 2.0]])
    assert ds.interactions.nnz == 1


# --- id maps -------------------------------------------------------------------------------------


def test_id_maps_cover_every_known_id(ds: Dataset):
    assert ds.customer_ids.dtype == np.int64 and ds.item_ids.dtype == np.int64
    assert ds.customer_ids.tolist() == [1, 2, 3, 4, 5]
    assert ds.item_ids.tolist() == [10, 11, 12, 13, 14]
    assert (ds.n_customers, ds.n_items) == (5, 5)
    # customer 4 (customers table only) and item 14 (catalog only) are reachable, with nothing
    assert ds.customer_index([4]).tolist() == [3]
    assert ds.item_index([14]).tolist() == [4]
    assert ds.interactions[3].nnz == 0
    assert ds.interactions[:, 4].nnz == 0


def test_id_lookup_both_ways(ds: Dataset):
    ids = np.array([5, 1, 3, 3])
    assert np.array_equal(ds.customer_ids[ds.customer_index(ids)], ids)
    assert np.array_equal(ds.item_ids[ds.item_index([14, 10])], [14, 10])
    assert ds.item_index(ds.item_ids).tolist() == list(range(5))


def test_integer_ids_accept_text_and_reject_the_rest(ds: Dataset):
    assert ds.customer_index(["2", "5", 3]).tolist() == [1, 4, 2]
    assert ds.customer_index(["x", "7", 7, None, 2.5, "2.5", 2.0]).tolist() == [
        -1, -1, -1, -1, -1, -1, 1,
    ]  # fmt: skip
    assert ds.item_index(np.array([12, 99], dtype=np.int32)).tolist() == [2, -1]
    assert ds.item_index([]).tolist() == []


def test_text_ids(make_warehouse):
    events = pd.DataFrame(
        {
            "customer_id": ["bob", "alice", "bob"],
            "item_id": ["SKU-9", "00123", "00123"],
            "timestamp": ["2024-01-01", "2024-01-02", "2024-01-03"],
        }
    )
    items = pd.DataFrame({"item_id": ["00123", "SKU-9", "A7"], "title": ["Milk", "Tea", "Jam"]})
    ds = Dataset.from_warehouse(make_warehouse(fmt="parquet", items=items, events=events))
    assert ds.customer_ids.dtype == object and ds.item_ids.dtype == object
    assert sorted(ds.customer_ids) == ["alice", "bob"]
    assert sorted(ds.item_ids) == ["00123", "A7", "SKU-9"]
    wanted = np.array(["bob", "alice", "carol"], dtype=object)
    rows = ds.customer_index(wanted)
    assert rows[2] == -1
    assert ds.customer_ids[rows[:2]].tolist() == ["bob", "alice"]
    # "00123" is text: 123 is another id
    assert ds.item_index(["00123", 123, "A7"])[1] == -1
    dense = pd.DataFrame(ds.interactions.toarray(), index=ds.customer_ids, columns=ds.item_ids)
    assert dense.loc["bob", "00123"] == 1.0 and dense.loc["bob", "SKU-9"] == 1.0
    assert dense.loc["alice", "00123"] == 1.0 and dense["A7"].sum() == 0
    assert (
        ds.items.set_index("item_id").loc[ds.item_ids, "title"].tolist()
        == ds.items["title"].tolist()
    )


# --- frames ------------------------------------------------------------------------------------


def test_events_columns_and_dtypes(ds: Dataset):
    ev = ds.events
    assert list(ev.columns) == [
        "customer", "item", "basket", "timestamp", "event_type", "quantity", "value", "weight",
    ]  # fmt: skip
    assert ev["customer"].dtype == np.int32 and ev["item"].dtype == np.int32
    assert ev["basket"].dtype == np.int64
    assert pd.api.types.is_datetime64_dtype(ev["timestamp"])
    assert isinstance(ev["event_type"].dtype, pd.CategoricalDtype)
    for column in ("quantity", "value", "weight"):
        assert ev[column].dtype == np.float32, column
    assert ev["timestamp"].is_monotonic_increasing
    assert len(ev) == len(EVENTS)
    assert ev["event_type"].value_counts().to_dict() == {
        "purchase": 6, "view": 3, "return": 3, "rating": 2, "cart": 1,
    }  # fmt: skip
    # returns are stored with positive quantity and value
    returns = ev[ev["event_type"] == "return"]
    assert sorted(returns["quantity"]) == [1, 1, 3] and (returns["value"] > 0).all()


def test_baskets(ds: Dataset):
    ev = ds.events
    # 7 baskets named in the file; the 5 views and ratings without one form a basket per
    # customer and moment (the view of 13 and the rating of 12 by customer 3 share one).
    assert ev["basket"].nunique() == 11
    assert ev["basket"].min() == 0 and ev["basket"].max() == 10
    rating = ev[(ev["event_type"] == "rating") & (ev["timestamp"] == "2024-03-04 18:00")]
    view = ev[(ev["event_type"] == "view") & (ev["timestamp"] == "2024-03-04 18:00")]
    assert rating["basket"].item() == view["basket"].item()
    purchases_b3 = ev[(ev["customer"] == 1) & (ev["event_type"] == "purchase")]
    assert purchases_b3["basket"].nunique() == 1


def test_attribute_frames_align_with_id_maps(ds: Dataset):
    assert ds.items["item_id"].tolist() == ds.item_ids.tolist()
    assert ds.customers["customer_id"].tolist() == ds.customer_ids.tolist()
    assert ds.items["department"].tolist() == ["DAIRY", "DAIRY", "BAKERY", "PET", "PET"]
    assert ds.items["price"].tolist() == [2.0, 2.0, 3.5, 5.0, 9.0]
    assert ds.customers["age_band"].tolist()[:2] == ["25-34", "35-44"]
    # customer 3's band is missing and customer 5 is not in the customers table
    assert ds.customers["age_band"].isna().tolist() == [False, False, True, False, True]
    for frame in (ds.items, ds.customers, ds.campaigns, ds.redemptions, ds.offers):
        assert not {"row_key", "ingest_id"} & set(frame.columns)


def test_synthetic_attributes_align(synthetic: SyntheticData, synthetic_dataset: Dataset):
    ds = synthetic_dataset
    assert np.array_equal(ds.items["item_id"].to_numpy(), ds.item_ids)
    expected = synthetic.items.set_index("item_id").loc[ds.item_ids]
    assert ds.items["department"].tolist() == expected["department"].tolist()
    np.testing.assert_allclose(ds.items["price"], expected["price"])
    customers = synthetic.customers.set_index("customer_id").loc[ds.customer_ids]
    assert ds.customers["income_band"].tolist() == customers["income_band"].tolist()


def test_summary(ds: Dataset):
    assert ds.summary() == {
        "customers": 5,
        "items": 5,
        "events": 15,
        "customers_with_events": 4,
        "items_with_events": 4,
        "baskets": 11,
        "interactions": 7,
        "density": 7 / 25,
        "first_event": "2024-03-01T10:00:00",
        "last_event": "2024-03-06T11:00:00",
        "as_of": None,
    }
    cut = ds.cut("2024-03-01").summary()
    assert cut["events"] == 3 and cut["interactions"] == 3 and cut["baskets"] == 2
    assert cut["as_of"] == "2024-03-02T00:00:00"
    assert cut["customers"] == 5 and cut["customers_with_events"] == 1


def test_summary_of_empty_warehouse(make_warehouse):
    ds = Dataset.from_warehouse(make_warehouse(items=ITEMS))
    summary = ds.summary()
    assert (summary["items"], summary["customers"], summary["events"]) == (5, 0, 0)
    assert summary["first_event"] is None and summary["density"] == 0
    assert ds.interactions.shape == (0, 5)


# --- as_of ---------------------------------------------------------------------------------------


def test_as_of_a_date_keeps_that_whole_day(shop: Warehouse):
    ds = Dataset.from_warehouse(shop, as_of="2024-03-01")
    assert ds.as_of == pd.Timestamp("2024-03-02")
    assert ds.events["timestamp"].max() == pd.Timestamp("2024-03-01 23:59")
    assert len(ds.events) == 3
    expected = np.zeros((5, 5))
    expected[0, :3] = [1.0, 2.0, 0.1]
    np.testing.assert_allclose(ds.interactions.toarray(), expected, rtol=1e-6)
    # the id maps still cover everything
    assert ds.customer_ids.tolist() == [1, 2, 3, 4, 5]
    assert ds.item_ids.tolist() == [10, 11, 12, 13, 14]
    assert Dataset.from_warehouse(shop, as_of=date(2024, 3, 1)).events.equals(ds.events)


@pytest.mark.parametrize(
    "as_of",
    [
        "2024-03-02 00:00",
        "2024-03-02T00:00:00",
        datetime(2024, 3, 2),
        pd.Timestamp("2024-03-02"),
        "2024-03-02T01:00:00+01:00",
    ],
)
def test_as_of_a_datetime_is_inclusive(shop: Warehouse, as_of):
    ds = Dataset.from_warehouse(shop, as_of=as_of)
    assert len(ds.events) == 4
    assert ds.events["timestamp"].max() == pd.Timestamp("2024-03-02 00:00")
    assert ds.interactions[1, 0] == pytest.approx(0.5)  # the cart, not yet the purchase


def test_as_of_bound():
    assert as_of_bound(None) is None
    assert as_of_bound("2024-03-01") == pd.Timestamp("2024-03-02")
    assert as_of_bound("2024-03-01 10:00") == pd.Timestamp("2024-03-01 10:00:00.000001")
    with pytest.raises(TailorError, match="not-a-date"):
        as_of_bound("not-a-date")


def test_as_of_counts_the_latest_rating_visible(shop: Warehouse):
    ds = Dataset.from_warehouse(shop, as_of="2024-03-03")
    assert ds.interactions[2, 2] == pytest.approx(4.0)


def test_as_of_hides_later_redemptions_and_campaigns(shop: Warehouse):
    ds = Dataset.from_warehouse(shop, as_of="2024-03-03")
    assert ds.campaigns["campaign_id"].tolist() == [1]
    assert ds.redemptions["customer_id"].tolist() == [1]
    # offers and members are not dated: all kept
    assert sorted(ds.offers["offer_id"]) == [100, 200]
    full = Dataset.from_warehouse(shop)
    assert sorted(full.campaigns["campaign_id"]) == [1, 2]
    assert len(full.redemptions) == 2


@pytest.mark.parametrize(
    "as_of",
    ["2024-02-01", "2024-03-01", "2024-03-02 00:00", "2024-03-03", "2024-03-04", "2025-01-01"],
)
def test_cut_equals_as_of_by_hand(shop: Warehouse, ds: Dataset, as_of):
    _assert_same(ds.cut(as_of), Dataset.from_warehouse(shop, as_of=as_of))


def test_cut_never_shows_more_than_its_dataset(ds: Dataset):
    earlier = ds.cut("2024-03-01")
    assert earlier.cut("2024-03-05").as_of == earlier.as_of
    assert len(earlier.cut("2024-03-05").events) == 3
    assert ds.cut(None) is ds


@pytest.fixture(scope="module")
def synthetic_wh(synthetic_db) -> Warehouse:
    with Warehouse(synthetic_db, read_only=True) as wh:
        yield wh


@settings(max_examples=15, deadline=None)
@given(
    st.one_of(
        st.dates(date(2023, 12, 30), date(2024, 7, 2)),
        st.datetimes(datetime(2023, 12, 31), datetime(2024, 7, 1)),
    )
)
def test_cut_equals_as_of(synthetic_wh: Warehouse, synthetic_dataset: Dataset, as_of):
    _assert_same(synthetic_dataset.cut(as_of), Dataset.from_warehouse(synthetic_wh, as_of=as_of))


def _assert_same(cut: Dataset, built: Dataset) -> None:
    assert cut.as_of == built.as_of
    pd.testing.assert_frame_equal(
        cut.events.astype({"event_type": str}), built.events.astype({"event_type": str})
    )
    assert cut.interactions.shape == built.interactions.shape
    assert (cut.interactions != built.interactions).nnz == 0
    for name in ("campaigns", "redemptions"):
        expected = getattr(built, name)
        # DuckDB gives an empty text column as object, a filtered one keeps its string dtype
        pd.testing.assert_frame_equal(getattr(cut, name), expected, check_dtype=len(expected) > 0)
    assert np.array_equal(cut.customer_ids, built.customer_ids)
    assert np.array_equal(cut.item_ids, built.item_ids)


# --- splits --------------------------------------------------------------------------------------


@pytest.mark.parametrize("test_days", [1, 7.5, 30, 365])
def test_temporal_split(synthetic_dataset: Dataset, test_days):
    ds = synthetic_dataset
    train, test = ds.temporal_split(test_days)
    last = ds.events["timestamp"].max()
    cutoff = last - pd.Timedelta(days=test_days)
    assert (train.events["timestamp"] <= cutoff).all()
    assert (test.events["timestamp"] > cutoff).all()
    assert test.events["timestamp"].max() == last
    expected_test = ds.events["timestamp"] > cutoff
    assert len(test.events) == expected_test.sum() > 0
    assert len(train.events) + len(test.events) == len(ds.events)
    together = pd.concat([train.events, test.events], ignore_index=True)
    pd.testing.assert_frame_equal(
        together.drop(columns="weight").astype({"event_type": str}),
        ds.events.drop(columns="weight").astype({"event_type": str}),
    )
    for part in (train, test):
        assert np.array_equal(part.customer_ids, ds.customer_ids)
        assert np.array_equal(part.item_ids, ds.item_ids)
        assert part.interactions.shape == ds.interactions.shape
    assert train.as_of is not None and train.as_of > cutoff
    if test_days < 365:
        assert len(train.events) > 0


def test_temporal_split_by_hand(ds: Dataset):
    train, test = ds.temporal_split(2)  # cutoff 2024-03-04 11:00
    assert train.events["timestamp"].max() == pd.Timestamp("2024-03-03 18:00")
    assert test.events["timestamp"].min() == pd.Timestamp("2024-03-04 18:00")
    assert len(test.events) == 5
    # train sees the first rating of 12 at its value; test the latest
    assert train.interactions[2, 2] == pytest.approx(4.0)
    assert test.interactions[2, 2] == pytest.approx(2.0)
    with pytest.raises(TailorError):
        ds.temporal_split(0)


def test_last_basket_split_by_hand(ds: Dataset):
    train, test = ds.last_basket_split()
    held = _with_ids(ds, test.events)[["customer_id", "item_id", "event_type"]]
    assert set(held.itertuples(index=False, name=None)) == {
        (1, 12, "view"),  # customer 1's last basket: the view at 23:59
        (2, 11, "return"),
        (2, 13, "return"),
        (3, 10, "return"),
    }  # customer 5 has one basket: kept in train
    assert len(train.events) + len(test.events) == len(ds.events)
    assert train.interactions[4, 3] == 1.0
    # customer 3's purchase of 10 is in train, its return in test: train now prefers it
    assert train.interactions[2, 0] == pytest.approx(2.0)


def test_last_basket_split(synthetic_dataset: Dataset):
    ds = synthetic_dataset
    train, test = ds.last_basket_split()
    ev = ds.events
    # a second reading of "last basket": the basket of each customer's last event
    last = ev.sort_values(["timestamp", "basket"]).groupby("customer")["basket"].last()
    n_baskets = ev.groupby("customer")["basket"].nunique()
    last = last[n_baskets > 1]
    expected = ev[ev["basket"].isin(last.to_numpy()) & ev["customer"].isin(last.index)]
    assert len(test.events) == len(expected) > 0
    assert set(test.events["basket"]) == set(last)
    assert (test.events.groupby("customer")["basket"].nunique() == 1).all()
    assert set(test.events["customer"]) == set(last.index)
    assert len(train.events) + len(test.events) == len(ev)
    assert not set(train.events["basket"]) & set(test.events["basket"])
    single = n_baskets[n_baskets == 1].index
    assert set(train.events.loc[train.events["customer"].isin(single), "customer"]) == set(single)


@pytest.mark.parametrize("fraction", [0.2, 0.5])
def test_holdout_split(synthetic_dataset: Dataset, fraction):
    ds = synthetic_dataset
    train, test = ds.holdout_split(fraction, random_state=3)
    pairs = ds.events[["customer", "item"]].drop_duplicates()
    per_customer = pairs.groupby("customer").size()
    train_pairs = set(zip(train.events["customer"], train.events["item"], strict=True))
    test_pairs = set(zip(test.events["customer"], test.events["item"], strict=True))
    assert not train_pairs & test_pairs
    assert train_pairs | test_pairs == set(zip(pairs["customer"], pairs["item"], strict=True))
    held = test.events[["customer", "item"]].drop_duplicates().groupby("customer").size()
    expected = np.floor(per_customer * fraction).where(per_customer > 1, 0).astype(int)
    assert held.reindex(per_customer.index, fill_value=0).equals(expected)
    assert len(train.events) + len(test.events) == len(ds.events)
    again = ds.holdout_split(fraction, random_state=3)[1]
    assert again.events.equals(test.events)
    other = ds.holdout_split(fraction, random_state=4)[1]
    assert not other.events.equals(test.events)


def test_holdout_split_rejects_bad_fraction(ds: Dataset):
    for fraction in (0, 1, 1.5):
        with pytest.raises(TailorError, match="fraction"):
            ds.holdout_split(fraction)


def test_holdout_split_by_item_by_hand(make_warehouse):
    # Item A has 4 raters, B 2, C 3, D 1. Holding out half of each item's raters: floor(4/2) = 2
    # of A's, 1 of B's, floor(3/2) = 1 of C's, none of D's (a single rater keeps it). Customer 1
    # rated A twice: the held-out pair takes both events.
    rows = [(1, "A", "2024-01-01"), (1, "A", "2024-01-05"), (2, "A", "2024-01-02"),
            (3, "A", "2024-01-03"), (4, "A", "2024-01-04"), (1, "B", "2024-01-01"),
            (2, "B", "2024-01-02"), (2, "C", "2024-01-03"), (3, "C", "2024-01-04"),
            (4, "C", "2024-01-05"), (4, "D", "2024-01-06")]  # fmt: skip
    events = pd.DataFrame(rows, columns=["customer_id", "item_id", "timestamp"])
    events = events.assign(event_type="rating", value=4.0)
    ds = Dataset.from_warehouse(make_warehouse(events=events))
    train, test = ds.holdout_split(0.5, random_state=7, by="item")
    held = test.events[["customer", "item"]].drop_duplicates()
    per_item = held.groupby("item").size().reindex(range(ds.n_items), fill_value=0)
    assert per_item.tolist() == [2, 1, 1, 0]  # columns A, B, C, D
    kept = set(zip(train.events["customer"], train.events["item"], strict=True))
    assert not kept & set(zip(held["customer"], held["item"], strict=True))
    assert len(train.events) + len(test.events) == len(ds.events)
    a_first = (test.events["customer"] == 0) & (test.events["item"] == 0)
    assert a_first.sum() in (0, 2)  # customer 1's two ratings of A go together
    again = ds.holdout_split(0.5, random_state=7, by="item")[1]
    assert again.events.equals(test.events)


@pytest.mark.parametrize("fraction", [0.25, 0.5])
def test_holdout_split_by_item(synthetic_dataset: Dataset, fraction):
    ds = synthetic_dataset
    train, test = ds.holdout_split(fraction, random_state=3, by="item")
    pairs = ds.events[["customer", "item"]].drop_duplicates()
    raters = pairs.groupby("item").size()
    held = test.events[["customer", "item"]].drop_duplicates().groupby("item").size()
    expected = np.floor(raters * fraction).where(raters > 1, 0).astype(int)
    assert held.reindex(raters.index, fill_value=0).equals(expected)
    train_pairs = set(zip(train.events["customer"], train.events["item"], strict=True))
    test_pairs = set(zip(test.events["customer"], test.events["item"], strict=True))
    assert not train_pairs & test_pairs
    assert train_pairs | test_pairs == set(zip(pairs["customer"], pairs["item"], strict=True))
    # The default stays per customer, as before.
    by_customer = ds.holdout_split(fraction, random_state=3)[1]
    assert by_customer.events.equals(ds.holdout_split(fraction, 3, by="customer")[1].events)
    assert not by_customer.events.equals(test.events)
    with pytest.raises(TailorError, match="holdout by 'basket'"):
        ds.holdout_split(fraction, by="basket")


def test_with_events_keeps_maps_and_recomputes(ds: Dataset):
    none = ds.with_events(np.zeros(len(ds.events), dtype=bool))
    assert none.interactions.nnz == 0 and none.interactions.shape == (5, 5)
    assert np.array_equal(none.item_ids, ds.item_ids)
    all_ = ds.with_events(np.ones(len(ds.events), dtype=bool))
    assert (all_.interactions != ds.interactions).nnz == 0


# --- structure of the synthetic data survives the pipeline ------------------------------------


def test_favourite_department_has_most_interaction_mass(
    synthetic: SyntheticData, synthetic_dataset: Dataset
):
    ds = synthetic_dataset
    departments, codes = np.unique(ds.items["department"].to_numpy(str), return_inverse=True)
    one_hot = sp.csr_matrix(
        (np.ones(ds.n_items), (np.arange(ds.n_items), codes)), shape=(ds.n_items, len(departments))
    )
    mass = (ds.interactions @ one_hot).toarray()
    top = departments[mass.argmax(axis=1)]
    favourite = synthetic.truth.favourite_department.loc[ds.customer_ids].to_numpy()
    assert (top == favourite).mean() > 0.7


@pytest.mark.parametrize("as_of", ["9999-12-31", "1000-01-01", "2200-01-01"])
def test_an_as_of_out_of_range_is_a_clear_error(as_of):
    with pytest.raises(TailorError, match="out of range"):
        as_of_bound(as_of)
