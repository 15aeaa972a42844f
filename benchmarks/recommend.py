"""Recommendation quality: every registered recommender side by side, and the default the build
would pick against the best baseline.

    python benchmarks/recommend.py            # loads The Complete Journey into benchmarks/.data
    python benchmarks/recommend.py --db tailor.duckdb --json

* ``The Complete Journey``: train on all but the final 28 days; the truth is the distinct
  products each household bought in those days; k = 20. Two tasks on the same fits:
  ``repeat`` (the repeat-aware list, ``exclude_purchased=False``) and ``explore`` (the
  exploration list, ``exclude_purchased=True``, truth = products new to the household). The
  default is picked per task as the build picks it: on a validation split of the last 28 days
  of the training data, by NDCG@20 (``tailor.evaluate.runner.pick_default``). Target: the
  default >= 1.10 x the best named baseline on both tasks (repeat: personal_frequency,
  recency_frequency, item_knn, ease, als; explore: popularity, item_knn, ease, als), and the
  whole evaluation (test and validation, both tasks) in <= 3 minutes on 2 cores.
* ``ratings``: ``tailor.synthetic.generate_ratings()`` (1,000 customers, 500 items, ~30 ratings
  each) through the ingest path; a random 25 % of each customer's ratings held out, k = 10,
  only ratings >= 4 relevant, lists without what the customer rated (as ``tailor evaluate
  --split random --test-fraction 0.25 --k 10 --relevance-threshold 4 --exclude-purchased``).
  Target: the default picked by validation is at least as good (NDCG@10) as the best single
  algorithm (every registered recommender but ``hybrid``).

Times exclude loading the Dataset. Each model is fitted once per split and scores both tasks.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import _harness as h
from rules import demo_warehouse
from tailor.build import SELECTION_K, VALIDATION_DAYS
from tailor.dataset import Dataset
from tailor.evaluate.runner import evaluate_models, pick_default
from tailor.recommend import REGISTRY, factory
from tailor.store import Warehouse, ingest_files
from tailor.synthetic import generate_ratings, write

TEST_DAYS = 28
K = 20
BASELINES = {
    "repeat": ("personal_frequency", "recency_frequency", "item_knn", "ease", "als"),
    "explore": ("popularity", "item_knn", "ease", "als"),
}
TARGET_RATIO = 1.10
TARGET_SECONDS = 180
RATINGS_K = 10
RATINGS_FRACTION = 0.25
RATINGS_THRESHOLD = 4.0
COMBINED = ("hybrid",)  # not a single algorithm: it ranks the others' candidates


def complete_journey(db: Path) -> dict:
    with Warehouse(db, read_only=True) as wh:
        dataset = Dataset.from_warehouse(wh)
    factories = {name: factory(name) for name in REGISTRY}
    start = time.perf_counter()
    train, test = dataset.temporal_split(TEST_DAYS)
    fitted: dict = {}
    tasks = {
        task: evaluate_models(train, test, factories, K, exclude, fitted=fitted)
        for task, exclude in (("repeat", False), ("explore", True))
    }
    tested = time.perf_counter()
    inner, valid = train.temporal_split(VALIDATION_DAYS)
    fitted = {}
    validation = {
        task: evaluate_models(inner, valid, factories, SELECTION_K, exclude, confidence=False,
                              fitted=fitted)
        for task, exclude in (("repeat", False), ("explore", True))
    }  # fmt: skip
    done = time.perf_counter()
    result: dict = {
        "split": {"train": train.summary(), "test": test.summary(), "k": K},
        "seconds": {"test": tested - start, "validation": done - tested, "total": done - start},
    }
    for task, models in tasks.items():
        default = pick_default(validation[task], SELECTION_K)
        result[task] = {
            "models": models,
            "validation_ndcg": {n: f[f"ndcg@{SELECTION_K}"] for n, f in validation[task].items()},
            "default": default,
            **_ratios(models, default, BASELINES[task], K),
        }
    return result


def ratings() -> dict:
    data = generate_ratings()
    with (
        tempfile.TemporaryDirectory() as folder,
        Warehouse(Path(folder) / "ratings.duckdb") as wh,
    ):
        for table, path in write(data, folder, fmt="parquet").items():
            ingest_files(wh, table.replace("_", "-"), [path])
        dataset = Dataset.from_warehouse(wh)
    factories = {name: factory(name) for name in REGISTRY}
    start = time.perf_counter()
    train, test = dataset.holdout_split(RATINGS_FRACTION, random_state=0, by="customer")
    models = evaluate_models(train, test, factories, RATINGS_K, exclude_purchased=True,
                             relevance_threshold=RATINGS_THRESHOLD)  # fmt: skip
    # As `tailor evaluate` picks it: a validation period carved from the training data.
    inner, valid = train.temporal_split(VALIDATION_DAYS)
    validation = evaluate_models(
        inner, valid, factories, SELECTION_K, exclude_purchased=True, confidence=False,
        relevance_threshold=RATINGS_THRESHOLD,
    )  # fmt: skip
    default = pick_default(validation, SELECTION_K)
    single = tuple(name for name in models if name not in COMBINED)
    return {
        "split": {"train": train.summary(), "test": test.summary(), "k": RATINGS_K},
        "seconds": time.perf_counter() - start,
        "models": models,
        "validation_ndcg": {n: f[f"ndcg@{SELECTION_K}"] for n, f in validation.items()},
        "default": default,
        **_ratios(models, default, single, RATINGS_K),
    }


def _ratios(models: dict, default: str, baselines: tuple[str, ...], k: int) -> dict:
    """The default's NDCG@k and recall@k over the best of ``baselines`` by each."""
    out: dict = {}
    for metric in ("ndcg", "recall"):
        key = f"{metric}@{k}"
        best = max((n for n in baselines if n in models), key=lambda n: models[n][key])
        out[f"best_baseline_{metric}"] = best
        out[f"ratio_{metric}"] = models[default][key] / models[best][key]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="a warehouse holding The Complete Journey")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = {
        "machine": h.machine(),
        "complete_journey": complete_journey(args.db or demo_warehouse()),
        "ratings": ratings(),
        "load_average": h.load_average(),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(h.describe(result["machine"]))
    cj = result["complete_journey"]
    header = ["model", f"recall@{K}", f"NDCG@{K}", f"precision@{K}", "coverage",
              f"explore recall@{K}", f"explore NDCG@{K}", "fit s"]  # fmt: skip
    rows = []
    for name, figures in cj["repeat"]["models"].items():
        explore = cj["explore"]["models"][name]
        rows.append([name, *(f"{figures[f'{m}@{K}']:.4f}" for m in ("recall", "ndcg", "precision")),
                     f"{figures['coverage']:.4f}", f"{explore[f'recall@{K}']:.4f}",
                     f"{explore[f'ndcg@{K}']:.4f}", f"{figures['fit_seconds']:.1f}"])  # fmt: skip
    print(h.table(header, rows))
    for task in ("repeat", "explore"):
        t = cj[task]
        print(
            f"{task}: default {t['default']}; NDCG@{K} {t['ratio_ndcg']:.3f} x "
            f"{t['best_baseline_ndcg']}, recall@{K} {t['ratio_recall']:.3f} x "
            f"{t['best_baseline_recall']} (target {TARGET_RATIO})"
        )
    seconds = cj["seconds"]
    print(f"seconds: test {seconds['test']:.1f}, validation {seconds['validation']:.1f}, "
          f"total {seconds['total']:.1f} (target {TARGET_SECONDS})")  # fmt: skip
    r = result["ratings"]
    rows = [
        [name, *(f"{f[f'{m}@{RATINGS_K}']:.4f}" for m in ("recall", "ndcg", "precision")),
         f"{r['validation_ndcg'][name]:.4f}"]
        for name, f in r["models"].items()
    ]  # fmt: skip
    print(h.table(["model", f"recall@{RATINGS_K}", f"NDCG@{RATINGS_K}",
                   f"precision@{RATINGS_K}", f"validation NDCG@{SELECTION_K}"], rows))  # fmt: skip
    print(
        f"ratings: default {r['default']}; NDCG@{RATINGS_K} {r['ratio_ndcg']:.3f} x "
        f"{r['best_baseline_ndcg']} (target 1.0), {r['seconds']:.1f} s"
    )


if __name__ == "__main__":
    main()
