"""Customer 360 features: one row per customer, computed with SQL in the warehouse.

Every feature is computed from what the warehouse held before an ``as_of`` cut (the same
exclusive bound as :func:`tailor.dataset.as_of_bound`), so that the churn model can take
features at past cut-offs and labels after them. The *reference day* is the last day the cut
shows: recency is counted back from it.

A basket is a shopping trip (``basket_id``; ingest gives an event without one the basket of its
customer's events at that moment). Spend is the purchase ``value`` or, where a file gave none,
quantity x the item's catalogue ``price``.

Columns (days are whole days, money is the shop's currency):

==========================  ===========================================================
recency_days                days from the last purchase to the reference day
frequency                   baskets with a purchase
monetary                    total spend
r_score, f_score, m_score   quintile scores 1-5 among customers who bought (5 = best:
                            most recent, most baskets, most spend); 0 for non-buyers
tenure_days                 days from the first event to the reference day
purchase_days               distinct days with a purchase
active_week_share           share of the weeks since the first purchase with a purchase
active_4week_share          likewise for 4-week periods (counted back from the reference day)
interpurchase_days          mean days between purchase days
interpurchase_cv            coefficient of variation of those gaps (0 = like clockwork)
last_gap_days               days between the last two purchase days
avg_basket_value            spend per basket
avg_basket_items            units per basket
avg_basket_lines            distinct products per basket
share_<department>          share of spend in each of the most sold departments
                            (``share_other`` for the rest)
discount_line_share         share of purchase lines bought with a discount
discount_value_share        discount / (spend + discount)
coupon_rate                 coupon redemptions per basket
stores, top_store_share     distinct stores; share of baskets at the most used one
channels, top_channel_share likewise for channels
spend_last_28d              spend in the last 28 days
baskets_last_<n>d           baskets in the last n days, n = 7, 14, 28, 56, 91
spend_trend                 spend in the last 28 days / average 28-day spend before
                            (NaN with under 28 days of history before)
returns_rate                returned value / purchased value
views, carts                events of those types
campaigns_received          campaigns the customer was a member of (started before the cut)
campaigns_running           of those, the ones still running on the reference day
==========================  ===========================================================

Customers without a purchase (known from the customer table or from other events) get a row
with frequency 0 and NaN where a ratio has no denominator.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tailor.store.schema import ANALYTICS_CONSENTED
from tailor.store.warehouse import Warehouse

TOP_DEPARTMENTS = 8
"""Departments with their own spend-share column; the rest go to ``share_other``."""

TREND_DAYS = 28


@dataclass(frozen=True)
class CustomerFeatures:
    """The feature table and what it needs to be read.

    Attributes
    ----------
    table : DataFrame
        One row per customer, indexed by ``customer_id``; columns as in the module docstring.
    reference_day : Timestamp
        The last day the cut shows; recency counts back from it.
    departments : dict
        ``share_<slug>`` column -> department name as stored.
    """

    table: pd.DataFrame
    reference_day: pd.Timestamp
    departments: dict[str, str] = field(default_factory=dict)

    @property
    def buyers(self) -> pd.DataFrame:
        """The rows of customers with at least one purchase."""
        return self.table.loc[self.table["frequency"] > 0]


def reference_day(wh: Warehouse, bound: pd.Timestamp | None) -> pd.Timestamp | None:
    """The last day a cut at ``bound`` shows (None when the warehouse has no event)."""
    if bound is not None:
        return (bound - pd.Timedelta(microseconds=1)).normalize()
    last = wh.con.execute("SELECT max(timestamp) FROM events").fetchone()[0]
    return None if last is None else pd.Timestamp(last).normalize()


def customer_features(
    wh: Warehouse,
    bound: pd.Timestamp | None = None,
    departments: list[str] | None = None,
) -> CustomerFeatures:
    """The 360 features of every customer as the warehouse stood before ``bound``.

    Parameters
    ----------
    wh : Warehouse
    bound : Timestamp, optional
        Exclusive upper bound of the events seen (see :func:`tailor.dataset.as_of_bound`).
    departments : list of str, optional
        The departments that get a share column; by default the ``TOP_DEPARTMENTS`` with the
        most spend before ``bound``. Pass the same list to get comparable tables at several
        cut-offs.
    """
    with PurchaseTable(wh, bound) as purchases:
        return purchases.features(bound, departments)


class PurchaseTable:
    """The purchases and returns before ``end``, with their spend and department, in a temporary
    table: features at several cut-offs before ``end`` read it instead of joining the events to
    the catalogue again for each. Use as a context manager (the table is dropped on exit)."""

    def __init__(self, wh: Warehouse, end: pd.Timestamp | None = None):
        self.wh = wh
        self.end = end

    def __enter__(self) -> PurchaseTable:
        if self.end is None:
            self.wh.con.execute(_PURCHASES_SQL.replace("$bound", "'infinity'"))
        else:
            self.wh.con.execute(_PURCHASES_SQL, {"bound": self.end.to_pydatetime()})
        return self

    def __exit__(self, *exc: object) -> None:
        self.wh.con.execute("DROP TABLE IF EXISTS __purchases")

    def features(
        self, bound: pd.Timestamp | None = None, departments: list[str] | None = None
    ) -> CustomerFeatures:
        """The features as of ``bound`` (at most the table's ``end``); see
        :func:`customer_features`."""
        con = self.wh.con
        ref = reference_day(self.wh, bound)
        if ref is None:
            ref = pd.Timestamp.now().normalize()
        end = bound if bound is not None else ref + pd.Timedelta(days=1)
        params = {"ref": ref.date(), "bound": end.to_pydatetime()}
        base = con.execute(_FEATURES_SQL, params).df().set_index("customer_id")
        if departments is None:
            departments = [
                row[0]
                for row in con.execute(
                    "SELECT department FROM __purchases WHERE department IS NOT NULL "
                    "AND event_type = 'purchase' AND timestamp < $bound GROUP BY ALL "
                    f"ORDER BY sum(spend) DESC, department LIMIT {TOP_DEPARTMENTS}",
                    {"bound": params["bound"]},
                ).fetchall()
            ]
        shares = con.execute(
            "SELECT customer_id, department, sum(spend) AS spend FROM __purchases "
            "WHERE timestamp < $bound AND event_type = 'purchase' GROUP BY ALL",
            {"bound": params["bound"]},
        ).df()
        names = _share_columns(departments)
        table = base.join(_department_shares(shares, names), how="left")
        return CustomerFeatures(table=_finish(table), reference_day=ref, departments=names)

    def purchases(self, bound: pd.Timestamp | None = None) -> pd.DataFrame:
        """customer_id, timestamp and value (the spend defined above) of every purchase before
        ``bound`` (all the table holds when None)."""
        where = "" if bound is None else "AND timestamp < $bound"
        return self.wh.con.execute(
            "SELECT customer_id, timestamp, spend AS value FROM __purchases "
            f"WHERE event_type = 'purchase' {where}",
            {} if bound is None else {"bound": bound.to_pydatetime()},
        ).df()

    def buyers_between(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.Series:
        """The customers with a purchase from ``start`` (inclusive) to ``end`` (exclusive)."""
        return self.wh.con.execute(
            "SELECT DISTINCT customer_id FROM __purchases WHERE event_type = 'purchase' "
            "AND timestamp >= $start AND timestamp < $end",
            {"start": start.to_pydatetime(), "end": end.to_pydatetime()},
        ).df()["customer_id"]


# Purchases and returns before the bound, with their spend and department; a temp table, since
# every aggregate below reads it.
_PURCHASES_SQL = f"""
CREATE OR REPLACE TEMP TABLE __purchases AS
SELECT e.customer_id, e.event_type, e.timestamp, CAST(e.timestamp AS DATE) AS day,
       -- An event without a basket is in the basket of its customer's events at that moment.
       CASE WHEN e.basket_id IS NULL THEN hash(e.customer_id, e.timestamp)
            ELSE hash(e.basket_id) END AS basket_id,
       e.store_id, e.channel, e.item_id, coalesce(e.quantity, 1) AS quantity,
       coalesce(e.value, coalesce(e.quantity, 1) * i.price, 0) AS spend,
       abs(coalesce(e.discount, 0)) AS discount, i.department
FROM events e LEFT JOIN items i USING (item_id)
WHERE e.timestamp < $bound AND e.event_type IN ('purchase', 'return')
    AND e.{ANALYTICS_CONSENTED}
"""

_FEATURES_SQL = f"""
WITH buy AS (
    SELECT * FROM __purchases WHERE event_type = 'purchase' AND timestamp < $bound
), per_customer AS (
    SELECT customer_id,
        min(day) AS first_day, max(day) AS last_day,
        count(DISTINCT basket_id) AS frequency,
        count(DISTINCT day) AS purchase_days,
        count(DISTINCT ($ref - day) // 7) AS active_weeks,
        count(DISTINCT ($ref - day) // 28) AS active_periods,
        sum(spend) AS monetary,
        sum(quantity) AS units,
        count(DISTINCT (basket_id, item_id)) AS lines,
        avg(CASE WHEN discount > 0 THEN 1.0 ELSE 0.0 END) AS discount_line_share,
        sum(discount) / nullif(sum(spend) + sum(discount), 0) AS discount_value_share,
        count(DISTINCT store_id) AS stores,
        count(DISTINCT channel) AS channels,
        coalesce(sum(spend) FILTER (WHERE day > $ref - 28), 0) AS spend_last_28d,
        count(DISTINCT basket_id) FILTER (WHERE day > $ref - 7) AS baskets_last_7d,
        count(DISTINCT basket_id) FILTER (WHERE day > $ref - 14) AS baskets_last_14d,
        count(DISTINCT basket_id) FILTER (WHERE day > $ref - 28) AS baskets_last_28d,
        count(DISTINCT basket_id) FILTER (WHERE day > $ref - 56) AS baskets_last_56d,
        count(DISTINCT basket_id) FILTER (WHERE day > $ref - 91) AS baskets_last_91d,
        coalesce(sum(spend) FILTER (WHERE day <= $ref - 28), 0) AS spend_before
    FROM buy GROUP BY customer_id
), gaps AS (
    SELECT customer_id, avg(gap) AS gap_mean, stddev_pop(gap) AS gap_sd,
        arg_max(gap, day) AS last_gap FROM (
        SELECT customer_id, day,
            day - lag(day) OVER (PARTITION BY customer_id ORDER BY day) AS gap
        FROM (SELECT DISTINCT customer_id, day FROM buy)
    ) WHERE gap IS NOT NULL GROUP BY customer_id
), top_store AS (
    SELECT customer_id, max(n) / sum(n) AS top_store_share FROM (
        SELECT customer_id, store_id, count(DISTINCT basket_id) AS n FROM buy
        WHERE store_id IS NOT NULL GROUP BY ALL
    ) GROUP BY customer_id
), top_channel AS (
    SELECT customer_id, max(n) / sum(n) AS top_channel_share FROM (
        SELECT customer_id, channel, count(DISTINCT basket_id) AS n FROM buy
        WHERE channel IS NOT NULL GROUP BY ALL
    ) GROUP BY customer_id
), returned AS (
    SELECT customer_id, sum(spend) AS returned_value FROM __purchases
    WHERE event_type = 'return' AND timestamp < $bound GROUP BY customer_id
), coupons AS (
    SELECT customer_id, count(*) AS redemptions FROM redemptions
    WHERE timestamp < $bound GROUP BY customer_id
), campaigns_in AS (
    SELECT m.customer_id, count(DISTINCT m.campaign_id) AS campaigns_received,
        count(DISTINCT m.campaign_id) FILTER (WHERE c."end" >= $ref) AS campaigns_running
    FROM campaign_members m JOIN campaigns c USING (campaign_id)
    WHERE c.start < $bound GROUP BY m.customer_id
), other_events AS (
    SELECT customer_id, min(CAST(timestamp AS DATE)) AS first_seen,
        count(*) FILTER (WHERE event_type = 'view') AS views,
        count(*) FILTER (WHERE event_type = 'cart') AS carts
    FROM events WHERE timestamp < $bound GROUP BY customer_id
), everyone AS (
    SELECT customer_id FROM (
        SELECT customer_id FROM customers UNION SELECT customer_id FROM other_events
    ) WHERE {ANALYTICS_CONSENTED}
)
SELECT everyone.customer_id,
    CAST($ref - p.last_day AS INTEGER) AS recency_days,
    coalesce(p.frequency, 0) AS frequency,
    coalesce(p.monetary, 0.0) AS monetary,
    CAST($ref - least(o.first_seen, p.first_day) AS INTEGER) AS tenure_days,
    coalesce(p.purchase_days, 0) AS purchase_days,
    p.active_weeks / (($ref - p.first_day) // 7 + 1) AS active_week_share,
    p.active_periods / (($ref - p.first_day) // 28 + 1) AS active_4week_share,
    g.gap_mean AS interpurchase_days,
    g.gap_sd / nullif(g.gap_mean, 0) AS interpurchase_cv,
    g.last_gap AS last_gap_days,
    p.monetary / p.frequency AS avg_basket_value,
    p.units / p.frequency AS avg_basket_items,
    p.lines / p.frequency AS avg_basket_lines,
    p.discount_line_share, p.discount_value_share,
    coalesce(c.redemptions, 0) / p.frequency AS coupon_rate,
    coalesce(p.stores, 0) AS stores, s.top_store_share,
    coalesce(p.channels, 0) AS channels, ch.top_channel_share,
    coalesce(p.spend_last_28d, 0.0) AS spend_last_28d,
    coalesce(p.baskets_last_7d, 0) AS baskets_last_7d,
    coalesce(p.baskets_last_14d, 0) AS baskets_last_14d,
    coalesce(p.baskets_last_28d, 0) AS baskets_last_28d,
    coalesce(p.baskets_last_56d, 0) AS baskets_last_56d,
    coalesce(p.baskets_last_91d, 0) AS baskets_last_91d,
    CASE WHEN $ref - 28 - p.first_day + 1 >= 28
        THEN p.spend_last_28d / nullif(28.0 * p.spend_before / ($ref - 28 - p.first_day + 1), 0)
    END AS spend_trend,
    coalesce(r.returned_value, 0) / nullif(p.monetary, 0) AS returns_rate,
    coalesce(o.views, 0) AS views, coalesce(o.carts, 0) AS carts,
    coalesce(ci.campaigns_received, 0) AS campaigns_received,
    coalesce(ci.campaigns_running, 0) AS campaigns_running
FROM everyone
LEFT JOIN per_customer p USING (customer_id)
LEFT JOIN gaps g USING (customer_id)
LEFT JOIN top_store s USING (customer_id)
LEFT JOIN top_channel ch USING (customer_id)
LEFT JOIN returned r USING (customer_id)
LEFT JOIN coupons c USING (customer_id)
LEFT JOIN campaigns_in ci USING (customer_id)
LEFT JOIN other_events o USING (customer_id)
ORDER BY everyone.customer_id
"""


def _share_columns(departments: list[str]) -> dict[str, str]:
    """``share_<slug>`` -> department, slugs made unique."""
    names: dict[str, str] = {}
    for department in departments:
        slug = re.sub(r"[^0-9a-z]+", "_", str(department).lower()).strip("_") or "unnamed"
        column, n = f"share_{slug}", 2
        while column in names or column == "share_other":
            column, n = f"share_{slug}_{n}", n + 1
        names[column] = department
    return names


def _department_shares(spend: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """Share of each customer's spend per named department and ``share_other``."""
    column_of = {department: column for column, department in names.items()}
    column = spend["department"].map(column_of).astype(object)
    spend = spend.assign(column=column.where(column.notna(), "share_other"))
    wide = spend.pivot_table(
        index="customer_id", columns="column", values="spend", aggfunc="sum", fill_value=0.0
    )
    wide = wide.reindex(columns=[*names, "share_other"], fill_value=0.0)
    total = wide.sum(axis=1).replace(0.0, np.nan)
    return wide.div(total, axis=0)


def _finish(table: pd.DataFrame) -> pd.DataFrame:
    """Quintile RFM scores, and dtypes: floats for ratios, ints for counts."""
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = pd.to_numeric(table[column])
    bought = table["frequency"] > 0
    table["r_score"] = _quintile(-table["recency_days"], bought)
    table["f_score"] = _quintile(table["frequency"], bought)
    table["m_score"] = _quintile(table["monetary"], bought)
    counts = [
        "frequency",
        "purchase_days",
        "stores",
        "channels",
        *(c for c in table.columns if c.startswith("baskets_last_")),
        "views",
        "campaigns_received",
        "campaigns_running",
    ]
    for column in [*counts, "carts"]:
        table[column] = table[column].astype("int64")
    for column in table.columns.difference([*counts, "carts", "r_score", "f_score", "m_score"]):
        table[column] = table[column].astype("float64")
    return table


def _quintile(values: pd.Series, among: pd.Series) -> pd.Series:
    """1-5 by quintile of ``values`` among the rows where ``among`` (ties share a score),
    0 elsewhere."""
    pct = values.where(among).rank(pct=True, method="max")
    return np.ceil(pct * 5).fillna(0).clip(0, 5).astype("int8")
