"""Sales figures for the overview, from the events of the build's dataset (pandas, vectorised).

Revenue is the value of purchases, as the customer 360's ``monetary`` counts it (returns are not
subtracted; an event without a value counts quantity x the item's price). A basket is one
customer's basket, as the Dataset numbers them. The trend compares the last 4 weeks of the data,
up to and including its last day, with the 4 weeks before.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tailor.dataset import Dataset

TREND_DAYS = 28
FLAT = 0.005
"""A change smaller than this (0.5%) shows as flat."""


@dataclass(frozen=True)
class Kpi:
    """One figure over the build's whole data, its last 4 weeks and the 4 weeks before."""

    name: str
    label: str
    total: float
    recent: float
    before: float
    money: bool = False

    @property
    def change(self) -> float | None:
        """Relative change of ``recent`` on ``before``; None when there was nothing before."""
        if not self.before:
            return None
        return (self.recent - self.before) / self.before

    @property
    def direction(self) -> str:
        """``up``, ``down`` or ``flat``."""
        change = self.change
        if change is None:
            return "up" if self.recent > 0 else "flat"
        if abs(change) < FLAT:
            return "flat"
        return "up" if change > 0 else "down"


def purchases(ds: Dataset) -> pd.DataFrame:
    """The purchase events: customer, item, basket (codes), timestamp and spend (money)."""
    ev = ds.events
    bought = ev.loc[ev["event_type"].astype(str).to_numpy() == "purchase"]
    spend = bought["value"].astype("float64")
    if spend.isna().any():
        if "price" in ds.items:
            price = pd.to_numeric(ds.items["price"], errors="coerce").to_numpy("float64")
        else:
            price = np.full(ds.n_items, np.nan)
        fallback = bought["quantity"].astype("float64").fillna(1.0) * price[bought["item"]]
        spend = spend.fillna(fallback).fillna(0.0)
    return pd.DataFrame(
        {
            "customer": bought["customer"].to_numpy(),
            "item": bought["item"].to_numpy(),
            "basket": bought["basket"].to_numpy(),
            "timestamp": bought["timestamp"].to_numpy(),
            "spend": spend.to_numpy(),
        }
    )


def last_day(ds: Dataset) -> pd.Timestamp | None:
    """The data's last day: the day before ``as_of``, else the day of the last event."""
    if ds.as_of is not None:
        return (ds.as_of - pd.Timedelta(microseconds=1)).normalize()
    if not len(ds.events):
        return None
    return pd.Timestamp(ds.events["timestamp"].max()).normalize()


def _figures(frame: pd.DataFrame) -> dict[str, float]:
    revenue = float(frame["spend"].sum())
    baskets = int(frame["basket"].nunique())
    return {
        "revenue": revenue,
        "customers": int(frame["customer"].nunique()),
        "baskets": baskets,
        "average_basket": revenue / baskets if baskets else 0.0,
    }


LABELS = {
    "revenue": ("Revenue", True),
    "customers": ("Customers who bought", False),
    "baskets": ("Baskets", False),
    "average_basket": ("Average basket", True),
}


def sales_kpis(ds: Dataset, bought: pd.DataFrame | None = None) -> list[Kpi]:
    """Revenue, buying customers, baskets and average basket value, each with its trend
    (``bought``: :func:`purchases` of ``ds``, when already at hand)."""
    bought = purchases(ds) if bought is None else bought
    end = last_day(ds)
    if end is None:
        recent = before = bought.iloc[:0]
    else:
        end = end + pd.Timedelta(days=1)  # exclusive
        stamp = bought["timestamp"]
        window = pd.Timedelta(days=TREND_DAYS)
        recent = bought.loc[(stamp >= end - window) & (stamp < end)]
        before = bought.loc[(stamp >= end - 2 * window) & (stamp < end - window)]
    total, now, then = _figures(bought), _figures(recent), _figures(before)
    return [
        Kpi(name, label, total[name], now[name], then[name], money)
        for name, (label, money) in LABELS.items()
    ]


def weekly_revenue(ds: Dataset, bought: pd.DataFrame | None = None) -> pd.Series:
    """Revenue per week (Monday to Sunday), indexed by the week's Monday; weeks without sales
    are 0. The first and last weeks may be partial."""
    bought = purchases(ds) if bought is None else bought
    if not len(bought):
        return pd.Series(dtype="float64", name="revenue")
    stamp = pd.to_datetime(bought["timestamp"])
    monday = stamp.dt.normalize() - pd.to_timedelta(stamp.dt.day_of_week, unit="D")
    weekly = bought["spend"].groupby(monday.to_numpy()).sum()
    weeks = pd.date_range(weekly.index.min(), weekly.index.max(), freq="7D")
    return weekly.reindex(weeks, fill_value=0.0).rename("revenue")


@dataclass(frozen=True)
class BuildSales:
    """A build's purchases and the overview's figures from them."""

    purchases: pd.DataFrame
    kpis: list[Kpi]
    weekly: pd.Series


_BUILDS: OrderedDict[str, BuildSales] = OrderedDict()
_BUILDS_LOCK = threading.Lock()
KEEP_BUILDS = 2
"""Builds whose sales are kept: the one served, and the one a hot swap replaced."""


def build_sales(key: str, ds: Dataset) -> BuildSales:
    """The sales of the build ``key`` (its folder), computed once: they change only with the
    build, and the pages that show them are requested far more often than builds are made."""
    with _BUILDS_LOCK:
        found = _BUILDS.get(key)
    if found is None:
        bought = purchases(ds)
        found = BuildSales(bought, sales_kpis(ds, bought), weekly_revenue(ds, bought))
        with _BUILDS_LOCK:
            _BUILDS[key] = found
            while len(_BUILDS) > KEEP_BUILDS:
                _BUILDS.popitem(last=False)
    return found
