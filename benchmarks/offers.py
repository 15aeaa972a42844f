"""Offer response on The Complete Journey: the model against the "everyone in the campaign" and
"past redemption count" baselines on the last campaigns by start date, and the build step's time.

    python benchmarks/offers.py               # loads The Complete Journey into benchmarks/.data
    python benchmarks/offers.py --db tailor.duckdb --seeds 5 --json

* ``held out``: :func:`tailor.marketing.offers.evaluate_offers` — trained on the members of the
  campaigns before the last quarter (by start date; the LightGBM setting chosen on the last
  quarter of *those*), tested on the members of the last quarter. AUC and top-decile lift of
  the model and both baselines, side by side; the model once per random seed (``--seeds``), so
  the spread of its AUC shows. Target: AUC >= 0.80 and above both baselines.
* ``build step``: :func:`tailor.marketing.targeting.analyse_offers` as ``tailor build`` runs it
  (features of every campaign's members, the evaluation, the published fit, and the scores of
  every consenting customer for every open campaign), median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import _harness as h
from rules import demo_warehouse, timed
from tailor.customers.features import PurchaseTable
from tailor.marketing.offers import evaluate_offers, member_examples
from tailor.marketing.targeting import analyse_offers
from tailor.store import Warehouse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="a warehouse holding The Complete Journey")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with Warehouse(args.db or demo_warehouse(), read_only=True) as wh:
        with PurchaseTable(wh) as purchases:
            examples = member_examples(purchases)
        runs = [evaluate_offers(examples, random_state=seed) for seed in range(args.seeds)]
        seconds, step_runs, found = timed(lambda: analyse_offers(wh), args.repeat)
    first = runs[0]
    model_aucs = [float(run.metrics.loc["model", "auc"]) for run in runs]
    result = {
        "machine": h.machine(),
        "train_campaigns": [str(c) for c in first.train_campaigns],
        "test_campaigns": [str(c) for c in first.test_campaigns],
        "n_train": first.n_train,
        "n_test": first.n_test,
        "redemption_rate": first.redemption_rate,
        "params": first.params,
        "metrics": first.metrics.round(4).to_dict(orient="index"),
        "model_auc_by_seed": [round(a, 4) for a in model_aucs],
        "build_step": {
            "seconds": seconds,
            "runs": [round(r, 2) for r in step_runs],
            "open_campaigns": found.summary["open_campaigns"],
            "scored_customers": found.summary["scored_customers"],
            "scores": len(found.scores),
        },
        "load_average": h.load_average(),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(h.describe(result["machine"]))
    print(
        f"train: {len(first.train_campaigns)} campaigns, {first.n_train:,} members; test: "
        f"campaigns {', '.join(result['test_campaigns'])}, {first.n_test:,} members, "
        f"{first.redemption_rate:.1%} redeemed; setting chosen on validation: {first.params}"
    )
    rows = [
        [name, f"{m['auc']:.4f}", f"{m['top_decile_lift']:.2f}"]
        for name, m in result["metrics"].items()
    ]
    print(h.table(["held-out campaigns", "AUC", "top-decile lift"], rows))
    print(
        f"model AUC over {args.seeds} seeds: min {min(model_aucs):.4f}, "
        f"median {h.median(model_aucs):.4f}, max {max(model_aucs):.4f}"
    )
    step = result["build_step"]
    print(
        f"build step: {seconds:.1f} s (median of {args.repeat}); {step['open_campaigns']} open "
        f"campaigns x {step['scored_customers']:,} consenting customers = {step['scores']:,} scores"
    )


if __name__ == "__main__":
    main()
