"""Customer lifetime value: BG/NBD and Gamma-Gamma against the published CDNOW fits, known
answers on tiny data, invariants, and recovery of the parameters of simulated customers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import hyp2f1

from tailor.customers.clv import BetaGeo, ClvReport, GammaGamma, clv_report, summarize
from tailor.errors import TailorError

CDNOW = Path(__file__).parent / "data" / "cdnow_summary.csv"
START = pd.Timestamp("2020-01-01")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return pd.read_csv(CDNOW)


@pytest.fixture(scope="module")
def cdnow_bg(cdnow: pd.DataFrame) -> BetaGeo:
    return BetaGeo().fit(cdnow["x"], cdnow["t_x"], cdnow["T"])


def fitted_bg(r: float, alpha: float, a: float, b: float) -> BetaGeo:
    model = BetaGeo()
    model.params_ = {"r": r, "alpha": alpha, "a": a, "b": b}
    return model


# --- CDNOW: the published fits (Fader, Hardie & Lee 2005) ----------------------------------------


def test_bg_nbd_reproduces_the_published_cdnow_fit(cdnow: pd.DataFrame, cdnow_bg: BetaGeo):
    assert len(cdnow) == 2357
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert cdnow_bg.params_[name] == pytest.approx(value, rel=0.01), name
    assert cdnow_bg.log_likelihood_ == pytest.approx(-9582.4, abs=0.1)
    assert cdnow_bg.n_customers_ == 2357


def test_gamma_gamma_reproduces_the_published_cdnow_fit(cdnow: pd.DataFrame):
    model = GammaGamma().fit(cdnow["x"], cdnow["zbar"])
    assert model.n_customers_ == 946
    published = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    for name, value in published.items():
        assert model.params_[name] == pytest.approx(value, rel=0.01), name


def test_bg_nbd_expectations_match_hardies_spreadsheet(cdnow_bg: BetaGeo):
    # Hardie's BG/NBD spreadsheet, as the lifetimes package checks it: a customer with 2 repeat
    # purchases, the last in week 30.43 of 38.86, makes 1.226 in the next 39 weeks ...
    assert cdnow_bg.expected_purchases(39, [2], [30.43], [38.86])[0] == pytest.approx(
        1.226, abs=1e-3
    )
    # ... and a new customer makes E[X(t)] repeat purchases in the first t weeks.
    weeks = [0.1429, 1.0, 3.0, 31.8571, 32.0, 78.0]
    expected = [0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576]
    np.testing.assert_allclose(cdnow_bg.expected_purchases_new(weeks), expected, atol=1e-3)


# --- summarize: known answers worked by hand ------------------------------------------------------


def tiny_purchases() -> pd.DataFrame:
    rows = [
        # customer 1: 3 purchase days (Jan 1 twice, Jan 4, Jan 10 twice)
        (1, "2020-01-01 09:00", 10.0),
        (1, "2020-01-01 15:00", 5.0),
        (1, "2020-01-04 12:00", 20.0),
        (1, "2020-01-10 10:00", 30.0),
        (1, "2020-01-10 11:00", 10.0),
        (1, "2020-01-15 00:00", 99.0),  # at the end: not observed
        # customer 2: a single purchase day
        (2, "2020-01-12 18:30", 7.0),
        # customer 3: only after the end
        (3, "2020-01-16 10:00", 3.0),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "timestamp", "value"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"])
    return frame


def test_summarize_counts_purchase_days_by_hand():
    summary = summarize(tiny_purchases(), pd.Timestamp("2020-01-15"))
    expected = pd.DataFrame(
        {
            "frequency": [2.0, 0.0],
            "recency": [9.0, 0.0],  # Jan 1 -> Jan 10
            "T": [14.0, 3.0],  # Jan 1 -> Jan 15, Jan 12 -> Jan 15
            "monetary": [30.0, 0.0],  # (20 + (30 + 10)) / 2 repeat days; the first day is out
        },
        index=pd.Index([1, 2], name="customer_id"),
    )
    pd.testing.assert_frame_equal(summary, expected)


def test_summarize_takes_wall_clock_days_of_zoned_timestamps():
    purchases = tiny_purchases()
    zoned = purchases.assign(timestamp=purchases["timestamp"].dt.tz_localize("America/Chicago"))
    end = pd.Timestamp("2020-01-15", tz="America/Chicago")
    pd.testing.assert_frame_equal(
        summarize(zoned, end), summarize(purchases, pd.Timestamp("2020-01-15"))
    )


def test_summarize_of_no_purchases_is_empty():
    summary = summarize(tiny_purchases(), pd.Timestamp("2019-01-01"))
    assert summary.empty
    assert list(summary.columns) == ["frequency", "recency", "T", "monetary"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="value"), "missing column"),
        (lambda f: f.assign(timestamp=f["timestamp"].astype(str)), "must be datetime64"),
        (lambda f: f.assign(value=[1.0, np.nan, *f["value"][2:]]), "'value' is missing"),
    ],
)
def test_summarize_says_what_is_wrong_with_the_purchases(change, message):
    with pytest.raises(TailorError, match=message):
        summarize(change(tiny_purchases()), pd.Timestamp("2020-01-15"))


purchase_rows = st.lists(
    st.tuples(
        st.integers(0, 4),  # customer
        st.integers(0, 60 * 24 * 30),  # minutes after START
        st.floats(0, 100, allow_nan=False),  # value
    ),
    min_size=1,
    max_size=40,
)


@given(rows=purchase_rows, end_day=st.integers(1, 31))
@settings(max_examples=60, deadline=None)
def test_summarize_agrees_with_a_per_customer_count(rows, end_day):
    frame = pd.DataFrame(rows, columns=["customer_id", "minute", "value"])
    frame["timestamp"] = START + pd.to_timedelta(frame["minute"], unit="min")
    end = START + pd.Timedelta(days=end_day)
    summary = summarize(frame, end)
    seen = frame[frame["timestamp"] < end]
    assert sorted(summary.index) == sorted(seen["customer_id"].unique())
    for customer, own in seen.groupby("customer_id"):  # the slow, obvious way, for reference
        per_day = own.groupby(own["timestamp"].dt.floor("D"))["value"].sum()
        got = summary.loc[customer]
        assert got["frequency"] == len(per_day) - 1
        assert got["recency"] == (per_day.index[-1] - per_day.index[0]).days
        assert got["T"] == (end - per_day.index[0]).days
        assert got["frequency"] <= got["recency"] < got["T"]
        repeat_mean = per_day.iloc[1:].mean() if len(per_day) > 1 else 0.0
        assert got["monetary"] == pytest.approx(repeat_mean)


# --- BG/NBD and Gamma-Gamma: invariants -----------------------------------------------------------

params = st.tuples(
    st.floats(0.05, 20),  # r
    st.floats(0.1, 500),  # alpha
    st.floats(0.05, 20),  # a
    st.floats(0.05, 50),  # b
)


@st.composite
def customers(draw):
    big_t = draw(st.floats(0.5, 1000))
    x = draw(st.integers(0, 300))
    t_x = 0.0 if x == 0 else draw(st.floats(0, big_t))
    return x, t_x, big_t


@given(p=params, customer=customers())
@settings(max_examples=200, deadline=None)
def test_p_alive_is_a_probability_and_one_without_repeat_purchases(p, customer):
    x, t_x, big_t = customer
    alive = fitted_bg(*p).p_alive([x], [t_x], [big_t])[0]
    assert 0.0 <= alive <= 1.0
    if x == 0:
        assert alive == 1.0


@given(p=params, customer=customers(), t=st.floats(0.01, 1000), more=st.floats(0.01, 1000))
@settings(max_examples=200, deadline=None)
def test_expected_purchases_are_non_negative_and_grow_with_the_horizon(p, customer, t, more):
    x, t_x, big_t = customer
    model = fitted_bg(*p)
    near, far = model.expected_purchases(np.array([t, t + more]), [x] * 2, [t_x] * 2, [big_t] * 2)
    assert 0.0 <= near <= far * (1 + 1e-9) + 1e-12
    assert np.isfinite(far)


@given(p=params, t=st.floats(0.01, 1000))
@settings(max_examples=100, deadline=None)
def test_a_customer_seen_only_now_expects_what_a_new_customer_does(p, t):
    model = fitted_bg(*p)
    fresh = model.expected_purchases(t, [0], [0.0], [0.0])[0]
    assert fresh == pytest.approx(model.expected_purchases_new(t), rel=1e-9, abs=1e-12)


@given(
    p=st.tuples(st.floats(0.1, 3), st.floats(1, 50), st.floats(0.1, 3), st.floats(0.5, 10)),
    x=st.integers(1, 20),
    recency_share=st.floats(0, 1),
    big_t=st.floats(1, 100),
    t=st.floats(0.1, 100),
)
@settings(max_examples=100, deadline=None)
def test_expected_purchases_agree_with_the_textbook_formula(p, x, recency_share, big_t, t):
    # FHL eq. 10 as printed (before Euler's transformation), where it is well conditioned.
    r, alpha, a, b = p
    if abs(a - 1) < 1e-3:
        a += 2e-3
    t_x = recency_share * big_t
    z = t / (alpha + big_t + t)
    head = (a + b + x - 1) / (a - 1)
    power = ((alpha + big_t) / (alpha + big_t + t)) ** (r + x)
    body = 1 - power * hyp2f1(r + x, b + x, a + b + x - 1, z)
    odds = a / (b + x - 1) * ((alpha + big_t) / (alpha + t_x)) ** (r + x)
    textbook = head * body / (1 + odds)
    ours = fitted_bg(r, alpha, a, b).expected_purchases(t, [x], [t_x], [big_t])[0]
    assert ours == pytest.approx(textbook, rel=1e-7, abs=1e-12)


def test_frequent_buyers_do_not_overflow():
    model = fitted_bg(1.4, 9.6, 0.04, 37.0)  # The Complete Journey, in days
    x = np.array([0, 5, 300, 2000, 2000])
    t_x = np.array([0, 100, 360, 364, 10])
    big_t = np.full(5, 365.0)
    expected = model.expected_purchases(90, x, t_x, big_t)
    alive = model.p_alive(x, t_x, big_t)
    assert np.isfinite(expected).all() and np.isfinite(alive).all()
    assert expected[3] == pytest.approx(90 * 2000 / 365, rel=0.05)  # daily buyer, seen yesterday
    assert alive[4] < 1e-100 and expected[4] < 1e-100  # daily buyer, gone for a year


@given(
    p=st.floats(0.1, 20),
    q=st.floats(1.1, 20),
    gamma=st.floats(0.1, 500),
    x=st.integers(0, 200),
    m=st.floats(0.01, 1000),
)
@settings(max_examples=100, deadline=None)
def test_expected_value_lies_between_own_and_population_mean(p, q, gamma, x, m):
    model = GammaGamma()
    model.params_ = {"p": p, "q": q, "gamma": gamma}
    value = model.expected_average_value([x], [m])[0]
    population = p * gamma / (q - 1)
    own = m if x > 0 else population
    assert min(own, population) * (1 - 1e-9) <= value <= max(own, population) * (1 + 1e-9)


def test_unfitted_models_say_so():
    with pytest.raises(TailorError, match="not fitted"):
        BetaGeo().p_alive([1], [1], [2])
    with pytest.raises(TailorError, match="not fitted"):
        GammaGamma().expected_average_value([1], [10.0])


def test_fit_refuses_impossible_summaries():
    with pytest.raises(TailorError, match="recency must be <= T"):
        BetaGeo().fit([1], [5.0], [3.0])
    with pytest.raises(TailorError, match="at least one customer with a repeat purchase"):
        GammaGamma().fit([0, 0], [0.0, 0.0])


# --- Simulated customers: the generative process of BG/NBD and Gamma-Gamma -----------------------

TRUTH = {"r": 0.5, "alpha": 10.0, "a": 0.8, "b": 4.0}  # days: 0.05 purchases a day when alive


def simulate(
    n: int, first_within: float, end: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchases of n customers drawn from BG/NBD (TRUTH) and Gamma-Gamma (p=6, q=3, gamma=20).

    Each customer's first purchase is uniform in [0, first_within) days; the process runs to
    ``end``. Returns customer, time (days) and value of every purchase.
    """
    rng = np.random.default_rng(seed)
    rate = rng.gamma(TRUTH["r"], 1 / TRUTH["alpha"], n)
    drop = rng.beta(TRUTH["a"], TRUTH["b"], n)
    now = rng.uniform(0, first_within, n)
    who, times = [np.arange(n)], [now]
    alive = np.arange(n)
    while alive.size:  # one round of purchases for every customer still alive
        now = now + rng.exponential(1 / rate[alive])
        inside = now < end
        alive, now = alive[inside], now[inside]
        who.append(alive)
        times.append(now)
        stays = rng.uniform(size=alive.size) >= drop[alive]
        alive, now = alive[stays], now[stays]
    customer, time = np.concatenate(who), np.concatenate(times)
    spend_rate = rng.gamma(3.0, 1 / 20.0, n)
    value = rng.gamma(6.0, 1 / spend_rate[customer])
    return customer, time, value


