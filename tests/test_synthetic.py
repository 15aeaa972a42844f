"""Tests for tailor.synthetic: the generator must produce the structure its Truth claims."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.errors import ConfigError
from tailor.synthetic import (
    EVENTS_CSV_COLUMNS,
    STORE_HOURS,
    TABLES,
    SyntheticData,
    events_csv,
    generate,
    generate_ratings,
    write,
)

COLUMNS = {
    "events": [
        "customer_id", "item_id", "event_type", "timestamp", "quantity", "value",
        "basket_id", "store_id", "discount",
    ],
    "items": ["item_id", "title", "department", "category", "brand", "price"],
    "customers": ["customer_id", "age_band", "income_band", "has_kids", "household_size"],
    "campaigns": ["campaign_id", "type", "name", "start", "end"],
    "campaign_members": ["campaign_id", "customer_id"],
    "offers": ["offer_id", "campaign_id", "item_id"],
    "redemptions": ["customer_id", "offer_id", "campaign_id", "timestamp"],
}  # fmt: skip
INT_COLUMNS = {
    "customer_id", "item_id", "quantity", "store_id", "household_size", "campaign_id", "offer_id",
}  # fmt: skip
FLOAT_COLUMNS = {"value", "discount", "price"}
TIME_COLUMNS = {"timestamp", "start", "end"}
BOOL_COLUMNS = {"has_kids"}


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate()


@pytest.fixture(scope="module")
def purchases(data: SyntheticData) -> pd.DataFrame:
    """Purchase rows (not views, not returns) with the item's department."""
    events = data.events
    bought = events[(events["event_type"] == "purchase") & (events["quantity"] > 0)]
    return bought.merge(data.items[["item_id", "department", "price"]], on="item_id")


def _tables(data: SyntheticData) -> dict[str, pd.DataFrame]:
    return {name: getattr(data, name) for name in TABLES}


# --- determinism, shape, types ---------------------------------------------------------------


def test_same_seed_gives_identical_frames_and_another_seed_differs():
    first, second, other = generate(seed=7), generate(seed=7), generate(seed=8)
    for name, frame in _tables(first).items():
        pd.testing.assert_frame_equal(frame, getattr(second, name))
    pd.testing.assert_series_equal(
        first.truth.favourite_department, second.truth.favourite_department
    )
    pd.testing.assert_frame_equal(first.truth.staples, second.truth.staples)
    pd.testing.assert_frame_equal(first.truth.taste, second.truth.taste)
    assert not first.events.equals(other.events)
    assert not first.items["price"].equals(other.items["price"])
    assert not first.truth.favourite_department.equals(other.truth.favourite_department)


def test_default_size_is_tens_of_thousands_of_events(data: SyntheticData):
    assert 10_000 <= len(data.events) <= 40_000
    assert len(data.items) == 300
    assert len(data.customers) == 200
    assert len(data.campaigns) == 4


@pytest.mark.parametrize("table", TABLES)
def test_columns_and_dtypes(data: SyntheticData, table: str):
    frame = getattr(data, table)
    assert list(frame.columns) == COLUMNS[table]
    for column in frame.columns:
        dtype = frame[column].dtype
        if column in INT_COLUMNS:
            assert dtype == np.int64, column
        elif column in FLOAT_COLUMNS:
            assert dtype == np.float64, column
        elif column in TIME_COLUMNS:
            assert pd.api.types.is_datetime64_dtype(dtype), column  # and naive: no tz
        elif column in BOOL_COLUMNS:
            assert dtype == np.dtype(bool), column
        else:
            assert pd.api.types.is_string_dtype(dtype), column
            assert frame[column].notna().all(), column


def test_ids_are_as_documented(data: SyntheticData):
    assert data.customers["customer_id"].tolist() == list(range(1, 201))
    assert data.items["item_id"].is_unique
    assert data.items["item_id"].min() >= 100_000
    assert data.items["title"].is_unique
    assert data.campaigns["campaign_id"].tolist() == [1, 2, 3, 4]
    assert set(data.campaigns["type"]) <= {"A", "B", "C"}
    assert data.events["basket_id"].str.fullmatch(r"b\d{6}").all()


