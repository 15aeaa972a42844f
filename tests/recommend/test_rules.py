"""Tests for tailor.recommend.rules: hand-worked answers, invariants, and mlxtend on the same
baskets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from mlxtend.frequent_patterns import association_rules as mlxtend_rules
from mlxtend.frequent_patterns import fpgrowth

from tailor.dataset import Dataset
from tailor.errors import TailorError
from tailor.recommend.rules import (
    BUNDLE_COLUMNS,
    RULE_COLUMNS,
    association_rules,
    bundles,
    stricter_rules,
)

# Five baskets (one customer's moment each), worked by hand:
#   1: A B C    2: A B    3: A C    4: B D    5: A B D
# Items: A in 4, B in 4, C in 2, D in 2 baskets. Pairs: AB 3, AC 2, BD 2, BC 1, AD 1, CD 0.
# Also a view of D in basket 1 and a return of C in basket 4: neither is a purchase.
FIVE_BASKETS = [
    (1, "A", "2024-03-01 09:00"), (1, "B", "2024-03-01 09:00"), (1, "C", "2024-03-01 09:00"),
    (1, "D", "2024-03-01 09:00", "view", 1),
    (2, "A", "2024-03-02 09:00"), (2, "B", "2024-03-02 09:00"),
    (3, "A", "2024-03-03 09:00"), (3, "C", "2024-03-03 09:00"),
    (4, "B", "2024-03-04 09:00"), (4, "D", "2024-03-04 09:00"),
    (4, "C", "2024-03-04 09:00", "return", 1),
    (5, "A", "2024-03-05 09:00"), (5, "B", "2024-03-05 09:00"), (5, "D", "2024-03-05 09:00"),
]  # fmt: skip
# min_support 0.4 = 2 baskets keeps AB, AC, BD, each in both directions:
#   rule    support  confidence  lift = confidence / support(consequent)
#   A -> B  3/5      3/4         (3/4) / (4/5) = 0.9375
#   B -> A  3/5      3/4         0.9375
#   A -> C  2/5      2/4         (1/2) / (2/5) = 1.25
#   C -> A  2/5      2/2         1 / (4/5) = 1.25
#   B -> D  2/5      2/4         1.25
#   D -> B  2/5      2/2         1.25
FIVE_BASKET_RULES = {
    ("A", "B"): (0.6, 0.75, 0.9375, 3),
    ("B", "A"): (0.6, 0.75, 0.9375, 3),
    ("A", "C"): (0.4, 0.5, 1.25, 2),
    ("C", "A"): (0.4, 1.0, 1.25, 2),
    ("B", "D"): (0.4, 0.5, 1.25, 2),
    ("D", "B"): (0.4, 1.0, 1.25, 2),
}


@pytest.fixture(scope="module")
def five(make_dataset) -> Dataset:
    return make_dataset(FIVE_BASKETS)


def _as_dict(rules: pd.DataFrame) -> dict[tuple, tuple]:
    return {
        (a[0], c[0]): (s, conf, lift, n)
        for a, c, s, conf, lift, n in zip(
            rules["antecedents"],
            rules["consequents"],
            rules["support"],
            rules["confidence"],
            rules["lift"],
            rules["count"],
            strict=True,
        )  # fmt: skip
    }


def test_five_baskets_by_hand(five: Dataset):
    rules = association_rules(five, min_support=0.4)
    assert list(rules.columns) == RULE_COLUMNS
    assert rules.attrs == {"baskets": 5, "min_support": 0.4}
    got = _as_dict(rules)
    assert got.keys() == FIVE_BASKET_RULES.keys()
    for pair, expected in FIVE_BASKET_RULES.items():
        assert got[pair] == pytest.approx(expected, abs=1e-12)
    # Highest lift first, then confidence: C -> A and D -> B (1.25, 1.0) lead, A/B trail.
    leaders = rules.head(2)
    assert leaders["antecedents"].tolist() == [("C",), ("D",)]
    assert leaders["consequents"].tolist() == [("A",), ("B",)]
    assert list(rules["lift"]) == sorted(rules["lift"], reverse=True)
    first = rules.iloc[0]
    assert (first["antecedent_count"], first["consequent_count"]) == (2, 4)


def test_thresholds(five: Dataset):
    # 0.5 of 5 baskets = 3 (mlxtend's ceil): only A/B remains.
    assert _as_dict(association_rules(five, min_support=0.5)).keys() == {("A", "B"), ("B", "A")}
    # 0.2 = 1 basket adds B/C and A/D (never C/D).
    pairs = _as_dict(association_rules(five, min_support=0.2)).keys()
    assert {frozenset(p) for p in pairs} == {frozenset(p) for p in ["AB", "AC", "BD", "BC", "AD"]}
    confident = association_rules(five, min_support=0.4, min_confidence=0.9)
    assert _as_dict(confident).keys() == {("C", "A"), ("D", "B")}


def test_stricter_rules_are_the_rules_of_stricter_thresholds(five: Dataset):
    loose = association_rules(five, min_support=0.2)
    for support, confidence in [(0.2, 0.0), (0.4, 0.0), (0.4, 0.9), (0.5, 0.5)]:
        kept = stricter_rules(loose, support, confidence)
        pd.testing.assert_frame_equal(kept, association_rules(five, support, confidence))
        assert kept.attrs == {"baskets": 5, "min_support": support}
    with pytest.raises(TailorError, match="counted from 0.2"):
        stricter_rules(loose, 0.1)


def test_returns_and_views_are_not_purchases(make_dataset):
    # C is returned in basket 2 and viewed in basket 3: A and C were never bought together.
    rows = [
        (1, "A", "2024-03-01 09:00"), (1, "C", "2024-03-01 09:00"),
        (2, "A", "2024-03-02 09:00"), (2, "C", "2024-03-02 09:00", "return", 1),
        (3, "A", "2024-03-03 09:00"), (3, "C", "2024-03-03 09:00", "view", 1),
        (4, "B", "2024-03-04 09:00", "return", 2),
    ]  # fmt: skip
    rules = association_rules(make_dataset(rows), min_support=0.01)
    # Baskets: the three with a purchase of A (a basket holding only a return is no basket).
    assert rules.attrs["baskets"] == 3
    assert _as_dict(rules) == {
        ("A", "C"): pytest.approx((1 / 3, 1 / 3, 1.0, 1)),
        ("C", "A"): pytest.approx((1 / 3, 1.0, 1.0, 1)),
    }


def test_bad_parameters(five: Dataset):
    with pytest.raises(TailorError, match="at least two items"):
        association_rules(five, max_len=1)
    for support in (0, -0.1, 1.5):
        with pytest.raises(TailorError, match="min_support"):
            association_rules(five, min_support=support)
    with pytest.raises(TailorError, match="min_confidence"):
        association_rules(five, min_confidence=1.2)


def test_no_events(make_dataset):
    rules = association_rules(make_dataset([(1, "A", "2024-03-01", "view", 1)]))
    assert rules.empty and list(rules.columns) == RULE_COLUMNS
    assert rules.attrs["baskets"] == 0


def test_bundles(five: Dataset):
    rules = association_rules(five, min_support=0.2)
    top = bundles(rules, "A", k=2)
    assert list(top.columns) == BUNDLE_COLUMNS
    # From A: C (lift 1.25, conf 0.5), D (1 basket of A's 4: conf 0.25, lift 0.25/0.4 = 0.625),
    # B (0.9375): by lift, C then B.
    assert top["bundle_item_id"].tolist() == ["C", "B"]
    assert top["rank"].tolist() == [1, 2] and top["item_id"].tolist() == ["A", "A"]
    assert top["lift"].tolist() == pytest.approx([1.25, 0.9375])
    assert top["reason"].tolist() == [
        "bought together in 2 baskets (lift 1.2)",  # 1.25 rounds half to even
        "bought together in 3 baskets (lift 0.9)",
    ]
    assert bundles(rules, "A", k=10)["bundle_item_id"].tolist() == ["C", "B", "D"]
    assert bundles(rules, "F", k=5).empty


# -- against mlxtend ------------------------------------------------------------------------------


def _dataset_of(matrix: np.ndarray) -> Dataset:
    """A Dataset whose purchases are the baskets x items 0/1 ``matrix`` (one basket per row)."""
    basket, item = np.nonzero(matrix)
    n_items = matrix.shape[1]
    events = pd.DataFrame(
        {
            "customer": basket.astype(np.int32),
            "item": item.astype(np.int32),
            "basket": basket.astype(np.int64),
            "event_type": pd.Categorical(["purchase"] * len(basket)),
            "weight": np.ones(len(basket), np.float32),
        }
    )
    return Dataset(
        interactions=sp.csr_matrix(matrix.astype(np.float32)),
        customer_ids=np.arange(matrix.shape[0]),
        item_ids=np.arange(100, 100 + n_items),
        events=events,
        items=pd.DataFrame({"item_id": np.arange(100, 100 + n_items)}),
        customers=pd.DataFrame({"customer_id": np.arange(matrix.shape[0])}),
    )


def _reference(onehot: pd.DataFrame, min_support: float) -> dict[tuple, tuple]:
    """mlxtend's pair rules: FP-growth itemsets of at most 2 items, every rule kept."""
    frequent = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=2)
    if frequent["itemsets"].map(len).max(skipna=True) != 2:
        return {}
    rules = mlxtend_rules(
        frequent, num_itemsets=len(onehot), metric="confidence", min_threshold=0,
        return_metrics=["support", "confidence", "lift"],
    )  # fmt: skip
    return {
        (next(iter(a)), next(iter(c))): (s, conf, lift)
        for a, c, s, conf, lift in zip(
            rules["antecedents"],
            rules["consequents"],
            rules["support"],
            rules["confidence"],
            rules["lift"],
            strict=True,
        )  # fmt: skip
    }


