"""Unusual customer-weeks: hand-made shoppers with known answers, invariants with hypothesis, and
a synthetic shop with injected anomalies that must be found (and little else)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailor.customers.anomalies import (
    FEATURES,
    RATIO_CAP,
    RATIO_FLOOR,
    SCALED_MAD,
    _positions,
    _prior_median_mad,
    customer_weeks,
    detect,
)
from tailor.errors import TailorError

MONDAY = pd.Timestamp("2017-09-25")  # week 0 of the hand-made shop; week 8 is 2017-11-20
LAST = "2017-11-20"
COLUMNS = ["customer_id", "timestamp", "event_type", "quantity", "value", "basket"]


def event(customer, week, value, *, kind="purchase", day=2, hour=18, quantity=1.0, basket=None):
    """One event of ``customer`` in week ``week`` (0 = MONDAY) on ``day`` (0 = Monday)."""
    when = MONDAY + pd.Timedelta(weeks=week, days=day, hours=hour)
    basket = customer * 1000 + week * 10 if basket is None else basket
    return (customer, when, kind, quantity, value, basket)


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=COLUMNS)


SPENDS = [55, 62, 70, 58, 66, 61, 64, 60]  # customer 1 before the spike: median 61.5


def handmade() -> pd.DataFrame:
    """Nine weeks of six shoppers; week 8 (2017-11-20) holds the surprises.

    1 spends about $62 a week, then $650; 2 buys $100 a week, then returns $45; 3 buys the same
    $30 every week; 4 only shows up in weeks 6-8; 5 shops at 18:00, then at 03:00; 6 views 4
    items per trip, then 64.
    """
    rows = []
    for w in range(9):
        rows.append(event(1, w, 650.0 if w == 8 else float(SPENDS[w])))
        rows.append(event(2, w, 100.0, day=3, hour=10))
        rows.append(event(3, w, 30.0, day=1, hour=9))
        rows.append(event(5, w, 40.0, hour=3 if w == 8 else 18))
        rows.append(event(6, w, 20.0, hour=12))
        views = 64 if w == 8 else 4
        rows.extend(event(6, w, np.nan, kind="view", hour=12) for _ in range(views))
    rows.append(event(2, 8, 45.0, kind="return", day=4, hour=11, basket=2999))
    rows.extend(event(4, w, 30.0) for w in (6, 7, 8))
    return frame(rows)


@pytest.fixture(scope="module")
def result():
    return detect(handmade())


def reason_of(result, customer):
    return result.customers.set_index("customer_id").loc[customer, "anomaly_reason"]


# -- weekly features ------------------------------------------------------------------------------


def test_weekly_features_by_hand():
    rows = [
        event(1, 0, 10.0, quantity=2.0, basket=1),
        event(1, 0, 5.0, basket=1),
        event(1, 0, np.nan, kind="view", basket=1),
        event(1, 0, np.nan, basket=2),  # a purchase without a value counts 0
        event(1, 0, 3.0, kind="return", basket=3),
        event(1, 1, 4.0, kind="return", basket=4),  # returns and nothing bought
    ]
    weeks = customer_weeks(frame(rows))
    first, second = weeks.iloc[0], weeks.iloc[1]
    columns = ["spend", "returned", "baskets", "items", "events"]
    assert tuple(first[columns]) == (
        15.0,
        3.0,
        3,
        4.0,
        5,
    )
    assert first.returns_rate == pytest.approx(0.2)
    assert first.events_per_trip == pytest.approx(5 / 3)
    assert np.isnan(first.hours_from_usual)  # no earlier week to know their hours from
    assert first.unusual_hour == -1
    assert second.returns_rate == 1.0 and second.spend == 0.0
    assert second.hours_from_usual == 0.0


def test_weeks_start_on_mondays():
    rows = [
        (7, pd.Timestamp("2017-11-19 23:30"), "purchase", 1.0, 5.0, 1),  # a Sunday night
        (7, pd.Timestamp("2017-11-20 00:10"), "purchase", 1.0, 5.0, 2),  # the Monday after
        (7, pd.Timestamp("2017-11-26 23:59"), "view", 1.0, np.nan, 3),  # the Sunday after
    ]
    weeks = customer_weeks(frame(rows))
    assert list(weeks.week_start) == [pd.Timestamp("2017-11-13"), pd.Timestamp("2017-11-20")]
    assert (weeks.week_start.dt.day_of_week == 0).all()
    assert list(weeks.events) == [1, 2]


def test_time_zones_keep_the_wall_clock():
    plain = handmade()
    zoned = plain.assign(timestamp=plain.timestamp.dt.tz_localize("America/New_York"))
    pd.testing.assert_frame_equal(customer_weeks(zoned), customer_weeks(plain))


def test_hours_from_usual_by_hand():
    weeks = customer_weeks(handmade()).set_index(["customer_id", "week_start"])
    night = weeks.loc[(5, pd.Timestamp(LAST))]
    assert night.hours_from_usual == 9.0  # 03:00 is 9 hours from 18:00, around midnight
    assert night.unusual_hour == 3
    assert weeks.loc[(5, pd.Timestamp("2017-11-13")), "hours_from_usual"] == 0.0


# -- scores and reasons ---------------------------------------------------------------------------


def test_spend_spike_is_flagged_with_its_numbers(result):
    assert reason_of(result, 1) == f"spent $650 in the week of {LAST}, 10.6x their usual $62"
    week = result.weeks.set_index("customer_id").loc[1].iloc[-1]
    assert week.spend_usual == pytest.approx(61.5)
    # The z worked by hand: log scale with the offset, median and MAD of the 8 earlier weeks.
    spends = customer_weeks(handmade()).spend
    offset = 0.1 * np.median(spends[spends > 0])
    history = np.log(np.array(SPENDS) + offset)
    mad = np.median(np.abs(history - np.median(history)))
    scale = np.clip(SCALED_MAD * mad, np.log(RATIO_FLOOR), np.log(RATIO_CAP))
    expected = (np.log(650 + offset) - np.median(history)) / scale
    assert week.spend_z == pytest.approx(expected)
    assert week.score == pytest.approx(expected) and expected > 5
    assert week.feature == "spend" and week.compared_with == "own history"


def test_return_spike_is_flagged(result):
    assert reason_of(result, 2) == (
        f"returned 45% of what they bought in the week of {LAST}; usually 0%"
    )
    customer = result.customers.set_index("customer_id").loc[2]
    assert customer.anomaly_score == pytest.approx(4.5)  # 45 points over a floor of 10
    assert customer.anomaly_feature == "returns_rate"


def test_unusual_hours_are_flagged(result):
    assert reason_of(result, 5) == (
        f"was active around 03:00 in the week of {LAST}, on average 9 hours from their usual"
        " shopping hours"
    )
    assert result.customers.set_index("customer_id").loc[5, "anomaly_score"] == pytest.approx(6)


def test_event_rate_spike_names_every_unusual_feature(result):
    assert reason_of(result, 6) == (
        f"logged 65 events in the week of {LAST}, 13.0x their usual 5; "
        "also unusual: events per trip"
    )


def test_steady_customer_is_not_flagged(result):
    steady = result.weeks[result.weeks.customer_id == 3]
    assert len(steady) == 5  # weeks 4-8: four earlier weeks needed
    assert (steady.score == 0).all() and not steady.flagged.any()
    assert (steady.reason == "").all() and (steady.feature == "").all()
    assert reason_of(result, 3) == ""


def test_too_little_history(result):
    new = result.customers.set_index("customer_id").loc[4]
    assert new.anomaly_reason == "not enough history"
    assert new.anomaly_score == 0 and new.anomaly_week == pd.Timestamp(LAST)
    assert 4 not in set(result.weeks.customer_id)
    known = detect(handmade(), min_history_weeks=2).customers.set_index("customer_id").loc[4]
    assert known.anomaly_reason == "" and known.anomaly_score == 0


def test_flags_are_this_weeks_unusual_customers_by_score(result):
    flags = result.flags
    assert result.last_week == pd.Timestamp(LAST)
    assert set(flags.customer_id) == {1, 2, 5, 6}
    assert (flags.week_start == pd.Timestamp(LAST)).all()
    assert flags.score.is_monotonic_decreasing and (flags.score > 3.5).all()
    row = flags.set_index("customer_id").loc[1]
    assert (row.feature, row.value, row.usual) == ("spend", 650.0, pytest.approx(61.5))
    assert list(result.customers.customer_id) == [1, 2, 3, 4, 5, 6]
    assert result.flags.reason.tolist() == [reason_of(result, c) for c in flags.customer_id]


def test_a_return_rate_far_above_everyones():
    rows = [event(c, w, 100.0) for c in range(1, 7) for w in range(6)]
    rows += [event(9, w, 60.0, kind="return", day=5, basket=9000 + w) for w in range(6)]
    rows += [event(9, w, 100.0) for w in range(6)]
    result = detect(frame(rows))
    serial = result.flags.set_index("customer_id").loc[9]
    assert serial.compared_with == "population" and serial.score == pytest.approx(6.0)
    assert serial.reason == (
        "returned 60% of what they bought in the week of 2017-10-30; most customers 0%"
    )
    assert list(result.flags.customer_id) == [9]


def test_as_of_hides_later_events():
    events = handmade()
    before = detect(events, as_of=pd.Timestamp(LAST))
    assert before.last_week == pd.Timestamp("2017-11-13")
    assert before.flags.empty
    assert (before.customers.anomaly_week == pd.Timestamp("2017-11-13")).all()
    weeks = customer_weeks(events, as_of=pd.Timestamp(LAST))
    assert weeks.week_start.max() == pd.Timestamp("2017-11-13")
    # The end is exclusive: an event at the instant itself is hidden.
    spike = events[(events.customer_id == 1) & (events.value == 650)].timestamp.iloc[0]
    cut = customer_weeks(events, as_of=spike)
    assert cut[cut.customer_id == 1].week_start.max() == pd.Timestamp("2017-11-13")
    # A cut later in the week: that week is the last one, even for a customer absent from it.
    mid = detect(events, as_of=pd.Timestamp("2017-11-23"))
    assert mid.last_week == pd.Timestamp(LAST)
    assert set(mid.flags.customer_id) == {1, 5, 6}  # 2 returns on Friday, after the cut


def test_string_ids_and_no_events():
    events = handmade()
    named = events.assign(customer_id="c" + events.customer_id.astype(str))
    result = detect(named)
    assert set(result.flags.customer_id) == {"c1", "c2", "c5", "c6"}
    empty = detect(events.iloc[:0])
    assert empty.weeks.empty and empty.customers.empty and empty.flags.empty
    assert empty.last_week is None


def test_user_errors():
    with pytest.raises(TailorError, match="basket"):
        detect(handmade().drop(columns="basket"))
    with pytest.raises(TailorError, match="timestamp"):
        customer_weeks(handmade().assign(timestamp="2017-01-01"))
    with pytest.raises(TailorError, match="min_history_weeks"):
        detect(handmade(), min_history_weeks=0)


def test_prior_median_and_mad_match_numpy():
    rng = np.random.default_rng(3)
    customers = np.sort(rng.integers(0, 30, 400))
    x = rng.lognormal(3, 1, 400)
    x[rng.random(400) < 0.1] = np.nan
    starts, pos = _positions(pd.Series(customers))
    rows = np.flatnonzero(pos >= 1)
    median, mad, usual = _prior_median_mad(x, pos, rows, window=6)
    for i, r in enumerate(rows):
        history = x[r - min(pos[r], 6) : r]
        if np.isnan(history).all():
            assert np.isnan(median[i])
            continue
        assert median[i] == pytest.approx(np.nanmedian(history))
        assert mad[i] == pytest.approx(np.nanmedian(np.abs(history - np.nanmedian(history))))
    assert np.array_equal(usual, median, equal_nan=True)


# -- invariants -----------------------------------------------------------------------------------

events_strategy = st.lists(
    st.tuples(
        st.integers(0, 3),  # customer
        st.integers(0, 9),  # week
        st.integers(0, 6),  # day
        st.integers(0, 23),  # hour
        st.sampled_from(["purchase", "purchase", "return", "view", "cart"]),
        st.floats(0.01, 500.0),  # value
        st.integers(0, 4),  # basket within the week
    ),
    min_size=1,
    max_size=80,
)


def random_shop(draw: list[tuple]) -> pd.DataFrame:
    c, w, d, h, kind, value, b = (np.array(column) for column in zip(*draw, strict=True))
    when = MONDAY + pd.to_timedelta(w * 7 + d, unit="D") + pd.to_timedelta(h, unit="h")
    return pd.DataFrame(
        {
            "customer_id": c,
            "timestamp": when,
            "event_type": kind,
            "quantity": np.ones(len(c)),
            "value": np.where(kind == "view", np.nan, value),
            "basket": (c * 100 + w * 10 + b).astype(np.int64),
        }
    )


Z_COLUMNS = [f"{name}_z" for name in FEATURES] + ["returns_rate_population_z", "score"]


@settings(max_examples=30, deadline=None)
@given(events_strategy, st.floats(0.01, 100.0))
def test_a_change_of_currency_changes_no_score(draw, rate):
    events = random_shop(draw)
    plain = detect(events, min_history_weeks=2)
    converted = detect(events.assign(value=events.value * rate), min_history_weeks=2)
    for column in Z_COLUMNS:
        np.testing.assert_allclose(converted.weeks[column], plain.weeks[column], atol=1e-9)
    np.testing.assert_allclose(
        converted.customers.anomaly_score, plain.customers.anomaly_score, atol=1e-9
    )


@settings(max_examples=30, deadline=None)
@given(events_strategy, st.integers(1, 60), st.randoms(use_true_random=False))
def test_row_order_and_whole_weeks_of_shift_change_nothing(draw, shift, random):
    events = random_shop(draw)
    plain = detect(events, min_history_weeks=2)
    order = list(range(len(events)))
    random.shuffle(order)
    moved = events.iloc[order].assign(
        timestamp=events.timestamp.iloc[order] + pd.Timedelta(weeks=shift)
    )
    other = detect(moved, min_history_weeks=2)
    pd.testing.assert_frame_equal(
        other.weeks.drop(columns=["week_start", "reason"]),
        plain.weeks.drop(columns=["week_start", "reason"]),
    )
    assert (other.weeks.week_start - plain.weeks.week_start == pd.Timedelta(weeks=shift)).all()


@settings(max_examples=30, deadline=None)
@given(events_strategy, st.integers(1, 4))
def test_scores_are_finite_and_flags_carry_reasons(draw, min_history):
    result = detect(random_shop(draw), min_history_weeks=min_history)
    weeks = result.weeks
    assert np.isfinite(weeks[Z_COLUMNS].to_numpy()).all() and (weeks[Z_COLUMNS] >= 0).all().all()
    assert (weeks.flagged == (weeks.reason != "")).all()
    assert (weeks.score == weeks[Z_COLUMNS[:-1]].max(axis=1)).all()
    assert (weeks.previous_weeks >= min_history).all()
    customers = result.customers
    assert customers.customer_id.is_unique
    assert set(customers.customer_id) == set(random_shop(draw).customer_id)
    assert np.isfinite(customers.anomaly_score).all()
    assert (customers.anomaly_score[customers.anomaly_reason == "not enough history"] == 0).all()


# -- a synthetic shop with injected anomalies -----------------------------------------------------


def synthetic_shop(n_customers=2000, n_weeks=30, n_each=40, seed=7):
    """Customers with their own trip rate (Poisson, 1-3 a week), basket size (Poisson, 3-8
    lines of lognormal value, plus about one view a trip), habitual hour (+-1) and 3 % of trips
    followed by a small return. In the last week ``n_each`` customers each spend 10 times their
    median week, return 60 % of what they bought, or shop 12 hours off their habit.

    Returns the events and the injected customers by kind.
    """
    rng = np.random.default_rng(seed)
    trip_rate = rng.uniform(1.0, 3.0, n_customers)
    basket_size = rng.uniform(3.0, 8.0, n_customers)
    usual_hour = rng.integers(8, 21, n_customers)
    trips = rng.poisson(trip_rate[:, None], (n_customers, n_weeks))
    trips[:, -1] = np.maximum(trips[:, -1], 1)  # everyone shops in the last week
    customer = np.repeat(np.repeat(np.arange(n_customers), n_weeks), trips.ravel())
    week = np.repeat(np.tile(np.arange(n_weeks), n_customers), trips.ravel())
    n_trips = len(customer)
    hour = (usual_hour[customer] + rng.integers(-1, 2, n_trips)) % 24
    start = (
        MONDAY.to_datetime64()
        + (week * 7 + rng.integers(0, 7, n_trips)) * np.timedelta64(1, "D")
        + hour * np.timedelta64(1, "h")
    )
    lines = 1 + rng.poisson(basket_size[customer])
    per_trip = lines + rng.poisson(1.0, n_trips)
    trip = np.repeat(np.arange(n_trips), per_trip)
    line = np.arange(len(trip)) - np.repeat(np.cumsum(per_trip) - per_trip, per_trip)
    view = line >= lines[trip]
    events = pd.DataFrame(
        {
            "customer_id": customer[trip],
            "timestamp": start[trip] + line * np.timedelta64(30, "s"),
            "event_type": np.where(view, "view", "purchase"),
            "quantity": 1.0 + rng.poisson(0.3, len(trip)),
            "value": np.where(view, np.nan, rng.lognormal(1.0, 0.6, len(trip))),
            "basket": trip.astype(np.int64),
        }
    )
    back = (rng.random(n_trips) < 0.03) & (week < n_weeks - 1)
    returns = pd.DataFrame(
        {
            "customer_id": customer[back],
            "timestamp": start[back] + np.timedelta64(2, "D"),
            "event_type": "return",
            "quantity": 1.0,
            "value": rng.lognormal(1.0, 0.6, back.sum()),
            "basket": n_trips + np.arange(back.sum()),
        }
    )

    injected = rng.choice(n_customers, 3 * n_each, replace=False)
    spender, returner, night = np.split(injected, 3)
    last = week[trip] == n_weeks - 1
    bought = (events.event_type == "purchase").to_numpy()
    weekly = (
        pd.Series(np.where(bought, events.value, 0.0))
        .groupby([events.customer_id.to_numpy(), week[trip]])
        .sum()
    )
    weekly = weekly[weekly > 0].unstack()
    factor = 10 * weekly.iloc[:, :-1].median(axis=1) / weekly.iloc[:, -1]
    hit = last & bought & np.isin(events.customer_id, spender)
    events.loc[hit, "value"] *= factor.reindex(events.customer_id[hit]).to_numpy()
    moved = last & np.isin(events.customer_id, night)
    stamp = events.timestamp[moved]
    events.loc[moved, "timestamp"] = stamp.dt.floor("D") + pd.to_timedelta(
        (stamp.dt.hour + 12) % 24, unit="h"
    )
    spent = events[last & bought & np.isin(events.customer_id, returner)]
    spent = spent.groupby("customer_id").value.sum()
    sunday_night = MONDAY + pd.Timedelta(weeks=n_weeks - 1, days=6, hours=20)
    spike = pd.DataFrame(
        {
            "customer_id": spent.index.to_numpy(),
            "timestamp": sunday_night,
            "event_type": "return",
            "quantity": 2.0,
            "value": 0.6 * spent.to_numpy(),
            "basket": 10**9 + np.arange(len(spent)),
        }
    )
    events = pd.concat([events, returns, spike], ignore_index=True)
    return events, {"spend": spender, "returns_rate": returner, "hours_from_usual": night}


def test_injected_anomalies_are_found():
    events, injected = synthetic_shop()
    result = detect(events)
    assert result.last_week == MONDAY + pd.Timedelta(weeks=29)
    flagged = set(result.flags.customer_id)
    planted = set(np.concatenate(list(injected.values())))
    precision = len(flagged & planted) / len(flagged)
    recall = len(flagged & planted) / len(planted)
    assert precision >= 0.8 and recall >= 0.8, (precision, recall)
    flags = result.flags.set_index("customer_id")
    for feature, customers in injected.items():
        found = flags.reindex(customers).dropna(subset=["feature"])
        assert len(found) >= 0.8 * len(customers), feature
        assert (found.feature == feature).mean() >= 0.8, feature
    # Quiet weeks: few of the ~2,000 customers are flagged in an ordinary week.
    ordinary = result.weeks[result.weeks.week_start < result.last_week]
    assert ordinary.groupby("week_start").flagged.mean().max() < 0.02