def test_truth_is_consistent(data: SyntheticData):
    truth = data.truth
    ids = data.customers["customer_id"]
    assert truth.favourite_department.index.equals(pd.Index(ids, name="customer_id"))
    # the favoured department is where the latent taste is largest
    assert (truth.taste.idxmax(axis=1) == truth.favourite_department).all()
    np.testing.assert_allclose(truth.taste.sum(axis=1), 1.0)
    assert truth.responsiveness.between(0, 1).all()
    staples = truth.staples
    assert not staples.duplicated(["customer_id", "item_id"]).any()
    assert staples.groupby("customer_id").size().between(2, 6).all()
    assert staples["cycle_days"].between(5, 30).all()
    department = data.items.set_index("item_id")["department"]
    per_department = truth.popularity.groupby(department.loc[truth.popularity.index].to_numpy())
    np.testing.assert_allclose(per_department.sum(), 1.0)
    assert truth.offer_discount.index.equals(
        pd.Index(sorted(data.offers["offer_id"].unique()), name="offer_id")
    )


# --- referential integrity ---------------------------------------------------------------------


def test_referential_integrity(data: SyntheticData):
    items, customers = set(data.items["item_id"]), set(data.customers["customer_id"])
    assert set(data.events["item_id"]) <= items
    assert set(data.events["customer_id"]) <= customers
    assert set(data.offers["item_id"]) <= items
    assert set(data.offers["campaign_id"]) <= set(data.campaigns["campaign_id"])
    assert set(data.campaign_members["customer_id"]) <= customers
    assert not data.campaign_members.duplicated().any()
    assert len(data.redemptions) > 0
    redeemed = data.redemptions.merge(
        data.offers.drop_duplicates("offer_id")[["offer_id", "campaign_id"]],
        on="offer_id",
        suffixes=("", "_of_offer"),
    )
    assert len(redeemed) == len(data.redemptions)  # every redeemed offer exists
    assert (redeemed["campaign_id"] == redeemed["campaign_id_of_offer"]).all()
    members = data.campaign_members.merge(data.redemptions, on=["campaign_id", "customer_id"])
    assert len(members) == len(data.redemptions)  # every redeemer is a member of the campaign
    window = data.redemptions.merge(data.campaigns, on="campaign_id")
    assert (window["timestamp"] >= window["start"]).all()
    assert (window["timestamp"] <= window["end"]).all()


def test_every_redemption_is_a_discounted_purchase_of_an_offer_item(data: SyntheticData):
    bought = data.redemptions.merge(data.offers, on=["offer_id", "campaign_id"]).merge(
        data.events[data.events["event_type"] == "purchase"],
        on=["customer_id", "item_id", "timestamp"],
    )
    matched = bought[bought["discount"] > 0].drop_duplicates(["customer_id", "offer_id"])
    assert len(matched) == len(data.redemptions)


def test_redemption_depends_on_taste_and_responsiveness(data: SyntheticData):
    departments = data.items.set_index("item_id")["department"]
    offers = data.offers.drop_duplicates("offer_id").assign(
        department=lambda f: departments.loc[f["item_id"]].to_numpy()
    )
    pairs = data.campaign_members.merge(offers, on="campaign_id").merge(
        data.redemptions[["customer_id", "offer_id"]].assign(redeemed=1),
        on=["customer_id", "offer_id"],
        how="left",
    )
    pairs["redeemed"] = pairs["redeemed"].fillna(0)
    favourite = data.truth.favourite_department.loc[pairs["customer_id"]].to_numpy()
    rate = pairs.groupby(pairs["department"].to_numpy() == favourite)["redeemed"].mean()
    assert rate[True] > 5 * rate[False]
    responsiveness = data.truth.responsiveness.loc[pairs["customer_id"]].to_numpy()
    by_outcome = pd.Series(responsiveness).groupby(pairs["redeemed"].to_numpy()).mean()
    assert by_outcome[1.0] > 2 * by_outcome[0.0]


# --- the structure in Truth is visible in the events -----------------------------------------


def test_favourite_department_is_the_most_bought(data: SyntheticData, purchases: pd.DataFrame):
    counts = purchases.groupby(["customer_id", "department"]).size().unstack(fill_value=0)
    counts = counts[counts.sum(axis=1) >= 10]
    assert len(counts) >= 150
    top = counts.idxmax(axis=1)
    agree = (top == data.truth.favourite_department.loc[top.index]).mean()
    assert agree > 0.7


