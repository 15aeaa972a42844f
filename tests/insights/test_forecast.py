"""Weekly sales forecasts: metrics and baselines worked by hand, partial weeks trimmed, the model
against the baselines on series of known shape, invariants, and ``tailor forecast`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import norm
from typer.testing import CliRunner

from tailor.cli import app
from tailor.errors import ConfigError
from tailor.insights.forecast import (
    BASELINES,
    MODEL,
    ForecastError,
    backtest,
    fit_predict,
    forecast_sales,
    last_value,
    mase,
    season_for,
    seasonal_naive,
    smape,
    weekly_sales,
)
from tailor.store import Warehouse

# -- metrics and baselines by hand -----------------------------------------------------------


def test_mase_by_hand():
    # naive in-sample MAE on [1, 2, 4]: (1 + 2) / 2 = 1.5; forecast MAE: (1 + 2) / 2 = 1.5
    assert mase([3, 5], [2, 7], train=[1, 2, 4]) == pytest.approx(1.0)
    assert mase([3, 5], [3, 5], train=[1, 2, 4]) == 0.0
    # a constant training part gives no scale
    assert np.isnan(mase([3, 5], [2, 7], train=[4, 4, 4]))


def test_smape_by_hand():
    # 200 * 1 / (3 + 2) = 40; 200 * 2 / (5 + 7) = 33.33...
    assert smape([3, 5], [2, 7]) == pytest.approx((40 + 200 * 2 / 12) / 2)
    # a week where both are 0 counts 0; one 0 against a sale is the maximum, 200
    assert smape([0, 0], [0, 4]) == pytest.approx(100.0)


def test_baselines_on_a_toy_series():
    train = np.array([1.0, 2, 3, 4, 5, 6])
    assert seasonal_naive(train, 6, season=4).tolist() == [3, 4, 5, 6, 3, 4]
    assert seasonal_naive(train, 2, season=1).tolist() == [6, 6]
    assert last_value(train, 3).tolist() == [6, 6, 6]
    with pytest.raises(ValueError):
        seasonal_naive(train, 2, season=52)


def test_season_is_a_year_only_with_two_years():
    assert season_for(103) == 4
    assert season_for(104) == 52


def test_backtest_scores_the_baselines_by_hand():
    # 8 training weeks then 2 windows of 2: origins 8 and 10
    sales = np.array([1.0, 2, 1, 2, 1, 2, 1, 2, 1, 3, 2, 2])
    found = backtest(sales, horizon=2, windows=2, season=2).set_index("model")
    assert list(found.index) == [MODEL, *BASELINES]
    # seasonal naive (2 weeks) forecasts [1, 2] for [1, 3] (MAE 0.5), then [1, 3] for [2, 2]
    # (MAE 1); the naive scale is 8 / 8 = 1 on the first 8 weeks and 10 / 9 on the first 10
    assert mase([1, 3], [1, 2], sales[:8]) == pytest.approx(0.5)
    assert mase([2, 2], [1, 3], sales[:10]) == pytest.approx(0.9)
    assert found.loc["seasonal_naive", "mase"] == pytest.approx((0.5 + 0.9) / 2)
    # last value: [2, 2] for [1, 3], then [3, 3] for [2, 2], both MAE 1
    assert found.loc["last_value", "mase"] == pytest.approx((1 + 0.9) / 2)
    expected = (smape([1, 3], [2, 2]) + smape([2, 2], [3, 3])) / 2
    assert found.loc["last_value", "smape"] == pytest.approx(expected)


# -- metric invariants -----------------------------------------------------------------------

# Weekly sales in cents up to 1,000.00: money, without the subnormal floats no till records.
cents = st.integers(0, 100_000).map(lambda c: c / 100)
series = arrays(float, st.integers(2, 30), elements=cents)


@settings(max_examples=50, deadline=None)
@given(series, st.floats(0.01, 1e3))
def test_smape_is_bounded_symmetric_and_unit_free(actual, scale):
    forecast = actual[::-1]
    value = smape(actual, forecast)
    assert 0 <= value <= 200
    assert value == pytest.approx(smape(forecast, actual))
    assert smape(actual * scale, forecast * scale) == pytest.approx(value, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(series, st.floats(0.1, 100), st.floats(-1e4, 1e4))
def test_mase_is_unit_free_and_zero_when_perfect(train, scale, shift):
    actual = train[::-1]
    value = mase(actual, actual + 1, train)
    if np.isnan(value):
        assert np.ptp(train) == 0
        return
    assert mase(actual, actual, train) == 0
    assert mase(actual * scale + shift, (actual + 1) * scale + shift, train * scale + shift) == (
        pytest.approx(value, rel=1e-6)
    )


# -- the model -------------------------------------------------------------------------------


def test_a_trend_is_followed_and_beats_the_baselines():
    weeks = np.arange(40)
    sales = 100 + 5 * weeks + np.random.default_rng(0).normal(0, 3, 40)
    found = fit_predict(sales, horizon=4)
    assert "A" in found.model.split(",")[1]  # a trend component
    # the truth goes on at 5 a week: 300, 305, ...
    assert found.forecast == pytest.approx(100 + 5 * np.arange(40, 44), abs=10)
    assert np.all(found.lower <= found.forecast) and np.all(found.forecast <= found.upper)
    scores = backtest(sales, 8, 3, season_for(40)).set_index("model")["mase"]
    assert scores[MODEL] < 0.5 * scores[list(BASELINES)].min()


def test_a_yearly_season_is_taken_with_two_years_and_beats_the_baselines():
    weeks = np.arange(156)
    christmas = np.where(weeks % 52 == 50, 400.0, 0.0)
    sales = (
        1000
        + 2 * weeks
        + 150 * np.sin(2 * np.pi * weeks / 52)
        + christmas
        + np.random.default_rng(0).normal(0, 20, 156)
    )
    assert fit_predict(sales, 8).model.endswith(",A)")  # a seasonal configuration
    scores = backtest(sales, 8, 3, season_for(156)).set_index("model")["mase"]
    assert scores[MODEL] < scores["last_value"]
    assert scores[MODEL] < scores["seasonal_naive"]


def test_under_two_years_there_is_no_seasonal_configuration():
    weeks = np.arange(100)
    sales = 1000 + 150 * np.sin(2 * np.pi * weeks / 52)
    sales += np.random.default_rng(1).normal(0, 20, 100)
    assert not fit_predict(sales, 8).model.endswith(",A)")


def test_interval_holds_its_level_on_noise():
    """On independent noise around 100 (sd 10), a 90 % interval holds about 90 % of the next
    week's outcomes (averaged over 5 draws, since the level and spread are estimated)."""
    coverage = []
    for seed in range(5):
        sales = np.random.default_rng(seed).normal(100, 10, 120)
        found = fit_predict(sales, 4, level=0.9)
        coverage.append(norm.cdf((found.upper - 100) / 10) - norm.cdf((found.lower - 100) / 10))
    assert 0.85 <= np.mean(coverage) <= 0.93


