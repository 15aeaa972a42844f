"""The offer-response model: top-decile lift worked by hand and its invariants with hypothesis;
the pair features of a hand-made shop worked by hand, with nothing at or after the cut leaking
in; member labels; the honest evaluation on the synthetic shop against its baselines, with the
history features cross-checked in pandas; and the errors of too little history."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.customers.features import PurchaseTable
from tailor.marketing.offers import (
    GRID,
    NoCampaigns,
    evaluate_offers,
    fit_offers,
    member_examples,
    pair_features,
    top_decile_lift,
    usable_campaigns,
)
from tailor.marketing.targeting import analyse_offers
from tailor.store import Warehouse, ingest_files
from tailor.synthetic import SyntheticData, generate, write

# -- top-decile lift ---------------------------------------------------------------------------


def test_perfect_ranking_lifts_by_one_over_the_share():
    y = np.zeros(20)
    y[[3, 11]] = 1
    score = np.where(y == 1, 0.9, 0.1) + np.linspace(0, 0.01, 20)
    # Both redeemers fill the top 2 places: rate 1 over a rate of 2/20.
    assert top_decile_lift(y, score) == pytest.approx(10.0)


def test_reversed_ranking_has_no_lift():
    y = np.zeros(20)
    y[[3, 11]] = 1
    assert top_decile_lift(y, np.where(y == 1, 0.1, 0.9)) == 0.0


@pytest.mark.parametrize("n, positives", [(10, 1), (20, 2), (50, 7), (137, 13)])
def test_a_constant_score_has_lift_exactly_one(n: int, positives: int):
    y = np.zeros(n)
    y[:positives] = 1
    assert top_decile_lift(y, np.zeros(n)) == 1.0


def test_a_tie_group_straddling_the_cut_gives_its_mean_rate():
    # 20 members, top 10 % = 2 places: the single best (a redeemer), then one place out of a
    # tie group of 4 holding 1 redeemer (1/4 expected); 3 redeemers in all.
    y = np.array([1, 1, 0, 0, 0] + [1] + [0] * 14, dtype=float)
    score = np.array([9, 5, 5, 5, 5] + [0] * 15, dtype=float)
    expected = (1 + 1 / 4) / 2 / (3 / 20)
    assert top_decile_lift(y, score) == pytest.approx(expected)
    # The order of the rows does not matter, only the scores.
    shuffled = np.random.default_rng(0).permutation(20)
    assert top_decile_lift(y[shuffled], score[shuffled]) == pytest.approx(expected)


def test_a_fractional_cut_takes_part_of_the_next_place():
    # 15 members: 1.5 places; the best is a redeemer, half of the next (a non-redeemer).
    y = np.array([1, 0] + [1] + [0] * 12, dtype=float)
    score = -np.arange(15, dtype=float)
    assert top_decile_lift(y, score) == pytest.approx((1 + 0) / 1.5 / (2 / 15))


labels_and_scores = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda y: sum(y) > 0),
        st.lists(st.integers(-20, 20), min_size=n, max_size=n),
        st.sampled_from([0.05, 0.1, 0.2, 0.5]),
    )
)


@settings(max_examples=150, deadline=None)
@given(labels_and_scores)
def test_lift_is_between_zero_and_one_over_the_share(case):
    y, score, share = case
    lift = top_decile_lift(np.array(y), np.array(score, dtype=float), share)
    assert -1e-9 <= lift <= 1 / share + 1e-9


@settings(max_examples=150, deadline=None)
@given(labels_and_scores)
def test_lift_is_invariant_to_monotone_transforms_of_the_score(case):
    y, score, share = case
    y, score = np.array(y), np.array(score, dtype=float)
    lift = top_decile_lift(y, score, share)
    for transform in (lambda s: 3 * s + 7, lambda s: np.exp(s / 10), lambda s: s**3):
        assert top_decile_lift(y, transform(score), share) == pytest.approx(lift)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(10, 80).flatmap(
        lambda n: st.tuples(
            st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda y: sum(y) > 0),
            st.permutations(range(n)),
        )
    )
)
def test_lift_without_ties_is_the_top_rate_over_the_rate(case):
    """A second implementation: with distinct scores and a whole number of top places, the lift
    is the plain rate among the top places over the rate among all."""
    y, score = np.array(case[0], dtype=float), np.array(case[1], dtype=float)
    n_top = len(y) // 10  # at least 1
    share = n_top / len(y)
    top = np.argsort(-score)[:n_top]
    assert top_decile_lift(y, score, share) == pytest.approx(y[top].mean() / y.mean())


# -- a hand-made shop --------------------------------------------------------------------------

CUT = pd.Timestamp("2024-02-01")  # campaign 12 starts here

ITEMS = pd.DataFrame(
    {
        "item_id": [1, 2, 3, 4, 5],
        "title": ["Milk", "Yogurt", "Bread", "Beef", "Pork"],
        "department": ["DAIRY", "DAIRY", "BAKERY", "MEAT", "MEAT"],
        "price": [2.0, 3.0, 4.0, 5.0, 6.0],
    }
)
CUSTOMERS = pd.DataFrame({"customer_id": [1, 2, 3]})
CAMPAIGNS = pd.DataFrame(
    {
        "campaign_id": [9, 10, 11, 12, 13],
        "type": ["B", "B", "A", "A", "B"],
        "name": ["before any event", "December", "January", "February", "mid-February"],
        "start": pd.to_datetime(
            ["2023-09-01", "2023-12-01", "2024-01-10", "2024-02-01", "2024-02-03"]
        ),
        "end": pd.to_datetime(
            ["2023-09-10", "2023-12-15", "2024-01-20", "2024-02-14", "2024-02-20"]
        ),
    }
)
MEMBERS = pd.DataFrame(
    {
        "campaign_id": [9, 10, 10, 11, 11, 12, 12, 13],
        "customer_id": [3, 1, 3, 1, 3, 1, 2, 1],
    }
)
# Campaign 12's coupons: 121 on Milk, 122 on Beef and Pork, 123 on Pork alone.
OFFERS = pd.DataFrame(
    [(101, 10, 3), (102, 10, 2), (111, 11, 1), (112, 11, 2), (112, 11, 3),
     (121, 12, 1), (122, 12, 4), (122, 12, 5), (123, 12, 5), (131, 13, 3)],
    columns=["offer_id", "campaign_id", "item_id"],
)  # fmt: skip
REDEMPTIONS = pd.DataFrame(
    [(1, 101, 10, "2023-12-05 12:00"), (1, 102, 10, "2023-12-06 12:00"),
     (1, 111, 11, "2024-01-15 10:00"),
     # after the cut: campaign 13 on Feb 4, campaign 12 itself on Feb 5
     (1, 131, 13, "2024-02-04 10:00"), (1, 121, 12, "2024-02-05 10:00")],
    columns=["customer_id", "offer_id", "campaign_id", "timestamp"],
)  # fmt: skip
REDEMPTIONS["timestamp"] = pd.to_datetime(REDEMPTIONS["timestamp"])

EVENTS = pd.DataFrame(
    [
        (1, 1, "purchase", "2023-10-01 09:00", 1, 1.0, "a0"),
        (1, 3, "purchase", "2023-12-05 12:00", 1, 4.0, "a1"),
        (1, 2, "purchase", "2023-12-06 12:00", 1, 3.0, "a2"),
        (1, 1, "purchase", "2023-12-20 10:00", 2, 4.0, "a3"),
        (1, 1, "purchase", "2024-01-15 10:00", 1, 2.0, "a4"),
        (1, 4, "purchase", "2024-01-15 10:00", 2, 10.0, "a4"),
        (1, 4, "return", "2024-01-20 10:00", 1, 5.0, "a5"),  # not a purchase line
        (1, 2, "purchase", "2024-01-25 10:00", 1, 3.0, "a6"),
        (1, 4, "purchase", "2024-01-31 23:59", 1, 5.0, "a7"),
        # at or after the cut
        (1, 1, "purchase", "2024-02-01 00:00", 50, 100.0, "a8"),
        (1, 3, "purchase", "2024-02-04 10:00", 1, 4.0, "a9"),
        (1, 1, "purchase", "2024-02-05 10:00", 1, 2.0, "a10"),
        (1, 5, "purchase", "2024-02-05 10:00", 1, 6.0, "a10"),
        (2, 2, "purchase", "2024-01-20 12:00", 1, 3.0, "b1"),
        (2, 1, "purchase", "2024-02-08 12:00", 1, 2.0, "b2"),
        (3, 3, "purchase", "2023-11-01 12:00", 1, 4.0, "c1"),
        (3, 1, "purchase", "2024-01-12 12:00", 1, 2.0, "c2"),
    ],
    columns=["customer_id", "item_id", "event_type", "timestamp", "quantity", "value", "basket_id"],
)
EVENTS["timestamp"] = pd.to_datetime(EVENTS["timestamp"])


def handmade_shop(make_warehouse, events: pd.DataFrame, redemptions: pd.DataFrame) -> Warehouse:
    return make_warehouse(
        items=ITEMS,
        customers=CUSTOMERS,
        events=events,
        campaigns=CAMPAIGNS,
        campaign_members=MEMBERS,
        offers=OFFERS,
        redemptions=redemptions,
    )


@pytest.fixture(scope="module")
def shop(make_warehouse) -> Warehouse:
    return handmade_shop(make_warehouse, EVENTS, REDEMPTIONS)


def pairs_of(*rows: tuple[int, int, str]) -> pd.DataFrame:
    return pd.DataFrame(
        [(c, k, pd.Timestamp(cut)) for c, k, cut in rows],
        columns=["customer_id", "campaign_id", "cut"],
    )


@pytest.fixture(scope="module")
def features(shop: Warehouse) -> pd.DataFrame:
    pairs = pairs_of(
        (1, 12, "2024-02-01"), (1, 12, "2024-02-10"), (2, 12, "2024-02-01"), (3, 11, "2024-01-10")
    )
    with PurchaseTable(shop, None) as purchases:
        return pair_features(purchases, pairs)


AFFINITY = [
    "offer_item_lines", "offer_item_spend", "offer_items_bought", "offer_item_lines_91d",
    "offer_item_lines_28d", "offer_coupons_bought",
]  # fmt: skip
HISTORY = [
    "redemptions_before", "campaigns_before", "campaigns_redeemed", "redemptions_same_type",
    "days_since_redemption", "redeemed_share",
]  # fmt: skip


def test_affinity_to_the_offers_by_hand(features: pd.DataFrame):
    expected = pd.DataFrame(
        [
            # Milk Oct 1 (1), Dec 20 (4), Jan 15 (2); Beef Jan 15 (10), Jan 31 (5): the return of
            # Beef is no line. Last 91 days: Dec 20 on; last 28: Jan 15 on. Coupons 121 and 122
            # cover them; 123 (Pork) does not.
            [5, 22.0, 2, 4, 3, 2],
            # At Feb 10 also Milk Feb 1 (100) and Feb 5 (2), Pork Feb 5 (6): all three coupons.
            [8, 130.0, 3, 7, 6, 3],
            # Customer 2 bought only Yogurt, which campaign 12 does not discount.
            [0, 0.0, 0, 0, 0, 0],
            # Customer 3: Bread Nov 1 before Jan 10 (coupon 112); Milk on Jan 12 is after it.
            [1, 4.0, 1, 1, 0, 1],
        ],
        columns=AFFINITY,
    )
    got = features[AFFINITY].reset_index(drop=True).astype(float)
    pd.testing.assert_frame_equal(got, expected.astype(float))


def test_coupon_history_by_hand(features: pd.DataFrame):
    nan = np.nan
    expected = pd.DataFrame(
        [
            # Redeemed 101, 102 (campaign 10, type B) and 111 (11, type A) before Feb 1; last on
            # Jan 15, 17 days before; received campaigns 10 and 11 (13 starts after the cut).
            [3, 2, 2, 1, 17, 1.0],
            # At Feb 10 also 131 (campaign 13) on Feb 4, six days before; campaign 12's own
            # redemption on Feb 5 is before this cut but is not the campaign's history.
            [4, 3, 3, 1, 6, 1.0],
            [0, 0, 0, 0, nan, nan],
            # Customer 3 received campaigns 9 and 10 before Jan 10, redeemed nothing.
            [0, 2, 0, 0, nan, 0.0],
        ],
        columns=HISTORY,
    )
    got = features[HISTORY].reset_index(drop=True).astype(float)
    pd.testing.assert_frame_equal(got, expected.astype(float))


def test_campaign_inputs_and_shares_by_hand(features: pd.DataFrame):
    first = features.iloc[0]
    assert str(first["campaign_type"]) == "A"
    assert (first["campaign_days"], first["campaign_offers"], first["campaign_items"]) == (13, 3, 3)
    # Spend before Feb 1: 1 + 4 + 3 + 4 + 2 + 10 + 3 + 5 = 32, of which 22 on the offer items.
    assert first["monetary"] == pytest.approx(32.0)
    assert first["offer_spend_share"] == pytest.approx(22 / 32)
    assert features.iloc[2]["offer_spend_share"] == 0.0
    assert isinstance(features["campaign_type"].dtype, pd.CategoricalDtype)


def test_nothing_at_or_after_the_cut_is_counted(make_warehouse, shop: Warehouse):
    """The same shop without anything from the cut on gives the same inputs, to the last
    column, for every pair cut there."""
    before = handmade_shop(
        make_warehouse,
        EVENTS.loc[EVENTS["timestamp"] < CUT],
        REDEMPTIONS.loc[REDEMPTIONS["timestamp"] < CUT],
    )
    pairs = pairs_of((1, 12, "2024-02-01"), (2, 12, "2024-02-01"), (1, 13, "2024-02-01"))
    with PurchaseTable(shop, None) as purchases:
        full = pair_features(purchases, pairs)
    with PurchaseTable(before, None) as purchases:
        hidden = pair_features(purchases, pairs)
    pd.testing.assert_frame_equal(full, hidden)
    assert full.loc[0, "offer_item_lines"] == 5  # not 6 with the Milk bought at the cut


# BUG (src/tailor/marketing/offers.py, _AFFINITY_SQL): the recent windows count days after
# `CAST(cut AS DATE) - 28`, so a cut at midnight sees 27 days (and 90 for "91d"), one fewer than
# the customer features' `day > ref - 28` with ref the last day the cut shows. Fix: take the
# windows from the reference day (`CAST(cut - INTERVAL 1 MICROSECOND AS DATE)`, as
# tailor.customers.features.reference_day does), or compare timestamps: `timestamp >= cut -
# INTERVAL 28 DAY`.
def test_the_recent_windows_are_28_and_91_whole_days(shop: Warehouse):
    # Customer 3 bought Bread on Nov 1 12:00 and Milk on Jan 12 12:00 (both campaign 11's).
    pairs = pairs_of((3, 11, "2024-02-09"), (3, 11, "2024-01-31"))
    with PurchaseTable(shop, None) as purchases:
        x = pair_features(purchases, pairs)
        baskets = purchases.features(pd.Timestamp("2024-02-09")).table.loc[3, "baskets_last_28d"]
    # Jan 12 is within the 28 days before Feb 9 (Jan 12-Feb 8), as the customer features agree.
    assert baskets == 1
    assert x["offer_item_lines_28d"].tolist()[0] == 1
    # Nov 1 12:00 is within the 91 days before Jan 31 (from Nov 1 00:00), as is Jan 12.
    assert x["offer_item_lines_91d"].tolist()[1] == 2


def test_member_examples_label_redemptions_before_the_table_end(shop: Warehouse):
    with PurchaseTable(shop, pd.Timestamp("2024-02-03")) as purchases:
        examples = member_examples(purchases)
    # Campaign 9 starts before the first event, 13 at the end: neither is used. Campaign 12 is
    # still running at the end (its redemption on Feb 5 is yet to come): not used either, since
    # it would teach that its members did not redeem.
    assert examples.campaigns == [10, 11]
    pairs = examples.pairs
    assert list(zip(pairs["campaign_id"], pairs["customer_id"], strict=True)) == [
        (10, 1), (10, 3), (11, 1), (11, 3),
    ]  # fmt: skip
    assert examples.y.tolist() == [1, 0, 1, 0]
    assert examples.pairs["cut"].tolist() == list(pd.to_datetime(
        ["2023-12-01", "2023-12-01", "2024-01-10", "2024-01-10"]
    ))  # fmt: skip
    assert examples.x["redemptions_before"].tolist() == [0, 0, 2, 0]
    later = examples.of([11])
    assert later.y.tolist() == [1, 0] and later.campaigns == [11]
    # Once campaign 12 has ended, its Feb 5 redemption labels customer 1.
    with PurchaseTable(shop, pd.Timestamp("2024-02-15")) as purchases:
        ended = member_examples(purchases)
    assert ended.campaigns == [10, 11, 12] and ended.of([12]).y.tolist() == [1, 0]


def test_member_examples_of_the_whole_history(shop: Warehouse):
    # The data ends on Feb 8: campaigns 12 and 13 are still running then.
    with PurchaseTable(shop, None) as purchases:
        examples = member_examples(purchases)
        assert usable_campaigns(purchases) == [10, 11]
    assert examples.campaigns == [10, 11]
    assert examples.y.tolist() == [1, 0, 1, 0]
    # Once every campaign has ended, all are examples.
    with PurchaseTable(shop, pd.Timestamp("2024-02-21")) as purchases:
        assert usable_campaigns(purchases) == [10, 11, 12, 13]
        assert member_examples(purchases).y.tolist() == [1, 0, 1, 0, 1, 0, 1]


def test_too_little_history_is_a_no_campaigns_error(make_warehouse, shop: Warehouse):
    with PurchaseTable(shop, pd.Timestamp("2024-02-03")) as purchases:
        examples = member_examples(purchases)
    with pytest.raises(NoCampaigns, match="4 campaign members with 2 redeemers.*at least 50"):
        fit_offers(examples)
    with PurchaseTable(shop, pd.Timestamp("2024-02-21")) as purchases:
        whole = member_examples(purchases)
    # Held out: campaign 13, whose single member redeemed.
    with pytest.raises(NoCampaigns, match="single outcome"):
        evaluate_offers(whole.of([10, 13]))
    with pytest.raises(NoCampaigns, match="1 campaigns with members; need at least 2"):
        evaluate_offers(examples.of([10]))
    with pytest.raises(NoCampaigns, match="at least 50"):
        analyse_offers(shop)
    empty = make_warehouse(customers=CUSTOMERS)
    with pytest.raises(NoCampaigns, match="no events"):
        analyse_offers(empty)
    no_campaigns = make_warehouse(items=ITEMS, events=EVENTS)
    with (
        PurchaseTable(no_campaigns, None) as purchases,
        pytest.raises(NoCampaigns, match="no campaign with members started after the first"),
    ):
        member_examples(purchases)


# -- the synthetic shop ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def coupon_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticData, Warehouse]:
    """300 customers over 240 days with 10 campaigns: enough members to learn from."""
    data = generate(n_customers=300, n_items=120, days=240, n_campaigns=10)
    folder = tmp_path_factory.mktemp("coupons")
    wh = Warehouse(folder / "shop.duckdb")
    for table, path in write(data, folder, fmt="parquet").items():
        ingest_files(wh, table.replace("_", "-"), [path])
    yield data, wh
    wh.close()


@pytest.fixture(scope="module")
def synthetic_examples(coupon_shop):
    _, wh = coupon_shop
    with PurchaseTable(wh, None) as purchases:
        return member_examples(purchases)


def test_history_features_match_pandas(coupon_shop, synthetic_examples):
    """A second implementation of four inputs and the labels, over every campaign member."""
    data, _ = coupon_shop
    pairs = synthetic_examples.pairs.reset_index(drop=True).rename_axis("pair").reset_index()
    x = synthetic_examples.x.reset_index(drop=True)
    start = data.campaigns.set_index("campaign_id")["start"]
    events = data.events
    buys = events.loc[(events["event_type"] == "purchase") & (events["quantity"] > 0)]

    def per_pair(frame: pd.DataFrame, keep: pd.Series, column: str = "pair") -> pd.Series:
        return frame.loc[keep].groupby("pair")[column].agg("size" if column == "pair" else "sum")

    red = pairs.merge(data.redemptions, on="customer_id", suffixes=("", "_r"))
    redemptions = per_pair(
        red, (red["timestamp"] < red["cut"]) & (red["campaign_id_r"] != red["campaign_id"])
    )
    got = pairs.merge(data.campaign_members, on="customer_id", suffixes=("", "_m"))
    got_start = got["campaign_id_m"].map(start)
    received = per_pair(
        got, (got_start < got["cut"]) & (got["campaign_id_m"] != got["campaign_id"])
    )
    offer_items = data.offers[["campaign_id", "item_id"]].drop_duplicates()
    bought = pairs.merge(offer_items, on="campaign_id").merge(
        buys[["customer_id", "item_id", "timestamp", "value"]], on=["customer_id", "item_id"]
    )
    before = bought["timestamp"] < bought["cut"]
    lines, spend = per_pair(bought, before), per_pair(bought, before, "value")

    def full(series: pd.Series) -> list:
        return series.reindex(pairs["pair"], fill_value=0).tolist()

    assert x["redemptions_before"].tolist() == full(redemptions)
    assert x["campaigns_before"].tolist() == full(received)
    assert x["offer_item_lines"].tolist() == full(lines)
    np.testing.assert_allclose(x["offer_item_spend"], full(spend), atol=1e-9)
    redeemed = set(
        zip(data.redemptions["customer_id"], data.redemptions["campaign_id"], strict=True)
    )
    labels = [
        int((c, k) in redeemed)
        for c, k in zip(pairs["customer_id"], pairs["campaign_id"], strict=True)
    ]
    assert synthetic_examples.y.tolist() == labels


def test_the_model_beats_targeting_everyone_on_held_out_campaigns(synthetic_examples):
    evaluation = evaluate_offers(synthetic_examples)
    m = evaluation.metrics
    assert list(m.index) == ["model", "everyone in the campaign", "past redemption count"]
    assert m.loc["everyone in the campaign", "auc"] == 0.5
    assert m.loc["everyone in the campaign", "top_decile_lift"] == 1.0
    assert m.loc["model", "auc"] > 0.7
    assert m.loc["model", "top_decile_lift"] > 1.5
    assert m["auc"].between(0, 1).all()
    assert m["top_decile_lift"].between(0, 10).all()
    # The last quarter of the campaigns by start are held out (round(2.5) = 2 of 10), the rest
    # trained on.
    order = synthetic_examples.campaigns
    assert evaluation.test_campaigns == order[-2:] and evaluation.train_campaigns == order[:-2]
    assert evaluation.n_train + evaluation.n_test == len(synthetic_examples.y)
    held_out = synthetic_examples.of(order[-2:]).y
    assert evaluation.redemption_rate == pytest.approx(held_out.mean())
    assert evaluation.params in GRID
    summary = evaluation.as_dict()
    assert summary["test_campaigns"] == [str(c) for c in order[-2:]]
    assert {row["model"] for row in summary["metrics"]} == set(m.index)


def test_fit_offers_learns_from_every_campaign(synthetic_examples):
    model = fit_offers(synthetic_examples)
    assert model.campaigns == synthetic_examples.campaigns
    assert model.redemption_rate == pytest.approx(synthetic_examples.y.mean())
    p = model.probability(synthetic_examples.x)
    assert p.shape == (len(synthetic_examples.y),) and ((p >= 0) & (p <= 1)).all()
    reasons = model.reasons(synthetic_examples.x.iloc[:20])
    assert len(reasons) == 20 and all(r for r in reasons)


def test_a_bound_hides_campaigns_that_start_after_it(coupon_shop):
    data, wh = coupon_shop
    bound = pd.Timestamp("2024-05-01")
    with PurchaseTable(wh, bound) as purchases:
        examples = member_examples(purchases)
    starts = data.campaigns.set_index("campaign_id")["start"]
    first = data.events["timestamp"].min()
    ends = data.campaigns.set_index("campaign_id")["end"]
    expected = sorted(
        starts.loc[(starts < bound) & (starts > first) & (ends < bound)].index,
        key=lambda c: (starts[c], c),
    )
    assert examples.campaigns == expected
    assert len(expected) < len(starts)
    red = data.redemptions.loc[data.redemptions["timestamp"] < bound]
    redeemed = set(zip(red["customer_id"], red["campaign_id"], strict=True))
    labels = [
        int((c, k) in redeemed)
        for c, k in zip(examples.pairs["customer_id"], examples.pairs["campaign_id"], strict=True)
    ]
    assert examples.y.tolist() == labels
