"""Differentially private figures on The Complete Journey: how far they are from the truth.

    python benchmarks/dp.py                  # loads The Complete Journey into benchmarks/.data
    python benchmarks/dp.py --db tailor.duckdb --repeat 20 --json

For each ε of ``--epsilon`` (a whole release's ε; the weekly department sales get half of it,
see ``tailor.privacy.dp.SPLIT``), ``--repeat`` noisy draws of the figures of
``tailor report --dp-epsilon``, made as :func:`tailor.privacy.dp.release` makes them (the same
contribution bounding, the same OpenDP measurements) but without charging the ledger, so the
warehouse is opened read-only and never changed. Against the exact figures (no bounding, no
noise):

* ``cells``: the relative error |noisy - true| / true of each (week, department) sales figure,
  its median over the cells with true sales of at least ``--floor`` (1,000 by default: the
  figures a reader looks at) and over all cells with sales; as published (``raw``) and as
  charted (a negative figure drawn at 0). ``bounding`` is the error of the bounded figures
  before noise: the part of the error that the contribution bounds cause.
* ``weeks``: weekly total sales (the sum of a week's department figures).
* ``baskets`` and ``avg_basket_value``: per 4-week period.
* ``segments``: the customers per RFM segment against the exact quintile segments of the same
  purchases, as the total absolute difference over the 11 segments / customers who bought.
* ``--grid``: the cells' error at ε = 1 (``--grid-epsilon``) for 16 bounds (L in 20-100, U in
  15-60), 5 draws each: how the defaults were chosen.

Each figure is the median over the draws, with the range of the draws. ``seconds`` is one whole
``write_dp_report`` (page and charts) on a temporary copy of the warehouse.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import _harness as h
from rules import demo_warehouse
from tailor.customers.segments import rfm_segment
from tailor.insights.reports import Sales, write_dp_report
from tailor.privacy.dp import (
    BUYING_SEGMENTS,
    NO_DEPARTMENT,
    Bounds,
    bounded_figures,
    plan,
    rfm_scores,
    segment_counts,
)
from tailor.store import Warehouse

GRID_CELLS = (20, 40, 60, 100)
GRID_CAPS = (15.0, 25.0, 40.0, 60.0)

EXACT_CELLS_SQL = """
SELECT ($ref - day) // 7 AS weeks_back, coalesce(department, $none) AS department,
    sum(spend) AS spend
