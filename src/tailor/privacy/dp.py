"""Differential privacy: aggregate figures released through OpenDP, and the privacy ledger.

:func:`release` publishes the figures of a differentially private report (``tailor report
--dp-epsilon E``, ``POST /v1/privacy/dp/report``): weekly sales by department, baskets and the
average basket value per 4-week period, and the sizes of the RFM segments. Each customer is
one privacy unit: the figures change little, in a way ε bounds, whether any one customer's data
is in the warehouse or not.

How a figure is made:

1. **Contribution bounding** (DuckDB, on the report's purchase lines, see
   :class:`tailor.insights.reports.Sales`): each customer's data is cut down so that adding or
   removing one customer moves the vector of figures by at most a known L1 distance, the
   *sensitivity*. The bounds are public settings (:class:`Bounds`), never computed from the
   data: bounds read off the data would themselves leak it.
2. **Noise** (OpenDP): :func:`laplace` asks OpenDP for the Laplace measurement on the vector
   with the smallest scale whose privacy map gives at most the figure's share of ε for that
   sensitivity (``scale = sensitivity / ε``); OpenDP samples the noise. Nothing here draws
   random numbers.
3. **Post-processing** (free of privacy cost): totals, shares, ratios and the segments'
   quintile thresholds are computed from the noisy figures; charts draw a figure below zero at
   zero.

The figures and their sensitivities (L = ``max_cells``, U = ``max_cell_spend``,
K = ``max_baskets``, V = ``max_basket_value``):

================  ===============================================================  ==========
figure            bounded per customer                                             L1
================  ===============================================================  ==========
department_sales  sum of spend per (week, department) cell, each cell clipped to     L x U
                  [0, U], at most L cells (the customer's largest; ties by seed)
basket_counts     baskets per 4-week period, at most K baskets per customer          K
                  (chosen at random with a seed, so that the kept baskets are a
                  fair sample for the average basket value)
basket_values     the same K baskets' values, each clipped to [0, V]                 K x V
rfm_histograms    one count in each of three histograms (recency, frequency,         3
                  spend) over fixed public bins
segment_sizes     one count: the customer's RFM segment, scored against quintile     1
                  thresholds read off the noisy histograms (post-processing)
================  ===============================================================  ==========

A release spends ε split over the figures by :data:`SPLIT`; by sequential composition the
release costs the sum of the figures' ε, which the ledger records.

What is public (not protected): the report's calendar (its first and last day, hence its weeks,
from the first and last purchase before the cut; ``as_of`` fixes the last), the catalogue's
departments, the bin edges, the bounds and the seed.

The ledger is the table ``privacy_ledger`` in the warehouse (created on first use): one row per
release with the ε it spent. Every release from a warehouse is charged to one budget, the
warehouse's *dataset* (keyed by the warehouse's creation stamp in ``tailor_meta``): reports at
different ``as_of`` cuts, or before and after new data arrives, share customers and events, so
their privacy losses add up. A release that would take the total over the budget is refused
before any noise is drawn, and nothing is spent.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailor.config import DEFAULT_DP_BUDGET
from tailor.customers.segments import NO_PURCHASE, RFM_SEGMENTS, rfm_segment
from tailor.dataset import as_of_bound
from tailor.errors import ConfigError, TailorError
from tailor.insights.reports import PERIOD_DAYS, Sales
from tailor.store.warehouse import Warehouse

if TYPE_CHECKING:
    from opendp.mod import Measurement

__all__ = [
    "SPLIT",
    "BoundedFigures",
    "Bounds",
    "BudgetExceeded",
    "DPError",
    "Plan",
    "Release",
    "bounded_figures",
    "charge",
    "dataset_key",
    "laplace",
    "ledger",
    "ledger_summary",
    "plan",
    "release",
]

SPLIT: dict[str, float] = {
    "department_sales": 0.5,
    "basket_counts": 0.15,
    "basket_values": 0.15,
    "rfm_histograms": 0.1,
    "segment_sizes": 0.1,
}
"""The share of a release's ε each figure spends (they add up to 1)."""

FIGURES = {
    "department_sales": "weekly sales by department",
    "basket_counts": "baskets per 4-week period",
    "basket_values": "basket value per 4-week period",
    "rfm_histograms": "recency, frequency and spend histograms (for the segments' thresholds)",
    "segment_sizes": "customers per RFM segment",
}

