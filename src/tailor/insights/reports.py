"""The business report: ``tailor report --output DIR``, a page a manager can read.

:func:`write_report` reads the warehouse as it stood before ``as_of`` and writes
``DIR/index.html`` (one file, inline CSS, nothing fetched from the network) and the PNG charts it
shows by relative path, drawn with matplotlib's object API on the Agg canvas (no display, no
pyplot state). Every figure is aggregated by DuckDB; only small tables reach pandas.

Definitions, shared by every section:

* *revenue* is the purchase events' ``value`` or, where a file gave none, quantity x the item's
  catalogue ``price`` (as the customer features count spend); returns are not deducted;
* a *basket* is one customer's ``basket_id`` (an event without one: its customer and instant);
* *items per basket* counts purchase lines (products) per basket, not units: some shops record
  fuel or loose produce in litres or grams;
* weeks are the 7-day periods counted back from the report's last day, so the last week shown
  is always complete; a partial first week is left out of the weekly charts;
* *the last 4 weeks* are the 28 days ending on the report's last day, compared with the 28 days
  before them.

Sections: headline KPIs; sales by week, department, store and RFM segment; basket KPIs over
time; campaign performance; top movers; customer flow between RFM segments; the sales forecast
(:func:`tailor.insights.forecast.forecast_sales`). A section the data cannot support (no stores,
no departments, no campaigns, too short a history) is left out with a note saying why.
"""

from __future__ import annotations

import html
import math
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from tailor import __version__
from tailor.config import DEFAULT_DP_BUDGET
from tailor.customers.features import PurchaseTable, reference_day
from tailor.customers.segments import NO_PURCHASE, RFM_SEGMENTS, rfm_segment
from tailor.dataset import as_of_bound
from tailor.errors import TailorError
from tailor.store.schema import ANALYTICS_CONSENTED
from tailor.store.warehouse import Warehouse

if TYPE_CHECKING:  # tailor.privacy.dp builds on this module's purchase lines
    from tailor.privacy.dp import Bounds, Release

__all__ = [
    "FLOW_STEP_DAYS",
    "KPI_NAMES",
    "PERIOD_DAYS",
    "NoSales",
    "DPReportInfo",
    "ReportError",
    "ReportInfo",
    "Sales",
    "campaign_performance",
    "segment_flow",
    "top_movers",
    "write_dp_report",
    "write_report",
]

PERIOD_DAYS = 28
"""The "last 4 weeks" every trend compares with the 28 days before them."""
TOP_DEPARTMENTS = 8
TOP_STORES = 10
MOVERS = 5
"""Rises and falls shown per kind (items, departments)."""
FLOW_STEP_DAYS = 91
"""Days between the cut-offs at which customers are segmented (13 weeks)."""
FLOW_CUTOFFS = 5
"""Cut-offs at most (a year of quarters: four transitions)."""
FLOW_HISTORY_DAYS = 56
"""Days of purchases the earliest cut-off needs before it (8 weeks)."""
FORECAST_WEEKS = 8
CAMPAIGNS_CHARTED = 30
"""Campaigns in the campaign chart at most (the most recent); the table lists every one."""

Progress = Callable[[str, float], None]

