"""Customer intelligence on The Complete Journey: time of the whole customer build, churn AUC
against single-feature baselines, and the lifetime-value holdout.

    python benchmarks/customers.py              # loads The Complete Journey into benchmarks/.data
    python benchmarks/customers.py --db tailor.duckdb --repeat 3 --json

* ``build``: :func:`tailor.customers.intelligence.analyse_customers` on all data, as ``tailor
  build`` runs it (features, segments and clusters, lifetime value, churn evaluation and model,
  anomalies, attribute prediction). Target: <= 30 s on 2 cores. The median of ``--repeat``
  runs, with the seconds of each step of the median run.
* ``churn``: the evaluation the build records (no purchase in the 28 days after the test
  cut-off, 28 days before the data's end), model against recency, frequency and spend alone,
  and the best single input. Target: AUC >= 0.88 and above every single-feature baseline.
* ``clv``: BG/NBD + Gamma-Gamma fitted on purchases before 2017-10-01, predicting repeat
  purchase days in the remaining 90 days. Target: aggregate within 10 %.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

import _harness as h
from rules import demo_warehouse
from tailor.customers.clv import clv_report
from tailor.customers.intelligence import analyse_customers, purchase_values
from tailor.store import Warehouse

CLV_AS_OF = pd.Timestamp("2017-10-01")
CLV_HORIZON_DAYS = 90


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="a warehouse holding The Complete Journey")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = []
    with Warehouse(args.db or demo_warehouse(), read_only=True) as wh:
        for _ in range(args.repeat):
            started = time.perf_counter()
            found = analyse_customers(wh)
            runs.append((time.perf_counter() - started, found))
        purchases = purchase_values(wh)
    runs.sort(key=lambda run: run[0])
    seconds, found = runs[len(runs) // 2]
    clv = clv_report(purchases, as_of=CLV_AS_OF, horizon_days=CLV_HORIZON_DAYS)
    churn = found.summary["churn"]
    metrics = {m["model"]: m for m in churn["metrics"]}
    best_single = max(churn["single_feature_auc"].items(), key=lambda kv: kv[1])
    result = {
        "machine": h.machine(),
        "build": {
            "customers": found.summary["customers"],
            "seconds": seconds,
            "runs": [round(r[0], 3) for r in runs],
            "steps": found.summary["steps"],
        },
        "churn": {
            "test_cutoff": churn["test_cutoff"],
            "n_test": churn["n_test"],
            "churn_rate": churn["churn_rate"],
            "metrics": metrics,
            "best_single_feature": {"feature": best_single[0], "auc": best_single[1]},
        },
        "clv": {
            "as_of": str(CLV_AS_OF.date()),
            "parameters": clv.parameters,
            "holdout": clv.holdout,
        },  # fmt: skip
        "load_average": h.load_average(),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(h.describe(result["machine"]))
    steps = ", ".join(f"{k} {v:.1f}" for k, v in found.summary["steps"].items())
    print(f"customer build: {seconds:.1f} s (runs {result['build']['runs']}; {steps})")
    rows = [
        [name, f"{m['auc']:.4f}", f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}"]
        for name, m in metrics.items()
    ]
    rows.append([f"best single input: {best_single[0]}", f"{best_single[1]:.4f}", "", "", ""])
    print(h.table(["churn (28 days)", "AUC", "precision", "recall", "F1"], rows))
    holdout = clv.holdout or {}
    print(
        f"CLV holdout from {CLV_AS_OF.date()}: predicted {holdout.get('predicted_purchases'):,.0f}"
        f" vs actual {holdout.get('actual_purchases'):,.0f} repeat purchase days "
        f"({holdout.get('purchases_relative_error'):+.2%})"
    )


if __name__ == "__main__":
    main()