NO_DEPARTMENT = "(no department)"

# Public bin edges of the RFM histograms; the last bin of each is open-ended. A value on an edge
# opens a bin, so 0 to 6 days (recency) and 1 to 5 baskets (frequency) get a bin each.
RECENCY_EDGES = (0, 1, 2, 3, 4, 5, 6, 7, 10, 14, 21, 28, 35, 42, 56, 70, 91, 120, 150, 182, 273,
                 365)  # fmt: skip
"""Days since the customer's last purchase."""
FREQUENCY_EDGES = (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 125, 150,
                   200, 250, 300, 400, 500)  # fmt: skip
"""Baskets over the report's period."""
MONETARY_EDGES = (0, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000,
                  3000, 5000, 7500, 10000, 15000, 20000, 50000)  # fmt: skip
"""Spend over the report's period, in the shop's currency."""

BUYING_SEGMENTS = tuple(s for s in RFM_SEGMENTS if s != NO_PURCHASE)

LEDGER_SQL = (
    "CREATE TABLE IF NOT EXISTS privacy_ledger (entry_id BIGINT NOT NULL, dataset VARCHAR NOT "
    "NULL, spent_at TIMESTAMP NOT NULL, epsilon DOUBLE NOT NULL, release VARCHAR NOT NULL, "
    "as_of VARCHAR, channel VARCHAR, detail VARCHAR)"
)
LEDGER_COLUMNS = ["entry_id", "dataset", "spent_at", "epsilon", "release", "as_of", "channel",
                  "detail"]  # fmt: skip
_TOLERANCE = 1e-9
"""Float slack when adding up ε against the budget."""
MIN_EPSILON = 0.001
"""The smallest ε a release may spend: below it the noise swamps any figure (and OpenDP's
search for the scale runs out of range)."""


class DPError(TailorError):
    """A differentially private release cannot be made as asked (a bad ε, budget or bound)."""


class BudgetExceeded(DPError):
    """The release would take the ε spent on the dataset over its budget; nothing was spent."""


