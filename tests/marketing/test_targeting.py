"""Next-best offers and campaign targeting: the selection rules worked by hand on a score table;
the value of a redemption estimated by hand on a tiny shop; and the scores of a synthetic shop
with two planned campaigns and two customers who opted out of marketing, checked against the
warehouse's frames in pandas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tailor.customers.features import PurchaseTable
from tailor.errors import TailorError
from tailor.marketing.targeting import (
    COLUMNS,
    OfferScores,
    _open_campaigns,
    analyse_offers,
    next_best_offers,
    target_campaign,
)
from tailor.store import Warehouse
from tailor.synthetic import SyntheticData, generate

# -- selection on a hand-made score table ------------------------------------------------------


def handmade_scores() -> pd.DataFrame:
    """Three customers x campaigns X (worth 2 a redemption) and Y (worth 10)."""
    rows = [
        ("a", "X", "x1", 0.5, 2.0),
        ("a", "Y", "y1", 0.2, 10.0),
        ("b", "X", None, 0.9, 2.0),
        ("b", "Y", "y2", 0.1, 10.0),
        ("c", "X", "x1", 0.3, 2.0),
        ("c", "Y", None, 0.05, 10.0),
    ]
    frame = pd.DataFrame(rows, columns=COLUMNS[:5])
    frame["expected_value"] = frame["probability"] * frame["value"]
    frame["reason"] = "why"
    return frame[COLUMNS]


def pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["customer_id"], frame["campaign_id"], strict=True))


def test_next_best_offer_is_each_customers_highest_expected_value():
    # Expected values: a: X 1.0, Y 2.0; b: X 1.8, Y 1.0; c: X 0.6, Y 0.5.
    best = next_best_offers(handmade_scores())
    assert pairs(best) == [("a", "Y"), ("b", "X"), ("c", "X")]
    assert best["expected_value"].tolist() == pytest.approx([2.0, 1.8, 0.6])


def test_max_per_customer_and_ties_broken_by_probability():
    two = next_best_offers(handmade_scores(), max_per_customer=2)
    # a's X and b's Y both have expected value 1.0: a's probability (0.5) is higher.
    assert pairs(two) == [("a", "Y"), ("b", "X"), ("a", "X"), ("b", "Y"), ("c", "X"), ("c", "Y")]
    assert two.groupby("customer_id").size().max() == 2
    only_y = next_best_offers(handmade_scores(), campaign="Y")
    assert pairs(only_y) == [("a", "Y"), ("b", "Y"), ("c", "Y")]
    with pytest.raises(TailorError, match="at least 1"):
        next_best_offers(handmade_scores(), max_per_customer=0)


def test_a_budget_takes_the_highest_probabilities():
    scores = handmade_scores()
    # Y by probability: a 0.2, b 0.1, c 0.05.
    assert pairs(target_campaign(scores, "Y")) == [("a", "Y"), ("b", "Y"), ("c", "Y")]
    assert pairs(target_campaign(scores, "Y", budget=2)) == [("a", "Y"), ("b", "Y")]
    assert target_campaign(scores, "Y", budget=0).empty
    with pytest.raises(TailorError, match="must not be negative"):
        target_campaign(scores, "Y", budget=-1)


def test_a_cost_budget_pays_for_whole_contacts():
    scores = handmade_scores()
    # 25 at 10 a contact pays for 2; with a budget of 1 as well, the smaller wins.
    assert pairs(target_campaign(scores, "Y", max_cost=25, contact_cost=10)) == [
        ("a", "Y"),
        ("b", "Y"),
    ]
    assert pairs(target_campaign(scores, "Y", budget=1, max_cost=25, contact_cost=10)) == [
        ("a", "Y")
    ]
    assert target_campaign(scores, "Y", max_cost=9.99, contact_cost=10).empty
    for cost in (None, 0.0):
        with pytest.raises(TailorError, match="positive --contact-cost"):
            target_campaign(scores, "Y", max_cost=25, contact_cost=cost)


def test_a_contact_cost_alone_keeps_those_worth_more():
    scores = handmade_scores()
    # Y's expected values: a 2.0, b 1.0, c 0.5; "worth more" is strict.
    assert pairs(target_campaign(scores, "Y", contact_cost=0.9)) == [("a", "Y"), ("b", "Y")]
    assert pairs(target_campaign(scores, "Y", contact_cost=1.0)) == [("a", "Y")]
    assert pairs(target_campaign(scores, "Y", budget=1, contact_cost=0.4)) == [("a", "Y")]


def test_an_unknown_campaign_names_the_open_ones():
    with pytest.raises(TailorError, match=r"campaign Z is not open .*\(open: X, Y\)"):
        target_campaign(handmade_scores(), "Z")
    with pytest.raises(TailorError, match=r"\(open: X, Y\)"):
        next_best_offers(handmade_scores(), campaign="Z")


def test_campaign_ids_match_as_text():
    scores = handmade_scores().assign(campaign_id=[7, 8, 7, 8, 7, 8])
    assert target_campaign(scores, "8", budget=1)["customer_id"].tolist() == ["a"]
    assert target_campaign(scores, 8, budget=1)["customer_id"].tolist() == ["a"]


# -- the value of a redemption -----------------------------------------------------------------


def value_shop(make_warehouse) -> Warehouse:
    """Three ended campaigns with redeemers, and open ones of each kind of value.

    Redeemers' spend on the coupon products inside each window:
    campaign 1 (A, Jan 1-10; items 1, 2): customer 1 4 + 6 = 10, customer 2 3 + 5 = 8 -> 9.0;
    campaign 2 (A, Jan 15-20; item 3): customer 1 8 -> 8.0;
    campaign 3 (B, Jan 5-12; item 2): customer 2 3 + 5 + 2 = 10 -> 10.0.
    Type A is worth (9 + 8) / 2 = 8.5, type B 10.0, any type (9 + 8 + 10) / 3 = 9.0.
    """
    nan = np.nan
    campaigns = pd.DataFrame(
        [
            (1, "A", "2024-01-01", "2024-01-10", nan),
            (2, "A", "2024-01-15", "2024-01-20", nan),
            (3, "B", "2024-01-05", "2024-01-12", nan),
            (4, "A", "2024-03-01", "2024-03-10", nan),  # planned
            (5, "B", "2024-03-01", "2024-03-10", nan),
            (6, "C", "2024-03-01", "2024-03-10", nan),  # a type without history
            (7, "C", "2024-03-01", "2024-03-10", 9.5),  # its value given
            (8, "A", "2024-02-20", "2024-03-05", nan),  # running at the end
        ],
        columns=["campaign_id", "type", "start", "end", "value"],
    )
    offers = pd.DataFrame(
        [(11, 1, 1), (12, 1, 2), (21, 2, 3), (31, 3, 2), (41, 4, 1)],
        columns=["offer_id", "campaign_id", "item_id"],
    )
    redemptions = pd.DataFrame(
        [(1, 11, 1, "2024-01-03"), (2, 12, 1, "2024-01-05"), (1, 21, 2, "2024-01-16"),
         (2, 31, 3, "2024-01-06")],
        columns=["customer_id", "offer_id", "campaign_id", "timestamp"],
    )  # fmt: skip
    events = pd.DataFrame(
        [
            (1, 1, "2023-12-30 10:00", 50.0),  # before campaign 1
            (1, 1, "2024-01-03 10:00", 4.0),
            (1, 2, "2024-01-04 10:00", 6.0),
            (1, 1, "2024-01-11 10:00", 100.0),  # after campaign 1
            (1, 3, "2024-01-16 10:00", 8.0),
            (2, 2, "2024-01-05 10:00", 3.0),  # in campaigns 1 and 3
            (2, 2, "2024-01-06 10:00", 5.0),  # in campaigns 1 and 3
            (2, 3, "2024-01-07 10:00", 20.0),  # not a coupon product of either
            (2, 2, "2024-01-12 10:00", 2.0),  # in campaign 3 only
            (3, 1, "2024-01-04 10:00", 30.0),  # not a redeemer
            (3, 1, "2024-02-29 10:00", 1.0),  # the last day
        ],
        columns=["customer_id", "item_id", "timestamp", "value"],
    ).assign(event_type="purchase")
    return make_warehouse(
        items=pd.DataFrame({"item_id": [1, 2, 3], "price": [1.0, 1.0, 1.0]}),
        events=events,
        campaigns=campaigns,
        offers=offers,
        redemptions=redemptions,
    )


def test_the_value_of_a_redemption_by_hand(make_warehouse):
    wh = value_shop(make_warehouse)
    ref = pd.Timestamp("2024-02-29")
    with PurchaseTable(wh, ref + pd.Timedelta(days=1)):
        found = _open_campaigns(wh, ref, ref + pd.Timedelta(days=1))
    assert list(found.index) == [8, 4, 5, 6, 7]  # by start; 1-3 ended
    assert found["value"].to_dict() == pytest.approx({8: 8.5, 4: 8.5, 5: 10.0, 6: 9.0, 7: 9.5})
    assert found["value_source"].to_dict() == {
        8: "mean spend of past redeemers in campaigns of this type",
        4: "mean spend of past redeemers in campaigns of this type",
        5: "mean spend of past redeemers in campaigns of this type",
        6: "mean spend of past redeemers in all campaigns",
        7: "campaign value column",
    }


def test_the_value_estimate_sees_only_campaigns_ended_before_the_bound(make_warehouse):
    wh = value_shop(make_warehouse)
    ref, end = pd.Timestamp("2024-01-14"), pd.Timestamp("2024-01-15")
    with PurchaseTable(wh, end):
        found = _open_campaigns(wh, ref, end)
    # Campaign 2 (Jan 15-20) is open now; type A's history is campaign 1 alone.
    assert found.loc[2, "value"] == pytest.approx(9.0)
    assert found.loc[6, "value"] == pytest.approx((9.0 + 10.0) / 2)


# -- a synthetic shop with planned campaigns ---------------------------------------------------

OPTED_OUT = [4, 9]
UNSTATED = 12  # consent_marketing missing: not an opt-out


@pytest.fixture(scope="module")
def planned(make_warehouse) -> tuple[SyntheticData, Warehouse, list[int]]:
    """150 customers over 180 days with 8 past campaigns, plus campaign 901 (type A, worth 4 a
    redemption, coupon 9011 on the most bought item, 9012 on the next two) and 902 (type B, no
    value given, coupon 9021 on the fourth), both starting after the last day."""
    data = generate(n_customers=150, n_items=60, days=180, n_campaigns=8, seed=1)
    last = data.events["timestamp"].max().normalize()
    buys = data.events.loc[data.events["quantity"] > 0]
    top = buys["item_id"].value_counts().index[:4].tolist()
    campaigns = pd.concat(
        [
            data.campaigns.assign(value=np.nan),
            pd.DataFrame(
                {
                    "campaign_id": [901, 902],
                    "type": ["A", "B"],
                    "name": ["planned A", "planned B"],
                    "start": [last + pd.Timedelta(days=7), last + pd.Timedelta(days=3)],
                    "end": [last + pd.Timedelta(days=21), last + pd.Timedelta(days=10)],
                    "value": [4.0, np.nan],
                }
            ),
        ],
        ignore_index=True,
    )
    offers = pd.concat(
        [
            data.offers,
            pd.DataFrame(
                {
                    "offer_id": [9011, 9012, 9012, 9021],
                    "campaign_id": [901, 901, 901, 902],
                    "item_id": top,
                }
            ),
        ],
        ignore_index=True,
    )
    consent = pd.Series(True, index=data.customers.index, dtype="boolean")
    consent[data.customers["customer_id"].isin(OPTED_OUT).to_numpy()] = False
    consent[(data.customers["customer_id"] == UNSTATED).to_numpy()] = pd.NA
    wh = make_warehouse(
        fmt="parquet",
        events=data.events,
        items=data.items,
        customers=data.customers.assign(consent_marketing=consent),
        campaigns=campaigns,
        campaign_members=data.campaign_members,
        offers=offers,
        redemptions=data.redemptions,
    )
    return data, wh, top


@pytest.fixture(scope="module")
def found(planned) -> OfferScores:
    _, wh, _ = planned
    return analyse_offers(wh)


def consenting(data: SyntheticData) -> set[int]:
    known = set(data.customers["customer_id"]) | set(data.events["customer_id"])
    return known - set(OPTED_OUT)


def test_every_consenting_customer_is_scored_once_per_open_campaign(planned, found):
    data, _, _ = planned
    last = data.events["timestamp"].max().normalize()
    running = data.campaigns.loc[data.campaigns["end"] >= last, "campaign_id"].tolist()
    open_ids = set(running) | {901, 902}
    assert set(found.campaigns["campaign_id"]) == open_ids
    expected = {(c, k) for c in consenting(data) for k in open_ids}
    assert set(pairs(found.scores)) == expected
    assert len(found.scores) == len(expected)  # no pair twice
    assert found.summary["open_campaigns"] == len(open_ids)
    assert found.summary["scored_customers"] == len(consenting(data))


def test_customers_who_opted_out_never_appear(found):
    ids = set(found.scores["customer_id"])
    assert not ids & set(OPTED_OUT)
    assert UNSTATED in ids
    for frame in (
        next_best_offers(found.scores, max_per_customer=5),
        target_campaign(found.scores, "901"),
        target_campaign(found.scores, "902", contact_cost=0.0),
    ):
        assert not set(frame["customer_id"]) & set(OPTED_OUT)


def test_scores_are_probabilities_times_values(found):
    s = found.scores
    assert list(s.columns) == COLUMNS
    assert s["probability"].between(0, 1).all()
    np.testing.assert_allclose(s["expected_value"], s["probability"] * s["value"])
    campaigns = found.campaigns.set_index("campaign_id")
    assert campaigns.loc[901, "value"] == 4.0
    assert campaigns.loc[901, "value_source"] == "campaign value column"
    assert campaigns.loc[902, "value"] > 0
    assert campaigns.loc[902, "value_source"].startswith("mean spend of past redeemers")
    assert (s["value"] == s["campaign_id"].map(campaigns["value"])).all()
    assert s["expected_value"].is_monotonic_decreasing
    for p, reason in zip(s["probability"], s["reason"], strict=True):
        assert reason.startswith(f"{p:.0%} likely to redeem: ")
    assert found.summary["train_campaigns"] == [str(c) for c in [2, 6, 7, 5, 8, 4, 1, 3]]
    assert "metrics" in found.summary["evaluation"]


def test_the_coupon_offered_covers_most_of_what_they_bought(planned, found):
    data, _, top = planned
    buys = data.events.loc[
        (data.events["event_type"] == "purchase") & (data.events["quantity"] > 0)
    ]
    lines = buys.groupby(["customer_id", "item_id"]).size()

    def bought(customer: int, items: list[int]) -> int:
        return int(sum(lines.get((customer, i), 0) for i in items))

    # None where they bought none of the campaign's products (missing, as pandas holds it).
    offered = found.scores.set_index(["customer_id", "campaign_id"])["offer_id"]
    offered = offered.astype(object).where(offered.notna(), None)
    for customer in sorted(consenting(data)):  # 148 customers, two lookups each
        first, second = bought(customer, top[:1]), bought(customer, top[1:3])
        expected = None if first + second == 0 else (9011 if first >= second else 9012)
        assert offered[(customer, 901)] == expected, customer
        assert offered[(customer, 902)] == (9021 if bought(customer, top[3:]) else None), customer
    assert offered.isna().any()  # someone bought none of them: the case is exercised


def test_next_best_offers_on_the_scores(found):
    best = next_best_offers(found.scores)
    assert best["customer_id"].is_unique
    assert len(best) == found.scores["customer_id"].nunique()
    top = found.scores.groupby("customer_id")["expected_value"].max()
    np.testing.assert_allclose(best["expected_value"], top.loc[best["customer_id"]].to_numpy())
    assert best["expected_value"].is_monotonic_decreasing
    two = next_best_offers(found.scores, max_per_customer=2)
    assert (two.groupby("customer_id").size() == 2).all()


def test_a_target_list_is_the_campaigns_most_likely_redeemers(found):
    chosen = target_campaign(found.scores, "901", budget=10)
    of_901 = found.scores.loc[found.scores["campaign_id"] == 901]
    expected = of_901.sort_values(["probability", "customer_id"], ascending=[False, True]).head(10)
    assert chosen["customer_id"].tolist() == expected["customer_id"].tolist()
    assert (chosen["campaign_id"] == 901).all()


def test_offer_scores_round_trip(found, tmp_path: Path):
    """Saved and loaded as they were: ids keep the warehouse's type (integers here, with the
    missing coupons still missing), so the CLI and the API can match them as text."""
    found.save(tmp_path / "offers")
    loaded = OfferScores.load(tmp_path / "offers")
    assert loaded.summary == found.summary
    pd.testing.assert_frame_equal(loaded.scores, found.scores)
    pd.testing.assert_frame_equal(loaded.campaigns, found.campaigns)
    assert loaded.scores["offer_id"].isna().sum() == found.scores["offer_id"].isna().sum() > 0
    as_text = loaded.scores["customer_id"].astype(str)
    assert set(as_text) == {str(c) for c in found.scores["customer_id"]}
    with pytest.raises(TailorError, match="tailor build"):
        OfferScores.load(tmp_path / "nothing")


def test_as_of_hides_later_campaigns_from_the_model(planned):
    data, wh, _ = planned
    as_of = pd.Timestamp("2024-05-01")
    early = analyse_offers(wh, as_of=as_of)
    assert early.summary["as_of"] == as_of.isoformat()
    starts = data.campaigns.set_index("campaign_id")["start"]
    trained = [int(c) for c in early.summary["train_campaigns"]]
    # By start; 1 runs until May 28 (its redeemers are yet to come), 3 starts on May 22.
    assert trained == [2, 6, 7, 5, 8, 4]
    assert all(starts[c] < as_of for c in trained)
    # Open at the bound: 1 (running until May 28), 3 (starts later) and the planned two.
    assert set(early.scores["campaign_id"]) == {1, 3, 901, 902}
    known = set(data.customers["customer_id"]) - set(OPTED_OUT)
    assert set(early.scores["customer_id"]) == known
