"""Differential privacy: the noise scale against OpenDP's accounting and a hand computation,
contribution bounding worked by hand on a tiny shop and checked by removing customers from a
generated one, the noise's spread over many draws, the ledger and its budget, the report page,
and the settings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import opendp.prelude as dp
import pandas as pd
import pytest

from tailor.config import DEFAULT_DP_BUDGET, load_settings
from tailor.errors import ConfigError
from tailor.insights.reports import NoSales, Sales, write_dp_report
from tailor.privacy.consent import set_consent
from tailor.privacy.dp import (
    BUYING_SEGMENTS,
    NO_DEPARTMENT,
    SPLIT,
    Bounds,
    BudgetExceeded,
    DPError,
    bounded_figures,
    charge,
    dataset_key,
    laplace,
    ledger,
    ledger_summary,
    plan,
    release,
    rfm_scores,
    segment_counts,
)
from tailor.store import Warehouse, ingest_files
from tailor.synthetic import generate, write

dp.enable_features("contrib")

PNG = b"\x89PNG\r\n\x1a\n"

ITEMS = pd.DataFrame(
    {
        "item_id": [1, 2, 3, 4, 5],
        "department": ["A", "A", "B", None, "C"],
        "price": [10.0, 5.0, 20.0, 8.0, 1.0],
    }
)


def handmade_events() -> pd.DataFrame:
    """Four weeks, Monday 2024-01-01 to Sunday 2024-01-28 (weeks back 3, 2, 1, 0).

    Customer 1: b1 on 01-01 (A 30, B 10), b2 on 01-08 (A 5), b3 on 01-28 (no department 8).
    Customer 2: b4 on 01-15 (A 12 + 6), b5 on 01-22 (B 40). Department C sells nothing.
    """
    rows = [
        (1, 1, "2024-01-01 10:00", 30.0, "b1"),
        (1, 3, "2024-01-01 10:00", 10.0, "b1"),
        (1, 2, "2024-01-08 10:00", 5.0, "b2"),
        (1, 4, "2024-01-28 10:00", 8.0, "b3"),
        (2, 1, "2024-01-15 10:00", 12.0, "b4"),
        (2, 2, "2024-01-15 10:00", 6.0, "b4"),
        (2, 3, "2024-01-22 10:00", 40.0, "b5"),
    ]
    columns = ["customer_id", "item_id", "timestamp", "value", "basket_id"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(event_type="purchase", quantity=1)


@pytest.fixture()
def shop(make_warehouse) -> Warehouse:
    return make_warehouse(items=ITEMS, events=handmade_events())


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated shop (80 customers, 100 days) as a warehouse file; tests copy it."""
    folder = tmp_path_factory.mktemp("generated")
    db = folder / "shop.duckdb"
    data = generate(n_customers=80, n_items=90, days=100, seed=3)
    with Warehouse(db) as wh:
        for table, path in write(data, folder, fmt="parquet").items():
            ingest_files(wh, table.replace("_", "-"), [path])
    return db


@pytest.fixture()
def generated_copy(generated: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "shop.duckdb"
    copy.write_bytes(generated.read_bytes())
    return copy


# -- the noise scale ------------------------------------------------------------------------------


@pytest.mark.parametrize("epsilon", [0.1, 1.0, 2.5])
@pytest.mark.parametrize(
    ("cells", "cap", "baskets", "basket_cap"), [(40, 25.0, 52, 50.0), (7, 3.5, 10, 120.0)]
)
def test_noise_scale_is_sensitivity_over_epsilon(epsilon, cells, cap, baskets, basket_cap):
    """Worked by hand: one customer moves the (week, department) vector by at most L x U in L1,
    the basket counts by K, their values by K x V, the three RFM histograms by 3 and the segment
    sizes by 1; each figure's Laplace scale is that sensitivity over its share of ε."""
    bounds = Bounds(cells, cap, baskets, basket_cap)
    by_hand = {
        "department_sales": (cells * cap, 0.5 * epsilon),
        "basket_counts": (baskets, 0.15 * epsilon),
        "basket_values": (baskets * basket_cap, 0.15 * epsilon),
        "rfm_histograms": (3, 0.1 * epsilon),
        "segment_sizes": (1, 0.1 * epsilon),
    }
    plans = plan(epsilon, bounds)
    assert set(plans) == set(by_hand)
    for name, (sensitivity, share) in by_hand.items():
        found = plans[name]
        assert found.sensitivity == sensitivity
        assert found.scale == pytest.approx(sensitivity / share, rel=1e-6), name
        # OpenDP's own privacy map of the measurement, at that sensitivity, is the share of ε...
        assert found.epsilon == pytest.approx(share, rel=1e-6)
        assert found.measurement.map(sensitivity) <= share * (1 + 1e-9)
        # ...and a measurement made directly at the hand scale costs the same.
        space = (
            (dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int))
            if isinstance(sensitivity, int)
            else (dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float))
        )
        direct = dp.m.make_laplace(*space, scale=sensitivity / share)
        assert direct.map(sensitivity) == pytest.approx(found.epsilon, rel=1e-6)
    assert sum(p.epsilon for p in plans.values()) == pytest.approx(epsilon, rel=1e-6)


