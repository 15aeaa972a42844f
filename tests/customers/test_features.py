"""Customer 360 features: a hand-made shop with every feature worked by hand, the cut that hides
later events exactly, invariants of the quintile scores with hypothesis, and the synthetic shop
against pandas as a second implementation of the SQL aggregates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.customers import features as features_module
from tailor.customers.features import _quintile, customer_features, reference_day
from tailor.store import Warehouse
from tailor.synthetic import SyntheticData

BOUND = pd.Timestamp("2024-02-01")  # the cut: the reference day is 2024-01-31
REF = pd.Timestamp("2024-01-31")

ITEMS = pd.DataFrame(
    {
        "item_id": [1, 2, 3],
        "department": ["DAIRY", "BAKERY", "MEAT"],
        "price": [2.0, 5.0, 10.0],
    }
)
CUSTOMERS = pd.DataFrame({"customer_id": [1, 2, 3, 4]})
EVENT_COLUMNS = [
    "customer_id", "item_id", "event_type", "timestamp", "quantity", "value", "basket_id",
    "store_id", "channel", "discount",
]  # fmt: skip


def handmade_events() -> pd.DataFrame:
    """Five customers before the cut (and a few events at or after it).

    1: three baskets (Jan 1, 11, 31) with a discount, a value-less line (10 = 1 x the price of
       item 3) and a return of 2; 2: three baskets (Nov 2, Dec 2, Jan 21) with months of history;
    3: one basket on Jan 30 and a view; 4: only in the customer table; 5: only a view.
    """
    nan = np.nan
    rows = [
        (1, 1, "purchase", "2024-01-01 10:00", 2, 4.0, "b11", "S1", "store", nan),
        (1, 2, "purchase", "2024-01-01 10:00", 1, 5.0, "b11", "S1", "store", 1.0),
        (1, 3, "purchase", "2024-01-11 18:00", 1, nan, "b12", "S2", "web", nan),
        (1, 2, "return", "2024-01-15 09:00", 1, 2.0, "b14", "S1", "store", nan),
        (1, 1, "purchase", "2024-01-31 23:59", 3, 6.0, "b13", "S1", "store", nan),
        (2, 1, "purchase", "2023-11-02 12:00", 5, 20.0, "b21", nan, "web", nan),
        (2, 2, "purchase", "2023-12-02 12:00", 4, 20.0, "b22", nan, "web", nan),
        (2, 3, "purchase", "2024-01-21 12:00", 3, 30.0, "b23", nan, "web", nan),
        (3, 3, "purchase", "2024-01-30 08:00", 2, 18.0, "b31", "S1", "store", 2.0),
        (3, 1, "view", "2024-01-29 08:00", nan, nan, "v31", nan, "web", nan),
        (5, 2, "view", "2024-01-20 08:00", nan, nan, "v51", nan, "web", nan),
        # at or after the cut: hidden by it
        (2, 3, "purchase", "2024-02-01 00:00", 1, 99.0, "b24", nan, "web", nan),
        (1, 2, "purchase", "2024-02-05 10:00", 1, 5.0, "b15", "S1", "store", nan),
        (3, 3, "purchase", "2024-02-10 10:00", 1, 10.0, "b32", "S1", "store", nan),
        (6, 3, "purchase", "2024-02-10 10:00", 1, 10.0, "b61", "S1", "store", nan),
    ]
    frame = pd.DataFrame(rows, columns=EVENT_COLUMNS)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


CAMPAIGNS = pd.DataFrame(
    {
        "campaign_id": [1, 2, 3],
        "type": ["A", "A", "B"],
        "name": ["ended", "running", "later"],
        "start": pd.to_datetime(["2024-01-10", "2024-01-25", "2024-02-05"]),
        "end": pd.to_datetime(["2024-01-20", "2024-02-10", "2024-02-20"]),
    }
)
MEMBERS = pd.DataFrame({"campaign_id": [1, 1, 2, 3], "customer_id": [1, 2, 1, 1]})
REDEMPTIONS = pd.DataFrame(
    {
        "customer_id": [1, 1],
        "offer_id": [7, 7],
        "campaign_id": [1, 2],
        "timestamp": pd.to_datetime(["2024-01-11 18:00", "2024-02-05 10:00"]),
    }
)


def handmade_shop(make_warehouse, events: pd.DataFrame) -> Warehouse:
    return make_warehouse(
        items=ITEMS,
        customers=CUSTOMERS,
        events=events,
        campaigns=CAMPAIGNS,
        campaign_members=MEMBERS,
        redemptions=REDEMPTIONS,
    )


@pytest.fixture(scope="module")
def shop(make_warehouse) -> Warehouse:
    return handmade_shop(make_warehouse, handmade_events())


@pytest.fixture(scope="module")
def table(shop: Warehouse) -> pd.DataFrame:
    found = customer_features(shop, BOUND)
    assert found.reference_day == REF
    return found.table


# -- the hand-made shop ----------------------------------------------------------------------------


def test_everyone_known_gets_a_row(table: pd.DataFrame):
    # 4 from the customer table, 5 from a view; 6 bought only after the cut.
    assert list(table.index) == [1, 2, 3, 4, 5]


def test_rfm_and_tenure_by_hand(table: pd.DataFrame):
    expected = {
        # recency, frequency, monetary, tenure, purchase days
        1: (0, 3, 4.0 + 5.0 + 10.0 + 6.0, 30, 3),
        2: (10, 3, 70.0, 90, 3),
        3: (1, 1, 18.0, 2, 1),  # the view on Jan 29 starts the tenure
    }
    for customer, (recency, frequency, monetary, tenure, days) in expected.items():
        row = table.loc[customer]
        assert row.recency_days == recency, customer
        assert row.frequency == frequency, customer
        assert row.monetary == pytest.approx(monetary), customer
        assert row.tenure_days == tenure, customer
        assert row.purchase_days == days, customer


def test_value_falls_back_to_quantity_times_price(table: pd.DataFrame):
    # Customer 1's Jan 11 line has no value: 1 x 10.0 (item 3), all of it MEAT.
    assert table.loc[1, "monetary"] == pytest.approx(25.0)
    assert table.loc[1, "share_meat"] == pytest.approx(10.0 / 25.0)


def test_interpurchase_gaps_by_hand(table: pd.DataFrame):
    one, two, three = table.loc[1], table.loc[2], table.loc[3]
    # 1: gaps 10 and 20 days; 2: gaps 30 and 50 days.
    assert one.interpurchase_days == pytest.approx(15.0)
    assert one.interpurchase_cv == pytest.approx(5.0 / 15.0)
    assert one.last_gap_days == 20.0
    assert two.interpurchase_days == pytest.approx(40.0)
    assert two.interpurchase_cv == pytest.approx(10.0 / 40.0)
    assert two.last_gap_days == 50.0
    assert np.isnan(three.interpurchase_days) and np.isnan(three.interpurchase_cv)
    assert np.isnan(three.last_gap_days)


def test_baskets_by_hand(table: pd.DataFrame):
    one, two, three = table.loc[1], table.loc[2], table.loc[3]
    assert one.avg_basket_value == pytest.approx(25.0 / 3)
    assert one.avg_basket_items == pytest.approx((2 + 1 + 1 + 3) / 3)
    assert one.avg_basket_lines == pytest.approx(4 / 3)
    assert two.avg_basket_value == pytest.approx(70.0 / 3)
    assert two.avg_basket_items == pytest.approx(12 / 3)
    assert two.avg_basket_lines == pytest.approx(1.0)
    assert (three.avg_basket_value, three.avg_basket_items, three.avg_basket_lines) == (
        18.0,
        2.0,
        1.0,
    )


def test_discounts_coupons_and_returns_by_hand(table: pd.DataFrame):
    one, two, three = table.loc[1], table.loc[2], table.loc[3]
    assert one.discount_line_share == pytest.approx(1 / 4)  # 1 of 4 purchase lines
    assert one.discount_value_share == pytest.approx(1.0 / (25.0 + 1.0))
    assert three.discount_line_share == 1.0
    assert three.discount_value_share == pytest.approx(2.0 / 20.0)
    assert two.discount_line_share == 0.0 and two.discount_value_share == 0.0
    assert one.coupon_rate == pytest.approx(1 / 3)  # the Feb 5 redemption is after the cut
    assert two.coupon_rate == 0.0
    assert one.returns_rate == pytest.approx(2.0 / 25.0)
    assert two.returns_rate == 0.0


def test_stores_and_channels_by_hand(table: pd.DataFrame):
    one, two = table.loc[1], table.loc[2]
    assert (one.stores, one.channels) == (2, 2)
    assert one.top_store_share == pytest.approx(2 / 3)
    assert one.top_channel_share == pytest.approx(2 / 3)
    assert (two.stores, two.channels) == (0, 1)
    assert np.isnan(two.top_store_share) and two.top_channel_share == 1.0


def test_recent_windows_by_hand(table: pd.DataFrame):
    windows = ["baskets_last_7d", "baskets_last_14d", "baskets_last_28d"]
    windows += ["baskets_last_56d", "baskets_last_91d"]
    # 1 bought 30, 20 and 0 days before the reference day; 2 bought 90, 60 and 10 days before.
    assert list(table.loc[1, windows]) == [1, 1, 2, 3, 3]
    assert list(table.loc[2, windows]) == [0, 1, 1, 1, 3]
    assert list(table.loc[3, windows]) == [1, 1, 1, 1, 1]
    assert table.loc[1, "spend_last_28d"] == pytest.approx(10.0 + 6.0)
    assert table.loc[2, "spend_last_28d"] == pytest.approx(30.0)


def test_spend_trend_by_hand(table: pd.DataFrame):
    # 2: 40 spent in the 63 days from Nov 2 to Jan 3 (the day before the last 28), so an
    # average 28 days is 40 x 28 / 63; the last 28 days hold 30.
    assert table.loc[2, "spend_trend"] == pytest.approx(30.0 / (40.0 * 28 / 63))
    # 1 and 3 have under 28 days of history before the last 28 days.
    assert np.isnan(table.loc[1, "spend_trend"]) and np.isnan(table.loc[3, "spend_trend"])


def test_active_shares_by_hand(table: pd.DataFrame):
    # 1 bought 0, 20 and 30 days before the reference day: weeks 0, 2, 4 of 5 (0-4) and
    # 4-week periods 0, 1 of 2; 2 bought 10, 60, 90 days before: weeks 1, 8, 12 of 13.
    assert table.loc[1, "active_week_share"] == pytest.approx(3 / 5)
    assert table.loc[1, "active_4week_share"] == pytest.approx(1.0)
    assert table.loc[2, "active_week_share"] == pytest.approx(3 / 13)
    assert table.loc[2, "active_4week_share"] == pytest.approx(3 / 4)
    assert table.loc[3, "active_week_share"] == 1.0


def test_department_shares_by_hand(shop: Warehouse, table: pd.DataFrame):
    found = customer_features(shop, BOUND)
    # Spend before the cut: MEAT 10 + 30 + 18 = 58, DAIRY 10 + 20 = 30, BAKERY 5 + 20 = 25.
    assert found.departments == {
        "share_meat": "MEAT",
        "share_dairy": "DAIRY",
        "share_bakery": "BAKERY",
    }
    shares = ["share_meat", "share_dairy", "share_bakery", "share_other"]
    np.testing.assert_allclose(table.loc[1, shares], [0.4, 0.4, 0.2, 0.0])
    np.testing.assert_allclose(table.loc[2, shares], [30 / 70, 20 / 70, 20 / 70, 0.0])
    np.testing.assert_allclose(table.loc[3, shares], [1.0, 0.0, 0.0, 0.0])
    assert table.loc[[4, 5], shares].isna().all().all()


def test_views_and_campaigns_by_hand(table: pd.DataFrame):
    assert list(table["views"]) == [0, 0, 1, 0, 1]
    assert list(table["carts"]) == [0, 0, 0, 0, 0]
    # Campaign 3 starts after the cut; campaign 2 still runs on the reference day.
    assert list(table["campaigns_received"]) == [2, 1, 0, 0, 0]
    assert list(table["campaigns_running"]) == [1, 0, 0, 0, 0]


def test_non_buyers(table: pd.DataFrame):
    for customer in (4, 5):
        row = table.loc[customer]
        assert row.frequency == 0 and row.monetary == 0.0 and row.purchase_days == 0
        assert np.isnan(row.recency_days) and np.isnan(row.avg_basket_value)
        assert np.isnan(row.returns_rate) and np.isnan(row.interpurchase_days)
        assert (row.r_score, row.f_score, row.m_score) == (0, 0, 0)
        assert row.baskets_last_91d == 0 and row.spend_last_28d == 0.0
    assert np.isnan(table.loc[4, "tenure_days"])  # never seen in the events
    assert table.loc[5, "tenure_days"] == 11  # viewed on Jan 20


def test_rfm_scores_by_hand(table: pd.DataFrame):
    # Among the 3 buyers (ties share the higher rank): recency 0, 10, 1; frequency 3, 3, 1;
    # spend 25, 70, 18. A rank of 3/3 scores 5, 2/3 scores ceil(3.33) = 4, 1/3 scores 2.
    assert list(table.loc[[1, 2, 3], "r_score"]) == [5, 2, 4]
    assert list(table.loc[[1, 2, 3], "f_score"]) == [5, 5, 2]
    assert list(table.loc[[1, 2, 3], "m_score"]) == [4, 5, 2]


def test_dtypes(table: pd.DataFrame):
    for column in ["frequency", "purchase_days", "stores", "views", "baskets_last_7d"]:
        assert table[column].dtype == np.int64, column
    for column in ["monetary", "recency_days", "tenure_days", "share_meat", "spend_trend"]:
        assert table[column].dtype == np.float64, column


def test_reference_day(shop: Warehouse):
    assert reference_day(shop, pd.Timestamp("2024-02-01")) == REF
    assert reference_day(shop, pd.Timestamp("2024-02-01 00:00:01")) == BOUND
    assert reference_day(shop, None) == pd.Timestamp("2024-02-10")


# -- the cut ---------------------------------------------------------------------------------------


def test_bound_hides_later_events_exactly(make_warehouse, shop: Warehouse, table: pd.DataFrame):
    events = handmade_events()
    earlier = handmade_shop(make_warehouse, events[events["timestamp"] < BOUND])
    alone = customer_features(earlier)  # no bound: the last event's day, Jan 31
    assert alone.reference_day == REF
    pd.testing.assert_frame_equal(alone.table, table)
    pd.testing.assert_frame_equal(customer_features(earlier, BOUND).table, table)
    # The full shop without a cut sees customer 6 and the later baskets.
    everything = customer_features(shop).table
    assert 6 in everything.index and everything.loc[1, "frequency"] == 4


def test_bound_hides_later_events_on_the_synthetic_shop(
    make_warehouse, synthetic: SyntheticData, synthetic_db: Path
):
    bound = pd.Timestamp("2024-04-10 13:00")
    tables = {
        name: getattr(synthetic, name)
        for name in ["items", "customers", "campaigns", "campaign_members", "offers"]
    }
    early = synthetic.events[synthetic.events["timestamp"] < bound]
    redemptions = synthetic.redemptions[synthetic.redemptions["timestamp"] < bound]
    cut = make_warehouse(fmt="parquet", **tables, events=early, redemptions=redemptions)
    with Warehouse(synthetic_db, read_only=True) as wh:
        full = customer_features(wh, bound)
    alone = customer_features(cut, bound)
    assert full.departments == alone.departments
    pd.testing.assert_frame_equal(full.table, alone.table)


def test_same_departments_give_the_same_columns(shop: Warehouse):
    departments = ["MEAT", "Bakery & Cakes", "DAIRY"]
    early = customer_features(shop, pd.Timestamp("2023-12-05"), departments)
    late = customer_features(shop, BOUND, departments)
    assert early.departments == late.departments
    assert list(early.departments) == ["share_meat", "share_bakery_cakes", "share_dairy"]
    assert list(early.table.columns) == list(late.table.columns)
    # Before Dec 5 only customer 2 had bought: 20 of DAIRY, 20 of BAKERY (not a named one).
    two = early.table.loc[2]
    assert (two.share_dairy, two.share_bakery_cakes, two.share_other) == (0.5, 0.0, 0.5)
    assert list(early.buyers.index) == [2]


def test_department_shares_sum_to_one(shop: Warehouse, synthetic_db: Path):
    with Warehouse(synthetic_db, read_only=True) as wh:
        synthetic = customer_features(wh)
    for found in (customer_features(shop, BOUND), synthetic):
        shares = found.buyers[[*found.departments, "share_other"]]
        np.testing.assert_allclose(shares.sum(axis=1), 1.0)
        assert (shares >= 0).all().all()
    assert len(synthetic.departments) == features_module.TOP_DEPARTMENTS


def test_without_basket_ids_a_basket_is_a_customer_at_a_moment(make_warehouse):
    events = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 2],
            "item_id": [1, 2, 1, 1],
            "timestamp": pd.to_datetime(
                ["2024-01-01 10:00", "2024-01-01 10:00", "2024-01-02 10:00", "2024-01-01 10:00"]
            ),
            "value": [1.0, 2.0, 4.0, 8.0],
        }
    )
    table = customer_features(make_warehouse(items=ITEMS, events=events)).table
    assert list(table["frequency"]) == [2, 1]
    assert list(table["avg_basket_lines"]) == [1.5, 1.0]
    assert list(table["monetary"]) == [7.0, 8.0]


def test_a_purchase_with_a_blank_basket_id_is_a_basket_of_its_own(make_warehouse):
    """The module docstring: an event without a basket id gets the basket of its customer's
    events at that moment, also where other rows of the file name their basket."""
    events = pd.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "item_id": [1, 1, 1],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "value": [1.0, 2.0, 3.0],
            "basket_id": ["a", None, None],
        }
    )
    table = customer_features(make_warehouse(items=ITEMS, events=events)).table
    assert table.loc[1, "purchase_days"] == 3  # holds today
    assert table.loc[1, "frequency"] == 3
    assert table.loc[1, "avg_basket_value"] == pytest.approx(2.0)


def test_top_departments_rank_by_spend_not_returns(make_warehouse, monkeypatch):
    """A department's returns are not spend: they must not lift it into the share columns."""
    events = pd.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "item_id": [1, 2, 2],
            "event_type": ["purchase", "purchase", "return"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "value": [10.0, 8.0, 5.0],
        }
    )
    wh = make_warehouse(items=ITEMS, events=events)
    monkeypatch.setattr(features_module, "TOP_DEPARTMENTS", 1)
    found = customer_features(wh)
    assert found.departments == {"share_dairy": "DAIRY"}  # 10 spent on DAIRY, 8 on BAKERY