def _compare(ours: pd.DataFrame, reference: dict[tuple, tuple]) -> None:
    got = {pair: values[:3] for pair, values in _as_dict(ours).items()}
    assert got.keys() == reference.keys()
    for pair, expected in reference.items():
        np.testing.assert_allclose(got[pair], expected, rtol=0, atol=1e-9)


@pytest.mark.parametrize("min_support", [0.002, 0.01])
def test_matches_mlxtend_on_synthetic_baskets(synthetic_dataset: Dataset, min_support: float):
    events = synthetic_dataset.events
    rng = np.random.default_rng(7)
    baskets = events["basket"].unique()
    sample = rng.choice(baskets, size=len(baskets) // 2, replace=False)
    dataset = synthetic_dataset.with_events(events["basket"].isin(sample).to_numpy())
    ours = association_rules(dataset, min_support=min_support)
    bought = dataset.events.loc[dataset.events["event_type"] == "purchase"]
    onehot = pd.crosstab(bought["basket"], dataset.item_ids[bought["item"]]) > 0
    assert ours.attrs["baskets"] == len(onehot)
    reference = _reference(onehot, min_support)
    assert len(reference) > 20  # enough rules for the comparison to mean something
    _compare(ours, reference)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 40).flatmap(
        lambda n: st.lists(st.lists(st.booleans(), min_size=6, max_size=6), min_size=n, max_size=n)
    ),
    st.sampled_from([0.05, 0.1, 0.25, 0.5]),
)
def test_matches_mlxtend_on_random_baskets(rows: list[list[bool]], min_support: float):
    matrix = np.array(rows, dtype=bool)
    matrix = matrix[matrix.any(axis=1)]  # a basket holds at least one item
    if len(matrix) == 0:
        return
    ours = association_rules(_dataset_of(matrix), min_support=min_support)
    onehot = pd.DataFrame(matrix, columns=np.arange(100, 106))
    _compare(ours, _reference(onehot, min_support))
    # Invariants: both directions of each pair with the same support; lift symmetric.
    got = _as_dict(ours)
    for (a, c), (support, _, lift, _) in got.items():
        assert got[(c, a)][0] == support and got[(c, a)][2] == pytest.approx(lift)


