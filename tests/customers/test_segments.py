"""Segments: every cell of the RFM grid against the documented table, segment profiles by hand
and against pandas, and clusters that recover three hand-made behaviour groups."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from tailor.customers.features import CustomerFeatures, customer_features
from tailor.customers.segments import (
    NO_PURCHASE,
    RFM_SEGMENTS,
    cluster_customers,
    rfm_segment,
    segment_profiles,
)
from tailor.store import Warehouse

# -- the RFM grid ----------------------------------------------------------------------------------

# The module docstring's table, written out cell by cell: R -> the segment of FM = 1, 2, 3, 4, 5.
GRID = {
    5: ["New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"],
    4: ["Promising", "Potential loyalist", "Potential loyalist", "Loyal", "Loyal"],
    3: ["About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"],
    2: ["Hibernating", "Hibernating", "At risk", "At risk", "Can't lose"],
    1: ["Lost", "Hibernating", "At risk", "At risk", "Can't lose"],
}


def test_every_score_combination_maps_to_its_grid_cell():
    combos = np.array(list(itertools.product(range(1, 6), repeat=3)))
    assert len(combos) == 125
    found = rfm_segment(combos[:, 0], combos[:, 1], combos[:, 2])
    for (r, f, m), segment in zip(combos, found, strict=True):
        fm = (f + m + 1) // 2  # round((F + M) / 2), halves up
        assert segment == GRID[r][fm - 1], (r, f, m)
    assert found.dtype == object


def test_halves_round_up():
    # (F + M) / 2 = 3.5 rounds to FM 4 (Champions at R 5); 4.5 to 5 (Can't lose at R 1).
    assert list(rfm_segment([5, 1, 5], [3, 4, 1], [4, 5, 2])) == [
        "Champions",
        "Can't lose",
        "Potential loyalist",
    ]


def test_every_segment_is_on_the_grid_and_documented():
    on_grid = {segment for row in GRID.values() for segment in row}
    assert on_grid | {NO_PURCHASE} == set(RFM_SEGMENTS)


def test_non_buyers_have_no_purchase_yet():
    assert list(rfm_segment([0, 0, 1], [0, 0, 1], [0, 0, 1])) == [NO_PURCHASE, NO_PURCHASE, "Lost"]
    assert len(rfm_segment([], [], [])) == 0


# -- segment profiles ------------------------------------------------------------------------------


def hand_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "recency_days": [1.0, 3.0, 200.0, 100.0, np.nan],
            "frequency": [10, 20, 1, 2, 0],
            "monetary": [500.0, 300.0, 20.0, 180.0, 0.0],
            "r_score": [5, 5, 1, 2, 0],
            "f_score": [5, 4, 1, 3, 0],
            "m_score": [5, 5, 1, 3, 0],
        },
        index=pd.Index([11, 12, 13, 14, 15], name="customer_id"),
    )


def test_segment_profiles_by_hand():
    table = hand_table()
    features = CustomerFeatures(table, pd.Timestamp("2024-01-31"))
    segments = pd.Series(
        rfm_segment(table["r_score"], table["f_score"], table["m_score"]), index=table.index
    )
    assert list(segments) == ["Champions", "Champions", "Lost", "At risk", NO_PURCHASE]
    profiles = segment_profiles(features, segments).set_index("segment")
    # Ordered as RFM_SEGMENTS lists them.
    assert list(profiles.index) == ["Champions", "At risk", "Lost", NO_PURCHASE]
    assert list(profiles["size"]) == [2, 1, 1, 1]
    np.testing.assert_allclose(profiles["share"], [0.4, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(profiles["revenue_share"], [0.8, 0.18, 0.02, 0.0])
    assert profiles.loc["Champions", "median_recency_days"] == 2.0
    assert profiles.loc["Champions", "median_frequency"] == 15.0
    assert profiles.loc["Champions", "median_monetary"] == 400.0
    assert np.isnan(profiles.loc[NO_PURCHASE, "median_recency_days"])
    assert profiles.loc["At risk", "description"] == RFM_SEGMENTS["At risk"][0]
    assert profiles.loc["At risk", "action"] == RFM_SEGMENTS["At risk"][1]


def test_segment_profiles_without_revenue():
    table = hand_table().iloc[[4]]
    features = CustomerFeatures(table, pd.Timestamp("2024-01-31"))
    profiles = segment_profiles(features, pd.Series([NO_PURCHASE], index=table.index))
    assert list(profiles["size"]) == [1] and list(profiles["revenue_share"]) == [0.0]


@pytest.fixture(scope="module")
def synthetic_features(synthetic_db: Path) -> CustomerFeatures:
    with Warehouse(synthetic_db, read_only=True) as wh:
        return customer_features(wh)


def test_synthetic_segment_profiles_add_up(synthetic_features: CustomerFeatures):
    table = synthetic_features.table
    segments = pd.Series(
        rfm_segment(table["r_score"], table["f_score"], table["m_score"]), index=table.index
    )
    profiles = segment_profiles(synthetic_features, segments)
    assert profiles["size"].sum() == len(table) == 200
    assert profiles["share"].sum() == pytest.approx(1.0)
    assert profiles["revenue_share"].sum() == pytest.approx(1.0)
    assert len(profiles) >= 5  # 200 customers spread over the grid
    # A second implementation: pandas value counts and revenue per segment.
    expected = table.groupby(segments)["monetary"].agg(["size", "sum"])
    by_segment = profiles.set_index("segment")
    np.testing.assert_array_equal(by_segment["size"], expected.loc[by_segment.index, "size"])
    np.testing.assert_allclose(
        by_segment["revenue_share"],
        expected.loc[by_segment.index, "sum"] / table["monetary"].sum(),
    )
    order = [list(RFM_SEGMENTS).index(s) for s in profiles["segment"]]
    assert order == sorted(order)


# -- clusters --------------------------------------------------------------------------------------

GROUP_SIZE = 40


def three_groups(seed: int = 0) -> tuple[CustomerFeatures, np.ndarray]:
    """Buyers in three behaviour groups, and 5 non-buyers; returns the features and each
    customer's group (0 big baskets, 1 frequent small baskets, 2 lapsed; -1 non-buyers)."""
    rng = np.random.default_rng(seed)
    n = GROUP_SIZE

    def group(recency, frequency, basket, lines):
        return pd.DataFrame(
            {
                "recency_days": rng.uniform(*recency, n).round(),
                "frequency": rng.integers(*frequency, n),
                "avg_basket_value": rng.uniform(*basket, n),
                "avg_basket_lines": rng.uniform(*lines, n),
                "discount_line_share": rng.uniform(0.1, 0.2, n),
            }
        )

    buyers = pd.concat(
        [
            group((5, 15), (4, 9), (150, 250), (30, 40)),  # big baskets
            group((0, 3), (60, 91), (15, 25), (4, 6)),  # frequent, small baskets
            group((150, 200), (1, 4), (20, 30), (3, 5)),  # lapsed
        ],
        ignore_index=True,
    )
    buyers["monetary"] = buyers["frequency"] * buyers["avg_basket_value"]
    idle = pd.DataFrame({"frequency": np.zeros(5, dtype=int), "monetary": np.zeros(5)})
    table = pd.concat([buyers, idle], ignore_index=True)
    groups = np.r_[np.repeat([0, 1, 2], n), np.full(5, -1)]
    # Shuffle, so that no result can lean on the order of the rows.
    order = rng.permutation(len(table))
    table = table.iloc[order].set_axis(pd.Index(1000 + np.arange(len(table)), name="customer_id"))
    return CustomerFeatures(table, pd.Timestamp("2024-01-31")), groups[order]