def test_staples_are_rebought_on_their_cycle(data: SyntheticData, purchases: pd.DataFrame):
    bought = purchases.merge(data.truth.staples, on=["customer_id", "item_id"])
    bought = bought.sort_values("timestamp")
    days = bought.groupby(["customer_id", "item_id"])["timestamp"].diff().dt.total_seconds()
    bought["gap_days"] = days / 86_400
    per_staple = bought.groupby(["customer_id", "item_id"]).agg(
        gap=("gap_days", "median"), n_gaps=("gap_days", "count"), cycle=("cycle_days", "first")
    )
    per_staple = per_staple[per_staple["n_gaps"] >= 2]
    assert len(per_staple) >= 0.8 * len(data.truth.staples)
    ratio = per_staple["gap"] / per_staple["cycle"]
    assert (abs(ratio - 1) <= 0.25).mean() > 0.9
    assert ratio.median() == pytest.approx(1.0, abs=0.05)


def test_staples_are_mostly_in_the_favourite_department(data: SyntheticData):
    staples = data.truth.staples.merge(data.items[["item_id", "department"]], on="item_id")
    favourite = data.truth.favourite_department.loc[staples["customer_id"]].to_numpy()
    assert (staples["department"].to_numpy() == favourite).mean() > 0.6


def test_no_purchases_outside_the_active_span(data: SyntheticData):
    events = data.events
    churned = data.truth.churned_at.dropna()
    assert 0 < len(churned) < len(data.customers) / 2
    last = events.groupby("customer_id")["timestamp"].max()
    last_of_churned = last.reindex(churned.index)  # NaT for churners who never bought
    assert (last_of_churned.dropna() < churned[last_of_churned.notna()]).all()
    first = events.groupby("customer_id")["timestamp"].min()
    assert (first >= data.truth.joined_at.loc[first.index]).all()
    assert events["timestamp"].min() >= pd.Timestamp("2024-01-01")
    assert events["timestamp"].max() < pd.Timestamp("2024-01-01") + pd.Timedelta(days=180)


def test_more_popular_items_sell_more(data: SyntheticData, purchases: pd.DataFrame):
    sold = purchases.groupby("item_id").size().reindex(data.items["item_id"], fill_value=0)
    popularity = data.truth.popularity.loc[sold.index]
    top = popularity >= popularity.quantile(0.8)
    assert sold[top.to_numpy()].mean() > 3 * sold[~top.to_numpy()].mean()


# --- encoding of rows --------------------------------------------------------------------------


def test_returns_are_about_one_percent_negative_rows(data: SyntheticData):
    events = data.events
    negative = events["quantity"] < 0
    assert 0.005 <= negative.mean() <= 0.015
    assert (events.loc[negative, "value"] < 0).all()
    assert (events.loc[negative, "event_type"] == "purchase").all()
    assert (events.loc[~negative, "value"] >= 0).all()
    assert set(events["event_type"]) == {"purchase", "view"}


def test_views_are_few_and_carry_no_value(data: SyntheticData):
    views = data.events[data.events["event_type"] == "view"]
    assert 0 < len(views) < 0.05 * len(data.events)
    assert (views["quantity"] == 1).all()
    assert (views["value"] == 0).all()
    assert (views["discount"] == 0).all()


def test_value_is_quantity_times_price_less_discount(data: SyntheticData):
    events = data.events[data.events["event_type"] == "purchase"]
    price = data.items.set_index("item_id")["price"].loc[events["item_id"]].to_numpy()
    assert (events["discount"] >= 0).all()
    assert (events["quantity"] != 0).all()
    expected = events["quantity"] * price - np.sign(events["quantity"]) * events["discount"]
    np.testing.assert_allclose(events["value"], expected, atol=0.011)
    assert 0.02 < (events["discount"] > 0).mean() < 0.3
    assert events["quantity"].abs().between(1, 3).mean() > 0.9


def test_basket_rows_share_timestamp_customer_and_store(data: SyntheticData):
    baskets = data.events.groupby("basket_id")
    assert (baskets["timestamp"].nunique() == 1).all()
    assert (baskets["customer_id"].nunique() == 1).all()
    assert (baskets["store_id"].nunique() == 1).all()
    assert baskets.size().mean() > 2
    assert not data.events.duplicated(["basket_id", "item_id", "event_type"]).any()
    assert data.events["store_id"].between(1, 6).all()
    # basket ids are numbered in time order
    first_seen = baskets["timestamp"].first().sort_index()
    assert first_seen.is_monotonic_increasing


def test_trips_happen_in_store_hours(data: SyntheticData):
    hours = data.events["timestamp"].dt.hour
    opening, closing = STORE_HOURS
    assert hours.between(opening, closing - 1).all()
    assert ((hours >= 10) & (hours < 13)).mean() > ((hours >= 7) & (hours < 10)).mean()