# -- itemsets of three and more -------------------------------------------------------------------


def test_triples_by_hand(five: Dataset):
    # min_support 0.2 = 1 basket: the triples are ABC (basket 1) and ABD (basket 5). From ABC:
    #   A,B -> C  conf 1/3 (AB in 3 baskets)  lift (1/3) / (2/5) = 5/6
    #   B,C -> A  conf 1/1                     lift 1 / (4/5) = 1.25
    #   A -> B,C  conf 1/4                     lift (1/4) / (1/5) = 1.25
    rules = association_rules(five, min_support=0.2, max_len=3)
    triple = {
        (a, c): (s, conf, lift, n)
        for a, c, s, conf, lift, n in zip(
            rules["antecedents"], rules["consequents"], rules["support"],
            rules["confidence"], rules["lift"], rules["count"], strict=True,
        )
        if len(a) + len(c) == 3
    }  # fmt: skip
    assert len(triple) == 12  # 6 rules from each triple
    assert triple[(("A", "B"), ("C",))] == pytest.approx((0.2, 1 / 3, 5 / 6, 1))
    assert triple[(("B", "C"), ("A",))] == pytest.approx((0.2, 1.0, 1.25, 1))
    assert triple[(("A",), ("B", "C"))] == pytest.approx((0.2, 0.25, 1.25, 1))
    # The pairs are those of max_len=2, unchanged.
    pairs = rules.loc[rules["antecedents"].str.len() + rules["consequents"].str.len() == 2]
    assert _as_dict(pairs) == _as_dict(association_rules(five, min_support=0.2))
    assert (np.diff(rules["lift"].to_numpy()) <= 1e-12).all()