def test_bg_nbd_recovers_the_parameters_of_simulated_customers():
    customer, time, _ = simulate(20_000, first_within=180, end=270, seed=0)
    frame = pd.DataFrame({"customer": customer, "time": time})
    per_customer = frame.groupby("customer")["time"]
    first = per_customer.min()
    model = BetaGeo().fit(per_customer.size() - 1, per_customer.max() - first, 270 - first)
    for name in ("r", "alpha"):
        assert model.params_[name] == pytest.approx(TRUTH[name], rel=0.15), name
    for name in ("a", "b"):
        assert model.params_[name] == pytest.approx(TRUTH[name], rel=0.25), name


@pytest.fixture(scope="module")
def simulated_report() -> tuple[ClvReport, pd.DataFrame]:
    customer, time, value = simulate(5_000, first_within=180, end=365, seed=1)
    purchases = pd.DataFrame(
        {
            "customer_id": customer,
            "timestamp": START + pd.to_timedelta(time, unit="D"),
            "value": value,
        }
    )
    return clv_report(purchases, as_of=START + pd.Timedelta(days=270)), purchases


def test_clv_report_predicts_the_holdout_purchases_of_simulated_customers(simulated_report):
    report, purchases = simulated_report
    holdout = report.holdout
    assert holdout is not None
    assert holdout["start"] == START + pd.Timedelta(days=270)
    assert holdout["end"] == START + pd.Timedelta(days=360)  # the 90-day horizon fits the data
    assert holdout["days"] == 90.0
    assert abs(holdout["purchases_relative_error"]) < 0.10
    assert abs(holdout["spend_relative_error"]) < 0.10
    # the actual count is the repeat purchase days of customers seen before as_of
    window = purchases[
        (purchases["timestamp"] >= holdout["start"]) & (purchases["timestamp"] < holdout["end"])
    ]
    window = window[window["customer_id"].isin(report.customers["customer_id"])]
    days = window.groupby(["customer_id", window["timestamp"].dt.floor("D")]).ngroups
    assert holdout["actual_purchases"] == days
    assert holdout["actual_spend"] == pytest.approx(window["value"].sum())
    assert set(report.parameters) == {"r", "alpha", "a", "b", "p", "q", "gamma"}
    assert report.parameters["r"] == pytest.approx(TRUTH["r"], rel=0.25)


