"""PersonalFrequency and Repurchase: purchase days, decay and purchase cycles worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from handmade import SHOP, SHOP_POPULARITY

from tailor.dataset import Dataset
from tailor.recommend import PersonalFrequency, Repurchase

TIE = 1e-3  # repurchase.POPULARITY_TIE_BREAK: recent popularity / its max, times this


def scores_of(frame: pd.DataFrame, customer) -> dict:
    mine = frame[frame["customer_id"] == customer]
    return dict(zip(mine["item_id"], mine["score"], strict=True))


def reasons_of(frame: pd.DataFrame, customer) -> dict:
    mine = frame[frame["customer_id"] == customer]
    return dict(zip(mine["item_id"], mine["reason"], strict=True))


def decay(age_days: float, half_life: float) -> float:
    return 0.5 ** (age_days / half_life)


# -- PersonalFrequency --------------------------------------------------------------------------


def test_frequency_counts_distinct_purchase_days(shop: Dataset):
    frame = PersonalFrequency().fit(shop).recommend([1, 2, 3], k=6)
    tie = {item: TIE * value / 3.75 for item, value in SHOP_POPULARITY.items()}
    # Customer 1 bought A four times on three days (twice on 03-30), B once.
    assert frame[frame["customer_id"] == 1]["item_id"].tolist()[:2] == ["A", "B"]
    assert scores_of(frame, 1)["A"] == pytest.approx(3 + tie["A"], rel=1e-6)
    assert scores_of(frame, 1)["B"] == pytest.approx(1 + tie["B"], rel=1e-6)
    assert scores_of(frame, 1)["C"] == pytest.approx(tie["C"], rel=1e-5)
    # Customer 2: C on two days, A on one; customer 3: E on five.
    assert scores_of(frame, 2)["C"] == pytest.approx(2 + tie["C"], rel=1e-6)
    assert scores_of(frame, 2)["A"] == pytest.approx(1 + tie["A"], rel=1e-6)
    assert scores_of(frame, 3)["E"] == pytest.approx(5 + tie["E"], rel=1e-6)


def test_frequency_reasons(shop: Dataset):
    frame = PersonalFrequency().fit(shop).recommend([1, 5], k=6)
    # "Now" is 2024-04-01: customer 1 last bought A on 03-30, B on 03-29; customer 5 B on 03-31.
    assert reasons_of(frame, 1)["A"] == "you bought this 3 times; last bought 2 days ago"
    assert reasons_of(frame, 1)["B"] == "you bought this once; last bought 3 days ago"
    assert reasons_of(frame, 1)["C"] == "popular now with other customers"
    assert reasons_of(frame, 5)["B"] == "you bought this once; last bought yesterday"


def test_half_life_decays_from_the_datasets_cut(shop: Dataset, make_dataset):
    # Cut 2024-03-31, "now" 04-01: customer 1's A is 22, 12 and 2 days old, B 3 days.
    frame = PersonalFrequency(half_life_days=10).fit(shop).recommend([1], k=2)
    a = decay(22, 10) + decay(12, 10) + decay(2, 10)  # 0.2176 + 0.4353 + 0.8706 = 1.5235
    b = decay(3, 10)  # 0.8123
    assert scores_of(frame, 1)["A"] == pytest.approx(a + TIE * 1.0, rel=1e-5)
    assert scores_of(frame, 1)["B"] == pytest.approx(b + TIE * 2.5 / 3.75, rel=1e-5)
    # The same events seen from a later cut (now 04-10) are 9 days older each.
    later = make_dataset(SHOP, as_of="2024-04-09")
    frame = PersonalFrequency(half_life_days=10).fit(later).recommend([1], k=2)
    a = decay(31, 10) + decay(21, 10) + decay(11, 10)
    # Popularity from 03-13: A {1, 2, 5}, B {1, 5}, E {3}, C {2} -> A's tie-break is still 1.
    assert scores_of(frame, 1)["A"] == pytest.approx(a + TIE * 1.0, rel=1e-5)


def test_returned_items_and_views_are_not_purchases(make_dataset):
    ds = make_dataset(
        [
            (1, "A", "2024-03-10"),
            (1, "A", "2024-03-20"),
            (1, "B", "2024-03-15"),  # bought ...
            (1, "B", "2024-03-18", "return"),  # ... and returned: no preference
            (1, "C", "2024-03-25", "view"),  # only looked at
            (2, "D", "2024-03-01"),
        ],
        as_of="2024-03-31",
    )
    model = PersonalFrequency().fit(ds)
    frame = model.recommend([1], k=6)
    assert frame["item_id"].iloc[0] == "A"
    assert scores_of(frame, 1)["A"] == pytest.approx(2, abs=TIE)
    assert scores_of(frame, 1)["B"] <= TIE * 1.0001  # the popularity tie-break only
    assert scores_of(frame, 1)["C"] <= TIE * 1.0001
    assert reasons_of(frame, 1)["A"] == "you bought this 2 times; last bought 12 days ago"
    assert reasons_of(frame, 1)["B"] == "popular now with other customers"
    assert reasons_of(frame, 1)["C"] == "popular now with other customers"


# -- Repurchase ---------------------------------------------------------------------------------

# One customer, seen as of 2024-03-31 ("now" 04-01):
#   A every 12 days, last 13 days ago (02-24, 03-07, 03-19): due
#   B every 60 days, last 5 days ago (2023-11-28, 01-27, 03-27): not due for 55 days
#   C bought 40, 30 and 10 days ago: cycle (40 - 10) / 2 = 15 days, due in 5
#   D once, 10 days ago
#   E every 5 days, last 40 days ago (02-11, 02-16, 02-21): 8 cycles late, a dropped habit
CYCLES = [
    (1, "A", "2024-02-24"), (1, "A", "2024-03-07"), (1, "A", "2024-03-19"),
    (1, "B", "2023-11-28"), (1, "B", "2024-01-27"), (1, "B", "2024-03-27"),
    (1, "C", "2024-02-21"), (1, "C", "2024-03-02"), (1, "C", "2024-03-22"),
    (1, "D", "2024-03-22"),
    (1, "E", "2024-02-11"), (1, "E", "2024-02-16"), (1, "E", "2024-02-21"),
]  # fmt: skip


@pytest.fixture(scope="module")
def cycles(make_dataset) -> Dataset:
    return make_dataset(CYCLES, as_of="2024-03-31")


def test_repurchase_scores_worked_by_hand(cycles: Dataset):
    # score = decayed frequency (half-life 90) x due, due = (1 - exp(-28 / cycle)) x
    # exp(-max(days since / cycle - 3, 0)); an item bought once: decayed frequency x 0.5.
    # Tie-break: recent popularity (from 03-04: A, B, C, D one buyer each, E none; all-time one
    # each) is 1.5 for A-D, 0.5 for E, 0 for F; over its max, times 1e-3.
    def freq(*ages: int) -> float:
        return sum(decay(a, 90) for a in ages)

    expected = {
        "A": freq(37, 25, 13) * (1 - np.exp(-28 / 12)) + TIE,  # 2.482 x 0.903 = 2.241
        "C": freq(40, 30, 10) * (1 - np.exp(-28 / 15)) + TIE,  # 2.455 x 0.845 = 2.075
        "B": freq(125, 65, 5) * (1 - np.exp(-28 / 60)) + TIE,  # 1.950 x 0.373 = 0.727
        "D": freq(10) * 0.5 + TIE,  # 0.463
        "E": freq(50, 45, 40) * (1 - np.exp(-28 / 5)) * np.exp(-(8 - 3)) + TIE / 3,  # 0.014
        "F": 0.0,
    }
    frame = Repurchase().fit(cycles).recommend([1], k=6)
    assert frame["item_id"].tolist() == ["A", "C", "B", "D", "E", "F"]
    np.testing.assert_allclose(frame["score"], list(expected.values()), rtol=1e-5, atol=1e-9)


def test_a_due_item_outranks_one_bought_as_often_but_not_due(cycles: Dataset):
    # Without cycles A, B and C tie on 3 purchase days each (A first only by column order).
    plain = PersonalFrequency().fit(cycles).recommend([1], k=3)
    assert plain["score"].round(2).tolist() == [3.0, 3.0, 3.0]
    frame = Repurchase().fit(cycles).recommend([1], k=6)
    order = frame["item_id"].tolist()
    assert order.index("A") < order.index("B")
    assert order.index("C") < order.index("B")  # due in 5 days beats due in 55


def test_repurchase_reasons(cycles: Dataset):
    reasons = reasons_of(Repurchase().fit(cycles).recommend([1], k=6), 1)
    assert reasons["A"] == "you buy this about every 12 days; last bought 13 days ago (due now)"
    assert reasons["C"] == (
        "you buy this about every 15 days; last bought 10 days ago (due in about 5 days)"
    )
    assert reasons["B"] == (
        "you buy this about every 60 days; last bought 5 days ago (due in about 55 days)"
    )
    assert reasons["D"] == "you bought this once; last bought 10 days ago"
    assert reasons["E"] == (
        "you buy this about every 5 days; last bought 40 days ago "
        "(overdue for a while: perhaps a habit you dropped)"
    )
    assert reasons["F"] == "popular now with other customers"


def test_repurchase_cycle_state(cycles: Dataset):
    model = Repurchase().fit(cycles)
    row = cycles.customer_index([1])[0]
    columns = cycles.item_index(["A", "B", "C", "E"])
    np.testing.assert_allclose(
        model.cycle_[row, columns].toarray().ravel(), [12, 60, 15, 5], rtol=1e-6
    )
