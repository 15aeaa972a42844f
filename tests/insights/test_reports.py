"""The business report: every figure of a hand-made shop worked by hand (weeks, KPIs,
departments, stores, campaigns, movers, a transition matrix), sections left out with a note
when the data cannot support them, the atomic write, the synthetic shop cross-checked against
plain SQL and the customer features, and ``tailor report`` end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from tailor.cli import app
from tailor.customers.features import customer_features
from tailor.customers.segments import NO_PURCHASE, rfm_segment
from tailor.insights import reports
from tailor.insights.reports import (
    KPI_NAMES,
    NoSales,
    ReportError,
    ReportInfo,
    Sales,
    campaign_performance,
    segment_flow,
    top_movers,
    write_report,
)
from tailor.store import Warehouse

PNG = b"\x89PNG\r\n\x1a\n"

ITEMS = pd.DataFrame(
    {"item_id": [1, 2, 3], "department": ["A", "A", "B"], "price": [10.0, 5.0, 20.0]}
)
EVENT_COLUMNS = [
    "customer_id", "item_id", "event_type", "timestamp", "quantity", "value", "basket_id",
    "store_id",
]  # fmt: skip


def handmade_events() -> pd.DataFrame:
    """Eight weeks, Monday 2024-01-01 to Sunday 2024-02-25, six baskets of three customers.

    Weeks (Mon): 01-01 b1 30; 01-15 b2 10 + b4 20; 02-05 b3 10; 02-19 b5 45 + b6 10.
    The 4 weeks before the last 4 (01-01 to 01-28): 60 in b1, b2, b4 (4 lines, customers 1-2);
    the last 4 (01-29 to 02-25): 65 in b3, b5, b6 (4 lines, customers 1-3).
    b5's second line has no value: 1 x item 2's price, 5.
    """
    nan = np.nan
    rows = [
        (1, 1, "purchase", "2024-01-01 10:00", 1, 10.0, "b1", "s1"),
        (1, 3, "purchase", "2024-01-01 10:00", 1, 20.0, "b1", "s1"),
        (1, 2, "purchase", "2024-01-15 10:00", 2, 10.0, "b2", "s1"),
        (2, 3, "purchase", "2024-01-20 10:00", 1, 20.0, "b4", "s2"),
        (1, 1, "purchase", "2024-02-05 10:00", 1, 10.0, "b3", "s2"),
        (2, 3, "purchase", "2024-02-20 10:00", 2, 40.0, "b5", "s2"),
        (2, 2, "purchase", "2024-02-20 10:00", 1, nan, "b5", "s2"),
        (3, 1, "purchase", "2024-02-25 10:00", 1, 10.0, "b6", "s1"),
        (3, 2, "view", "2024-02-24 10:00", nan, nan, nan, nan),
    ]
    return pd.DataFrame(rows, columns=EVENT_COLUMNS)


CAMPAIGNS = pd.DataFrame(
    {
        "campaign_id": [1, 2, 3],
        "type": ["A", "B", "A"],
        "name": ["Spring <sale> & more", None, "Later"],
        "start": ["2024-02-01", "2024-01-01", "2024-03-10"],
        "end": ["2024-02-21", "2024-01-14", "2024-03-20"],
    }
)
MEMBERS = pd.DataFrame({"campaign_id": [1, 1], "customer_id": [1, 2]})
REDEMPTIONS = pd.DataFrame(
    {"customer_id": [2], "offer_id": [7], "campaign_id": [1], "timestamp": ["2024-02-20"]}
)


@pytest.fixture(scope="module")
def shop(make_warehouse) -> Warehouse:
    return make_warehouse(
        events=handmade_events(),
        items=ITEMS,
        campaigns=CAMPAIGNS,
        campaign_members=MEMBERS,
        redemptions=REDEMPTIONS,
    )


@pytest.fixture(scope="module")
def report(shop: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> ReportInfo:
    return write_report(shop, tmp_path_factory.mktemp("out") / "report")


@pytest.fixture
def sales(shop: Warehouse):
    with Sales(shop) as found:
        yield found


def page_text(info: ReportInfo) -> str:
    return info.path.read_text(encoding="utf-8")


def images(info: ReportInfo) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page_text(info))


def assert_valid_report(info: ReportInfo) -> None:
    """index.html references every PNG of the folder, and each is a PNG that opens."""
    shown = images(info)
    assert shown == info.charts
    on_disk = sorted(p.name for p in info.directory.glob("*.png"))
    assert sorted(shown) == on_disk
    assert {p.name for p in info.directory.iterdir()} == {"index.html", *on_disk}
    for name in shown:
        path = info.directory / name
        assert path.read_bytes()[:8] == PNG
        with Image.open(path) as image:
            image.verify()
            assert image.size[0] > 300 and image.size[1] > 200


# -- figures worked by hand -----------------------------------------------------------------------


def test_the_period_and_its_weeks(report: ReportInfo):
    assert report.first_day == pd.Timestamp("2024-01-01")
    assert report.last_day == pd.Timestamp("2024-02-25")
    weekly = report.frames["weekly"]
    assert list(weekly["week"]) == list(pd.date_range("2024-01-01", periods=8, freq="7D"))
    assert list(weekly["revenue"]) == [30, 0, 30, 0, 0, 10, 0, 55]
    assert list(weekly["baskets"]) == [1, 0, 2, 0, 0, 1, 0, 2]
    assert list(weekly["customers"]) == [1, 0, 2, 0, 0, 1, 0, 2]
    assert weekly.loc[7, "items_per_basket"] == pytest.approx(3 / 2)
    assert weekly.loc[2, "avg_basket_value"] == pytest.approx(15)
    assert report.totals == {"revenue": 125.0, "customers": 3, "baskets": 6, "weeks": 8}


def test_headline_kpis_last_4_weeks_vs_the_4_before(report: ReportInfo):
    k = report.kpis
    assert (k["revenue"]["value"], k["revenue"]["previous"]) == (65, 60)
    assert k["revenue"]["change"] == pytest.approx(65 / 60 - 1)
    assert (k["customers"]["value"], k["customers"]["previous"]) == (3, 2)
    assert (k["baskets"]["value"], k["baskets"]["previous"]) == (3, 3)
    assert k["avg_basket_value"]["value"] == pytest.approx(65 / 3)
    assert k["avg_basket_value"]["previous"] == pytest.approx(20)
    assert k["items_per_basket"]["change"] == pytest.approx(0)
    assert k["baskets_per_customer"]["change"] == pytest.approx(1 / 1.5 - 1)
    cards = re.findall(r'data-kpi="(\w+)"', page_text(report))
    assert cards == list(KPI_NAMES)
    assert "+8.3 % vs the 4 weeks before" in page_text(report)


def test_departments_and_stores(report: ReportInfo):
    departments = report.frames["departments"].set_index("department")
    assert departments["revenue"].to_dict() == {"B": 80, "A": 45}
    assert departments.loc["A", "share"] == pytest.approx(45 / 125)
    assert (departments.loc["A", "current"], departments.loc["A", "previous"]) == (25, 20)
    assert departments.loc["A", "change"] == pytest.approx(0.25)
    assert departments.loc["B", "change"] == pytest.approx(0)
    stores = report.frames["stores"].set_index("store")
    assert stores["revenue"].to_dict() == {"store s2": 75, "store s1": 50}
    assert stores["baskets"].to_dict() == {"store s2": 3, "store s1": 3}
    text = page_text(report)
    assert "B brings the most revenue: 64 % of the total." in text
    assert "A grew most: +25.0 % over the last 4 weeks vs the 4 before" in text


def test_top_and_other_sums_the_rest(sales: Sales):
    table = reports.department_sales(sales, top=1)
    assert list(table["department"]) == ["B", "Other departments (1)"]
    assert list(table["revenue"]) == [80, 45]
    stores = reports.store_sales(sales, top=1)
    assert list(stores["store"]) == ["store s2", "Other stores (1)"]
    assert stores.attrs["stores"] == 2


def test_campaign_redemption_and_revenue_by_group(sales: Sales):
    table = campaign_performance(sales).set_index("campaign_id")
    # Campaign 3 starts after the report's last day: not listed. Campaign 2 starts first.
    assert list(table.index) == [2, 1]
    spring = table.loc[1]
    assert spring["label"] == "Spring <sale> & more"
    assert (spring["members"], spring["redeemers"]) == (2, 1)
    assert spring["redemption_rate"] == pytest.approx(0.5)
    # Feb 1-21: customer 2 (redeemed) spent 45, customer 1 (member) 10; customer 3, the only
    # buyer not targeted, nothing in the window.
    assert spring["revenue_redeemers"] == pytest.approx(45)
    assert spring["revenue_members"] == pytest.approx(10)
    assert spring["non_members"] == 1
    assert spring["revenue_non_members"] == pytest.approx(0)
    other = table.loc[2]
    assert other["label"] == "campaign 2 (B)"
    assert other["members"] == 0 and pd.isna(other["redemption_rate"])
    assert other["non_members"] == 3
    assert other["revenue_non_members"] == pytest.approx(30 / 3)  # b1 on Jan 1
    assert pd.isna(other["revenue_redeemers"])


def test_movers_by_change_in_money(sales: Sales):
    items = top_movers(sales, "item")
    assert list(items["key"]) == [1, 2]  # item 1 rose 10 -> 20, item 2 fell 10 -> 5
    assert list(items["change"]) == [10, -5]
    np.testing.assert_allclose(items["change_pct"], [1.0, -0.5])
    assert list(items["label"]) == ["1: A", "2: A"]  # no title: the department names it
    departments = top_movers(sales, "department")
    assert list(departments["key"]) == ["A"]  # B did not move: 40 and 40
    assert departments.iloc[0]["change_pct"] == pytest.approx(0.25)
    assert list(top_movers(sales, "item", n=1)["key"]) == [1, 2]


def test_movers_sentence(report: ReportInfo):
    text = page_text(report)
    assert "Department A grew most: +25.0 % (+5.00)" in text
    assert "item 2: A fell most: −50.0 % (−5.00)" in text


def test_transition_matrix_by_hand():
    before = pd.Series({1: "Champions", 2: "Champions", 3: "Lost", 4: "Loyal"})
    after = pd.Series({1: "Champions", 2: "Loyal", 3: "Lost", 4: "Loyal", 5: "New"})
    flow = segment_flow(before, after)
    assert list(flow.index) == ["Champions", "Loyal", "Lost", NO_PURCHASE]
    assert list(flow.columns) == ["Champions", "Loyal", "New", "Lost"]
    expected = [[1, 1, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]
    assert flow.to_numpy().tolist() == expected
    shares = flow.div(flow.sum(axis=1), axis=0)
    sentence = reports._flow_sentence(flow, shares, pd.Timestamp("2024-01-01"),
                                      pd.Timestamp("2024-04-01"))  # fmt: skip
    assert sentence.startswith("Of the 2 customers in Champions on 2024-01-01, 50 % were still")
    assert "the largest move was 1 customers from Champions to Loyal" in sentence
    assert "1 customers bought for the first time" in sentence


def test_flow_cutoffs_every_13_weeks_with_history(synthetic_db: Path):
    with Warehouse(synthetic_db, read_only=True) as wh, Sales(wh) as sales:
        cuts = reports.flow_cutoffs(sales, None)
        end = sales.last_day + pd.Timedelta(days=1)
        assert cuts == [end - pd.Timedelta(days=91), None]  # 180 days: room for one step back
        assert cuts[0] - pd.Timedelta(days=reports.FLOW_HISTORY_DAYS) >= sales.first_day


# -- the page -------------------------------------------------------------------------------------


def test_index_references_every_png(report: ReportInfo):
    assert_valid_report(report)
    assert set(report.charts) >= {
        "sales_by_week.png", "basket_kpis.png", "sales_by_department.png", "sales_by_store.png",
        "sales_by_segment.png", "campaigns.png", "top_movers.png",
    }  # fmt: skip


def test_every_chart_has_a_takeaway_computed_from_the_data(report: ReportInfo):
    text = page_text(report)
    takeaways = re.findall(r'<p class="takeaway">([^<]+)</p>\s*<img', text)
    assert len(takeaways) == len(report.charts)
    assert "Revenue in the last 4 weeks was 65.00, up 8.3 % on the 4 weeks before (60.00)." in text
    assert (
        "2 campaigns: 50 % of members redeemed an offer; Spring &lt;sale&gt; &amp; more had" in text
    )


def test_short_history_leaves_out_flow_and_forecast_with_a_note(report: ReportInfo):
    for key in ("flow", "forecast"):
        note = report.sections[key]
        assert note and note.startswith("Left out:")
        assert f'<section id="{key}"><h2>' in page_text(report)
    assert "full weeks of sales" in report.sections["forecast"]
    assert all(report.sections[k] is None for k in ("weekly", "departments", "campaigns"))


def test_text_from_the_data_is_escaped(report: ReportInfo):
    text = page_text(report)
    assert "<sale>" not in text
    assert text.count("Spring &lt;sale&gt; &amp; more") == 2  # the takeaway and the table


def test_without_stores_departments_or_campaigns(make_warehouse, report: ReportInfo):
    # Written over a previous report, which is replaced as a whole.
    output = report.directory.parent / "again"
    output.mkdir()
    (output / "index.html").write_text("previous")
    (output / "stale.png").write_bytes(PNG)
    events = handmade_events().drop(columns=["store_id"])
    wh = make_warehouse(events=events, items=ITEMS[["item_id", "price"]])
    info = write_report(wh, output)
    for key in ("departments", "stores", "campaigns"):
        assert info.sections[key].startswith("Left out:"), key
        assert key not in info.frames
    assert "no store" in info.sections["stores"]
    assert info.sections["weekly"] is None and info.sections["movers"] is None
    assert "movers_departments" not in info.frames and "movers_items" in info.frames
    assert info.totals["revenue"] == 125
    assert_valid_report(info)
    assert "stale.png" not in {p.name for p in output.iterdir()}
    assert not [p for p in output.parent.iterdir() if p.name.startswith(".")]


def test_as_of_hides_later_events(shop: Warehouse, tmp_path: Path):
    info = write_report(shop, tmp_path / "report", as_of="2024-02-18")
    assert info.last_day == pd.Timestamp("2024-02-18")
    assert info.totals["revenue"] == 70  # b1, b2, b4, b3
    assert info.sections["movers"] is not None  # 49 days: no full 4 weeks before the last 4
    assert info.kpis["revenue"]["change"] is None
    assert "no earlier period" in page_text(info)


def test_no_purchases_is_a_user_error_and_leaves_nothing(make_warehouse, tmp_path: Path):
    views = handmade_events().assign(event_type="view")
    wh = make_warehouse(events=views, items=ITEMS)
    with pytest.raises(NoSales, match="no purchases"):
        write_report(wh, tmp_path / "report")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(NoSales, match="up to 2023-12-31"):
        write_report(wh, tmp_path / "report", as_of="2023-12-31")


# -- the atomic write -----------------------------------------------------------------------------


def test_a_failed_report_leaves_the_previous_one(shop, tmp_path: Path, monkeypatch):
    output = tmp_path / "report"
    output.mkdir()
    (output / "index.html").write_text("previous")

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(reports, "_weekly_section", fail)
    with pytest.raises(RuntimeError, match="boom"):
        write_report(shop, output)
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    assert [p.name for p in output.iterdir()] == ["index.html"]
    assert (output / "index.html").read_text() == "previous"


def test_refuses_a_folder_that_is_not_a_report(shop: Warehouse, tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ReportError, match="other files"):
        write_report(shop, tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ReportError, match="a file is in the way"):
        write_report(shop, tmp_path / "file")
    assert (tmp_path / "notes.txt").read_text() == "mine"


# -- the synthetic shop ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def synthetic_report(synthetic_db: Path, tmp_path_factory) -> ReportInfo:
    with Warehouse(synthetic_db, read_only=True) as wh:
        return write_report(wh, tmp_path_factory.mktemp("synthetic") / "report")


def sql(db: Path, query: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(query).fetchall()


def test_synthetic_report_has_every_section(synthetic_report: ReportInfo):
    assert synthetic_report.sections == dict.fromkeys(synthetic_report.sections)
    assert list(synthetic_report.sections) == [
        "weekly", "baskets", "departments", "stores", "segments", "campaigns", "movers", "flow",
        "forecast",
    ]  # fmt: skip
    assert_valid_report(synthetic_report)
    assert len(synthetic_report.frames["forecast"]) == 8


def test_synthetic_totals_match_sql(synthetic_report: ReportInfo, synthetic_db: Path):
    revenue, customers, baskets = sql(
        synthetic_db,
        "SELECT sum(value), count(DISTINCT customer_id), count(DISTINCT (customer_id, basket_id)) "
        "FROM events WHERE event_type = 'purchase'",
    )[0]
    assert synthetic_report.totals["revenue"] == pytest.approx(revenue)
    assert (synthetic_report.totals["customers"], synthetic_report.totals["baskets"]) == (
        customers,
        baskets,
    )
    stores = synthetic_report.frames["stores"]
    assert stores["revenue"].sum() == pytest.approx(revenue)
    departments = synthetic_report.frames["departments"]
    assert departments["revenue"].sum() == pytest.approx(revenue)


def test_synthetic_segments_match_the_customer_features(
    synthetic_report: ReportInfo, synthetic_db: Path
):
    with Warehouse(synthetic_db, read_only=True) as wh:
        table = customer_features(wh).table
    labels = pd.Series(rfm_segment(table["r_score"], table["f_score"], table["m_score"]))
    segments = synthetic_report.frames["segments"].set_index("segment")
    assert segments["customers"].to_dict() == labels.value_counts().to_dict()
    assert segments["revenue"].sum() == pytest.approx(synthetic_report.totals["revenue"])
    flow = synthetic_report.frames["flow"]
    assert flow.to_numpy().sum() == len(table)
    assert flow.sum(axis=0).to_dict() == labels.value_counts().reindex(flow.columns).to_dict()


def test_synthetic_redemption_rates_match_sql(synthetic_report: ReportInfo, synthetic_db: Path):
    expected = dict(
        sql(
            synthetic_db,
            "SELECT m.campaign_id, count(DISTINCT r.customer_id) / count(DISTINCT m.customer_id) "
            "FROM campaign_members m LEFT JOIN redemptions r USING (campaign_id, customer_id) "
            "GROUP BY 1",
        )
    )
    campaigns = synthetic_report.frames["campaigns"].set_index("campaign_id")
    assert len(campaigns) == len(expected) == 4
    for campaign, rate in expected.items():
        assert campaigns.loc[campaign, "redemption_rate"] == pytest.approx(rate)


# -- the command ----------------------------------------------------------------------------------


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No settings from the environment or the working folder."""
    for name in ("TAILOR_DB", "TAILOR_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def tailor(*args: str | Path):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_report_end_to_end(synthetic_db: Path, tmp_path: Path, clean_env: None):
    output = tmp_path / "out" / "report"
    result = tailor("report", "--output", output, "--db", synthetic_db, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert Path(data["path"]) == output / "index.html"
    assert set(data["kpis"]) == set(KPI_NAMES)
    assert sorted(data["charts"]) == sorted(p.name for p in output.glob("*.png"))
    assert (
        data["totals"]["customers"]
        == sql(
            synthetic_db,
            "SELECT count(DISTINCT customer_id) FROM events WHERE event_type = 'purchase'",
        )[0][0]
    )


def test_cli_report_prints_where_and_the_kpis(make_warehouse, tmp_path: Path, clean_env: None):
    wh = make_warehouse(events=handmade_events(), items=ITEMS)
    wh.close()
    output = tmp_path / "report"
    result = tailor("report", "--output", output, "--db", wh.path)
    assert result.exit_code == 0, result.output
    assert f"report written to {output / 'index.html'}" in result.stdout
    assert re.search(r"Revenue\s+│\s+65\.00\s+│\s+\+8\.3%", result.stdout)
    assert re.search(r"Customers\s+│\s+3\s+│\s+\+50\.0%", result.stdout)
    assert "forecast: Left out:" in result.stderr
    assert (output / "index.html").is_file()


def test_cli_report_errors_are_one_line(make_warehouse, tmp_path: Path, clean_env: None):
    wh = make_warehouse(events=handmade_events().assign(event_type="view"), items=ITEMS)
    wh.close()
    db = wh.path
    result = tailor("report", "--output", tmp_path / "report", "--db", db)
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "no purchases" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "report").exists()
    result = tailor("report", "--db", db)
    assert result.exit_code != 0 and "--output" in result.output