# --- arguments -------------------------------------------------------------------------------


def test_bad_arguments_are_config_errors(tmp_path, data: SyntheticData):
    with pytest.raises(ConfigError, match="n_items"):
        generate(n_items=10)
    with pytest.raises(ConfigError):
        generate(n_customers=0)
    with pytest.raises(ConfigError, match="unknown format"):
        write(data, tmp_path, fmt="xlsx")


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_customers=st.integers(1, 40),
    n_items=st.integers(30, 80),
    days=st.integers(1, 60),
    n_campaigns=st.integers(0, 5),
)
def test_invariants_hold_for_any_size(seed, n_customers, n_items, days, n_campaigns):
    data = generate(n_customers, n_items, days, seed=seed, n_campaigns=n_campaigns)
    events = data.events
    assert list(events.columns) == COLUMNS["events"]
    assert events["customer_id"].between(1, n_customers).all()
    assert events["item_id"].isin(data.items["item_id"]).all()
    assert (events["discount"] >= 0).all()
    assert (np.sign(events["value"]) * np.sign(events["quantity"]) >= 0).all()
    assert (events.groupby("basket_id")["customer_id"].nunique() == 1).all()
    end = pd.Timestamp("2024-01-01") + pd.Timedelta(days=days)
    assert (events["timestamp"] < end).all()
    assert len(data.campaigns) == n_campaigns
    assert (data.campaigns["end"] < end).all()
    assert data.redemptions["offer_id"].isin(data.offers["offer_id"]).all()


# --- files -------------------------------------------------------------------------------------


def test_events_csv_writes_exactly_n_rows_in_chunks(tmp_path):
    path = events_csv(tmp_path / "events.csv", 50_000, seed=1, chunk_rows=20_000)
    with open(path) as lines:
        header = next(lines)
        n_lines = sum(1 for _ in lines)
    assert header == ",".join(EVENTS_CSV_COLUMNS) + "\n"
    assert n_lines == 50_000
    relation = duckdb.read_csv(str(path))
    assert relation.columns == list(EVENTS_CSV_COLUMNS)
    types = dict(zip(relation.columns, map(str, relation.types), strict=True))
    assert types["timestamp"] == "TIMESTAMP"
    assert types["customer_id"] == types["item_id"] == "BIGINT"
    summary = duckdb.sql(
        f"""
        SELECT count(*), count(DISTINCT basket_id), avg((quantity < 0)::INT),
               max(n_customers), max(n_times)
        FROM read_csv('{path}')
        JOIN (SELECT basket_id, count(DISTINCT customer_id) AS n_customers,
                     count(DISTINCT timestamp) AS n_times
              FROM read_csv('{path}') GROUP BY basket_id) USING (basket_id)
        """
    ).fetchall()[0]
    n_rows, n_baskets, negative, n_customers, n_times = summary
    assert n_rows == 50_000
    assert 50_000 / 8 < n_baskets < 50_000 / 2
    assert 0.005 < negative < 0.015
    assert n_customers == n_times == 1  # basket ids stay unique across chunks


def test_events_csv_same_seed_same_file(tmp_path):
    first = events_csv(tmp_path / "a.csv", 3_000, seed=4, chunk_rows=1_000)
    second = events_csv(tmp_path / "b.csv", 3_000, seed=4, chunk_rows=1_000)
    other = events_csv(tmp_path / "c.csv", 3_000, seed=5, chunk_rows=1_000)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_events_csv_with_no_rows_writes_the_header(tmp_path):
    path = events_csv(tmp_path / "empty.csv", 0)
    assert path.read_text() == ",".join(EVENTS_CSV_COLUMNS) + "\n"


def _read(path, fmt: str) -> pd.DataFrame:
    if fmt == "parquet":
        return pd.read_parquet(path)
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_json(path, lines=True, dtype=False)
    for column in TIME_COLUMNS.intersection(frame.columns):
        frame[column] = pd.to_datetime(frame[column]).astype("datetime64[us]")
    return frame


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_write_round_trips(tmp_path, data: SyntheticData, fmt: str):
    paths = write(data, tmp_path / fmt, fmt=fmt)
    assert list(paths) == list(TABLES)
    for name, path in paths.items():
        assert path == tmp_path / fmt / f"{name}.{fmt}"
        expected = getattr(data, name)
        back = _read(path, fmt)
        # CSV and JSON lines carry no types: compare values; Parquet keeps them exactly
        pd.testing.assert_frame_equal(back, expected, check_dtype=fmt == "parquet")