@settings(max_examples=25, deadline=None)
@given(
    st.integers(3, 30).flatmap(
        lambda n: st.lists(st.lists(st.booleans(), min_size=5, max_size=5), min_size=n, max_size=n)
    ),
    st.sampled_from([0.1, 0.2, 0.4]),
)
def test_triples_match_mlxtend_on_random_baskets(rows: list[list[bool]], min_support: float):
    matrix = np.array(rows, dtype=bool)
    matrix = matrix[matrix.any(axis=1)]
    if len(matrix) == 0:
        return
    ours = association_rules(_dataset_of(matrix), min_support=min_support, max_len=3)
    onehot = pd.DataFrame(matrix, columns=[str(c) for c in range(100, 105)])
    frequent = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=3)
    expected = {}
    if len(frequent) and frequent["itemsets"].map(len).max() >= 2:
        found = mlxtend_rules(frequent, num_itemsets=len(onehot), metric="confidence",
                              min_threshold=0)  # fmt: skip
        for a, c, s, conf, lift in zip(found["antecedents"], found["consequents"],
                                       found["support"], found["confidence"], found["lift"],
                                       strict=True):  # fmt: skip
            key = (tuple(sorted(int(i) for i in a)), tuple(sorted(int(i) for i in c)))
            expected[key] = (s, conf, lift)
    got = {
        (tuple(a), tuple(c)): (s, conf, lift)
        for a, c, s, conf, lift in zip(ours["antecedents"], ours["consequents"], ours["support"],
                                       ours["confidence"], ours["lift"], strict=True)
    }  # fmt: skip
    assert got.keys() == expected.keys()
    for key, values in expected.items():
        np.testing.assert_allclose(got[key], values, rtol=0, atol=1e-9)