def test_split_adds_up_to_one():
    assert sum(SPLIT.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("integer", [False, True])
def test_noise_has_the_laplace_spread(integer):
    """OpenDP cannot be seeded: over 20,000 draws the noise's mean absolute value is the
    scale b (E|X| = b for Laplace(b)), its mean near 0, and it is not the same twice."""
    measurement, scale = laplace(4 if integer else 4.0, 0.5, integer)
    assert scale == pytest.approx(8.0)
    zeros = [0] * 20_000 if integer else [0.0] * 20_000
    noise = np.asarray(measurement(zeros), dtype=float)
    # The discrete Laplace's E|X| is a little under b; 5 % covers it and the sampling error.
    assert np.abs(noise).mean() == pytest.approx(scale, rel=0.05)
    assert abs(noise.mean()) < 0.25
    assert np.mean(np.abs(noise) > 5 * scale) < 3 * math.exp(-5)
    again = np.asarray(measurement(zeros), dtype=float)
    assert not np.array_equal(noise, again)


@pytest.mark.parametrize("epsilon", [0, -1.0, math.inf, math.nan, "1", True, 1e-12])
def test_a_bad_epsilon_is_refused(epsilon):
    with pytest.raises(DPError, match="epsilon"):
        plan(epsilon, Bounds())


@pytest.mark.parametrize(
    ("values", "match"),
    [({"max_cells": 0}, "max_cells"), ({"max_cell_spend": -1.0}, "max_cell_spend"),
     ({"max_baskets": 2.5}, "whole"), ({"max_basket_value": math.inf}, "positive")],
)  # fmt: skip
def test_bounds_must_be_positive(values, match):
    with pytest.raises(DPError, match=match):
        Bounds.from_mapping(values)


def test_bounds_from_settings_name_unknown_ones():
    assert Bounds.from_mapping({"max_cells": 10.0}) == Bounds(max_cells=10)
    with pytest.raises(ConfigError, match="max_cell.*use max_cells"):
        Bounds.from_mapping({"max_cell": 10})


# -- contribution bounding ------------------------------------------------------------------------


def test_bounded_figures_by_hand(shop):
    """L = 2 cells of at most 15: customer 1 keeps (week 3, A) 30 -> 15 and (week 3, B) 10 and
    drops (week 2, A) 5 and (week 0, none) 8; customer 2 keeps (week 1, A) 18 -> 15 and (week 0,
    B) 40 -> 15. K = 3 baskets of at most 20: 40 -> 20, 5, 8 and 18, 40 -> 20."""
    bounds = Bounds(max_cells=2, max_cell_spend=15.0, max_baskets=3, max_basket_value=20.0)
    with Sales(shop) as sales:
        found = bounded_figures(sales, bounds)
    assert list(found.weeks.date.astype(str)) == [
        "2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22",
    ]  # fmt: skip
    assert found.departments == ["A", "B", "C", NO_DEPARTMENT]
    grid = found.department_sales.reshape(4, 4)
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 1] = 15, 10  # week of 01-01: A, B
    expected[2, 0] = 15  # 01-15: A
    expected[3, 1] = 15  # 01-22: B
    np.testing.assert_array_equal(grid, expected)
    assert list(found.basket_counts) == [5]
    assert list(found.basket_values) == [20 + 5 + 8 + 18 + 20]
    assert str(found.periods.iloc[0]["start"].date()) == "2024-01-01"
    # RFM on 2024-01-28: customer 1 bought that day, 3 baskets, 53; customer 2 six days
    # before, 2 baskets, 58.
    assert found.rfm.loc[1].tolist() == [0, 3, 53.0]
    assert found.rfm.loc[2].tolist() == [6, 2, 58.0]
    recency, frequency, monetary = np.split(found.rfm_histograms, [22, 47])
    assert np.flatnonzero(recency).tolist() == [0, 6]  # 0 days and 6 days: a bin each
    assert np.flatnonzero(frequency).tolist() == [1, 2]  # 2 and 3 baskets
    assert monetary.tolist()[5] == 2  # both in [50, 75)