@pytest.fixture(scope="module")
def clustered():
    features, groups = three_groups()
    return features, groups, cluster_customers(features)


def test_clusters_recover_the_groups(clustered):
    features, groups, clustering = clustered
    assert set(clustering.silhouette) == set(range(3, 9))
    assert max(clustering.silhouette, key=clustering.silhouette.get) == 3
    assert clustering.k == 3
    labels = clustering.labels
    assert labels.index.equals(features.table.index)
    buyers = groups >= 0
    assert adjusted_rand_score(groups[buyers], labels.to_numpy()[buyers]) >= 0.9
    assert (labels.to_numpy()[~buyers] == -1).all()
    assert set(labels.to_numpy()[buyers]) == {0, 1, 2}


def test_clusters_are_numbered_by_revenue(clustered):
    features, groups, clustering = clustered
    table = features.table
    buyers = clustering.labels >= 0
    revenue = table.loc[buyers, "monetary"].groupby(clustering.labels[buyers]).sum()
    assert list(revenue.index) == [0, 1, 2]
    assert revenue.is_monotonic_decreasing
    # Frequent small baskets earn about 75 x 20 each, big baskets about 6.5 x 200, the lapsed
    # about 2.5 x 25: clusters 0, 1, 2 in that order.
    for cluster, group in enumerate([1, 0, 2]):
        assert (clustering.labels.to_numpy()[groups == group] == cluster).mean() >= 0.95