def test_events_csv_lists_each_item_once_per_basket(tmp_path):
    path = events_csv(tmp_path / "events.csv", 30_000, seed=3, n_items=40, chunk_rows=10_000)
    frame = pd.read_csv(path)
    # few items, so repeats would be common if drawn independently
    assert not frame.duplicated(["basket_id", "item_id"]).any()
    assert len(frame) == 30_000


# --- ratings ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ratings() -> SyntheticData:
    return generate_ratings()


def test_ratings_are_stars_one_per_pair_over_the_year(ratings: SyntheticData):
    events = ratings.events
    assert list(events.columns) == ["customer_id", "item_id", "event_type", "timestamp", "value"]
    assert set(events["event_type"]) == {"rating"}
    assert set(events["value"]) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert not events.duplicated(["customer_id", "item_id"]).any()
    per_customer = events.groupby("customer_id").size()
    assert len(per_customer) == 1000 and per_customer.min() >= 5
    assert 27 <= per_customer.mean() <= 33
    assert set(events["item_id"]) <= set(ratings.items["item_id"])
    assert len(ratings.items) == 500 and ratings.items["category"].nunique() == 12
    assert events["timestamp"].min() >= pd.Timestamp("2024-01-01")
    assert events["timestamp"].max() < pd.Timestamp("2024-01-01") + pd.Timedelta(days=365)
    # Spread over the year: every month holds between 6 and 11 % of the ratings.
    months = events["timestamp"].dt.month.value_counts(normalize=True)
    assert len(months) == 12 and months.between(0.06, 0.11).all()
    # No star dominates, as in public rating sets.
    assert events["value"].value_counts(normalize=True).max() < 0.4
    assert 3.2 < events["value"].mean() < 3.8


def test_ratings_seed_reproduces(ratings: SyntheticData):
    again = generate_ratings(seed=0)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(again, name), getattr(ratings, name))
    other = generate_ratings(seed=1)
    assert not other.events.equals(ratings.events)


def test_ratings_follow_the_latent_opinion(ratings: SyntheticData):
    truth = ratings.truth
    events = ratings.events
    opinion = truth.opinion.to_numpy()[
        truth.opinion.index.get_indexer(events["customer_id"]),
        truth.opinion.columns.get_indexer(events["item_id"]),
    ]
    # Stars are the opinion plus noise, rounded and clipped.
    assert np.corrcoef(opinion, events["value"])[0, 1] > 0.8
    # People rate what they expect to like: the rated items' opinion beats the unrated ones'.
    assert opinion.mean() > truth.opinion.to_numpy().mean() + 1
    # Exposure is popularity-skewed: the 10 % most popular items hold a third of the ratings.
    top = truth.popularity.nlargest(50).index
    assert events["item_id"].isin(top).mean() > 0.3


def test_ratings_structure_is_learnable(ratings: SyntheticData, tmp_path):
    from tailor.dataset import Dataset
    from tailor.evaluate.runner import evaluate_models
    from tailor.recommend import EASE, Popularity
    from tailor.store import Warehouse, ingest_files

    paths = write(ratings, tmp_path, fmt="parquet")
    assert list(paths) == ["events", "items", "customers"]  # the empty campaign tables are not
    with Warehouse(tmp_path / "ratings.duckdb") as wh:
        for table, path in paths.items():
            ingest_files(wh, table, [path])
        ds = Dataset.from_warehouse(wh)
    assert ds.interactions.nnz == len(ratings.events)
    assert set(np.unique(ds.interactions.data)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    train, test = ds.holdout_split(0.25, random_state=0)
    results = evaluate_models(
        train, test, {"popularity": Popularity, "ease": EASE}, k=10, exclude_purchased=True,
        relevance_threshold=4, confidence=False,
    )  # fmt: skip
    assert results["ease"]["ndcg@10"] > 1.5 * results["popularity"]["ndcg@10"]
    assert results["ease"]["recall@10"] > 1.5 * results["popularity"]["recall@10"]


def test_ratings_bad_arguments_are_config_errors():
    with pytest.raises(ConfigError, match="one per genre"):
        generate_ratings(n_items=5)
    with pytest.raises(ConfigError, match="must be positive"):
        generate_ratings(n_customers=0)