# -- quintile scores -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=60))
def test_quintile_scores_are_monotone_and_in_range(frequency: list[int]):
    values = pd.Series(frequency, dtype=float)
    bought = values > 0
    scores = _quintile(values, bought).to_numpy()
    assert (scores[~bought.to_numpy()] == 0).all()
    buyer_scores = scores[bought.to_numpy()]
    assert ((buyer_scores >= 1) & (buyer_scores <= 5)).all()
    if bought.any():
        v = values[bought].to_numpy()
        order = np.argsort(v, kind="stable")
        assert (np.diff(buyer_scores[order]) >= 0).all()  # monotone
        same = v[:, None] == v[None, :]
        assert (buyer_scores[:, None] == buyer_scores[None, :])[same].all()  # ties share
        assert buyer_scores[v == v.max()].min() == 5  # the best get the top score
        # A score of s means the rank is within the s-th fifth.
        rank = (v[None, :] <= v[:, None]).sum(axis=1) / len(v)
        np.testing.assert_array_equal(buyer_scores, np.ceil(rank * 5 - 1e-9))


def test_quintile_scores_split_evenly():
    values = pd.Series(np.arange(1.0, 11.0))
    scores = _quintile(values, values > 0)
    assert list(scores) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_synthetic_scores_are_quintiles(synthetic_db: Path):
    with Warehouse(synthetic_db, read_only=True) as wh:
        found = customer_features(wh)
    buyers = found.buyers
    for score, feature, sign in [
        ("r_score", "recency_days", -1),
        ("f_score", "frequency", 1),
        ("m_score", "monetary", 1),
    ]:
        assert set(buyers[score]) <= {1, 2, 3, 4, 5}
        by_score = (sign * buyers[feature]).groupby(buyers[score])
        # Every customer of a higher score is at least as good as every one of a lower score.
        assert (by_score.min().to_numpy()[1:] >= by_score.max().to_numpy()[:-1]).all(), score
    assert (found.table.loc[found.table.frequency == 0, ["r_score", "m_score"]] == 0).all().all()