def test_scaling_and_shifting_sales_moves_the_forecast_alike():
    sales = np.random.default_rng(2).normal(100, 10, 60) + np.arange(60)
    plain = fit_predict(sales, 4)
    moved = fit_predict(1000 * sales + 5, 4)
    assert moved.model == plain.model
    for a, b in [(moved.forecast, plain.forecast), (moved.lower, plain.lower),
                 (moved.upper, plain.upper)]:  # fmt: skip
        assert a == pytest.approx(1000 * b + 5, rel=1e-6)


def test_flat_and_short_series_fall_back():
    zeros = fit_predict(np.zeros(30), 3)
    assert zeros.model == "constant"
    assert zeros.forecast.tolist() == zeros.lower.tolist() == zeros.upper.tolist() == [0, 0, 0]
    short = fit_predict(np.array([5.0, 7, 6, 8]), 2, level=0.9)
    assert short.model == "last value"
    # random walk: sd of the changes [2, -1, 2] is sqrt(3), widening with sqrt(step)
    half = norm.ppf(0.95) * np.sqrt(3) * np.sqrt([1, 2])
    assert short.forecast.tolist() == [8, 8]
    assert short.upper == pytest.approx(8 + half)
    assert short.lower == pytest.approx(np.clip(8 - half, 0, None))
    intermittent = fit_predict(np.tile([0.0, 0, 9, 0], 10), 4)
    assert np.all(intermittent.lower >= 0) and np.all(intermittent.forecast >= 0)