FROM __report_sales GROUP BY ALL
"""
EXACT_BASKETS_SQL = """
SELECT periods_back, count(*) AS baskets, sum(value) AS value FROM (
    SELECT ($ref - min(day)) // 28 AS periods_back, sum(spend) AS value
    FROM __report_sales GROUP BY customer_id, basket
) GROUP BY 1
"""


def exact_figures(sales: Sales, found) -> dict[str, np.ndarray]:
    """The figures without bounding or noise, on the grids of ``found`` (bounded figures)."""
    cells = sales.query(EXACT_CELLS_SQL, none=NO_DEPARTMENT)
    back = sales.weeks()
    grid = cells.pivot_table(index="weeks_back", columns="department", values="spend",
                             aggfunc="sum")  # fmt: skip
    grid = grid.reindex(index=back, columns=found.departments)
    baskets = sales.query(EXACT_BASKETS_SQL).set_index("periods_back")
    periods = np.arange(len(found.periods) - 1, -1, -1)
    baskets = baskets.reindex(periods, fill_value=0)
    rfm = found.rfm
    scores = pd.DataFrame(
        {
            "r_score": _quintile(-rfm["recency_days"]),
            "f_score": _quintile(rfm["frequency"]),
            "m_score": _quintile(rfm["monetary"]),
        }
    )
    labels = pd.Series(rfm_segment(scores["r_score"], scores["f_score"], scores["m_score"]))
    return {
        "cells": grid.fillna(0.0).to_numpy().ravel(),
        "baskets": baskets["baskets"].to_numpy(float),
        "values": baskets["value"].to_numpy(float),
        "segments": labels.value_counts().reindex(BUYING_SEGMENTS, fill_value=0).to_numpy(),
    }


def _quintile(values: pd.Series) -> np.ndarray:
    """As the customer features score: quintiles of the rank, ties sharing the highest."""
    return np.ceil(values.rank(pct=True, method="max") * 5).astype(int).to_numpy()


def relative(noisy: np.ndarray, true: np.ndarray, keep: np.ndarray) -> float:
    return float(np.median(np.abs(noisy[keep] - true[keep]) / np.abs(true[keep])))


def draws(found, exact, epsilon: float, bounds: Bounds, repeat: int, floor: float) -> dict:
    """``repeat`` noisy releases of ``found`` at ``epsilon``: the median of each error."""
    plans = plan(epsilon, bounds)
    n_departments = len(found.departments)
    big = exact["cells"] >= floor
    sold = exact["cells"] > 0
    true_weeks = exact["cells"].reshape(-1, n_departments).sum(axis=1)
    true_average = exact["values"] / exact["baskets"]
    buyers = len(found.rfm)
    runs: dict[str, list[float]] = {k: [] for k in (
        "cells_floor_raw", "cells_floor_charted", "cells_all_raw", "cells_all_charted", "weeks",
        "baskets", "avg_basket_value", "segments")}  # fmt: skip
    for _ in range(repeat):
        cells = plans["department_sales"](found.department_sales)
        charted = np.clip(cells, 0, None)
        runs["cells_floor_raw"].append(relative(cells, exact["cells"], big))
        runs["cells_floor_charted"].append(relative(charted, exact["cells"], big))
        runs["cells_all_raw"].append(relative(cells, exact["cells"], sold))
        runs["cells_all_charted"].append(relative(charted, exact["cells"], sold))
        weeks = cells.reshape(-1, n_departments).sum(axis=1)
        runs["weeks"].append(relative(weeks, true_weeks, true_weeks > 0))
        counts = plans["basket_counts"](found.basket_counts).astype(float)
        values = plans["basket_values"](found.basket_values)
        runs["baskets"].append(relative(counts, exact["baskets"], exact["baskets"] > 0))
        average = values / np.where(counts > 0, counts, np.nan)
        runs["avg_basket_value"].append(relative(average, true_average, exact["baskets"] > 0))
        histograms = plans["rfm_histograms"](found.rfm_histograms)
        sizes = plans["segment_sizes"](segment_counts(rfm_scores(found.rfm, histograms)))
        runs["segments"].append(float(np.abs(np.clip(sizes, 0, None) - exact["segments"]).sum()
                                      / buyers))  # fmt: skip
    return {
        name: {"median": statistics.median(v), "min": min(v), "max": max(v)}
        for name, v in runs.items()
    }


def bounding_only(found, exact, floor: float) -> dict:
    """The error of the bounded figures before any noise."""
    n_departments = len(found.departments)
    weeks = found.department_sales.reshape(-1, n_departments).sum(axis=1)
    true_weeks = exact["cells"].reshape(-1, n_departments).sum(axis=1)
    return {
        "cells_floor": relative(found.department_sales, exact["cells"], exact["cells"] >= floor),
        "cells_all": relative(found.department_sales, exact["cells"], exact["cells"] > 0),
        "weeks": relative(weeks, true_weeks, true_weeks > 0),
        "kept_share": float(found.department_sales.sum() / exact["cells"].sum()),
        "baskets": relative(
            found.basket_counts.astype(float), exact["baskets"], exact["baskets"] > 0
        ),
        "avg_basket_value": relative(
            found.basket_values / found.basket_counts,
            exact["values"] / exact["baskets"],
            exact["baskets"] > 0,
        ),
        # The segments scored against the exact histograms: what the bins alone cost.
        "segments": float(
            np.abs(
                segment_counts(rfm_scores(found.rfm, found.rfm_histograms)) - exact["segments"]
            ).sum()
            / len(found.rfm)
        ),
    }


def bounds_grid(sales: Sales, exact, epsilon: float, repeat: int, floor: float) -> list[dict]:
    """The median error of the cells >= ``floor`` at ``epsilon`` for other bounds L and U: the
    trade between the bounding's bias (small bounds) and the noise (large ones)."""
    rows = []
    for cells in GRID_CELLS:
        for cap in GRID_CAPS:
            bounds = Bounds(max_cells=cells, max_cell_spend=cap)
            found = bounded_figures(sales, bounds)
            measure = plan(epsilon, bounds)["department_sales"]
            keep = exact["cells"] >= floor
            errors = [relative(measure(found.department_sales), exact["cells"], keep)
                      for _ in range(repeat)]  # fmt: skip
            rows.append(
                {
                    "max_cells": cells,
                    "max_cell_spend": cap,
                    "kept_share": float(found.department_sales.sum() / exact["cells"].sum()),
                    "bounding": relative(found.department_sales, exact["cells"], keep),
                    "error": statistics.median(errors),
                }
            )
    return rows