_STEPS = ["sales", "departments", "stores", "segments", "campaigns", "movers", "forecast", "page"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 64rem; padding: 0 1rem; color: #1f2933; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #d9dee3; }
.muted { color: #616e7c; }
.takeaway { font-size: 1.08rem; background: #eef6ee; border-left: 5px solid #2f8f46;
            padding: .6rem 1rem; margin: .8rem 0; }
.note { background: #f5f7fa; border-left: 5px solid #9aa5b1; padding: .6rem 1rem; }
.dp { background: #fff8e1; border-left: 5px solid #d9a300; padding: .6rem 1rem; }
.kpis { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr)); gap: .8rem;
        margin: 1rem 0; }
.kpi { border: 1px solid #d9dee3; border-radius: 6px; padding: .6rem .9rem; }
.kpi .name { color: #616e7c; font-size: .9rem; }
.kpi .value { font-size: 1.5rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.up { color: #2f8f46; } .down { color: #c0392b; }
nav a { margin-right: .8rem; }
table { border-collapse: collapse; margin: .5rem 0; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d9dee3; padding: .25rem .6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f5f7fa; }
img { max-width: 100%; height: auto; display: block; margin: .5rem 0; }
"""

_BLUE, _GREEN, _RED, _GREY = "#3e7cb1", "#2f8f46", "#c0392b", "#9aa5b1"
# One colour per segment, the same in every chart.
_SEGMENT_COLOURS = dict(
    zip(
        RFM_SEGMENTS,
        ["#1b7837", "#5aae61", "#a6dba0", "#2166ac", "#67a9cf", "#fee08b", "#fdae61",
         "#d73027", "#a50026", "#8c6bb1", "#4d4d4d", "#bababa"],
        strict=True,
    )
)  # fmt: skip


class ReportError(TailorError):
    """The report cannot be written (the output folder is not a report folder, say)."""


class NoSales(ReportError):
    """The warehouse holds no purchases before the report's cut."""


@dataclass
class Section:
    """One section of the page: charts with a sentence each, or a note saying why it is left
    out."""

    key: str
    title: str
    charts: list[tuple[str, str, str]] = field(default_factory=list)  # file, title, takeaway
    caption: str = ""
    tables: list[str] = field(default_factory=list)  # HTML
    note: str | None = None


@dataclass
class ReportInfo:
    """What :func:`write_report` wrote and the figures behind it.

    Attributes
    ----------
    path : Path
        The report's ``index.html``.
    first_day, last_day : Timestamp
        The first and last day with data that the report shows.
    kpis : dict
        Headline figure -> {"value", "previous", "change"}: the last 4 weeks, the 4 weeks
        before (None without them) and the relative change (0.05 = +5 %, None when the
        previous value is missing or 0).
    totals : dict
        revenue, customers, baskets, weeks over the whole period.
    sections : dict
        Section key -> None when shown, else the note saying why it is left out.
    charts : list of str
        The PNG files, relative to the report folder.
    frames : dict of DataFrame
        The small tables each chart is drawn from (weekly, departments, stores, segments,
        campaigns, movers_departments, movers_items, flow, segment_sizes, forecast).
    seconds : dict
        Wall seconds per step.
    """

    path: Path
    first_day: pd.Timestamp
    last_day: pd.Timestamp
    kpis: dict[str, dict[str, float | None]]
    totals: dict[str, float]
    sections: dict[str, str | None]
    charts: list[str]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.path.parent

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: everything but the frames."""
        return {
            "path": str(self.path),
            "first_day": str(self.first_day.date()),
            "last_day": str(self.last_day.date()),
            "kpis": self.kpis,
            "totals": self.totals,
            "sections": self.sections,
            "charts": self.charts,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }


# -- the purchase lines ---------------------------------------------------------------------------

_SALES_SQL = f"""
CREATE OR REPLACE TEMP TABLE __report_sales AS
SELECT e.customer_id, e.item_id, CAST(e.timestamp AS DATE) AS day,
       -- A basket is one customer's (shops may number baskets per customer); an event without
       -- one is in the basket of its customer's events at that instant.
       CASE WHEN e.basket_id IS NULL THEN hash(e.customer_id, e.timestamp)
            ELSE hash(e.customer_id, e.basket_id) END AS basket,
       e.store_id, coalesce(e.quantity, 1) AS quantity,
       coalesce(e.value, coalesce(e.quantity, 1) * i.price, 0) AS spend, i.department
FROM events e LEFT JOIN items i USING (item_id)
WHERE e.event_type = 'purchase' AND e.timestamp < $bound AND e.{ANALYTICS_CONSENTED}
"""


class Sales:
    """The purchase lines before ``bound`` in a temporary table ``__report_sales`` (customer_id,
    item_id, day, basket, store_id, quantity, spend, department), which every section
    aggregates. Use as a context manager; raises :class:`NoSales` when there are none.

    Attributes (set on entry)
    -------------------------
    last_day : Timestamp
        The report's last day: the last day the cut shows (see
        :func:`tailor.customers.features.reference_day`).
    first_day : Timestamp
        The day of the first purchase.
    """

    def __init__(self, wh: Warehouse, bound: pd.Timestamp | None = None):
        self.wh = wh
        self.bound = bound

    def __enter__(self) -> Sales:
        bound = "'infinity'" if self.bound is None else "$bound"
        params = {} if self.bound is None else {"bound": self.bound.to_pydatetime()}
        self.wh.con.execute(_SALES_SQL.replace("$bound", bound), params)
        first = self.wh.con.execute("SELECT min(day) FROM __report_sales").fetchone()[0]
        if first is None:
            self.__exit__()
            cut = "" if self.bound is None else f" up to {_day(_last_instant(self.bound))}"
            raise NoSales(
                f"{self.wh.path}: no purchases{cut} to report on; the report needs events of "
                "type 'purchase' (load them with `tailor ingest events FILE`)"
            )
        self.first_day = pd.Timestamp(first)
        self.last_day = reference_day(self.wh, self.bound)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wh.con.execute("DROP TABLE IF EXISTS __report_sales")

    @property
    def has_previous(self) -> bool:
        """Whether the data covers the 4 weeks before the last 4 (the trend's baseline)."""
        return self.first_day <= self.last_day - pd.Timedelta(days=2 * PERIOD_DAYS - 1)

    def query(self, sql: str, **params: Any) -> pd.DataFrame:
        """Run ``sql`` with ``$ref`` (the last day) and ``$period`` (28) bound."""
        params = {"ref": self.last_day.date(), "period": PERIOD_DAYS, **params}
        used = {k: v for k, v in params.items() if f"${k}" in sql}
        return self.wh.con.execute(sql, used).df()

    def week_start(self, weeks_back: pd.Series | np.ndarray) -> pd.DatetimeIndex:
        """The first day of the week ``weeks_back`` weeks before the last (0 = the last)."""
        back = np.asarray(weeks_back, dtype="int64")
        return pd.DatetimeIndex(self.last_day - pd.to_timedelta(7 * back + 6, unit="D"))

    def weeks(self) -> np.ndarray:
        """The weeks the charts show, as weeks back from the last, oldest first: a partial
        first week is left out (unless it is the only one)."""
        n_weeks = (self.last_day - self.first_day).days // 7 + 1
        back = np.arange(n_weeks - 1, -1, -1)
        if n_weeks > 1 and self.week_start(back[:1])[0] < self.first_day:
            back = back[1:]
        return back

    def weekly(self, frame: pd.DataFrame, keys: Sequence[Any]) -> pd.DataFrame:
        """``frame`` (weeks_back, key, revenue) as a table: one row per week shown (indexed by
        its first day), one column per key of ``keys``, 0 where nothing sold."""
        wide = frame.pivot_table(index="weeks_back", columns="key", values="revenue", aggfunc="sum")
        back = self.weeks()
        wide = wide.reindex(index=back, columns=list(keys)).fillna(0.0)
        wide.index = self.week_start(back)
        return wide


# -- figures --------------------------------------------------------------------------------------


def headline_kpis(sales: Sales) -> tuple[dict[str, dict[str, float | None]], dict[str, float]]:
    """The last 4 weeks against the 4 before, and the whole period's totals."""
    frame = sales.query(
        "SELECT day > $ref - $period AS current, sum(spend) AS revenue, "
        "count(DISTINCT customer_id) AS customers, count(DISTINCT basket) AS baskets, "
        "count(*) AS lines FROM __report_sales WHERE day > $ref - 2 * $period GROUP BY 1"
    ).set_index("current")
    periods = {}
    for current in (True, False):
        if current not in frame.index or (not current and not sales.has_previous):
            periods[current] = None
            continue
        row = frame.loc[current]
        periods[current] = {
            "revenue": float(row["revenue"]),
            "customers": float(row["customers"]),
            "baskets": float(row["baskets"]),
            "avg_basket_value": _ratio(row["revenue"], row["baskets"]),
            "items_per_basket": _ratio(row["lines"], row["baskets"]),
            "baskets_per_customer": _ratio(row["baskets"], row["customers"]),
        }
    names = ["revenue", "customers", "baskets", "avg_basket_value", "items_per_basket"]
    names.append("baskets_per_customer")
    kpis = {}
    for name in names:
        value = periods[True][name] if periods[True] else 0.0
        previous = periods[False][name] if periods[False] else None
        kpis[name] = {"value": value, "previous": previous, "change": _change(value, previous)}
    total = sales.query(
        "SELECT sum(spend) AS revenue, count(DISTINCT customer_id) AS customers, "
        "count(DISTINCT basket) AS baskets FROM __report_sales"
    ).iloc[0]
    totals = {
        "revenue": float(total["revenue"]),
        "customers": int(total["customers"]),
        "baskets": int(total["baskets"]),
        "weeks": int((sales.last_day - sales.first_day).days // 7 + 1),
    }
    return kpis, totals


def weekly_sales(sales: Sales) -> pd.DataFrame:
    """One row per week, oldest first: week (its first day), revenue, baskets, customers, lines,
    avg_basket_value, items_per_basket, baskets_per_customer. Weeks without sales are zeros;
    a partial first week is left out (unless it is the only one)."""
    frame = sales.query(
        "SELECT ($ref - day) // 7 AS weeks_back, sum(spend) AS revenue, "
        "count(DISTINCT basket) AS baskets, count(DISTINCT customer_id) AS customers, "
        "count(*) AS lines FROM __report_sales GROUP BY 1"
    ).set_index("weeks_back")
    back = sales.weeks()
    frame = frame.reindex(back, fill_value=0)
    frame.insert(0, "week", sales.week_start(back))
    frame["avg_basket_value"] = frame["revenue"] / frame["baskets"].replace(0, np.nan)
    frame["items_per_basket"] = frame["lines"] / frame["baskets"].replace(0, np.nan)
    frame["baskets_per_customer"] = frame["baskets"] / frame["customers"].replace(0, np.nan)
    return frame.reset_index(drop=True).astype({"revenue": "float64"})


def _by(sales: Sales, column: str, label: str) -> pd.DataFrame:
    """Revenue per value of ``column``: total, last 4 weeks and the 4 before, largest first."""
    return sales.query(
        f"SELECT {column} AS {label}, sum(spend) AS revenue, "
        "count(DISTINCT basket) AS baskets, "
        "coalesce(sum(spend) FILTER (WHERE day > $ref - $period), 0) AS current, "
        "coalesce(sum(spend) FILTER (WHERE day > $ref - 2 * $period "
        "AND day <= $ref - $period), 0) AS previous "
        f"FROM __report_sales GROUP BY 1 ORDER BY revenue DESC, 1"
    )


def department_sales(sales: Sales, top: int = TOP_DEPARTMENTS) -> pd.DataFrame | None:
    """Revenue per department, the ``top`` largest then "Other departments" (and "(no
    department)" for items without one): department, revenue, share, current, previous,
    change. None when no purchased item has a department."""
    frame = _by(sales, "department", "department")
    unnamed = frame["department"].isna()
    if unnamed.all():
        return None
    frame["department"] = frame["department"].astype(object).fillna("(no department)")
    return _top_and_other(frame, "department", unnamed, top, "Other departments", sales)


def store_sales(sales: Sales, top: int = TOP_STORES) -> pd.DataFrame | None:
    """Revenue per store, the ``top`` largest then "Other stores": store, revenue, share,
    baskets, current, previous, change; ``stores`` in ``attrs``. None when no purchase names
    a store."""
    frame = _by(sales, "store_id", "store")
    known = frame["store"].notna()
    if not known.any():
        return None
    frame["store"] = [
        f"store {store}" if ok else "(no store)"
        for store, ok in zip(frame["store"], known, strict=True)
    ]
    result = _top_and_other(frame, "store", ~known, top, "Other stores", sales)
    result.attrs["stores"] = int(known.sum())
    return result


def weekly_by(sales: Sales, column: str, values: Sequence[Any]) -> pd.DataFrame:
    """Weekly revenue (rows: week start, oldest first) of each of ``values`` of ``column``."""
    frame = sales.query(
        f"SELECT ($ref - day) // 7 AS weeks_back, {column} AS key, sum(spend) AS revenue "
        f"FROM __report_sales WHERE {column} IN (SELECT unnest($values)) GROUP BY ALL",
        values=list(values),
    )
    return sales.weekly(frame, values)


def _top_and_other(
    frame: pd.DataFrame, label: str, unnamed: pd.Series, top: int, other: str, sales: Sales
) -> pd.DataFrame:
    """The ``top`` rows with a name, one row summing the other named ones, then the row of
    those without a name (``unnamed``), with each one's share of revenue and change; the
    number of named rows first in ``attrs["named"]``."""
    head = frame[~unnamed].head(top)
    others = frame[~unnamed].drop(head.index)
    parts = [head]
    if len(others):
        sums = others[["revenue", "baskets", "current", "previous"]].sum()
        parts.append(pd.DataFrame([{label: f"{other} ({len(others)})", **sums}]))
    parts.append(frame[unnamed])
    result = pd.concat([p for p in parts if len(p)], ignore_index=True)
    result["share"] = result["revenue"] / frame["revenue"].sum()
    result["change"] = [
        _change(c, p if sales.has_previous else None)
        for c, p in zip(result["current"], result["previous"], strict=True)
    ]
    result = result[[label, "revenue", "share", "baskets", "current", "previous", "change"]]
    result.attrs["named"] = len(head)
    return result


def segment_sales(sales: Sales, segments: pd.Series) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers and revenue per RFM segment (``segments``: customer_id -> segment as of the
    report's cut).

    Returns
    -------
    table : DataFrame
        segment, customers, customer_share (of the customers who bought), revenue and
        revenue_share over the whole period; segments in the grid's order.
    weekly : DataFrame
        Revenue per week shown (rows) of each segment with a purchase (columns).
    """
    frame = pd.DataFrame({"customer_id": segments.index, "segment": segments.to_numpy()})
    con = sales.wh.con
    con.register("__report_segments", frame)
    try:
        weekly = sales.query(
            "SELECT ($ref - s.day) // 7 AS weeks_back, g.segment AS key, sum(s.spend) AS revenue "
            "FROM __report_sales s JOIN __report_segments g USING (customer_id) GROUP BY ALL"
        )
    finally:
        con.unregister("__report_segments")
    revenue = weekly.groupby("key")["revenue"].sum()
    counts = segments.value_counts()
    order = [s for s in RFM_SEGMENTS if s in counts.index]
    table = pd.DataFrame({"segment": order})
    table["customers"] = [int(counts[s]) for s in order]
    buyers = table.loc[table["segment"] != NO_PURCHASE, "customers"].sum()
    table["customer_share"] = np.where(
        table["segment"] == NO_PURCHASE, np.nan, table["customers"] / max(buyers, 1)
    )
    table["revenue"] = [float(revenue.get(s, 0.0)) for s in order]
    table["revenue_share"] = table["revenue"] / max(table["revenue"].sum(), 1e-12)
    return table, sales.weekly(weekly, [s for s in order if s != NO_PURCHASE])


def segments_at(
    wh: Warehouse, cutoffs: Sequence[pd.Timestamp | None], end: pd.Timestamp | None = None
) -> pd.DataFrame:
    """The RFM segment of every customer at each cut-off (exclusive bounds, as ``as_of``;
    None = all data): rows customer_id, columns the cut-offs' last days. A customer unknown
    at a cut-off, or known without a purchase, is "No purchase yet"."""
    columns = {}
    with PurchaseTable(wh, end) as purchases:
        for cut in cutoffs:
            features = purchases.features(cut, departments=[])
            table = features.table
            labels = rfm_segment(table["r_score"], table["f_score"], table["m_score"])
            columns[features.reference_day] = pd.Series(labels, index=table.index)
    frame = pd.DataFrame(columns).fillna(NO_PURCHASE)
    frame.index.name = "customer_id"
    return frame


def segment_flow(before: pd.Series, after: pd.Series) -> pd.DataFrame:
    """Customers moving from each segment (rows, ``before``) to each (columns, ``after``):
    counts, segments in the grid's order, missing customers as "No purchase yet"."""
    both = pd.concat([before.rename("before"), after.rename("after")], axis=1).fillna(NO_PURCHASE)
    counts = pd.crosstab(both["before"], both["after"])
    rows = [s for s in RFM_SEGMENTS if s in counts.index]
    columns = [s for s in RFM_SEGMENTS if s in counts.columns]
    counts = counts.reindex(index=rows, columns=columns, fill_value=0)
    counts.index.name, counts.columns.name = "before", "after"
    return counts


def flow_cutoffs(sales: Sales, bound: pd.Timestamp | None) -> list[pd.Timestamp | None]:
    """The report's cut and earlier ones every :data:`FLOW_STEP_DAYS`, oldest first: each
    earlier one with at least :data:`FLOW_HISTORY_DAYS` days of purchases before it, at most
    :data:`FLOW_CUTOFFS`."""
    end = sales.last_day + pd.Timedelta(days=1)
    cuts: list[pd.Timestamp | None] = [bound]
    for k in range(1, FLOW_CUTOFFS):
        cut = end - pd.Timedelta(days=k * FLOW_STEP_DAYS)
        if cut - pd.Timedelta(days=FLOW_HISTORY_DAYS) < sales.first_day:
            break
        cuts.insert(0, cut)
    return cuts


def campaign_performance(sales: Sales) -> pd.DataFrame:
    """One row per campaign that started by the report's last day (or has no start), in order
    of start: campaign_id, label, start, end, members, redeemers, redemption_rate, and the
    revenue per customer during the campaign's window (start to end, whole days, cut at the
    report's last day) of the redeemers (``revenue_redeemers``), the members who did not
    redeem (``revenue_members``) and the customers who bought in the report's period but were
    not members (``revenue_non_members``, with their number in ``non_members``).

    A customer who redeemed one of the campaign's offers counts as a member of it. Windows
    without a start or an end give NaN revenue.
    """
    bound = "'infinity'" if sales.bound is None else "$bound"
    params = {} if sales.bound is None else {"bound": sales.bound.to_pydatetime()}
    return sales.query(_CAMPAIGNS_SQL.replace("$bound", bound), **params)


_CAMPAIGNS_SQL = """
WITH targeted AS (
    SELECT campaign_id, customer_id, bool_or(redeemed) AS redeemed FROM (
        SELECT campaign_id, customer_id, false AS redeemed FROM campaign_members
        UNION ALL
        SELECT campaign_id, customer_id, true FROM redemptions
        WHERE campaign_id IS NOT NULL AND timestamp < $bound
    ) GROUP BY ALL
), listed AS (
    SELECT campaign_id, any_value(type) AS type, any_value(name) AS name,
        CAST(min(start) AS DATE) AS first, CAST(max("end") AS DATE) AS last
    FROM campaigns GROUP BY campaign_id
), known AS (
    SELECT campaign_id FROM listed UNION SELECT DISTINCT campaign_id FROM targeted
), windows AS (
    SELECT k.campaign_id, l.type, l.name, l.first, l.last
    FROM known k LEFT JOIN listed l USING (campaign_id)
    WHERE l.first IS NULL OR l.first <= $ref
), daily AS (
    SELECT customer_id, day, sum(spend) AS spend FROM __report_sales GROUP BY ALL
), window_spend AS (
    SELECT w.campaign_id, d.customer_id, sum(d.spend) AS spend
    FROM windows w JOIN daily d ON d.day BETWEEN w.first AND least(w.last, $ref)
    GROUP BY ALL
), buyers AS (
    SELECT DISTINCT customer_id FROM __report_sales
), members AS (
    SELECT t.campaign_id, count(*) AS members,
        count(*) FILTER (WHERE t.redeemed) AS redeemers,
        count(b.customer_id) AS buying_members,
        coalesce(sum(ws.spend) FILTER (WHERE t.redeemed), 0) AS spend_redeemers,
        coalesce(sum(ws.spend) FILTER (WHERE NOT t.redeemed), 0) AS spend_members
    FROM targeted t LEFT JOIN buyers b USING (customer_id)
    LEFT JOIN window_spend ws USING (campaign_id, customer_id)
    GROUP BY 1
), everyone AS (
    SELECT campaign_id, sum(spend) AS spend FROM window_spend GROUP BY 1
)
SELECT w.campaign_id,
    coalesce(w.name, 'campaign ' || CAST(w.campaign_id AS VARCHAR)
        || coalesce(' (' || w.type || ')', '')) AS label,
    w.first AS start, CASE WHEN w.last IS NOT NULL THEN least(w.last, $ref) END AS "end",
    coalesce(m.members, 0) AS members, coalesce(m.redeemers, 0) AS redeemers,
    m.redeemers / nullif(m.members, 0) AS redemption_rate,
    (SELECT count(*) FROM buyers) - coalesce(m.buying_members, 0) AS non_members,
    CASE WHEN w.first IS NOT NULL AND w.last IS NOT NULL THEN
        m.spend_redeemers / nullif(m.redeemers, 0) END AS revenue_redeemers,
    CASE WHEN w.first IS NOT NULL AND w.last IS NOT NULL THEN
        m.spend_members / nullif(m.members - m.redeemers, 0) END AS revenue_members,
    CASE WHEN w.first IS NOT NULL AND w.last IS NOT NULL THEN
        (coalesce(e.spend, 0) - coalesce(m.spend_redeemers, 0) - coalesce(m.spend_members, 0))
        / nullif((SELECT count(*) FROM buyers) - coalesce(m.buying_members, 0), 0)
    END AS revenue_non_members
FROM windows w LEFT JOIN members m USING (campaign_id) LEFT JOIN everyone e USING (campaign_id)
ORDER BY w.first NULLS LAST, w.campaign_id
"""


def top_movers(sales: Sales, kind: str, n: int = MOVERS) -> pd.DataFrame | None:
    """The ``n`` largest rises and ``n`` largest falls in revenue, last 4 weeks against the 4
    before, of ``kind`` "department" or "item": label, current, previous, change (money),
    change_pct (NaN when new), rises first (largest first) then falls (largest first).

    Ranked by the change in money, not in percent, so a tiny line that doubles does not hide a
    large one that grew by a tenth. None without a full previous period, or without departments.
    """
    if not sales.has_previous:
        return None
    column = "department" if kind == "department" else "item_id"
    frame = sales.query(
        f"SELECT {column} AS key, "
        "coalesce(sum(spend) FILTER (WHERE day > $ref - $period), 0) AS current, "
        "coalesce(sum(spend) FILTER (WHERE day <= $ref - $period), 0) AS previous "
        f"FROM __report_sales WHERE day > $ref - 2 * $period AND {column} IS NOT NULL "
        "GROUP BY 1"
    )
    if frame.empty:
        return None
    frame["change"] = frame["current"] - frame["previous"]
    rises = frame[frame["change"] > 0].sort_values(["change", "key"], ascending=[False, True])
    falls = frame[frame["change"] < 0].sort_values(["change", "key"], ascending=[True, True])
    moved = pd.concat([rises.head(n), falls.head(n)], ignore_index=True)
    moved["change_pct"] = moved["change"] / moved["previous"].replace(0.0, np.nan)
    labels = _item_labels(sales, moved["key"]) if kind == "item" else moved["key"].astype(str)
    moved.insert(0, "label", list(labels))
    return moved[["key", "label", "current", "previous", "change", "change_pct"]]


def _item_labels(sales: Sales, ids: pd.Series) -> list[str]:
    """``item <id>: <title or subcategory or category>``, as far as the catalogue tells."""
    names = sales.query(
        "SELECT item_id, coalesce(title, subcategory, category, department) AS name "
        "FROM items WHERE item_id IN (SELECT unnest($ids))",
        ids=list(ids),
    )
    known = dict(zip(names["item_id"], names["name"], strict=True))
    out = []
    for item in ids:
        name = known.get(item)
        out.append(f"{item}: {name}" if isinstance(name, str) and name else f"item {item}")
    return out


# -- the report -----------------------------------------------------------------------------------


def write_report(
    wh: Warehouse,
    output: Path,
    as_of: str | date | datetime | pd.Timestamp | None = None,
    progress: Progress | None = None,
    horizon_weeks: int = FORECAST_WEEKS,
) -> ReportInfo:
    """Write the business report of the warehouse as it stood before ``as_of`` into ``output``.

    The folder is built next to ``output`` and moved into place when complete, so a failed run
    never leaves a half-written report; a previous report in ``output`` is replaced as a whole.

    Parameters
    ----------
    wh : Warehouse
        Read only: the report creates temporary tables, nothing else.
    output : Path
        The report folder: ``index.html`` and the PNG charts. It must be new, empty or hold a
        previous report (an ``index.html``).
    as_of : date or str, optional
        Report on the events before the end of this day (or instant); all of them by default.
    progress : callable, optional
        ``progress(step, fraction)`` as sections are done.
    horizon_weeks : int
        Weeks the sales forecast looks ahead.

    Raises
    ------
    NoSales
        There is no purchase before ``as_of``.
    ReportError
        ``output`` is a file, or a folder holding something other than a report.
    """
    output = Path(output)
    _check_output(output)
    bound = as_of_bound(as_of)
    output.parent.mkdir(parents=True, exist_ok=True)
    building = Path(
        tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    )
    try:
        info = _build(wh, as_of, bound, building, progress, horizon_weeks)
        _replace(building, output)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    info.path = output / "index.html"
    return info


def _check_output(output: Path) -> None:
    if output.exists() and not output.is_dir():
        raise ReportError(f"{output}: a file is in the way; name a folder for the report")
    if output.is_dir() and any(output.iterdir()) and not (output / "index.html").is_file():
        raise ReportError(
            f"{output}: the folder holds other files and no report; name a new or empty folder "
            "(a folder with a previous report is replaced)"
        )


def _replace(built: Path, output: Path) -> None:
    """Move ``built`` to ``output``, replacing a previous report there."""
    if not output.exists():
        built.rename(output)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".old", dir=output.parent))
    old.rmdir()
    output.rename(old)
    try:
        built.rename(output)
    except BaseException:
        old.rename(output)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _build(
    wh: Warehouse,
    as_of: Any,
    bound: pd.Timestamp | None,
    folder: Path,
    progress: Progress | None,
    horizon_weeks: int,
) -> ReportInfo:
    seconds: dict[str, float] = {}
    frames: dict[str, pd.DataFrame] = {}
    sections: list[Section] = []
    clock = time.perf_counter()

    def done(step: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[step] = now - clock
        clock = now
        if progress is not None:
            progress("report", (_STEPS.index(step) + 1) / len(_STEPS))

    with Sales(wh, bound) as sales:
        kpis, totals = headline_kpis(sales)
        weekly = weekly_sales(sales)
        frames["weekly"] = weekly
        sections.append(_weekly_section(sales, weekly, kpis, folder))
        sections.append(_basket_section(weekly, kpis, folder))
        done("sales")
        sections.append(_department_section(sales, frames, folder))
        done("departments")
        sections.append(_store_section(sales, frames, folder))
        done("stores")
        cutoffs = flow_cutoffs(sales, bound)
        segments = segments_at(wh, cutoffs, bound)
        sections.append(_segment_section(sales, segments.iloc[:, -1], frames, folder))
        flow_section = _flow_section(segments, frames, folder)
        done("segments")
        sections.append(_campaign_section(sales, frames, folder))
        done("campaigns")
        sections.append(_movers_section(sales, frames, folder))
        sections.append(flow_section)
        done("movers")
        sections.append(_forecast_section(wh, as_of, horizon_weeks, frames, folder))
        done("forecast")
        first_day, last_day = sales.first_day, sales.last_day
        has_previous = sales.has_previous
    page = _page(first_day, last_day, kpis, totals, sections, has_previous)
    (folder / "index.html").write_text(page, encoding="utf-8")
    done("page")
    return ReportInfo(
        path=folder / "index.html",
        first_day=first_day,
        last_day=last_day,
        kpis=kpis,
        totals=totals,
        sections={s.key: s.note for s in sections},
        charts=[file for s in sections for file, _, _ in s.charts],
        frames=frames,
        seconds=seconds,
    )


# -- sections -------------------------------------------------------------------------------------


def _weekly_section(
    sales: Sales, weekly: pd.DataFrame, kpis: dict[str, Any], folder: Path
) -> Section:
    revenue = kpis["revenue"]
    if revenue["change"] is not None:
        text = (
            f"Revenue in the last 4 weeks was {_money(revenue['value'])}, "
            f"{_change_words(revenue['change'])} on the 4 weeks before "
            f"({_money(revenue['previous'])})."
        )
    else:
        text = f"Revenue in the last 4 weeks was {_money(revenue['value'])}."
    if len(weekly) > 1:
        best = weekly.loc[weekly["revenue"].idxmax()]
        text += (
            f" The best week was the one from {_day(best['week'])}: "
            f"{_money(best['revenue'])} in {int(best['baskets']):,} baskets."
        )
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    top.plot(weekly["week"], weekly["revenue"], color=_BLUE, marker="o", markersize=3)
    top.set_ylabel("revenue per week")
    _money_axis(top.yaxis)
    top.set_ylim(bottom=0)
    top.grid(alpha=0.3)
    bottom.bar(weekly["week"], weekly["baskets"], width=5, color=_GREY)
    bottom.set_ylabel("baskets per week")
    _money_axis(bottom.yaxis)
    bottom.grid(axis="y", alpha=0.3)
    _date_axis(bottom)
    _save(fig, folder / "sales_by_week.png")
    partial = (
        " A partial first week is left out." if weekly["week"].iloc[0] > sales.first_day else ""
    )
    return Section(
        "weekly",
        "Sales by week",
        charts=[("sales_by_week.png", "Revenue and baskets per week", text)],
        caption="Weeks are the 7 days ending on the report's last day and every 7 days before "
        f"it; each point is labelled by its week's first day.{partial}",
    )


def _basket_section(weekly: pd.DataFrame, kpis: dict[str, Any], folder: Path) -> Section:
    value, items = kpis["avg_basket_value"], kpis["items_per_basket"]
    visits = kpis["baskets_per_customer"]
    text = (
        f"Over the last 4 weeks the average basket was worth {_money(value['value'])}"
        f"{_paren_change(value['change'])} and held {_num(items['value'])} items"
        f"{_paren_change(items['change'])}; customers who shopped came "
        f"{_num(visits['value'])} times in the 4 weeks{_paren_change(visits['change'])}."
    )
    fig = Figure(figsize=(9, 6), layout="constrained")
    axes = fig.subplots(3, 1, sharex=True)
    series = [
        ("avg_basket_value", "average basket value", _BLUE),
        ("items_per_basket", "items per basket", _GREEN),
        ("baskets_per_customer", "baskets per customer", "#8c6bb1"),
    ]
    for ax, (column, label, colour) in zip(axes, series, strict=True):
        ax.plot(weekly["week"], weekly[column], color=colour, marker="o", markersize=3)
        ax.set_ylabel(label, fontsize="small")
        ax.grid(alpha=0.3)
    _date_axis(axes[-1])
    _save(fig, folder / "basket_kpis.png")
    return Section(
        "baskets",
        "Basket KPIs",
        charts=[("basket_kpis.png", "Average basket value, items and visits per week", text)],
        caption="Per week: revenue / baskets, purchase lines (products) / baskets, and baskets "
        "/ customers who shopped that week. Comparisons are of the last 28 days with the 28 "
        "before.",
    )


def _department_section(sales: Sales, frames: dict[str, pd.DataFrame], folder: Path) -> Section:
    table = department_sales(sales)
    if table is None:
        return Section(
            "departments",
            "Sales by department",
            note="Left out: no purchased item has a department (load an items file with a "
            "department column).",
        )
    frames["departments"] = table
    named = table.head(table.attrs["named"])
    lead = named.iloc[0]
    text = f"{lead['department']} brings the most revenue: {_pct(lead['share'])} of the total."
    growing = named.dropna(subset=["change"])
    if len(growing) > 1:
        best = growing.loc[growing["change"].idxmax()]
        text += (
            f" Of the {len(named)} largest departments, {best['department']} grew most: "
            f"{_signed_pct(best['change'])} over the last 4 weeks vs the 4 before."
        )
    top = [d for d in named["department"].head(5)]
    weekly = weekly_by(sales, "department", top)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[2, 3])
    shown = table.iloc[::-1]
    left.barh(shown["department"], shown["revenue"], color=_BLUE)
    left.set_xlabel("revenue, whole period")
    _money_axis(left.xaxis)
    left.tick_params(axis="y", labelsize="small")
    left.grid(axis="x", alpha=0.3)
    for department in top:
        right.plot(weekly.index, weekly[department], marker="o", markersize=2, label=department)
    right.set_ylabel("revenue per week")
    _money_axis(right.yaxis)
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3)
    right.legend(fontsize="small")
    _date_axis(right)
    _save(fig, folder / "sales_by_department.png")
    return Section(
        "departments",
        "Sales by department",
        charts=[("sales_by_department.png", "Revenue by department", text)],
        caption=f"Left: the {len(named)} largest departments and the rest together; right: "
        "the weekly revenue of the five largest.",
        tables=[_frame_table(table, "departments", {"department": "department"})],
    )


def _store_section(sales: Sales, frames: dict[str, pd.DataFrame], folder: Path) -> Section:
    table = store_sales(sales)
    if table is None:
        return Section(
            "stores",
            "Sales by store",
            note="Left out: the purchases name no store (no store_id in the events).",
        )
    frames["stores"] = table
    named = table.head(table.attrs["named"])
    lead = named.iloc[0]
    n = table.attrs["stores"]
    text = f"{lead['store'].capitalize()} sells the most: {_pct(lead['share'])} of revenue."
    if n > len(named):
        text += (
            f" The {len(named)} largest of {n:,} stores bring "
            f"{_pct(named['share'].sum())} of revenue."
        )
    fig = Figure(figsize=(9, max(3.0, 1.5 + 0.35 * len(named))), layout="constrained")
    ax = fig.subplots()
    shown = named.iloc[::-1]
    y = np.arange(len(shown))
    ax.barh(y, shown["revenue"], color=_BLUE)
    ax.set_yticks(y, list(shown["store"]), fontsize="small")
    for yi, (revenue, change) in enumerate(zip(shown["revenue"], shown["change"], strict=True)):
        if change is not None and not pd.isna(change):
            ax.annotate(
                _signed_pct(change),
                (revenue, yi),
                xytext=(4, 0),
                va="center",
                textcoords="offset points",
                fontsize="x-small",
            )
    ax.set_xlabel("revenue, whole period")
    _money_axis(ax.xaxis)
    ax.grid(axis="x", alpha=0.3)
    ax.margins(x=0.12)
    _save(fig, folder / "sales_by_store.png")
    return Section(
        "stores",
        "Sales by store",
        charts=[("sales_by_store.png", "Revenue by store", text)],
        caption=f"The {len(named)} stores with the most revenue, labelled with their change "
        "over the last 4 weeks vs the 4 before"
        + ("; the table adds the other stores together." if n > len(named) else "."),
        tables=[_frame_table(table, "stores", {"store": "store"})],
    )


def _segment_section(
    sales: Sales, segments: pd.Series, frames: dict[str, pd.DataFrame], folder: Path
) -> Section:
    table, weekly = segment_sales(sales, segments)
    frames["segments"] = table
    buyers = table[table["segment"] != NO_PURCHASE]
    lead = buyers.loc[buyers["revenue"].idxmax()]
    largest = buyers.loc[buyers["customers"].idxmax()]
    text = (
        f"Customers in {lead['segment']} ({_pct(lead['customer_share'])} of those who "
        f"bought) bring {_pct(lead['revenue_share'])} of revenue."
    )
    if largest["segment"] != lead["segment"]:
        text += (
            f" The largest segment is {largest['segment']}: {int(largest['customers']):,} "
            f"customers, {_pct(largest['revenue_share'])} of revenue."
        )
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    shown = buyers.iloc[::-1]
    y = np.arange(len(shown))
    left.barh(y + 0.2, shown["customer_share"], height=0.4, color=_GREY, label="customers")
    left.barh(y - 0.2, shown["revenue_share"], height=0.4, color=_BLUE, label="revenue")
    left.set_yticks(y, list(shown["segment"]), fontsize="small")
    left.xaxis.set_major_formatter(_percent_ticks)
    left.set_xlabel("share of the whole period")
    left.legend(fontsize="small")
    left.grid(axis="x", alpha=0.3)
    right.stackplot(
        weekly.index,
        weekly.to_numpy().T,
        labels=list(weekly.columns),
        colors=[_SEGMENT_COLOURS[s] for s in weekly.columns],
    )
    right.set_ylabel("revenue per week")
    _money_axis(right.yaxis)
    right.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    _date_axis(right)
    _save(fig, folder / "sales_by_segment.png")
    return Section(
        "segments",
        "Sales by customer segment",
        charts=[("sales_by_segment.png", "Customers and revenue by RFM segment", text)],
        caption=f"Each customer's RFM segment on {_day(sales.last_day)} (recency, frequency "
        "and spend scored in quintiles; see the customer documentation). Left: share of the "
        "customers who bought and of revenue; right: the weekly revenue of today's segments, "
        "which shows, for example, how today's At risk customers used to spend.",
        tables=[_frame_table(table, "segments", {"segment": "segment"})],
    )


def _flow_section(segments: pd.DataFrame, frames: dict[str, pd.DataFrame], folder: Path) -> Section:
    title = "Customer flow between segments"
    sizes = segments.apply(lambda column: column.value_counts()).fillna(0).astype(int)
    order = [s for s in RFM_SEGMENTS if s in sizes.index]
    sizes = sizes.loc[order].T
    sizes.index.name = "cutoff"
    frames["segment_sizes"] = sizes
    if segments.shape[1] < 2:
        return Section(
            "flow",
            title,
            note=f"Left out: comparing segments needs purchases over at least "
            f"{FLOW_STEP_DAYS + FLOW_HISTORY_DAYS} days (two cut-offs {FLOW_STEP_DAYS} days "
            f"apart, the first after {FLOW_HISTORY_DAYS} days of history).",
        )
    before_day, after_day = segments.columns[-2], segments.columns[-1]
    flow = segment_flow(segments[before_day], segments[after_day])
    frames["flow"] = flow
    shares = flow.div(flow.sum(axis=1).replace(0, np.nan), axis=0)
    text = _flow_sentence(flow, shares, before_day, after_day)

    fig = Figure(figsize=(9.5, 7.5), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(shares.to_numpy(), cmap="Blues", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(
        range(len(flow.columns)), list(flow.columns), rotation=35, ha="right", fontsize="small"
    )
    ax.set_yticks(
        range(len(flow.index)),
        [f"{s} ({n:,})" for s, n in flow.sum(axis=1).items()],
        fontsize="small",
    )
    ax.set_xlabel(f"segment on {_day(after_day)}")
    ax.set_ylabel(f"segment on {_day(before_day)} (customers)")
    for i in range(flow.shape[0]):
        for j in range(flow.shape[1]):
            count = int(flow.iat[i, j])
            if count:
                share = shares.iat[i, j]
                ax.text(
                    j,
                    i,
                    f"{100 * share:.0f} %\n{count:,}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if share > 0.55 else "#1f2933",
                )
    fig.colorbar(image, ax=ax, shrink=0.6, format=_percent_ticks, label="share of row")
    _save(fig, folder / "segment_flow.png")

    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    bottom = np.zeros(len(sizes))
    labels = [_day(d) for d in sizes.index]
    for segment in sizes.columns:
        ax.bar(
            labels, sizes[segment], bottom=bottom, color=_SEGMENT_COLOURS[segment], label=segment
        )
        bottom += sizes[segment].to_numpy()
    ax.set_ylabel("customers")
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(axis="y", alpha=0.3)
    _save(fig, folder / "segment_sizes.png")
    return Section(
        "flow",
        title,
        charts=[
            ("segment_flow.png", f"From {_day(before_day)} to {_day(after_day)}", text),
            ("segment_sizes.png", "Segment sizes over time", _sizes_sentence(sizes)),
        ],
        caption=f"Each customer's RFM segment at cut-offs {FLOW_STEP_DAYS} days apart, from "
        "what the data showed on that day. Each row of the matrix shows where the customers "
        "of one segment went by the next cut-off (row shares; counts below them). Scores are "
        "quintiles among the customers who had bought by each cut-off.",
    )


def _flow_sentence(
    flow: pd.DataFrame, shares: pd.DataFrame, before: pd.Timestamp, after: pd.Timestamp
) -> str:
    rows = flow.sum(axis=1)
    buyers = [s for s in flow.index if s != NO_PURCHASE]
    anchor = (
        "Champions"
        if "Champions" in buyers
        else (max(buyers, key=lambda s: rows[s]) if buyers else None)
    )
    parts = []
    if anchor is not None and anchor in flow.columns:
        parts.append(
            f"Of the {int(rows[anchor]):,} customers in {anchor} on {_day(before)}, "
            f"{_pct(shares.at[anchor, anchor])} were still {anchor} on {_day(after)}"
        )
    moves = flow.loc[buyers].stack()
    moves = moves[[a != b and a != NO_PURCHASE and b != NO_PURCHASE for a, b in moves.index]]
    moves = moves[moves > 0]
    if len(moves):
        (source, target), count = moves.idxmax(), int(moves.max())
        parts.append(f"the largest move was {count:,} customers from {source} to {target}")
    if NO_PURCHASE in flow.index:
        new = int(flow.loc[NO_PURCHASE].drop(NO_PURCHASE, errors="ignore").sum())
        if new:
            parts.append(f"{new:,} customers bought for the first time")
    if not parts:
        return "No customer changed segment."
    return _sentence("; ".join(parts))


def _sizes_sentence(sizes: pd.DataFrame) -> str:
    buyers = sizes.drop(columns=NO_PURCHASE, errors="ignore")
    change = buyers.iloc[-1] - buyers.iloc[0]
    first, last = _day(sizes.index[0]), _day(sizes.index[-1])
    parts = []
    if len(change) and change.max() > 0:
        grown = change.idxmax()
        parts.append(
            f"{grown} grew most, from {int(buyers[grown].iloc[0]):,} customers on {first} to "
            f"{int(buyers[grown].iloc[-1]):,} on {last}"
        )
    if len(change) and change.min() < 0:
        shrunk = change.idxmin()
        parts.append(
            f"{shrunk} shrank most, from {int(buyers[shrunk].iloc[0]):,} to "
            f"{int(buyers[shrunk].iloc[-1]):,}"
        )
    return _sentence("; ".join(parts)) if parts else "The segments kept their sizes."


def _campaign_section(sales: Sales, frames: dict[str, pd.DataFrame], folder: Path) -> Section:
    title = "Campaign performance"
    table = campaign_performance(sales)
    if table.empty:
        return Section(
            "campaigns",
            title,
            note="Left out: the warehouse holds no campaign that started by the report's last "
            "day (load campaigns, campaign members and redemptions with `tailor ingest`).",
        )
    frames["campaigns"] = table
    with_members = table[table["members"] > 0]
    text = f"{len(table)} campaigns"
    if len(with_members):
        rate = with_members["redeemers"].sum() / with_members["members"].sum()
        best = with_members.loc[with_members["redemption_rate"].idxmax()]
        text += (
            f": {_pct(rate)} of members redeemed an offer; {best['label']} had the highest "
            f"redemption rate ({_pct(best['redemption_rate'])})."
        )
    else:
        text += ", none with members listed."
    spend = _weighted_spend(table)
    if spend is not None:
        redeemers, members, others = spend
        text += (
            f" During a campaign, redeemers spent {_money(redeemers)} each on average, "
            f"members who did not redeem {_money(members)} and non-members {_money(others)}."
        )
    shown = table.tail(CAMPAIGNS_CHARTED)
    fig = Figure(figsize=(11, 7), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[2, 3])
    x = np.arange(len(shown))
    top.bar(x, shown["redemption_rate"].fillna(0.0), color=_GREEN)
    top.yaxis.set_major_formatter(_percent_ticks)
    top.set_ylabel("redemption rate")
    top.grid(axis="y", alpha=0.3)
    groups = [
        ("revenue_redeemers", "redeemers", _GREEN),
        ("revenue_members", "members who did not redeem", _BLUE),
        ("revenue_non_members", "non-members", _GREY),
    ]
    for n, (column, label, colour) in enumerate(groups):
        bottom.bar(
            x + (n - 1) * 0.27, shown[column].fillna(0.0), width=0.27, color=colour, label=label
        )
    bottom.set_ylabel("revenue per customer\nduring the campaign")
    bottom.legend(fontsize="small")
    bottom.grid(axis="y", alpha=0.3)
    bottom.set_xticks(x, list(shown["label"]), rotation=60, ha="right", fontsize="x-small")
    _save(fig, folder / "campaigns.png")
    limited = (
        f" The chart shows the {CAMPAIGNS_CHARTED} most recent; the table lists all."
        if len(table) > CAMPAIGNS_CHARTED
        else ""
    )
    columns = {
        "label": "campaign",
        "start": "start",
        "end": "end",
        "members": "members",
        "redeemers": "redeemers",
        "redemption_rate": "redemption rate",
        "non_members": "non-members",
        "revenue_redeemers": "revenue per redeemer",
        "revenue_members": "per member not redeeming",
        "revenue_non_members": "per non-member",
    }
    return Section(
        "campaigns",
        title,
        charts=[("campaigns.png", "Redemption and revenue per campaign", text)],
        caption="Members are the customers a campaign targeted (and anyone who redeemed one of "
        "its offers); the redemption rate is the share of members who redeemed. Revenue is "
        "per customer, over the campaign's days; non-members are the customers who bought in "
        "the report's period but were not targeted. Redeemers choose to redeem, so the gap "
        f"between the groups is not the campaign's effect alone.{limited}",
        tables=[_frame_table(table, "campaigns", columns)],
    )


def _weighted_spend(table: pd.DataFrame) -> tuple[float, float, float] | None:
    """Revenue per customer of each group over all campaigns with a window."""
    windowed = table.dropna(subset=["revenue_non_members"])
    if windowed.empty:
        return None
    redeemers = windowed["redeemers"]
    members = windowed["members"] - windowed["redeemers"]
    others = windowed["non_members"]
    values = []
    for spend, n in (
        (windowed["revenue_redeemers"], redeemers),
        (windowed["revenue_members"], members),
        (windowed["revenue_non_members"], others),
    ):
        weight = n.where(spend.notna(), 0).sum()
        values.append(float((spend.fillna(0) * n).sum() / weight) if weight else math.nan)
    return values[0], values[1], values[2]


def _movers_section(sales: Sales, frames: dict[str, pd.DataFrame], folder: Path) -> Section:
    title = "Top movers"
    if not sales.has_previous:
        return Section(
            "movers",
            title,
            note=f"Left out: comparing the last 4 weeks with the 4 before needs "
            f"{2 * PERIOD_DAYS} days of purchases.",
        )
    departments = top_movers(sales, "department")
    items = top_movers(sales, "item")
    parts = []
    panels = []
    for kind, moved in (("department", departments), ("item", items)):
        if moved is None or moved.empty:
            continue
        frames[f"movers_{kind}s"] = moved
        panels.append((kind, moved))
        rise, fall = moved[moved["change"] > 0], moved[moved["change"] < 0]
        words = []
        if len(rise):
            words.append(
                f"{kind.capitalize()} {rise.iloc[0]['label']} grew most: {_mover(rise.iloc[0])}"
            )
        if len(fall):
            words.append(f"{kind} {fall.iloc[0]['label']} fell most: {_mover(fall.iloc[0])}")
        if words:
            parts.append(_sentence(", and ".join(words)))
    if not panels:
        return Section("movers", title, note="Left out: no sales changed between the periods.")
    text = "Last 4 weeks vs the 4 before: " + " ".join(parts)
    fig = Figure(
        figsize=(11, max(3.0, 2 + 0.45 * sum(len(m) for _, m in panels))), layout="constrained"
    )
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    for ax, (kind, moved) in zip(axes, panels, strict=True):
        shown = moved.iloc[::-1]
        colours = [_GREEN if c > 0 else _RED for c in shown["change"]]
        labels = [_short(label, 40) for label in shown["label"]]
        y = np.arange(len(shown))
        ax.barh(y, shown["change"], color=colours)
        ax.set_yticks(y, labels, fontsize="small")
        ax.axvline(0, color="#1f2933", linewidth=0.8)
        for yi, (change, pct) in enumerate(zip(shown["change"], shown["change_pct"], strict=True)):
            ax.annotate(
                "new" if pd.isna(pct) else _signed_pct(pct),
                (change, yi),
                xytext=(4 if change > 0 else -4, 0),
                textcoords="offset points",
                ha="left" if change > 0 else "right",
                va="center",
                fontsize="x-small",
            )
        ax.set_title(f"{kind}s", fontsize="medium", loc="left")
        ax.set_xlabel("change in revenue, last 4 weeks vs the 4 before")
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.2)
    _save(fig, folder / "top_movers.png")
    return Section(
        "movers",
        title,
        charts=[("top_movers.png", "Largest rises and falls", text)],
        caption=f"The {MOVERS} largest rises (green) and falls (red) in revenue, in money, "
        "between the last 28 days and the 28 before; the labels give the change in percent "
        '("new": no sales before).',
    )


def _forecast_section(
    wh: Warehouse, as_of: Any, weeks: int, frames: dict[str, pd.DataFrame], folder: Path
) -> Section:
    from tailor.insights.forecast import MODEL, forecast_sales

    title = "Sales forecast"
    try:
        found = forecast_sales(wh, horizon_weeks=weeks, as_of=as_of)
    except TailorError as exc:
        return Section("forecast", title, note=_sentence(f"Left out: {exc}"))
    history = found.history[found.history["series"] == found.history["series"].iloc[0]]
    ahead = found.forecasts[found.forecasts["series"] == history["series"].iloc[0]]
    frames["forecast"] = ahead.reset_index(drop=True)
    frames["forecast_backtest"] = found.backtest
    recent = history["sales"].tail(weeks).sum()
    total = ahead["forecast"].sum()
    text = f"Sales over the next {weeks} weeks are forecast at {_money(total)}"
    if recent:
        text += f", {_change_words(total / recent - 1)} on the last {weeks} full weeks"
    text += (
        f"; the weekly {_pct(found.level)} intervals add up to {_money(ahead['lower'].sum())} "
        f"to {_money(ahead['upper'].sum())}."
    )
    scores = found.backtest.set_index("model")
    model = MODEL
    baseline = scores.drop(index=model)["smape"].idxmin()
    text += (
        f" Tested on the past ({found.backtest_windows} periods of {weeks} weeks), its weekly "
        f"forecasts were off by {scores.at[model, 'smape']:.1f} % on average, against "
        f"{scores.at[baseline, 'smape']:.1f} % for the best simple rule, "
        f"{_baseline_words(baseline, found.season_weeks)}."
    )
    fig = Figure(figsize=(9, 4), layout="constrained")
    ax = fig.subplots()
    shown = history.tail(52)
    ax.plot(shown["week"], shown["sales"], color=_BLUE, marker="o", markersize=3, label="sales")
    ax.fill_between(
        ahead["week"],
        ahead["lower"],
        ahead["upper"],
        color=_BLUE,
        alpha=0.15,
        label=f"{_pct(found.level)} interval",
    )
    ax.plot(
        ahead["week"],
        ahead["forecast"],
        color=_BLUE,
        linestyle="--",
        marker="o",
        markersize=3,
        label="forecast",
    )
    ax.set_ylabel("sales per week")
    _money_axis(ax.yaxis)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small", loc="lower left")
    _date_axis(ax)
    _save(fig, folder / "sales_forecast.png")
    return Section(
        "forecast",
        title,
        charts=[("sales_forecast.png", f"Weekly sales, the next {weeks} weeks", text)],
        caption=f"Weeks from Monday to Sunday (partial first and last weeks left out), so the "
        f"history differs slightly from the weekly chart above. Model: {found.model}. The "
        f"shaded band holds {_pct(found.level)} of outcomes by the model. The backtest refits "
        f"the model on the weeks before each of the last {found.backtest_windows} periods and "
        "compares with repeating the last week and the last season; sMAPE is the mean of "
        "200 |actual - forecast| / (|actual| + |forecast|) per week.",
    )


def _baseline_words(name: str, season_weeks: int) -> str:
    if name == "last_value":
        return "repeating the last week"
    if name == "seasonal_naive":
        return f"repeating the last {season_weeks} weeks"
    return name.replace("_", " ")


# -- the differentially private report ------------------------------------------------------------


@dataclass
class DPReportInfo:
    """What :func:`write_dp_report` wrote: the page, the release behind it (its noisy figures
    and what it cost; see :class:`tailor.privacy.dp.Release`) and the ledger after it."""

    path: Path
    release: Release
    ledger: dict[str, Any]
    charts: list[str]
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: the path, the release (cost, bounds, figures) and the ledger."""
        return {
            "path": str(self.path),
            **self.release.as_dict(),
            "charts": self.charts,
            "ledger": self.ledger,
            "seconds": round(self.seconds, 3),
        }


def write_dp_report(
    wh: Warehouse,
    output: Path,
    epsilon: float,
    as_of: str | date | datetime | pd.Timestamp | None = None,
    budget: float = DEFAULT_DP_BUDGET,
    bounds: Bounds | None = None,
    seed: int = 0,
    channel: str = "python",
) -> DPReportInfo:
    """Write a report of differentially private figures only into ``output``, spending
    ``epsilon`` of the warehouse's privacy budget (see :mod:`tailor.privacy.dp`).

    The page (``index.html``, PNG charts, and ``dp_department_sales.csv`` with every noisy
    (week, department) figure) holds no exact figure, so it can be published: weekly sales,
    sales by department, baskets and the average basket value per 4-week period, and the
    sizes of the RFM segments, each labelled with the ε it spent; then how the figures were
    made and the privacy ledger. It is written as :func:`write_report` writes its folder.

    Parameters
    ----------
    wh : Warehouse
        Opened for writing: the ledger is in it.
    output : Path
        The report folder, as for :func:`write_report`.
    epsilon : float
        The ε to spend, split over the figures by :data:`tailor.privacy.dp.SPLIT`.
    as_of : date or str, optional
        Report on the events before the end of this day; all of them by default.
    budget : float
        The dataset's budget (``[privacy] dp_budget``).
    bounds : tailor.privacy.dp.Bounds, optional
        Contribution bounds per customer (default: the defaults of ``Bounds``).
    seed : int
        Picks each customer's baskets and breaks ties among their cells.
    channel : str
        Who asked, for the ledger: "cli", "api" or "python".

    Raises
    ------
    BudgetExceeded
        The release would pass the budget; nothing is spent and nothing written.
    NoSales, ReportError, DPError
        As for :func:`write_report`, or a bad ε or budget; nothing is spent.
    """
    from tailor.privacy import dp

    started = time.perf_counter()
    output = Path(output)
    _check_output(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    building = Path(
        tempfile.mkdtemp(prefix=f".{output.name}.", suffix=".partial", dir=output.parent)
    )
    try:
        found = dp.release(
            wh, epsilon, as_of=as_of, budget=budget, bounds=bounds, seed=seed, channel=channel
        )
        summary = dp.ledger_summary(wh, budget)
        cells = found.department_sales.assign(week=found.department_sales["week"].dt.date)
        cells.to_csv(building / "dp_department_sales.csv", index=False)
        sections = [
            _dp_weekly_section(found, building),
            _dp_department_section(found, building),
            _dp_basket_section(found, building),
            _dp_segment_section(found, building),
            _dp_method_section(found, summary),
        ]
        (building / "index.html").write_text(_dp_page(found, summary, sections), "utf-8")
        _replace(building, output)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return DPReportInfo(
        path=output / "index.html",
        release=found,
        ledger=summary,
        charts=[file for s in sections for file, _, _ in s.charts],
        seconds=time.perf_counter() - started,
    )


def _dp_label(epsilon: float) -> str:
    return f"differentially private, ε = {epsilon:.3g}"


def _dp_weekly_section(found: Release, folder: Path) -> Section:
    weekly = found.department_sales.groupby("week")["revenue"].sum()
    label = _dp_label(found.plans["department_sales"].epsilon)
    recent = weekly.iloc[-4:].sum()
    text = f"Sales in the last {min(4, len(weekly))} weeks came to {_money(recent)}"
    if len(weekly) >= 8:
        change = _change(recent, weekly.iloc[-8:-4].sum())
        text += "" if change is None else f", {_change_words(change)} on the 4 weeks before"
    text += f" ({label})."
    fig = Figure(figsize=(9, 3.8), layout="constrained")
    ax = fig.subplots()
    ax.plot(weekly.index, weekly.clip(lower=0), color=_BLUE, marker="o", markersize=3)
    ax.set_ylabel("sales per week")
    _money_axis(ax.yaxis)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.set_title(label, fontsize="small", loc="right")
    _date_axis(ax)
    _save(fig, folder / "dp_sales_by_week.png")
    return Section(
        "dp_weekly",
        "Sales by week",
        charts=[("dp_sales_by_week.png", f"Sales per week ({label})", text)],
        caption="Each week is the sum of its departments' noisy figures (see below). They count "
        f"each customer's {found.bounds.max_cells} largest (week, department) figures, each up "
        f"to {_money(found.bounds.max_cell_spend)}, so they understate sales: read them for the "
        "shape over time, not the level.",
    )


def _dp_department_section(found: Release, folder: Path) -> Section:
    cells = found.department_sales
    label = _dp_label(found.plans["department_sales"].epsilon)
    totals = cells.groupby("department")["revenue"].sum().sort_values(ascending=False)
    named = totals.drop(index=[d for d in totals.index if d.startswith("(")], errors="ignore")
    head = named.head(TOP_DEPARTMENTS)
    rest = totals.drop(index=head.index)
    table = pd.DataFrame({"department": head.index, "revenue": head.to_numpy()})
    if len(rest):
        table.loc[len(table)] = [f"Other departments ({len(rest)})", rest.sum()]
    table["share"] = table["revenue"].clip(lower=0) / max(totals.clip(lower=0).sum(), 1e-12)
    lead = table.iloc[0]
    text = (
        f"{lead['department']} sold the most: {_pct(lead['share'])} of sales over the period "
        f"({label})."
    )
    top = list(head.index[:5])
    weekly = cells[cells["department"].isin(top)].pivot_table(
        index="week", columns="department", values="revenue", aggfunc="sum"
    )
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[2, 3])
    shown = table.iloc[::-1]
    left.barh([_short(d, 30) for d in shown["department"]], shown["revenue"].clip(lower=0),
              color=_BLUE)  # fmt: skip
    left.set_xlabel("sales, whole period")
    _money_axis(left.xaxis)
    left.tick_params(axis="y", labelsize="small")
    left.grid(axis="x", alpha=0.3)
    for department in top:
        right.plot(weekly.index, weekly[department].clip(lower=0), marker="o", markersize=2,
                   label=department)  # fmt: skip
    right.set_ylabel("sales per week")
    _money_axis(right.yaxis)
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3)
    right.legend(fontsize="small")
    right.set_title(label, fontsize="small", loc="right")
    _date_axis(right)
    _save(fig, folder / "dp_sales_by_department.png")
    return Section(
        "dp_departments",
        "Sales by department",
        charts=[("dp_sales_by_department.png", f"Sales by department ({label})", text)],
        caption=f"Left: the {len(head)} departments with the most noisy sales and the rest "
        "together; right: the weekly sales of the five largest. Every (week, department) "
        f"figure had Laplace noise of scale {_money(found.plans['department_sales'].scale)} "
        "added; a figure below 0 is drawn at 0. All of them are in dp_department_sales.csv.",
        tables=[
            _frame_table(table, "dp_departments", {"department": "department", "revenue": "sales"})
        ],  # fmt: skip
    )


def _dp_basket_section(found: Release, folder: Path) -> Section:
    periods = found.baskets
    label = _dp_label(found.plans["basket_counts"].epsilon + found.plans["basket_values"].epsilon)
    last = periods.iloc[-1]
    before = periods.iloc[-2] if len(periods) > 1 else None

    def change(column: str) -> str:
        return "" if before is None else _paren_change(_change(last[column], before[column]))

    text = (
        f"In the last 4 weeks: {int(last['baskets']):,} baskets{change('baskets')}, worth "
        f"{_money(last['avg_basket_value'])} on average{change('avg_basket_value')}"
        + ("; changes are on the 4 weeks before" if before is not None else "")
        + f" ({label})."
    )
    fig = Figure(figsize=(9, 4.8), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)
    top.bar(periods["end"], periods["baskets"].clip(lower=0), width=20, color=_GREY)
    top.set_ylabel("baskets per 4 weeks", fontsize="small")
    _money_axis(top.yaxis)
    top.grid(axis="y", alpha=0.3)
    top.set_title(label, fontsize="small", loc="right")
    bottom.plot(periods["end"], periods["avg_basket_value"], color=_BLUE, marker="o")
    bottom.set_ylabel("average basket value", fontsize="small")
    bottom.set_ylim(bottom=0)
    bottom.grid(alpha=0.3)
    _date_axis(bottom)
    _save(fig, folder / "dp_basket_kpis.png")
    bounds = found.bounds
    return Section(
        "dp_baskets",
        "Baskets",
        charts=[("dp_basket_kpis.png", f"Baskets per 4 weeks ({label})", text)],
        caption=f"Per 4-week period, ending on the day shown: baskets, and their value / "
        f"baskets. Each customer counts with {bounds.max_baskets} baskets at most, picked at "
        f"random, each worth up to {_money(bounds.max_basket_value)}: the counts understate "
        "the baskets of frequent shoppers, and the average those of large baskets. Periods, "
        "not weeks: a week's few baskets would drown in the noise.",
        tables=[
            _frame_table(
                periods,
                "dp_baskets",
                {
                    "start": "from",
                    "end": "to",
                    "baskets": "baskets",
                    "revenue": "value",
                    "avg_basket_value": "average basket value",
                },
            )
        ],
    )


def _dp_segment_section(found: Release, folder: Path) -> Section:
    segments = found.segments
    label = _dp_label(found.plans["segment_sizes"].epsilon + found.plans["rfm_histograms"].epsilon)
    lead = segments.loc[segments["customers"].idxmax()]
    text = (
        f"The largest segment is {lead['segment']}: {int(lead['customers']):,} customers, "
        f"{_pct(lead['customer_share'])} of those who bought ({label})."
    )
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax = fig.subplots()
    shown = segments.iloc[::-1]
    ax.barh(shown["segment"], shown["customers"].clip(lower=0),
            color=[_SEGMENT_COLOURS[s] for s in shown["segment"]])  # fmt: skip
    ax.set_xlabel("customers")
    ax.tick_params(axis="y", labelsize="small")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(label, fontsize="small", loc="right")
    _save(fig, folder / "dp_segment_sizes.png")
    thresholds = found.thresholds.rename(columns=lambda c: c.replace("score_", "score "))
    thresholds["dimension"] = thresholds["dimension"].map(
        {"recency_days": "days since the last purchase", "frequency": "baskets",
         "monetary": "spend"}
    )  # fmt: skip
    return Section(
        "dp_segments",
        "Customer segments",
        charts=[("dp_segment_sizes.png", f"Customers per RFM segment ({label})", text)],
        caption="Each customer who bought, placed on the RFM grid by quintile scores of "
        "recency (days since the last purchase), frequency (baskets) and spend. The quintiles "
        "are read off noisy histograms over fixed bins (the thresholds below), then the "
        "segment sizes get noise of their own. Negative sizes are drawn at 0.",
        tables=[
            _frame_table(segments, "dp_segments", {"segment": "segment"}),
            _frame_table(thresholds, "dp_thresholds", {c: c for c in thresholds.columns}),
        ],
    )


def _dp_method_section(found: Release, summary: dict[str, Any]) -> Section:
    from tailor.privacy.dp import FIGURES, SPLIT

    rows = pd.DataFrame(
        [
            {"figure": FIGURES[name], "share": SPLIT[name], "epsilon": p.epsilon,
             "sensitivity": p.sensitivity, "scale": p.scale}
            for name, p in found.plans.items()
        ]
    )  # fmt: skip
    entries = pd.DataFrame(summary["entries"])
    entries = entries.assign(spent_at=entries["spent_at"].str.slice(0, 19).str.replace("T", " "))
    bounds = found.bounds
    return Section(
        "dp_method",
        "How the figures were made, and the privacy ledger",
        caption=f"This report spent ε = {found.epsilon:.3g} of the budget of "
        f"{summary['budget']:.3g} for this warehouse's data ({summary['dataset']}): "
        f"{summary['spent']:.3g} spent in all, {summary['remaining']:.3g} left. Each customer's "
        f"contribution is bounded first ({bounds.max_cells} (week, department) figures of up "
        f"to {_money(bounds.max_cell_spend)}; {bounds.max_baskets} baskets of up to "
        f"{_money(bounds.max_basket_value)}), which fixes how much one customer can move each "
        "figure (its sensitivity); OpenDP then adds Laplace noise of scale sensitivity / ε.",
        tables=[
            _frame_table(
                rows,
                "dp_figures",
                {
                    "figure": "figure",
                    "share": "share of ε",
                    "epsilon": "ε",
                    "sensitivity": "sensitivity",
                    "scale": "noise scale",
                },
            ),
            _frame_table(
                entries,
                "dp_ledger",
                {
                    "entry_id": "entry",
                    "spent_at": "when (UTC)",
                    "epsilon": "ε",
                    "release": "release",
                    "as_of": "as of",
                    "channel": "asked by",
                },
            ),
        ],
    )


def _dp_page(found: Release, summary: dict[str, Any], sections: list[Section]) -> str:
    weeks = (found.last_day - found.first_day).days // 7 + 1
    banner = (
        f"Every figure on this page is differentially private: the report spent ε = "
        f"{found.epsilon:.3g} in all, of a budget of {summary['budget']:.3g} for this data "
        f"({summary['spent']:.3g} spent so far, {summary['remaining']:.3g} left). Noise drawn "
        "by OpenDP hides whether any one customer's data is in it. Figures are bounded per "
        "customer first, so they understate large spenders: compare shapes, not levels."
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Sales report (differentially private)</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Sales report (differentially private)</h1>",
        f'<p class="muted">From {_day(found.first_day)} to {_day(found.last_day)} '
        f"({weeks} weeks).</p>",
        f'<p class="dp" id="dp">{html.escape(banner)}</p>',
    ]
    parts += _contents_and_sections(sections)
    parts += [
        f'<p class="muted">Made by Tailor {html.escape(__version__)} with OpenDP. Sales are '
        "the purchases' value (quantity x catalogue price where a file gave none).</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


# -- the page -------------------------------------------------------------------------------------

KPI_NAMES = {  # the headline figures, in the order shown
    "revenue": "Revenue",
    "customers": "Customers",
    "baskets": "Baskets",
    "avg_basket_value": "Average basket value",
    "items_per_basket": "Items per basket",
    "baskets_per_customer": "Baskets per customer",
}


def _page(
    first_day: pd.Timestamp,
    last_day: pd.Timestamp,
    kpis: dict[str, Any],
    totals: dict[str, Any],
    sections: list[Section],
    has_previous: bool,
) -> str:
    period = (
        f"From {_day(first_day)} to {_day(last_day)} ({totals['weeks']} weeks): revenue "
        f"{_money(totals['revenue'])} from {totals['customers']:,} customers in "
        f"{totals['baskets']:,} baskets."
    )
    compared = (
        "Cards: the last 4 weeks, compared with the 4 weeks before."
        if has_previous
        else "Cards: the last 4 weeks (the data holds no full 4 weeks before them to compare)."
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>Sales report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Sales report</h1>",
        f'<p class="muted">{html.escape(period)}</p>',
        f'<div class="kpis" id="kpis">{"".join(_kpi_card(k, kpis[k]) for k in KPI_NAMES)}</div>',
        f'<p class="muted">{html.escape(compared)}</p>',
    ]
    parts += _contents_and_sections(sections)
    parts += [
        f'<p class="muted">Made by Tailor {html.escape(__version__)}. Revenue is the purchases\' '
        "value (quantity x catalogue price where a file gave none); returns are not deducted. "
        "Items per basket counts products (purchase lines), not units.</p>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _contents_and_sections(sections: list[Section]) -> list[str]:
    """A page's table of contents, then each of its sections."""
    links = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
    parts = [f"<nav>{links}</nav>"]
    for section in sections:
        parts += _section_html(section)
    return parts


def _section_html(section: Section) -> list[str]:
    parts = [f'<section id="{section.key}"><h2>{html.escape(section.title)}</h2>']
    if section.note is not None:
        return [*parts, f'<p class="note">{html.escape(section.note)}</p></section>']
    for file, title, takeaway in section.charts:
        parts += [
            f'<p class="takeaway">{html.escape(takeaway)}</p>',
            f'<img src="{html.escape(file)}" alt="{html.escape(title)}">',
        ]
    if section.caption:
        parts.append(f'<p class="muted">{html.escape(section.caption)}</p>')
    return [*parts, *section.tables, "</section>"]


def _kpi_card(name: str, kpi: dict[str, Any]) -> str:
    value = kpi["value"]
    if name in ("revenue", "avg_basket_value"):
        shown = _money(value)
    else:
        shown = f"{value:,.0f}" if name in ("customers", "baskets") else _num(value)
    change = kpi["change"]
    if change is None:
        trend = '<div class="muted">no earlier period</div>'
    else:
        css = "up" if change > 0 else "down" if change < 0 else "muted"
        trend = f'<div class="{css}">{html.escape(_signed_pct(change))} vs the 4 weeks before</div>'
    return (
        f'<div class="kpi" data-kpi="{name}"><div class="name">'
        f"{html.escape(KPI_NAMES[name])}</div>"
        f'<div class="value">{html.escape(shown)}</div>{trend}</div>'
    )


def _frame_table(frame: pd.DataFrame, table_id: str, columns: dict[str, str]) -> str:
    """The frame as an HTML table; ``columns`` are the first columns with their headers, the
    money and share columns follow."""
    headers = {**columns}
    for column, header in (
        ("customers", "customers"),
        ("customer_share", "share of customers"),
        ("revenue", "revenue"),
        ("share", "share"),
        ("revenue_share", "share of revenue"),
        ("current", "last 4 weeks"),
        ("previous", "4 weeks before"),
        ("change", "change"),
    ):
        if column in frame.columns and column not in headers:
            headers[column] = header
    rows = [f'<table id="{table_id}"><tr>']
    rows[0] += "".join(f"<th>{html.escape(h)}</th>" for h in headers.values()) + "</tr>"
    for record in frame[list(headers)].itertuples(index=False):
        cells = "".join(
            f"<td>{html.escape(_cell(column, value))}</td>"
            for column, value in zip(headers, record, strict=True)
        )
        rows.append(f"<tr>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)


def _cell(column: str, value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    if column in ("change",):
        return _signed_pct(value)
    if column in ("share", "customer_share", "revenue_share", "redemption_rate"):
        return _pct(value)
    if column.startswith("revenue") or column in ("current", "previous"):
        return _money(value)
    if isinstance(value, pd.Timestamp | datetime | date):
        return _day(value)
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        return _num(float(value))
    return str(value)


# -- charts and words -----------------------------------------------------------------------------


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, dpi=90)


def _money_axis(axis: Any) -> None:
    """Tick labels like 250k and 1.5M instead of an offset of 1e6."""
    axis.set_major_formatter(_compact)


def _compact(value: float, _position: Any = None) -> str:
    size = abs(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            return f"{value / limit:,.3g}{suffix}"
    return f"{value:,.3g}"


def _percent_ticks(value: float, _position: Any = None) -> str:
    return f"{100 * value:.0f} %"


def _date_axis(ax: Any) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else math.nan


def _change(value: float, previous: float | None) -> float | None:
    """Relative change, e.g. 0.05 for +5 %; None without a previous value above 0."""
    if previous is None or not previous or math.isnan(previous) or math.isnan(value):
        return None
    return float(value / previous - 1)


def _money(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.2f}"


def _num(value: float) -> str:
    if math.isnan(value):
        return "—"
    if float(value).is_integer() and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"


def _pct(value: float) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{100 * value:.0f} %" if abs(value) >= 0.1 else f"{100 * value:.1f} %"


def _signed_pct(value: float) -> str:
    """+4.2 %, −12 %, +1,293 %: one decimal under 100 %."""
    size = abs(value) * 100
    text = f"{size:,.0f} %" if size >= 100 else f"{size:.1f} %"
    return ("+" if value > 0 else "−" if value < 0 else "±") + text


def _change_words(change: float) -> str:
    if abs(change) < 0.0005:
        return "level"
    return f"{'up' if change > 0 else 'down'} {100 * abs(change):.1f} %"


def _paren_change(change: float | None) -> str:
    return "" if change is None else f" ({_signed_pct(change)})"


def _mover(row: pd.Series) -> str:
    pct = "new" if pd.isna(row["change_pct"]) else _signed_pct(row["change_pct"])
    sign = "+" if row["change"] > 0 else "−"
    return f"{pct} ({sign}{_money(abs(row['change']))})"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _last_instant(bound: pd.Timestamp) -> pd.Timestamp:
    """The last instant an exclusive bound keeps."""
    return bound - pd.Timedelta(microseconds=1)


def _day(value: Any) -> str:
    return str(pd.Timestamp(value).date())
