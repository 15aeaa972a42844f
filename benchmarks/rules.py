"""Association rules ("frequently bought together") on The Complete Journey, next to mlxtend.

    python benchmarks/rules.py                  # loads The Complete Journey into benchmarks/.data
    python benchmarks/rules.py --db tailor.duckdb --repeat 3 --json

* ``all baskets``: :func:`tailor.recommend.rules.association_rules` over every basket, all
  pairs with support >= 0.0005 (the build's default). Target: <= 10 s on 2 cores.
* ``sample``: a seeded random sample of 20,000 baskets, support >= 0.005, pairs only; Tailor's
  ``association_rules`` against mlxtend's ``fpgrowth(max_len=2)`` + ``association_rules`` on
  the same baskets (mlxtend gets them as the dense one-hot frame it needs, built before its
  clock starts). The script asserts both find the same rules. Target: Tailor >= 10x faster.

Times exclude loading the Dataset; each figure is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

import _harness as h
from tailor.dataset import Dataset
from tailor.recommend.rules import association_rules, basket_matrix
from tailor.store import Warehouse, ingest_files

FULL_SUPPORT = 0.0005
SAMPLE_BASKETS = 20_000
SAMPLE_SUPPORT = 0.005


def demo_warehouse() -> Path:
    """The Complete Journey ingested as ``tailor demo`` does (no build), cached."""
    from tailor.demo import TABLES, data_dir

    db = h.DATA / "completejourney.duckdb"
    if not db.exists():
        h.DATA.mkdir(parents=True, exist_ok=True)
        partial = db.with_name(db.name + ".partial")
        partial.unlink(missing_ok=True)
        with Warehouse(partial) as wh:
            for name, kind, mapping in TABLES:
                ingest_files(wh, kind, [data_dir() / f"{name}.parquet"], mapping)
        partial.rename(db)
    return db


def timed(func, repeat: int):
    seconds, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        seconds.append(time.perf_counter() - start)
    return h.median(seconds), seconds, result


def mlxtend_pairs(onehot: pd.DataFrame, min_support: float) -> pd.DataFrame:
    from mlxtend.frequent_patterns import association_rules as rules_of
    from mlxtend.frequent_patterns import fpgrowth

    frequent = fpgrowth(onehot, min_support=min_support, use_colnames=True, max_len=2)
    return rules_of(
        frequent, num_itemsets=len(onehot), metric="confidence", min_threshold=0,
        return_metrics=["support", "confidence", "lift"],
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="a warehouse holding The Complete Journey")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with Warehouse(args.db or demo_warehouse(), read_only=True) as wh:
        dataset = Dataset.from_warehouse(wh)

    full_s, full_runs, full = timed(lambda: association_rules(dataset, FULL_SUPPORT), args.repeat)

    baskets = dataset.events["basket"].unique()
    rng = np.random.default_rng(0)
    sample = rng.choice(baskets, size=min(SAMPLE_BASKETS, len(baskets)), replace=False)
    small = dataset.with_events(dataset.events["basket"].isin(sample).to_numpy())
    ours_s, ours_runs, ours = timed(lambda: association_rules(small, SAMPLE_SUPPORT), args.repeat)
    matrix = basket_matrix(small)
    bought = np.flatnonzero(matrix.getnnz(axis=0))
    onehot = pd.DataFrame(matrix[:, bought].toarray().astype(bool), columns=bought)
    theirs_s, theirs_runs, theirs = timed(
        lambda: mlxtend_pairs(onehot, SAMPLE_SUPPORT), args.repeat
    )
    # The same rules, or the comparison means nothing.
    columns = dataset.item_index
    ours_pairs = set(
        zip(columns(ours.antecedents.str[0]), columns(ours.consequents.str[0]), strict=True)
    )
    theirs_pairs = set(zip(theirs.antecedents.map(min), theirs.consequents.map(min), strict=True))
    assert ours_pairs == theirs_pairs, "tailor and mlxtend found different rules"

    result = {
        "machine": h.machine(),
        "all_baskets": {
            "baskets": full.attrs["baskets"], "items": dataset.n_items,
            "min_support": FULL_SUPPORT, "rules": len(full), "seconds": full_s,
            "runs": full_runs,
        },
        "sample": {
            "baskets": ours.attrs["baskets"], "items_bought": len(bought),
            "min_support": SAMPLE_SUPPORT, "rules": len(ours),
            "tailor_seconds": ours_s, "tailor_runs": ours_runs,
            "mlxtend_seconds": theirs_s, "mlxtend_runs": theirs_runs,
            "speedup": theirs_s / ours_s,
        },
        "load_average": h.load_average(),
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(h.describe(result["machine"]))
    rows = [
        ["tailor, all baskets", f"{full.attrs['baskets']:,}", f"{FULL_SUPPORT}",
         f"{len(full):,}", f"{full_s:.3f}"],
        ["tailor, sample", f"{ours.attrs['baskets']:,}", f"{SAMPLE_SUPPORT}",
         f"{len(ours):,}", f"{ours_s:.3f}"],
        ["mlxtend, sample", f"{ours.attrs['baskets']:,}", f"{SAMPLE_SUPPORT}",
         f"{len(theirs):,}", f"{theirs_s:.3f}"],
    ]  # fmt: skip
    print(h.table(["measurement", "baskets", "min support", "rules", "seconds"], rows))
    print(f"tailor is {theirs_s / ours_s:.0f}x faster than mlxtend on the sample")


if __name__ == "__main__":
    main()
