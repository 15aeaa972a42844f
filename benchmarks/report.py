"""The business report on The Complete Journey: time of ``tailor report`` with all its charts.

    python benchmarks/report.py              # loads The Complete Journey into benchmarks/.data
    python benchmarks/report.py --db tailor.duckdb --repeat 3 --json

* ``command``: ``tailor report --output DIR --db DB --json`` as a fresh process, from start to
  exit (Python start-up and imports included), into a new temporary folder each time.
  Target: <= 60 s on 2 cores.
* ``library``: :func:`tailor.insights.reports.write_report` in one process (imports and the
  first run's warm-up excluded), with the seconds of each step of the median run.

The warehouse is opened read-only and never changed. Each figure is the median of ``--repeat``
runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import _harness as h
from demo import tailor_command
from rules import demo_warehouse
from tailor.insights.reports import write_report
from tailor.store import Warehouse


def command_seconds(db: Path, repeat: int) -> list[float]:
    """Wall seconds of ``tailor report`` run as a fresh process, ``repeat`` times."""
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            command = [*tailor_command(), "report", "--output", str(Path(folder) / "report"),
                       "--db", str(db.resolve()), "--json"]  # fmt: skip
            subprocess.run(command, cwd=folder, check=True, capture_output=True)
            runs.append(time.perf_counter() - started)
    return runs


def library_runs(db: Path, repeat: int) -> list[tuple[float, dict]]:
    """(seconds, the report's summary) of ``repeat`` calls of ``write_report``."""
    runs = []
    with Warehouse(db, read_only=True) as wh, tempfile.TemporaryDirectory() as folder:
        write_report(wh, Path(folder) / "warm-up")
        for n in range(repeat):
            started = time.perf_counter()
            info = write_report(wh, Path(folder) / f"report-{n}")
            runs.append((time.perf_counter() - started, info.as_dict()))
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", type=Path, help="a warehouse holding The Complete Journey")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    db = args.db or demo_warehouse()
    commands = command_seconds(db, args.repeat)
    runs = sorted(library_runs(db, args.repeat), key=lambda run: run[0])
    seconds, info = runs[len(runs) // 2]
    result = {
        "machine": h.machine(),
        "command": {"seconds": h.median(commands), "runs": [round(s, 2) for s in commands]},
        "library": {
            "seconds": seconds,
            "runs": [round(r[0], 2) for r in runs],
            "steps": info["seconds"],
            "charts": len(info["charts"]),
            "sections": info["sections"],
            "totals": info["totals"],
        },
        "load_average": h.load_average(),
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print(h.describe(result["machine"]))
    print(
        f"tailor report (fresh process): {h.median(commands):.2f} s "
        f"(runs {result['command']['runs']})"
    )
    print(f"write_report: {seconds:.2f} s, {len(info['charts'])} charts (runs "
          f"{result['library']['runs']})")  # fmt: skip
    rows = [[step, f"{s:.2f}"] for step, s in info["seconds"].items()]
    print(h.table(["step", "seconds"], rows))
    left_out = {k: v for k, v in info["sections"].items() if v}
    if left_out:
        print(f"left out: {left_out}")


if __name__ == "__main__":
    main()
