"""Ingest throughput: Tailor's ``ingest_files`` next to plain DuckDB, same file, same run.

    python benchmarks/ingest.py                 # 10 M rows, 3 runs of each measurement
    python benchmarks/ingest.py --rows 1000000 --repeat 1 --json
    python benchmarks/ingest.py --format parquet    # one input only

An events CSV of ``--rows`` rows is drawn with :func:`tailor.synthetic.events_csv` (seed 0)
and converted to Parquet by DuckDB; both are cached under ``benchmarks/.data/``. For each
format, each measurement runs in its own fresh Python process on a fresh database file:

* ``duckdb``: ``CREATE TABLE events AS SELECT * FROM read_csv(file)`` (or ``read_parquet``)
  with DuckDB's default settings, timed from connect until ``close()`` returns, since DuckDB
  writes part of the table at the checkpoint on close;
* ``duckdb unordered``: the same with ``SET preserve_insertion_order = false``, the setting
  Tailor's fast path uses, so the stricter comparison;
* ``tailor``: ``Warehouse(path)``, ``ingest_files(wh, "events", [file])``, ``wh.close()``;
* ``tailor again``: the same file into the same warehouse once more; it must add no row.

Each figure is the median of ``--repeat`` runs. The throughput ratio is peer seconds / Tailor
seconds: 1.0 means as fast as DuckDB alone. The targets are 0.5 for CSV and 0.7 for Parquet.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import _harness as h

TARGETS = {"csv": 0.5, "parquet": 0.7}
MEASUREMENTS = {
    "duckdb": "DuckDB, defaults",
    "duckdb-unordered": "DuckDB, preserve_insertion_order = false",
    "tailor": "Tailor ingest_files",
    "tailor-again": "Tailor, same file again (adds 0 rows)",
}
PEERS = ("duckdb", "duckdb-unordered")


# -- inputs -----------------------------------------------------------------------------------


def inputs(rows: int) -> dict[str, Path]:
    """The cached CSV and Parquet files of ``rows`` events, drawn on first use (in a child
    process, which keeps this one lean)."""
    found = h.child(Path(__file__).resolve(), ["--prepare", "--rows", str(rows)])
    return {fmt: Path(path) for fmt, path in found["files"].items()}


def prepare(rows: int) -> dict:
    import duckdb

    from tailor.synthetic import events_csv

    h.DATA.mkdir(parents=True, exist_ok=True)
    csv = h.DATA / f"events-{rows}.csv"
    parquet = h.DATA / f"events-{rows}.parquet"
    if not csv.exists():
        print(f"drawing {rows:,} events into {csv.name} ...", file=sys.stderr)
        partial = csv.with_name(csv.name + ".partial")
        events_csv(partial, rows, seed=0)
        os.replace(partial, csv)
    if not parquet.exists():
        print(f"converting to {parquet.name} ...", file=sys.stderr)
        partial = parquet.with_name(parquet.name + ".partial")
        with duckdb.connect() as con:
            con.execute(
                f"COPY (SELECT * FROM read_csv({_literal(csv)})) TO {_literal(partial)} "
                "(FORMAT parquet)"
            )
        os.replace(partial, parquet)
    return {"files": {"csv": str(csv), "parquet": str(parquet)}}


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


# -- one measurement, in a child process ------------------------------------------------------


def measure(name: str, file: Path, db: Path) -> dict:
    """Run one measurement in this process and return its figures (seconds until closed)."""
    import duckdb

    result: dict = {"measurement": name}
    if name in PEERS:
        reader = "read_parquet" if file.suffix == ".parquet" else "read_csv"
        result["rss_before_mb"] = round(h.rss_mb(), 1)
        cpu = h.cpu_seconds()
        start = time.perf_counter()
        con = duckdb.connect(str(db))
        if name == "duckdb-unordered":
            con.execute("SET preserve_insertion_order = false")
        con.execute(f"CREATE TABLE events AS SELECT * FROM {reader}({_literal(file)})")
        loaded = time.perf_counter()
        con.close()
        end = time.perf_counter()
        cpu = h.cpu_seconds() - cpu
        result["peak_rss_mb"] = round(h.peak_rss_mb(), 1)  # before the check below
        with duckdb.connect(str(db), read_only=True) as check:
            stored = check.execute("SELECT count(*) FROM events").fetchone()[0]
        result.update(rows_read=stored, rows_inserted=stored)
    else:
        from tailor.store import Warehouse, ingest_files

        result["rss_before_mb"] = round(h.rss_mb(), 1)  # after the imports, as for DuckDB
        cpu = h.cpu_seconds()
        start = time.perf_counter()
        wh = Warehouse(db)
        (report,) = ingest_files(wh, "events", [file])
        loaded = time.perf_counter()
        wh.close()
        end = time.perf_counter()
        cpu = h.cpu_seconds() - cpu
        result.update(rows_read=report.rows_read, rows_inserted=report.rows_inserted)
        if name == "tailor-again" and report.rows_inserted != 0:
            raise SystemExit(f"re-ingest added {report.rows_inserted} rows; it must add none")
    result.update(seconds=end - start, seconds_to_close=end - loaded, cpu_seconds=cpu)
    return result


# -- the run ----------------------------------------------------------------------------------


def run(rows: int, repeat: int, formats: Sequence[str] = tuple(TARGETS)) -> dict:
    files = {fmt: file for fmt, file in inputs(rows).items() if fmt in formats}
    script = Path(__file__).resolve()
    results: dict = {}
    for fmt, file in files.items():
        runs: dict[str, list[dict]] = {name: [] for name in MEASUREMENTS}
        for i in range(repeat):
            # Interleaved, so that a slow spell of the machine touches every measurement alike.
            folder = Path(tempfile.mkdtemp(prefix="run-", dir=h.DATA))
            try:
                for name in MEASUREMENTS:
                    db = folder / ("tailor.duckdb" if name.startswith("tailor") else f"{name}.db")
                    args = ["--measure", name, "--file", str(file), "--db", str(db)]
                    runs[name].append(h.child(script, args))
                    last = runs[name][-1]
                    print(
                        f"{fmt} run {i + 1}/{repeat} {name}: {last['seconds']:.2f} s, "
                        f"{last['peak_rss_mb']:.0f} MB",
                        file=sys.stderr,
                    )
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        summary = {}
        for name, found in runs.items():
            seconds = h.median([r["seconds"] for r in found])
            summary[name] = {
                "seconds": round(seconds, 3),
                "rows_per_second": round(rows / seconds),
                "cpu_seconds": round(h.median([r["cpu_seconds"] for r in found]), 2),
                "rss_before_mb": round(h.median([r["rss_before_mb"] for r in found]), 1),
                "peak_rss_mb": round(h.median([r["peak_rss_mb"] for r in found]), 1),
                "rows_inserted": found[0]["rows_inserted"],
                "runs": found,
            }
        ratios = {
            peer: round(summary[peer]["seconds"] / summary["tailor"]["seconds"], 2)
            for peer in PEERS
        }
        cpu_ratios = {
            peer: round(summary[peer]["cpu_seconds"] / summary["tailor"]["cpu_seconds"], 2)
            for peer in PEERS
        }
        results[fmt] = {
            "file": file.name,
            "file_mb": round(file.stat().st_size / 1024**2, 1),
            "measurements": summary,
            "throughput_ratio": ratios,
            "cpu_ratio": cpu_ratios,
            "target": TARGETS[fmt],
            "target_met": {peer: ratios[peer] >= TARGETS[fmt] for peer in PEERS},
        }
    return {
        "benchmark": "ingest",
        "rows": rows,
        "repeat": repeat,
        "statistic": "median",
        "machine": h.machine(),
        "results": results,
    }


def render(out: dict) -> str:
    every = [
        run for result in out["results"].values() for m in result["measurements"].values()
        for run in m["runs"]
    ]  # fmt: skip
    lines = [
        f"{out['rows']:,} rows; median of {out['repeat']} run(s), each in a fresh process",
        h.describe(out["machine"]),
        f"1-minute load average at the end of the runs: {h.load_range(every)} "
        f"(on {out['machine']['cores']} cores)",
        "",
    ]
    rows = []
    for fmt, result in out["results"].items():
        for name, m in result["measurements"].items():
            rows.append(
                [
                    f"{fmt} ({result['file_mb']:.0f} MB)",
                    MEASUREMENTS[name],
                    f"{m['seconds']:.2f}",
                    f"{m['rows_per_second'] / 1e6:.2f} M",
                    f"{m['cpu_seconds']:.1f}",
                    f"{m['rss_before_mb']:.0f}",
                    f"{m['peak_rss_mb']:.0f}",
                    f"{m['rows_inserted']:,}",
                ]
            )
    header = ["input", "measurement", "seconds", "rows/s", "CPU s", "RSS at start MB"]
    header.append("peak RSS MB")
    header.append("rows stored")
    lines += [h.table(header, rows), ""]
    for fmt, result in out["results"].items():
        ratio = result["throughput_ratio"]
        verdict = {p: "met" if met else "MISSED" for p, met in result["target_met"].items()}
        lines.append(
            f"{fmt}: Tailor / DuckDB throughput {ratio['duckdb']:.2f}x (defaults: target "
            f">= {result['target']}x {verdict['duckdb']}), {ratio['duckdb-unordered']:.2f}x "
            f"(preserve_insertion_order = false: {verdict['duckdb-unordered']})"
        )
        cpu = result["cpu_ratio"]
        lines.append(
            f"{fmt}: DuckDB CPU seconds / Tailor CPU seconds {cpu['duckdb']:.2f}x (defaults), "
            f"{cpu['duckdb-unordered']:.2f}x (preserve_insertion_order = false)"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="events in the file")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument(
        "--format",
        action="append",
        choices=list(TARGETS),
        help="measure only this input (repeatable; default: every input)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=list(MEASUREMENTS), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # a child: one measurement, its figures as one JSON line
        h.emit(measure(args.measure, args.file, args.db))
        return
    if args.rows < 1 or args.repeat < 1:
        parser.error("--rows and --repeat must be positive")
    if args.prepare:
        h.emit(prepare(args.rows))
        return
    out = run(args.rows, args.repeat, args.format or tuple(TARGETS))
    print(json.dumps(out, indent=2) if args.json else render(out))


if __name__ == "__main__":
    main()