# -- the synthetic shop against pandas -------------------------------------------------------------


def pandas_rfm(synthetic: SyntheticData, bound: pd.Timestamp | None) -> pd.DataFrame:
    """frequency, monetary, returns and recency by pandas groupby over the generated events."""
    events = synthetic.events
    if bound is not None:
        events = events[events["timestamp"] < bound]
    returns = (events["quantity"] < 0) | (events["quantity"].isna() & (events["value"] < 0))
    price = events["item_id"].map(synthetic.items.set_index("item_id")["price"])
    spend = events["value"].fillna(events["quantity"].abs() * price).abs()
    events = events.assign(spend=spend, day=events["timestamp"].dt.normalize())
    bought = events[(events["event_type"] == "purchase") & ~returns]
    grouped = bought.groupby("customer_id")
    out = pd.DataFrame(index=pd.Index(synthetic.customers["customer_id"], name="customer_id"))
    out["frequency"] = grouped["basket_id"].nunique()
    out["monetary"] = grouped["spend"].sum()
    out["purchase_days"] = grouped["day"].nunique()
    out["returned"] = events[returns].groupby("customer_id")["spend"].sum()
    out["last_day"] = grouped["day"].max()
    return out


@pytest.mark.parametrize("bound", [None, pd.Timestamp("2024-03-15 12:00")])
def test_synthetic_rfm_matches_a_pandas_groupby(
    synthetic: SyntheticData, synthetic_db: Path, bound: pd.Timestamp | None
):
    with Warehouse(synthetic_db, read_only=True) as wh:
        found = customer_features(wh, bound)
    expected = pandas_rfm(synthetic, bound).reindex(found.table.index)
    table = found.table
    assert len(table) == len(synthetic.customers)
    np.testing.assert_array_equal(table["frequency"], expected["frequency"].fillna(0))
    np.testing.assert_allclose(table["monetary"], expected["monetary"].fillna(0.0), rtol=1e-9)
    np.testing.assert_array_equal(table["purchase_days"], expected["purchase_days"].fillna(0))
    recency = (found.reference_day - expected["last_day"]).dt.days
    np.testing.assert_array_equal(table["recency_days"], recency.astype(float))
    returns_rate = expected["returned"].fillna(0.0) / expected["monetary"]
    np.testing.assert_allclose(table["returns_rate"], returns_rate, rtol=1e-9)
    assert table["frequency"].sum() > 1000  # the comparison is not over an empty shop