def test_clv_report_values_every_customer_and_says_why(simulated_report):
    report, _ = simulated_report
    customers = report.customers
    assert list(customers.columns) == [
        "customer_id",
        "frequency",
        "recency",
        "T",
        "monetary",
        "p_alive",
        "expected_purchases",
        "expected_value_per_purchase",
        "clv",
        "clv_reason",
    ]
    assert customers["customer_id"].is_unique
    np.testing.assert_allclose(
        customers["clv"], customers["expected_purchases"] * customers["expected_value_per_purchase"]
    )
    row = customers.loc[customers["frequency"].idxmax()]
    ago = int(round(row["T"] - row["recency"]))
    assert row["clv_reason"] == (
        f"bought on {int(row['frequency']) + 1} days in {int(round(row['T']))} days, "
        f"last {ago} day{'' if ago == 1 else 's'} ago; "
        f"{round(100 * row['p_alive'])}% likely still active; "
        f"expects {row['expected_purchases']:.1f} purchases of about "
        f"${row['expected_value_per_purchase']:.0f} in 90 days"
    )
    once = customers.loc[customers["frequency"] == 0].iloc[0]
    assert once["clv_reason"].startswith("bought on 1 day in ")
    assert "100% likely still active" in once["clv_reason"]


def test_clv_report_discounts_later_purchases(simulated_report):
    report, purchases = simulated_report
    as_of = START + pd.Timedelta(days=270)
    discounted = clv_report(purchases, as_of=as_of, discount_rate_annual=0.5)
    ratio = discounted.customers["clv"] / report.customers["clv"]
    # every purchase is discounted by 1.5 ** -(months / 12) for months 0.5, 1.5 and 2.5
    assert ratio.between(1.5 ** -(75 / 365.25), 1.5 ** -(15 / 365.25)).all()
    assert discounted.parameters == report.parameters