def report_seconds(db: Path, epsilon: float) -> float:
    """One whole ``write_dp_report`` on a copy of the warehouse (its ledger is charged)."""
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "copy.duckdb"
        shutil.copyfile(db, copy)
        with Warehouse(copy) as wh:
            started = time.perf_counter()
            write_dp_report(wh, Path(folder) / "report", epsilon, budget=epsilon)
            return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="a warehouse holding The Complete Journey")
    parser.add_argument("--epsilon", type=float, nargs="+", default=[0.5, 1.0, 2.0, 5.0, 10.0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--floor", type=float, default=1000.0)
    parser.add_argument("--grid", action="store_true", help="also try other bounds L and U")
    parser.add_argument("--grid-epsilon", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    db = args.db or demo_warehouse()
    bounds = Bounds()
    with Warehouse(db, read_only=True) as wh, Sales(wh) as sales:
        found = bounded_figures(sales, bounds)
        exact = exact_figures(sales, found)
        grid = (
            bounds_grid(sales, exact, args.grid_epsilon, min(args.repeat, 5), args.floor)
            if args.grid
            else []
        )
    cells = exact["cells"]
    result = {
        "machine": h.machine(),
        "data": {
            "first_day": str(found.first_day.date()),
            "last_day": str(found.last_day.date()),
            "weeks": len(found.weeks),
            "departments": len(found.departments),
            "cells": int(cells.size),
            "cells_with_sales": int((cells > 0).sum()),
            "cells_over_floor": int((cells >= args.floor).sum()),
            "customers": len(found.rfm),
        },
        "bounds": vars(bounds),
        "floor": args.floor,
        "repeat": args.repeat,
        "bounding": bounding_only(found, exact, args.floor),
        "errors": {
            str(eps): draws(found, exact, eps, bounds, args.repeat, args.floor)
            for eps in args.epsilon
        },
        "grid": grid,
        "seconds": report_seconds(db, 1.0),
        "load_average": h.load_average(),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(h.describe(result["machine"]))
    data = result["data"]
    print(f"{data['weeks']} weeks x {data['departments']} departments = {data['cells']} cells, "
          f"{data['cells_with_sales']} with sales, {data['cells_over_floor']} with >= "
          f"{args.floor:,.0f}; {data['customers']} customers")  # fmt: skip
    b = result["bounding"]
    print(f"bounding alone: keeps {b['kept_share']:.0%} of sales; cells >= floor "
          f"{b['cells_floor']:.3f}, all {b['cells_all']:.3f}, weeks {b['weeks']:.3f}, "
          f"baskets {b['baskets']:.3f}, average basket {b['avg_basket_value']:.3f}")  # fmt: skip
    rows = []
    for eps, errors in result["errors"].items():
        rows.append([eps, *(f"{errors[k]['median']:.3f} ({errors[k]['min']:.2f}-"
                            f"{errors[k]['max']:.2f})" for k in errors)])  # fmt: skip
    print(h.table(["epsilon", *next(iter(result["errors"].values()))], rows))
    if grid:
        print(f"other bounds at epsilon {args.grid_epsilon:g}, cells >= floor:")
        print(h.table(["L", "U", "kept", "bounding", "error"],
                      [[r["max_cells"], r["max_cell_spend"], f"{r['kept_share']:.2f}",
                        f"{r['bounding']:.3f}", f"{r['error']:.3f}"] for r in grid]))  # fmt: skip
    print(f"write_dp_report: {result['seconds']:.2f} s")


if __name__ == "__main__":
    main()