def test_cluster_profiles(clustered):
    features, groups, clustering = clustered
    profiles = clustering.profiles
    table = features.table
    labels = clustering.labels
    assert list(profiles["cluster"]) == [0, 1, 2]
    assert profiles["size"].sum() == 3 * GROUP_SIZE
    assert profiles["share"].sum() == pytest.approx(3 * GROUP_SIZE / len(table))
    assert profiles["revenue_share"].sum() == pytest.approx(1.0)
    # Profile means against a pandas groupby of the table over the labels.
    buyers = labels >= 0
    means = table.loc[buyers].groupby(labels[buyers]).mean()
    for column in ["recency_days", "frequency", "avg_basket_value", "avg_basket_lines"]:
        np.testing.assert_allclose(profiles[f"mean_{column}"], means[column], err_msg=column)
    sizes = pd.Series(labels[buyers]).value_counts().sort_index()
    np.testing.assert_array_equal(profiles["size"], sizes)
    big = labels.to_numpy()[groups == 0][0]
    frequent = labels.to_numpy()[groups == 1][0]
    lapsed = labels.to_numpy()[groups == 2][0]
    describe = profiles.set_index("cluster")["description"]
    assert "large baskets" in describe[big]
    assert "many different products per trip" in describe[big]
    assert "frequent shoppers" in describe[frequent]
    assert "lapsing" in describe[lapsed]
    for words in describe:
        assert len(words.split(", ")) <= 3


def test_clusters_do_not_depend_on_the_row_order(clustered):
    features, _, clustering = clustered
    shuffled = features.table.sample(frac=1.0, random_state=1)
    again = cluster_customers(CustomerFeatures(shuffled, features.reference_day))
    assert again.k == clustering.k
    assert (
        adjusted_rand_score(clustering.labels, again.labels.reindex(clustering.labels.index)) == 1.0
    )


def test_too_few_buyers_give_no_clusters():
    features, groups = three_groups()
    table = features.table
    few = table.loc[(groups < 0) | (np.cumsum(groups >= 0) <= 5)]  # 5 buyers, 5 non-buyers
    clustering = cluster_customers(CustomerFeatures(few, features.reference_day))
    assert clustering.k == 0 and clustering.profiles.empty
    assert clustering.silhouette == {}
    assert (clustering.labels == -1).all() and len(clustering.labels) == 10
    # With k from 2, six buyers can be clustered.
    six = table.loc[(groups < 0) | (np.cumsum(groups >= 0) <= 6)]
    assert cluster_customers(CustomerFeatures(six, features.reference_day), (2, 4)).k >= 2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_buyers_that_all_look_alike_give_no_clusters():
    table = pd.DataFrame(
        {
            "recency_days": [3.0] * 10,
            "frequency": [1] * 10,
            "monetary": [5.0] * 10,
            "avg_basket_value": [5.0] * 10,
        },
        index=pd.Index(range(10), name="customer_id"),
    )
    clustering = cluster_customers(CustomerFeatures(table, pd.Timestamp("2024-01-31")))
    assert clustering.k == 0 and (clustering.labels == -1).all()


def test_synthetic_clusters(synthetic_features: CustomerFeatures):
    clustering = cluster_customers(synthetic_features)
    table = synthetic_features.table
    assert 3 <= clustering.k <= 8
    assert clustering.silhouette[clustering.k] == max(clustering.silhouette.values())
    bought = table["frequency"] > 0
    assert (clustering.labels[~bought] == -1).all()
    assert set(clustering.labels[bought]) == set(range(clustering.k))
    assert clustering.profiles["size"].sum() == bought.sum()
    assert clustering.profiles["revenue_share"].is_monotonic_decreasing
    # The department shares are clustered on too, with their own words.
    assert any(c.startswith("mean_share_") for c in clustering.profiles.columns)
