"""Weekly sales forecasts on The Complete Journey: the backtest of the model against the
seasonal-naive and last-value baselines, in total and by department, and the time it takes.

    python benchmarks/forecast.py               # loads The Complete Journey into benchmarks/.data
    python benchmarks/forecast.py --db tailor.duckdb --repeat 3 --json

* ``total``: :func:`tailor.insights.forecast.forecast_sales` as ``tailor forecast`` runs it
  (8 weeks ahead, rolling-origin backtest over the last 3 windows of 8 weeks). Target: the
  model's MASE below both baselines'.
* ``by department``: the same with ``by="department"`` (the 8 departments of most sales and the
  total): on how many departments the model beats both baselines.
* ``horizons``: the total's backtest at 4 and 13 weeks ahead, to show the ranking is not an
  accident of one horizon.

Times include reading the weekly sales from the warehouse; each is the median of ``--repeat``
runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _harness as h
from rules import demo_warehouse, timed
from tailor.insights.forecast import BASELINES, MODEL, forecast_sales
from tailor.store import Warehouse

HORIZON_WEEKS = 8
OTHER_HORIZONS = (4, 13)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="a warehouse holding The Complete Journey")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with Warehouse(args.db or demo_warehouse(), read_only=True) as wh:
        total_seconds, total_runs, total = timed(
            lambda: forecast_sales(wh, HORIZON_WEEKS), args.repeat
        )
        department_seconds, department_runs, departments = timed(
            lambda: forecast_sales(wh, HORIZON_WEEKS, by="department"), args.repeat
        )
        horizons = {h_: forecast_sales(wh, h_) for h_ in OTHER_HORIZONS}
    result = {
        "machine": h.machine(),
        "weeks": len(total.history),
        "first_week": str(total.history["week"].min().date()),
        "last_week": str(total.history["week"].max().date()),
        "total": {
            "seconds": total_seconds,
            "runs": [round(r, 3) for r in total_runs],
            "model": total.models["total"],
            "season_weeks": total.season_weeks,
            "backtest_windows": total.backtest_windows,
            "scores": scores(total, "total"),
        },
        "by_department": {
            "seconds": department_seconds,
            "runs": [round(r, 3) for r in department_runs],
            "series": {name: scores(departments, name) for name in departments.models},
            "models": departments.models,
            "beats_baselines": departments.beats_baselines(),
        },
        "horizons": {str(k): scores(found, "total") for k, found in horizons.items()},
        "load_average": h.load_average(),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(h.describe(result["machine"]))
    print(
        f"{result['weeks']} full weeks, {result['first_week']} to {result['last_week']}; "
        f"backtest: last {total.backtest_windows} windows of {HORIZON_WEEKS} weeks; "
        f"seasonal naive of {total.season_weeks} weeks"
    )
    rows = [
        [name, f"{s['mase']:.3f}", f"{s['smape']:.2f}"]
        for name, s in result["total"]["scores"].items()
    ]
    print(h.table([f"total, {HORIZON_WEEKS} weeks ({total.models['total']})", "MASE", "sMAPE %"],
                  rows))  # fmt: skip
    print(f"time: {total_seconds:.2f} s total, {department_seconds:.2f} s by department")
    rows = [
        [name, *(f"{s[m]['mase']:.3f}" for m in (MODEL, *BASELINES)),
         "yes" if result["by_department"]["beats_baselines"][name] else "no"]
        for name, s in result["by_department"]["series"].items()
    ]  # fmt: skip
    print(h.table(["by department (MASE)", MODEL, *BASELINES, "beats both"], rows))
    rows = [
        [f"total, {k} weeks", *(f"{s[m]['mase']:.3f}" for m in (MODEL, *BASELINES))]
        for k, s in result["horizons"].items()
    ]
    print(h.table(["other horizons (MASE)", MODEL, *BASELINES], rows))


def scores(found, series: str) -> dict[str, dict[str, float]]:
    """Model -> {"mase", "smape"} of one series' backtest."""
    rows = found.backtest[found.backtest["series"] == series]
    return {row.model: {"mase": row.mase, "smape": row.smape} for row in rows.itertuples()}


if __name__ == "__main__":
    main()