def test_clv_report_without_as_of_fits_everything_and_has_no_holdout(simulated_report):
    _, purchases = simulated_report
    report = clv_report(purchases)
    last_day = purchases["timestamp"].max().floor("D")
    assert report.as_of == last_day + pd.Timedelta(days=1)
    assert report.holdout is None
    first_day = purchases.groupby("customer_id")["timestamp"].min().dt.floor("D")
    expected_t = (report.as_of - first_day) / pd.Timedelta(days=1)
    np.testing.assert_array_equal(report.customers["T"], expected_t.to_numpy())


def test_clv_report_clips_the_holdout_to_the_data(simulated_report):
    _, purchases = simulated_report
    report = clv_report(purchases, as_of=START + pd.Timedelta(days=330), horizon_days=90)
    last_day = purchases["timestamp"].max().floor("D")
    assert report.holdout["end"] == last_day + pd.Timedelta(days=1)
    assert report.holdout["days"] == (report.holdout["end"] - report.as_of).days
    assert abs(report.holdout["purchases_relative_error"]) < 0.10


def test_clv_report_says_when_there_is_too_little_to_fit():
    with pytest.raises(TailorError, match="too few customers"):
        clv_report(tiny_purchases())


def test_clv_report_without_earlier_purchases_says_so():
    with pytest.raises(TailorError, match="no purchases before as_of"):
        clv_report(tiny_purchases(), as_of=pd.Timestamp("2019-06-01"))