# -- history from the warehouse --------------------------------------------------------------

ITEMS = pd.DataFrame(
    {"item_id": [1, 2, 3], "department": ["DAIRY", "BAKERY", None], "price": [2.0, 5.0, 1.0]}
)
# 2024-01-01 is a Monday. The data runs from Wednesday 3 January to Tuesday 30 January: the
# weeks of 1 and 29 January are partial and dropped, whatever they hold.
EVENTS = pd.DataFrame(
    [
        (1, 1, "purchase", "2024-01-03 10:00", 1, 100.0),  # partial first week
        (1, 1, "purchase", "2024-01-08 00:00", 1, 10.0),
        (2, 2, "purchase", "2024-01-14 18:00", 1, 5.0),
        (2, 2, "purchase", "2024-01-14 19:00", 2, None),  # 2 x price 5
        (1, 1, "view", "2024-01-16 12:00", 1, 50.0),  # not a sale: the week sold nothing
        (3, 9, "purchase", "2024-01-22 09:00", 1, 7.0),  # item 9 is not in the catalogue
        (3, 3, "purchase", "2024-01-24 09:00", 1, 2.0),  # item 3 has no department
        (1, 1, "purchase", "2024-01-28 23:59", 1, 3.0),
        (1, 1, "purchase", "2024-01-30 10:00", 1, 1000.0),  # partial last week
    ],
    columns=["customer_id", "item_id", "event_type", "timestamp", "quantity", "value"],
).assign(timestamp=lambda f: pd.to_datetime(f["timestamp"]))
WEEKS = list(pd.to_datetime(["2024-01-08", "2024-01-15", "2024-01-22"]))


@pytest.fixture(scope="module")
def shop(make_warehouse) -> Warehouse:
    return make_warehouse(items=ITEMS, events=EVENTS)


def test_weekly_total_drops_partial_weeks_and_fills_empty_ones(shop):
    found = weekly_sales(shop)
    assert list(found.columns) == ["series", "week", "sales"]
    assert found["series"].tolist() == ["total"] * 3
    assert found["week"].tolist() == WEEKS
    assert found["sales"].tolist() == [25.0, 0.0, 12.0]


def test_weekly_by_department_has_every_week_and_unknown(shop):
    found = weekly_sales(shop, by="department")
    wide = found.pivot(index="week", columns="series", values="sales")
    assert list(wide.index) == WEEKS
    assert wide.to_dict(orient="list") == {
        "BAKERY": [15.0, 0.0, 0.0],
        "DAIRY": [10.0, 0.0, 3.0],
        "unknown": [0.0, 0.0, 9.0],
    }


def test_as_of_keeps_only_the_weeks_it_shows_whole(shop):
    # Saturday 27 January: the week of the 22nd is not over
    assert weekly_sales(shop, as_of="2024-01-27")["week"].tolist() == WEEKS[:2]
    # Sunday 28 January, the whole day: it is
    assert weekly_sales(shop, as_of="2024-01-28")["sales"].tolist() == [25.0, 0.0, 12.0]


def test_unknown_grouping_is_a_config_error(shop):
    with pytest.raises(ConfigError, match="department"):
        weekly_sales(shop, by="colour")


# -- forecast_sales on a generated shop (25 full weeks) ---------------------------------------


@pytest.fixture(scope="module")
def generated(synthetic_db: Path):
    with Warehouse(synthetic_db, read_only=True) as wh:
        yield wh


def test_forecast_by_department_keeps_the_top_and_the_total(generated):
    found = forecast_sales(generated, horizon_weeks=4, by="department", top=3)
    departments = weekly_sales(generated, by="department")
    size = departments.groupby("series")["sales"].sum().sort_values(ascending=False)
    assert list(found.models) == ["total", *size.index[:3]]
    assert found.n_groups == 10 and found.notes == [
        "the 3 departments of most sales of 10, and the total"
    ]
    history = found.history.pivot(index="week", columns="series", values="sales")
    by_week = departments.groupby("week")["sales"].sum()
    assert history["total"].to_numpy() == pytest.approx(by_week.to_numpy())
    assert history["total"].to_numpy() == pytest.approx(weekly_sales(generated)["sales"])
    # every series: 4 weeks ahead from the Monday after the last, bounds around the forecast
    last = found.history["week"].max()
    for name, rows in found.forecasts.groupby("series"):
        assert rows["week"].tolist() == [last + pd.Timedelta(weeks=k) for k in range(1, 5)]
        assert np.all(rows["lower"] <= rows["forecast"]) and np.all(
            rows["forecast"] <= rows["upper"]
        )
        assert np.all(rows["lower"] >= 0), name
    assert len(found.backtest) == 4 * 3
    assert set(found.backtest["model"]) == {MODEL, *BASELINES}
    assert found.backtest_windows == 3 and found.season_weeks == 4