@dataclass(frozen=True)
class Bounds:
    """How much of one customer's data counts in the figures: public settings, never read off
    the data (``[privacy.dp_bounds]`` in tailor.toml).

    The defaults were set once on The Complete Journey (public data, 2,469 households, a year):
    a household has a median of 91 (week, department) cells with a median spend of 8 per cell;
    keeping each one's 40 largest cells clipped at 25 keeps a third of all spend, and its
    median error at ε = 1 was within 0.03 of the best of 16 bounds tried (see
    docs/benchmarks.md). A household shops about twice a week: 52 baskets, each counted up to
    50, are a fair sample for the average basket.
    """

    max_cells: int = 40
    """L: (week, department) cells one customer counts in at most."""
    max_cell_spend: float = 25.0
    """U: spend one customer counts in one cell at most."""
    max_baskets: int = 52
    """K: baskets one customer counts in at most, over the report's period."""
    max_basket_value: float = 50.0
    """V: value one basket counts at most."""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise DPError(f"bound {item.name}: a number, not {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise DPError(f"bound {item.name}: must be a positive number, not {value!r}")
            if item.type == "int" and value != int(value):
                raise DPError(f"bound {item.name}: must be a whole number, not {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Bounds:
        """Bounds from ``[privacy.dp_bounds]``: the defaults for names not given."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(
                f"[privacy.dp_bounds]: unknown bound(s) {', '.join(unknown)}; use "
                f"{', '.join(names)}"
            )
        whole = {f.name for f in fields(cls) if f.type == "int"}
        return cls(**{k: int(v) if k in whole and _whole(v) else v for k, v in values.items()})

    def sensitivities(self) -> dict[str, float | int]:
        """The L1 sensitivity of each figure's vector when one customer is added or removed."""
        return {
            "department_sales": self.max_cells * float(self.max_cell_spend),
            "basket_counts": int(self.max_baskets),
            "basket_values": self.max_baskets * float(self.max_basket_value),
            "rfm_histograms": 3,
            "segment_sizes": 1,
        }


def _whole(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value == int(value)


# -- OpenDP ---------------------------------------------------------------------------------------


def _opendp() -> Any:
    """``opendp.prelude`` with the contrib features on (imported late: it takes a second)."""
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def laplace(sensitivity: float | int, epsilon: float, integer: bool) -> tuple[Measurement, float]:
    """OpenDP's Laplace measurement on a vector whose L1 sensitivity is ``sensitivity``, with
    the smallest scale whose privacy map gives at most ``epsilon``; and that scale.

    The scale is searched by :func:`opendp.prelude.binary_search_param`, so it is OpenDP's
    accounting, not a formula here, that fixes it (it comes out as ``sensitivity / epsilon``).
    Integer vectors get the discrete Laplace noise and stay integers.
    """
    dp = _opendp()
    if integer:
        space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
        d_in: float | int = int(sensitivity)
    else:
        space = dp.vector_domain(dp.atom_domain(T=float, nan=False)), dp.l1_distance(T=float)
        d_in = float(sensitivity)
    scale = dp.binary_search_param(
        lambda s: dp.m.make_laplace(*space, scale=s), d_in=d_in, d_out=float(epsilon)
    )
    return dp.m.make_laplace(*space, scale=scale), float(scale)


@dataclass(frozen=True)
class Plan:
    """One figure's measurement: its sensitivity, scale and the ε OpenDP says it spends."""

    measurement: Any = field(repr=False)
    sensitivity: float | int
    scale: float
    epsilon: float

    def __call__(self, values: np.ndarray) -> np.ndarray:
        """The noisy vector (OpenDP's sample) of ``values``."""
        if not len(values):
            return np.asarray(values)
        dtype = "int64" if np.issubdtype(np.asarray(values).dtype, np.integer) else "float64"
        return np.asarray(self.measurement(np.asarray(values, dtype=dtype).tolist()), dtype=dtype)


def plan(epsilon: float, bounds: Bounds) -> dict[str, Plan]:
    """The measurement of every figure of a release of ``epsilon``, split by :data:`SPLIT`."""
    _check_epsilon(epsilon)
    plans = {}
    for name, sensitivity in bounds.sensitivities().items():
        share = SPLIT[name] * epsilon
        measurement, scale = laplace(sensitivity, share, integer=isinstance(sensitivity, int))
        plans[name] = Plan(measurement, sensitivity, scale, float(measurement.map(sensitivity)))
    return plans


def _check_epsilon(epsilon: Any, least: float = MIN_EPSILON) -> None:
    if isinstance(epsilon, bool) or not isinstance(epsilon, int | float):
        raise DPError(f"epsilon must be a number, not {epsilon!r}")
    if not math.isfinite(epsilon) or epsilon <= 0:
        raise DPError(f"epsilon must be a positive number such as 1.0, not {epsilon!r}")
    if epsilon < least:
        raise DPError(f"epsilon must be at least {least}, not {epsilon!r}")


def _check_budget(budget: Any) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int | float) or not budget > 0:
        raise DPError(f"the privacy budget must be a positive number, not {budget!r}")


# -- contribution bounding ------------------------------------------------------------------------

_CELLS_SQL = """
WITH cells AS (
    SELECT customer_id, ($ref - day) // 7 AS weeks_back,
        coalesce(department, $none) AS department,
        least(greatest(sum(spend), 0), $cap) AS spend
    FROM __report_sales WHERE ($ref - day) // 7 <= $oldest GROUP BY ALL
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY customer_id
        ORDER BY spend DESC, hash(customer_id, weeks_back, department, $seed)) AS n
    FROM cells
)
SELECT weeks_back, department, sum(spend) AS spend FROM ranked WHERE n <= $cells GROUP BY ALL
"""

_BASKETS_SQL = """
WITH baskets AS (
    SELECT customer_id, basket, ($ref - min(day)) // $period AS periods_back,
        least(greatest(sum(spend), 0), $cap) AS value
    FROM __report_sales GROUP BY customer_id, basket
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY customer_id ORDER BY hash(basket, $seed)) AS n
    FROM baskets WHERE periods_back < $periods
)
SELECT periods_back, count(*) AS baskets, sum(value) AS value FROM ranked WHERE n <= $baskets
GROUP BY 1
"""

_RFM_SQL = """
SELECT customer_id, $ref - max(day) AS recency_days, count(DISTINCT basket) AS frequency,
    sum(spend) AS monetary
FROM __report_sales GROUP BY 1
"""


@dataclass
class BoundedFigures:
    """The exact figures after contribution bounding: what the noise is added to. Never
    published; the tests and the benchmark compare the noisy figures with them.

    Attributes
    ----------
    weeks : DatetimeIndex
        The first day of each week of the report (oldest first; a partial first week left out).
    departments : list of str
        The catalogue's departments, then :data:`NO_DEPARTMENT`.
    department_sales : ndarray of shape (n_weeks * n_departments,)
        Bounded spend per cell, week-major (all departments of the first week, then ...).
    periods : DataFrame
        One row per 4-week period, oldest first: start, end (days).
    basket_counts : ndarray of int of shape (n_periods,)
    basket_values : ndarray of shape (n_periods,)
    rfm : DataFrame
        Per customer who bought: recency_days, frequency, monetary.
    rfm_histograms : ndarray of int
        The counts of the recency, frequency and spend bins, one after the other.
    first_day, last_day : Timestamp
    """

    weeks: pd.DatetimeIndex
    departments: list[str]
    department_sales: np.ndarray
    periods: pd.DataFrame
    basket_counts: np.ndarray
    basket_values: np.ndarray
    rfm: pd.DataFrame
    rfm_histograms: np.ndarray
    first_day: pd.Timestamp
    last_day: pd.Timestamp


def bounded_figures(sales: Sales, bounds: Bounds, seed: int = 0) -> BoundedFigures:
    """Each figure of a release, exact, after bounding each customer's contribution as
    :class:`Bounds` says (see the module docstring). ``seed`` breaks ties among a customer's
    cells and picks their baskets."""
    back = sales.weeks()
    weeks = sales.week_start(back)
    departments = [
        r[0]
        for r in sales.wh.con.execute(
            "SELECT DISTINCT department FROM items WHERE department IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    departments = [d for d in departments if d != NO_DEPARTMENT] + [NO_DEPARTMENT]
    cells = sales.query(
        _CELLS_SQL,
        none=NO_DEPARTMENT,
        cap=float(bounds.max_cell_spend),
        oldest=int(back.max()),
        seed=int(seed),
        cells=int(bounds.max_cells),
    )
    grid = pd.DataFrame(0.0, index=back, columns=departments)
    if len(cells):  # none when every purchase is in a partial first week
        grid = cells.pivot_table(index="weeks_back", columns="department", values="spend",
                                 aggfunc="sum")  # fmt: skip
        grid = grid.reindex(index=back, columns=departments).fillna(0.0)

    days = (sales.last_day - sales.first_day).days + 1
    n_periods = max(1, days // PERIOD_DAYS)
    baskets = sales.query(
        _BASKETS_SQL,
        cap=float(bounds.max_basket_value),
        seed=int(seed),
        periods=n_periods,
        baskets=int(bounds.max_baskets),
    ).set_index("periods_back")
    periods_back = np.arange(n_periods - 1, -1, -1)
    baskets = baskets.reindex(periods_back, fill_value=0)
    ends = sales.last_day - pd.to_timedelta(PERIOD_DAYS * periods_back, unit="D")
    periods = pd.DataFrame({"start": ends - pd.Timedelta(days=PERIOD_DAYS - 1), "end": ends})

    rfm = sales.query(_RFM_SQL).set_index("customer_id")
    return BoundedFigures(
        weeks=weeks,
        departments=departments,
        department_sales=grid.to_numpy(dtype="float64").ravel(),
        periods=periods,
        basket_counts=baskets["baskets"].to_numpy(dtype="int64"),
        basket_values=baskets["value"].to_numpy(dtype="float64"),
        rfm=rfm,
        rfm_histograms=np.concatenate(
            [np.bincount(_bins(rfm[c], e), minlength=len(e)) for c, e in _RFM_BINS]
        ).astype("int64"),
        first_day=sales.first_day,
        last_day=sales.last_day,
    )


_RFM_BINS = (
    ("recency_days", RECENCY_EDGES),
    ("frequency", FREQUENCY_EDGES),
    ("monetary", MONETARY_EDGES),
)


def _bins(values: pd.Series, edges: tuple[float, ...]) -> np.ndarray:
    """The bin of each value: bin j holds [edges[j], edges[j + 1]); below the first edge counts
    in the first bin, the last bin is open-ended."""
    found = np.searchsorted(np.asarray(edges, dtype="float64"), values.to_numpy(float), "right")
    return np.clip(found - 1, 0, len(edges) - 1)


def rfm_scores(rfm: pd.DataFrame, histograms: np.ndarray) -> pd.DataFrame:
    """Quintile scores 1-5 of each customer (r_score, f_score, m_score) against the share of
    customers that ``histograms`` (the noisy counts, one histogram per dimension after the
    other) put at or below the customer's bin, as :mod:`tailor.customers.features` scores them
    against the exact shares (ties share a score; most recent = 5).

    With bins that hold one value each and exact counts, the scores are the exact ones.
    """
    out = {}
    for (column, edges, score), name in zip(
        _bin_scores(histograms), ("r_score", "f_score", "m_score"), strict=True
    ):
        out[name] = score[_bins(rfm[column], edges)]
    return pd.DataFrame(out, index=rfm.index)


def _bin_scores(histograms: np.ndarray) -> list[tuple[str, tuple[float, ...], np.ndarray]]:
    """(column, edges, the score 1-5 of each bin) per dimension."""
    out = []
    start = 0
    for column, edges in _RFM_BINS:
        counts = np.clip(histograms[start : start + len(edges)], 0, None).astype("float64")
        start += len(edges)
        if column == "recency_days":  # fewer days is better: the share at or above the bin
            at_or_below = np.cumsum(counts[::-1])[::-1]
        else:
            at_or_below = np.cumsum(counts)
        share = at_or_below / max(counts.sum(), 1.0)
        out.append((column, edges, np.clip(np.ceil(share * 5), 1, 5).astype("int8")))
    return out


def segment_counts(scores: pd.DataFrame) -> np.ndarray:
    """Customers per segment of :data:`BUYING_SEGMENTS`, from their scores."""
    labels = rfm_segment(scores["r_score"], scores["f_score"], scores["m_score"])
    counts = pd.Series(labels).value_counts()
    return np.array([int(counts.get(s, 0)) for s in BUYING_SEGMENTS], dtype="int64")


# -- the ledger -----------------------------------------------------------------------------------


def ensure_ledger(wh: Warehouse) -> None:
    """Create ``privacy_ledger`` if the warehouse has none (it lives beside the schema's
    tables, as ``api_keys`` does)."""
    wh.con.execute(LEDGER_SQL)


def dataset_key(wh: Warehouse) -> str:
    """The dataset a release is charged to: the warehouse, by its creation stamp (a copy of the
    file keeps it, and its ledger)."""
    return f"warehouse created {wh.get_meta('created_at')}"


def ledger(wh: Warehouse, dataset: str | None = None) -> pd.DataFrame:
    """The ledger's entries (of ``dataset`` when given), oldest first; empty before the first
    release. Works on a read-only warehouse."""
    if not wh.has_table("privacy_ledger"):
        return pd.DataFrame({c: [] for c in LEDGER_COLUMNS})
    where = "" if dataset is None else "WHERE dataset = $dataset"
    params = {} if dataset is None else {"dataset": dataset}
    return wh.con.execute(
        f"SELECT {', '.join(LEDGER_COLUMNS)} FROM privacy_ledger {where} ORDER BY entry_id", params
    ).df()


def ledger_summary(wh: Warehouse, budget: float = DEFAULT_DP_BUDGET) -> dict[str, Any]:
    """JSON-ready: the warehouse's dataset, its budget, ε spent and left, and every entry."""
    dataset = dataset_key(wh)
    entries = ledger(wh, dataset)
    spent = float(entries["epsilon"].sum()) if len(entries) else 0.0
    rows = []
    for entry in entries.itertuples(index=False):
        rows.append(
            {
                "entry_id": int(entry.entry_id),
                "spent_at": pd.Timestamp(entry.spent_at).isoformat(),
                "epsilon": float(entry.epsilon),
                "release": entry.release,
                "as_of": entry.as_of,
                "channel": entry.channel,
                "detail": json.loads(entry.detail) if entry.detail else {},
            }
        )
    return {
        "dataset": dataset,
        "budget": float(budget),
        "spent": spent,
        "remaining": max(float(budget) - spent, 0.0),
        "entries": rows,
    }


def charge(
    wh: Warehouse,
    epsilon: float,
    budget: float,
    release: str,
    as_of: Any = None,
    channel: str = "python",
    detail: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Record ``epsilon`` spent on the warehouse's dataset, in one transaction with the check
    against ``budget``; returns the entry. Raises :class:`BudgetExceeded`, recording nothing,
    when the total would pass the budget."""
    _check_epsilon(epsilon, least=0.0)
    _check_budget(budget)
    ensure_ledger(wh)
    dataset = dataset_key(wh)
    with wh.transaction():
        spent, last = wh.con.execute(
            "SELECT coalesce(sum(epsilon), 0), coalesce(max(entry_id), 0) FROM privacy_ledger "
            "WHERE dataset = $dataset",
            {"dataset": dataset},
        ).fetchone()
        if spent + epsilon > budget + _TOLERANCE:
            left = max(budget - spent, 0.0)
            where = "[privacy] dp_budget in tailor.toml, or $TAILOR_DP_BUDGET"
            remedy = (
                f"Ask for at most ε = {left:g}, or raise the budget ({where}) if your privacy "
                "policy allows"
                if left > _TOLERANCE
                else f"The budget is spent: no more releases of this data unless you raise it "
                f"({where}) and your privacy policy allows"
            )
            raise BudgetExceeded(
                f"refused: ε = {epsilon:g} would bring the privacy loss of this warehouse's "
                f"data to {spent + epsilon:g}, over its budget of {budget:g} ({spent:g} spent); "
                f"nothing was spent. {remedy}"
            )
        entry = {
            "entry_id": int(last) + 1,
            "dataset": dataset,
            "spent_at": datetime.now(UTC).replace(tzinfo=None),
            "epsilon": float(epsilon),
            "release": release,
            "as_of": None if as_of is None else str(as_of),
            "channel": channel,
            "detail": json.dumps(dict(detail or {})),
        }
        wh.con.execute(
            f"INSERT INTO privacy_ledger ({', '.join(entry)}) VALUES "
            f"({', '.join('$' + k for k in entry)})",
            entry,
        )
    return {**entry, "spent_total": float(spent + epsilon), "budget": float(budget)}


# -- a release ------------------------------------------------------------------------------------


@dataclass
class Release:
    """The noisy figures of one release and what it cost.

    Attributes
    ----------
    epsilon : float
        ε charged to the ledger: the sum of the figures' ε (OpenDP's privacy maps).
    plans : dict
        Per figure: sensitivity, scale, epsilon (see :class:`Plan`).
    bounds : Bounds
    entry : dict
        The ledger entry (entry_id, dataset, spent_at, ..., spent_total, budget).
    department_sales : DataFrame
        week (first day), department, revenue: one row per cell, weeks oldest first.
    baskets : DataFrame
        One row per 4-week period, oldest first: start, end, baskets, revenue (the baskets'
        bounded value) and avg_basket_value (revenue / baskets; NaN unless baskets > 0).
    segments : DataFrame
        segment, customers, customer_share (of the total, negative counts as 0), in the
        grid's order.

    The noisy figures are as OpenDP returned them: one whose true value is small may come out
    negative. Adding them up (weeks into a year, departments into a week) keeps sums unbiased.
    thresholds : DataFrame
        The quintile thresholds the segments were scored against, per dimension.
    first_day, last_day : Timestamp
    """

    epsilon: float
    plans: dict[str, Plan]
    bounds: Bounds
    entry: dict[str, Any]
    department_sales: pd.DataFrame
    baskets: pd.DataFrame
    segments: pd.DataFrame
    thresholds: pd.DataFrame
    first_day: pd.Timestamp
    last_day: pd.Timestamp

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: what it cost, the bounds and every figure."""
        entry = {k: v for k, v in self.entry.items() if k != "detail"}
        entry["spent_at"] = pd.Timestamp(entry["spent_at"]).isoformat()
        return {
            "dataset": self.entry["dataset"],
            "epsilon": self.epsilon,
            "budget": self.entry["budget"],
            "spent": self.entry["spent_total"],
            "remaining": max(self.entry["budget"] - self.entry["spent_total"], 0.0),
            "entry": entry,
            "first_day": str(self.first_day.date()),
            "last_day": str(self.last_day.date()),
            "bounds": asdict(self.bounds),
            "figures": {
                name: {
                    "what": FIGURES[name],
                    "epsilon": p.epsilon,
                    "share": SPLIT[name],
                    "sensitivity": p.sensitivity,
                    "scale": p.scale,
                }
                for name, p in self.plans.items()
            },
            "department_sales": _records(self.department_sales),
            "baskets": _records(self.baskets),
            "segments": _records(self.segments),
        }


def release(
    wh: Warehouse,
    epsilon: float,
    *,
    as_of: str | date | datetime | pd.Timestamp | None = None,
    budget: float = DEFAULT_DP_BUDGET,
    bounds: Bounds | None = None,
    seed: int = 0,
    channel: str = "python",
) -> Release:
    """Release the figures of a differentially private report of the warehouse as it stood
    before ``as_of``, spending ``epsilon`` of the dataset's ``budget``.

    The figures are bounded first (nothing is charged if the data cannot be reported on), the
    ε is then charged to the ledger (or the release refused), and only then is noise drawn.

    Raises
    ------
    DPError
        ``epsilon`` or ``budget`` is not a positive number.
    BudgetExceeded
        The ledger holds too much spent already; nothing is charged.
    NoSales
        No purchase before ``as_of``.
    """
    _check_epsilon(epsilon)
    _check_budget(budget)
    bounds = bounds or Bounds()
    with Sales(wh, as_of_bound(as_of)) as sales:
        exact = bounded_figures(sales, bounds, seed)
    plans = plan(epsilon, bounds)
    spent = {name: p.epsilon for name, p in plans.items()}
    entry = charge(wh, sum(spent.values()), budget, "report", as_of, channel, spent)

    # The noisy figures are kept as OpenDP returns them (a small one may be negative), so that
    # totals added up from them stay unbiased; charts show a negative figure as 0.
    n_weeks, n_departments = len(exact.weeks), len(exact.departments)
    department_sales = pd.DataFrame(
        {
            "week": np.repeat(exact.weeks, n_departments),
            "department": np.tile(exact.departments, n_weeks),
            "revenue": plans["department_sales"](exact.department_sales),
        }
    )
    baskets = exact.periods.assign(
        baskets=plans["basket_counts"](exact.basket_counts),
        revenue=plans["basket_values"](exact.basket_values),
    )
    baskets["avg_basket_value"] = baskets["revenue"] / baskets["baskets"].where(
        baskets["baskets"] > 0
    )
    histograms = plans["rfm_histograms"](exact.rfm_histograms)
    sizes = plans["segment_sizes"](segment_counts(rfm_scores(exact.rfm, histograms)))
    segments = pd.DataFrame({"segment": BUYING_SEGMENTS, "customers": sizes})
    shown = segments["customers"].clip(lower=0)
    segments["customer_share"] = shown / max(int(shown.sum()), 1)
    return Release(
        epsilon=float(entry["epsilon"]),
        plans=plans,
        bounds=bounds,
        entry=entry,
        department_sales=department_sales,
        baskets=baskets,
        segments=segments,
        thresholds=_thresholds(histograms),
        first_day=exact.first_day,
        last_day=exact.last_day,
    )


def _thresholds(histograms: np.ndarray) -> pd.DataFrame:
    """Per dimension, the values that score 2 to 5 by the noisy shares (as text)."""
    rows = []
    for column, edges, score in _bin_scores(histograms):
        row: dict[str, Any] = {"dimension": column}
        for s in range(2, 6):
            bins = np.flatnonzero(score >= s)
            if not len(bins):
                row[f"score_{s}"] = "none"
            elif column == "recency_days":  # recent bins score high: bins 0 to the last hit
                end = bins[-1] + 1
                row[f"score_{s}"] = f"< {edges[end]}" if end < len(edges) else "any"
            else:
                row[f"score_{s}"] = f">= {edges[bins[0]]}"
        rows.append(row)
    return pd.DataFrame(rows)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    plain = frame.astype(object).where(frame.notna(), None)
    return json.loads(json.dumps(plain.to_dict(orient="records"), default=str))
