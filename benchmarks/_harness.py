"""What the benchmark scripts share: the machine's description, child processes that measure
one thing each, medians and the printed table.

Every measurement runs in a fresh Python process, so its peak resident memory belongs to that
measurement alone. The parent stays lean (no DuckDB, no Tailor imported) because Linux carries
``ru_maxrss`` across ``exec``: a child's figure is at least its parent's peak at the spawn. The
children report their own high-water mark, ``VmHWM``, which starts afresh at ``exec``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

DATA = Path(__file__).resolve().parent / ".data"  # cached inputs; gitignored


def machine() -> dict:
    """CPU model, cores, memory and the versions that matter to the figures."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or "unknown"
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024**2, 1)
                break
    except OSError:
        pass
    versions = {}
    for package in ("duckdb", "tailor"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release().split('-')[0]}",
        "python": platform.python_version(),
        "duckdb": versions["duckdb"],
        "tailor": versions["tailor"],
    }


def describe(info: dict) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['memory_gb']} GB RAM, {info['os']}; "
        f"Python {info['python']}, DuckDB {info['duckdb']}, tailor {info['tailor']}"
    )


def rss_mb() -> float:
    """This process's resident memory now, in MB (Linux; 0 elsewhere)."""
    return _status_mb("VmRSS")


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status in MB; 0 where there is none."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MB: ``VmHWM`` on Linux, else
    ``ru_maxrss`` (KiB on Linux, bytes on macOS)."""
    peak = _status_mb("VmHWM")
    if peak:
        return peak
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / 1024**2 if sys.platform == "darwin" else maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process so far, in seconds; less sensitive than wall time
    to other work on the machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(result: dict) -> None:
    """A child's last word: its figures, with its peak memory, as one JSON line on stdout."""
    result.setdefault("peak_rss_mb", round(peak_rss_mb(), 1))
    result["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    result["load_average"] = load_average()
    print(json.dumps(result), flush=True)


def child(script: Path, args: Sequence[str]) -> dict:
    """Run ``python script args`` and return the JSON line it ends with."""
    done = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(
            f"measurement {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def load_average() -> float | None:
    """The 1-minute load average: other work on the machine makes every figure slower."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def load_range(runs: Sequence[dict]) -> str:
    loads = [r["load_average"] for r in runs if r.get("load_average") is not None]
    return f"{min(loads):.1f}-{max(loads):.1f}" if loads else "unknown"


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain fixed-width table: first column left-aligned, the others right-aligned."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts)

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *map(line, rows)])