def test_one_basket_each_is_picked_by_the_seed(shop):
    bounds = Bounds(max_cells=2, max_cell_spend=15.0, max_baskets=1, max_basket_value=20.0)
    sums = set()
    for seed in range(12):
        with Sales(shop) as sales:
            found = bounded_figures(sales, bounds, seed=seed)
        assert list(found.basket_counts) == [2]
        sums.add(float(found.basket_values[0]))
    # Customer 1's basket is worth 20, 5 or 8, customer 2's 18 or 20.
    assert sums <= {a + b for a in (20, 5, 8) for b in (18, 20)}
    assert len(sums) > 1


def test_removing_a_customer_moves_each_figure_by_at_most_its_sensitivity(generated_copy):
    """The sensitivity, checked on data: leave one customer out (an analytics opt-out drops
    them from the report's purchases) and the bounded vectors move by at most L x U, K and
    K x V in L1, the histograms by exactly 3 and the segment sizes (at fixed thresholds) by 1."""
    bounds = Bounds(max_cells=3, max_cell_spend=5.0, max_baskets=2, max_basket_value=10.0)
    sensitivity = bounds.sensitivities()
    with Warehouse(generated_copy) as wh:
        with Sales(wh) as sales:
            full = bounded_figures(sales, bounds)
        customers = full.rfm.index[:: len(full.rfm) // 6][:6]
        moved = {name: 0.0 for name in sensitivity}
        for customer in customers:
            set_consent(wh, customer, analytics=False)
            with Sales(wh) as sales:
                less = bounded_figures(sales, bounds)
            set_consent(wh, customer, analytics=True)
            if not less.weeks.equals(full.weeks) or len(less.periods) != len(full.periods):
                continue  # the calendar is public; a customer who moves it is not a test case
            for name in ("department_sales", "basket_counts", "basket_values", "rfm_histograms"):
                gap = np.abs(getattr(full, name) - getattr(less, name)).sum()
                assert gap <= sensitivity[name] + 1e-9, (customer, name)
                moved[name] = max(moved[name], gap)
            assert np.abs(full.rfm_histograms - less.rfm_histograms).sum() == 3
            fixed = full.rfm_histograms
            sizes = segment_counts(rfm_scores(full.rfm, fixed))
            without = segment_counts(rfm_scores(less.rfm, fixed))
            assert np.abs(sizes - without).sum() == 1
    # The bounds bite: some customer moves each figure by its full sensitivity.
    assert moved["department_sales"] == pytest.approx(sensitivity["department_sales"])
    assert moved["basket_counts"] == sensitivity["basket_counts"]


def test_exact_histograms_give_the_exact_quintile_scores():
    """With a bin per value and no noise, the scores are those of the customer features:
    quintiles of the rank (ties share the highest), recency reversed."""
    rng = np.random.default_rng(7)
    n = 500
    rfm = pd.DataFrame(
        {
            "recency_days": rng.integers(0, 7, n),
            "frequency": rng.integers(1, 6, n),
            "monetary": rng.choice([0.0, 5.0, 10.0, 20.0, 30.0, 50.0], n),
        }
    )
    histograms = np.concatenate(
        [
            np.bincount(rfm["recency_days"], minlength=22),
            np.bincount(rfm["frequency"] - 1, minlength=25),
            np.bincount(np.searchsorted([0, 5, 10, 20, 30, 50], rfm["monetary"]), minlength=23),
        ]
    )
    scores = rfm_scores(rfm, histograms)

    def quintile(values: pd.Series) -> np.ndarray:
        return np.ceil(values.rank(pct=True, method="max") * 5).astype(int).to_numpy()

    np.testing.assert_array_equal(scores["r_score"], quintile(-rfm["recency_days"]))
    np.testing.assert_array_equal(scores["f_score"], quintile(rfm["frequency"]))
    np.testing.assert_array_equal(scores["m_score"], quintile(rfm["monetary"]))


# -- a release ------------------------------------------------------------------------------------


def test_a_release_is_noisy_around_the_bounded_figures(generated_copy):
    """At ε = 1 the published figures differ from the bounded ones by Laplace noise of the
    planned scale: not equal, mean absolute gap near the scale, none beyond 12 scales."""
    bounds = Bounds(max_cells=10, max_cell_spend=20.0)
    with Warehouse(generated_copy) as wh:
        with Sales(wh) as sales:
            exact = bounded_figures(sales, bounds)
        gaps = []
        for _ in range(8):
            found = release(wh, 1.0, bounds=bounds, budget=100.0)
            gaps.append(found.department_sales["revenue"].to_numpy() - exact.department_sales)
        scale = found.plans["department_sales"].scale
    gaps = np.concatenate(gaps)
    assert scale == pytest.approx(10 * 20.0 / 0.5)
    assert np.all(gaps != 0)
    assert np.abs(gaps).mean() == pytest.approx(scale, rel=0.2)
    assert np.abs(gaps).max() < 12 * scale


def test_a_release_with_a_huge_epsilon_is_the_bounded_figures(shop):
    bounds = Bounds(max_cells=2, max_cell_spend=15.0, max_baskets=3, max_basket_value=20.0)
    found = release(shop, 1e6, bounds=bounds, budget=1e7)
    with Sales(shop) as sales:
        exact = bounded_figures(sales, bounds)
    np.testing.assert_allclose(found.department_sales["revenue"], exact.department_sales,
                               atol=0.01)  # fmt: skip
    assert found.baskets["baskets"].tolist() == [5]
    assert found.baskets["avg_basket_value"].iloc[0] == pytest.approx(71 / 5, abs=0.01)
    scores = rfm_scores(exact.rfm, exact.rfm_histograms)
    exact_sizes = dict(zip(BUYING_SEGMENTS, segment_counts(scores), strict=True))
    assert dict(zip(found.segments["segment"], found.segments["customers"], strict=True)) == (
        exact_sizes
    )
    assert sum(exact_sizes.values()) == 2
    data = found.as_dict()
    assert data["epsilon"] == pytest.approx(1e6)
    assert data["figures"]["department_sales"]["sensitivity"] == 30.0
    assert len(data["department_sales"]) == 16


# -- the ledger -----------------------------------------------------------------------------------


def test_the_ledger_adds_up_and_refuses_over_the_budget(shop):
    assert ledger(shop).empty  # before the first release, even without the table
    release(shop, 1.0, budget=3.0)
    release(shop, 1.5, budget=3.0, as_of="2024-01-21", channel="cli")
    summary = ledger_summary(shop, 3.0)
    assert summary["dataset"] == dataset_key(shop)
    assert summary["spent"] == pytest.approx(2.5)
    assert summary["remaining"] == pytest.approx(0.5)
    assert [e["epsilon"] for e in summary["entries"]] == pytest.approx([1.0, 1.5])
    assert summary["entries"][1]["as_of"] == "2024-01-21"
    assert summary["entries"][1]["channel"] == "cli"
    assert sum(summary["entries"][0]["detail"].values()) == pytest.approx(1.0)
    before = ledger(shop)
    with pytest.raises(BudgetExceeded, match=r"ε = 0.6 .* over its budget of 3 .*at most ε = 0.5"):
        release(shop, 0.6, budget=3.0)
    pd.testing.assert_frame_equal(ledger(shop), before)
    release(shop, 0.5, budget=3.0)  # exactly the rest is allowed
    assert ledger_summary(shop, 3.0)["remaining"] == pytest.approx(0.0)
    with pytest.raises(BudgetExceeded, match="The budget is spent: no more releases"):
        charge(shop, 1e-6, 3.0, "report")


def test_a_refused_or_failed_release_spends_nothing(shop):
    with pytest.raises(DPError, match="budget"):
        release(shop, 1.0, budget=0)
    with pytest.raises(NoSales):
        release(shop, 1.0, as_of="2023-12-31")
    with pytest.raises(BudgetExceeded):
        release(shop, 4.0, budget=3.0)
    assert ledger(shop).empty


def test_the_default_budget():
    assert DEFAULT_DP_BUDGET == 3.0


# -- the page -------------------------------------------------------------------------------------


def test_dp_report_page(generated_copy, tmp_path):
    output = tmp_path / "report"
    with Warehouse(generated_copy) as wh:
        with Sales(wh) as sales:
            exact_revenue = sales.query("SELECT sum(spend) FROM __report_sales").iloc[0, 0]
        info = write_dp_report(wh, output, 1.0, budget=2.0, channel="cli")
        assert ledger_summary(wh, 2.0)["spent"] == pytest.approx(1.0)
    page = (output / "index.html").read_text(encoding="utf-8")
    assert "Sales report (differentially private)" in page
    assert "spent ε = 1 in all, of a budget of 2" in page
    for eps in ("0.5", "0.3", "0.2"):  # sales; basket counts + values; histograms + sizes
        assert f"differentially private, ε = {eps}" in page
    assert '<table id="dp_ledger">' in page and "<td>cli</td>" in page
    assert "Sales report</h1>" not in page  # not the exact report
    assert f"{exact_revenue:,.0f}" not in page
    for chart in info.charts:
        assert (output / chart).read_bytes().startswith(PNG)
    assert len(info.charts) == 4
    cells = pd.read_csv(output / "dp_department_sales.csv")
    assert list(cells.columns) == ["week", "department", "revenue"]
    assert len(cells) == len(info.release.department_sales)
    data = info.as_dict()
    assert data["epsilon"] == pytest.approx(1.0)
    assert data["ledger"]["remaining"] == pytest.approx(1.0)


def test_dp_report_over_budget_writes_nothing(generated_copy, tmp_path):
    output = tmp_path / "report"
    with Warehouse(generated_copy) as wh:
        with pytest.raises(BudgetExceeded):
            write_dp_report(wh, output, 2.5, budget=2.0)
        assert ledger(wh).empty
    assert not output.exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "shop.duckdb"]