def test_total_forecast_matches_the_functions_it_is_made_of(generated):
    found = forecast_sales(generated, horizon_weeks=4, backtest_windows=2)
    sales = weekly_sales(generated)["sales"].to_numpy()
    expected = fit_predict(sales, 4, 0.9)
    assert found.forecasts["forecast"].to_numpy() == pytest.approx(expected.forecast)
    assert found.models == {"total": expected.model}
    scores = backtest(sales, 4, 2, 4).assign(series="total")[["series", "model", "mase", "smape"]]
    pd.testing.assert_frame_equal(found.backtest, scores)


def test_short_history_narrows_the_backtest_then_refuses(generated):
    # 25 full weeks: 8 of training leave 2 windows of 8
    found = forecast_sales(generated, horizon_weeks=8, backtest_windows=3)
    assert found.backtest_windows == 2
    assert found.notes == ["backtest over 2 windows, not 3: 25 weeks"]
    with pytest.raises(ForecastError, match="25 full weeks.*at least 28"):
        forecast_sales(generated, horizon_weeks=20)


def test_bad_options_are_config_errors(generated):
    for kwargs in ({"horizon_weeks": 0}, {"level": 1.0}, {"backtest_windows": 0}):
        with pytest.raises(ConfigError):
            forecast_sales(generated, **kwargs)


def test_an_empty_warehouse_says_so(make_warehouse):
    with pytest.raises(ForecastError, match="no full week"):
        forecast_sales(make_warehouse(items=ITEMS))


# -- tailor forecast -------------------------------------------------------------------------


def tailor(*args: str | Path | int):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_json(synthetic_db: Path):
    result = tailor("forecast", "--db", synthetic_db, "--horizon-weeks", 4, "--by", "department",
                    "--top", 2, "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert {"by", "horizon_weeks", "level", "backtest_windows", "season_weeks", "model",
            "models", "series", "notes", "first_week", "last_week", "beats_baselines",
            "backtest", "forecasts", "history"} <= set(data)  # fmt: skip
    assert data["by"] == "department" and data["horizon_weeks"] == 4 and data["level"] == 0.9
    assert data["series"][0] == "total" and len(data["series"]) == 3
    assert (data["first_week"], data["last_week"]) == ("2024-01-01", "2024-06-17")
    first = data["forecasts"][0]
    assert (first["series"], first["week"]) == ("total", "2024-06-24")
    assert 0 <= first["lower"] <= first["forecast"] <= first["upper"]
    assert len(data["forecasts"]) == 3 * 4 and len(data["backtest"]) == 3 * 3
    assert {row["model"] for row in data["backtest"]} == {"ets", "seasonal_naive", "last_value"}
    # the history's total is the warehouse's purchase value over the full weeks
    with duckdb.connect(str(synthetic_db), read_only=True) as con:
        expected = con.execute(
            "SELECT sum(value) FROM events WHERE event_type = 'purchase' "
            "AND timestamp >= '2024-01-01' AND timestamp < '2024-06-24'"
        ).fetchone()[0]
    total = sum(row["sales"] for row in data["history"] if row["series"] == "total")
    assert total == pytest.approx(expected)
    table = tailor("forecast", "--db", synthetic_db, "--horizon-weeks", 4)
    assert (
        table.exit_code == 0 and "seasonal_naive" in table.stdout and "2024-06-24" in table.stdout
    )


def test_cli_user_error_is_one_line(synthetic_db: Path):
    result = tailor("forecast", "--db", synthetic_db, "--horizon-weeks", 30)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: 25 full weeks of sales")
