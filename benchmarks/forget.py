"""Erasure on The Complete Journey: time of ``tailor forget ID`` (issue target: <= 10 s on 2 cores).

    python benchmarks/forget.py                 # loads The Complete Journey into benchmarks/.data
    python benchmarks/forget.py --db tailor.duckdb --customers 3 --json

The warehouse and its current build are copied into a temporary folder first (the original is
never changed). Forgotten are the customer with the most events, one at the median and one of
the fewest (``--customers`` of them, in that order), each as a fresh ``tailor forget ID --json``
process, one after the other on the same copy; the steps (warehouse rows, build fold-out, file
rewrite) are the command's own figures. The comparison is what a forget would cost by retraining
instead: the copy's full ``tailor build`` time (``--rebuild``, slow).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import _harness as h
from demo import tailor_command
from rules import demo_warehouse
from tailor.build import builds_dir, current_build
from tailor.store import Warehouse


def copy_warehouse(db: Path, folder: Path) -> Path:
    """The warehouse file and its current build, copied into ``folder``."""
    target = folder / db.name
    shutil.copy2(db, target)
    info = current_build(builds_dir(db))
    shutil.copytree(info.path, builds_dir(target) / info.build_id)
    (builds_dir(target) / "CURRENT").write_text(info.build_id)
    return target


def chosen_customers(db: Path, count: int) -> list[str]:
    """The customers with the most, the median and the fewest events."""
    with Warehouse(db, read_only=True) as wh:
        ranked = [
            str(r[0])
            for r in wh.con.execute(
                "SELECT customer_id FROM events GROUP BY 1 ORDER BY count(*) DESC, 1"
            ).fetchall()
        ]
    return [ranked[0], ranked[len(ranked) // 2], ranked[-1]][:count]


def forget_runs(db: Path, customers: list[str]) -> list[dict]:
    runs = []
    for customer in customers:
        started = time.perf_counter()
        done = subprocess.run(
            [*tailor_command(), "forget", customer, "--db", str(db), "--json"],
            check=True, capture_output=True, text=True, cwd=db.parent,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        answer = json.loads(done.stdout)
        runs.append({"command_seconds": round(seconds, 2), **answer})
    return runs


def rebuild_seconds(db: Path) -> float:
    started = time.perf_counter()
    subprocess.run([*tailor_command(), "build", "--db", str(db), "--json"], check=True,
                   capture_output=True, cwd=db.parent)  # fmt: skip
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="a built warehouse of The Complete Journey")
    parser.add_argument("--customers", type=int, default=3, choices=(1, 2, 3))
    parser.add_argument("--rebuild", action="store_true", help="also time a full build")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    db = (args.db or demo_warehouse()).resolve()
    with tempfile.TemporaryDirectory() as folder:
        copy = copy_warehouse(db, Path(folder))
        runs = forget_runs(copy, chosen_customers(copy, args.customers))
        rebuild = rebuild_seconds(copy) if args.rebuild else None
    result = {
        "machine": h.machine(),
        "runs": runs,
        "full_build_seconds": rebuild,
        "load_average": h.load_average(),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(h.describe(result["machine"]))
    rows = [
        [str(n + 1), f"{sum(r['warehouse_rows'].values()):,}", f"{r['command_seconds']:.2f}",
         *(f"{r['steps'].get(s, 0):.2f}" for s in ("warehouse", "build", "file"))]
        for n, r in enumerate(runs)
    ]  # fmt: skip
    print(h.table(["customer", "rows", "tailor forget s", "warehouse", "build", "file"], rows))
    if rebuild is not None:
        print(f"full tailor build instead: {rebuild:.1f} s")
    print(f"retrained at the next build: {', '.join(runs[0]['retrain_pending'])}")


if __name__ == "__main__":
    main()