# -- settings -------------------------------------------------------------------------------------


def test_privacy_settings(tmp_path, monkeypatch):
    monkeypatch.delenv("TAILOR_DP_BUDGET", raising=False)
    monkeypatch.delenv("TAILOR_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings().privacy.dp_budget == DEFAULT_DP_BUDGET
    (tmp_path / "tailor.toml").write_text(
        "[privacy]\ndp_budget = 5\n[privacy.dp_bounds]\nmax_cells = 12\nmax_cell_spend = 7.5\n"
    )
    settings = load_settings()
    assert settings.privacy.dp_budget == 5.0
    assert Bounds.from_mapping(settings.privacy.dp_bounds) == Bounds(12, 7.5)
    monkeypatch.setenv("TAILOR_DP_BUDGET", "1.5")
    assert load_settings().privacy.dp_budget == 1.5
    monkeypatch.setenv("TAILOR_DP_BUDGET", "lots")
    with pytest.raises(ConfigError, match=r"\$TAILOR_DP_BUDGET dp_budget must be a positive"):
        load_settings()
    monkeypatch.delenv("TAILOR_DP_BUDGET")
    (tmp_path / "tailor.toml").write_text("[privacy]\ndp_budget = -1\n")
    with pytest.raises(ConfigError, match=r"tailor.toml: \[privacy\] dp_budget"):
        load_settings()
    (tmp_path / "tailor.toml").write_text("[privacy.dp_bounds]\nmax_cells = 'many'\n")
    with pytest.raises(ConfigError, match="max_cells must be a positive number"):
        load_settings()
