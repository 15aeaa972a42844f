"""The cost of encryption at rest and of pseudonymous ids, on The Complete Journey.

    python benchmarks/privacy.py                       # every recommender in the builds
    python benchmarks/privacy.py --repeat 3 --recommenders popularity,hybrid --json

* ``ingest``: the seven files of The Complete Journey (1.68 M rows, 1.47 M of them
  transactions) into a fresh warehouse with ``ingest_files``, as ``tailor demo`` loads them:
  plain, pseudonymized (``pseudonymize=True``), encrypted, and both.
* ``build``: :func:`tailor.build.build` over that warehouse, plain and encrypted (the warehouse
  read through DuckDB's AES-GCM, every build file written through AES-GCM).
* ``load``: what a reader of the build loads (``tailor recommend`` and the server at start):
  ``current_build``, the default recommender with its dataset, customer intelligence, offer
  scores and rules.
* ``files``: every file of the plain build written and read back through
  :mod:`tailor.privacy.crypto`, with and without the key: the cost of the build files'
  encryption alone, apart from the noise of fitting.

Each figure is the median of ``--repeat`` runs (builds: ``--build-repeat``), in this process,
the variants taking turns. Keys are fixed test strings, set in this process's environment only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import _harness as h
from tailor.build import build, builds_dir, current_build, load_recommender, load_rules
from tailor.customers.intelligence import CustomerIntelligence
from tailor.demo import TABLES, data_dir
from tailor.marketing.targeting import OfferScores
from tailor.privacy.crypto import read_build_file, write_build_file
from tailor.privacy.keys import Secret
from tailor.store import Warehouse, ingest_files

ENCRYPTION_KEY = "benchmark encryption key, not a secret"
PSEUDONYM_KEY = Secret(b"benchmark pseudonym key, not a secret", "the benchmark")
VARIANTS = {
    "plain": (False, False),
    "pseudonymized": (False, True),
    "encrypted": (True, False),
    "encrypted + pseudonymized": (True, True),
}


def interleaved(steps: dict[str, Callable[[], object]], repeat: int) -> dict[str, dict]:
    """Each step ``repeat`` times, the steps taking turns (so that a busy spell of the machine
    weighs on all of them): {name: {"seconds": median, "runs": [...]}}."""
    runs: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeat):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            runs[name].append(round(time.perf_counter() - start, 3))
    return {name: {"seconds": h.median(r), "runs": r} for name, r in runs.items()}


@contextmanager
def encryption(on: bool) -> Iterator[None]:
    """The encryption key configured (build files follow it) or not, for a block."""
    if on:
        os.environ["TAILOR_ENCRYPTION_KEY"] = ENCRYPTION_KEY
    try:
        yield
    finally:
        os.environ.pop("TAILOR_ENCRYPTION_KEY", None)


def ingest(db: Path, encrypted: bool, pseudonymize: bool) -> None:
    """The Complete Journey into a fresh warehouse ``db``."""
    db.unlink(missing_ok=True)
    with Warehouse(db, encryption_key=key(encrypted)) as wh:
        for name, kind, mapping in TABLES:
            ingest_files(
                wh, kind, [data_dir() / f"{name}.parquet"], mapping,
                pseudonymize=pseudonymize, pseudonym_key=PSEUDONYM_KEY,
            )  # fmt: skip


def load(builds: Path, encrypted: bool) -> None:
    with encryption(encrypted):
        info = current_build(builds)
        load_recommender(info)
        CustomerIntelligence.load(info.path / "customers")
        OfferScores.load(info.path / "offers")
        load_rules(info)


def run_build(db: Path, encrypted: bool, recommenders: list[str] | None) -> dict:
    shutil.rmtree(builds_dir(db), ignore_errors=True)
    with encryption(encrypted), Warehouse(db, read_only=True, encryption_key=key(encrypted)) as wh:
        return build(wh, builds_dir(db), recommenders=recommenders).manifest


def rewrite_files(files: dict[Path, bytes], encrypted: bool) -> None:
    """Every file of a build written and read back through tailor.privacy.crypto."""
    with encryption(encrypted):
        for path, data in files.items():
            write_build_file(path, data)
            read_build_file(path)


def key(encrypted: bool) -> str | None:
    return ENCRYPTION_KEY if encrypted else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--build-repeat", type=int, default=1)
    parser.add_argument("--recommenders", help="comma-separated [default: all]")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    recommenders = args.recommenders.split(",") if args.recommenders else None
    result: dict = {"machine": h.machine(), "recommenders": recommenders or "all"}
    with tempfile.TemporaryDirectory() as folder:
        db = {name: Path(folder) / f"{name.replace(' + ', '-')}.duckdb" for name in VARIANTS}
        steps = {name: partial(ingest, db[name], *flags) for name, flags in VARIANTS.items()}
        result["ingest"] = interleaved(steps, args.repeat)
        manifests: dict[str, dict] = {}

        def builder(name: str) -> Callable[[], None]:
            def step() -> None:
                manifests[name] = run_build(db[name], name == "encrypted", recommenders)

            return step

        result["build"] = interleaved({n: builder(n) for n in ("plain", "encrypted")},
                                      args.build_repeat)  # fmt: skip
        for name in ("plain", "encrypted"):
            files = [p for p in builds_dir(db[name]).rglob("*") if p.is_file()]
            result["build"][name]["bytes"] = sum(p.stat().st_size for p in files)
            result["build"][name]["steps"] = manifests[name]["steps"]
        steps = {
            n: partial(load, builds_dir(db[n]), n == "encrypted") for n in ("plain", "encrypted")
        }
        result["load"] = interleaved(steps, args.repeat)
        plain = current_build(builds_dir(db["plain"])).path
        files = {p: p.read_bytes() for p in plain.rglob("*") if p.is_file()}
        steps = {n: partial(rewrite_files, files, n == "encrypted") for n in ("plain", "encrypted")}
        result["files"] = interleaved(steps, args.repeat)
        result["files"]["bytes"] = sum(len(b) for b in files.values())
    result["load_average"] = h.load_average()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(h.describe(result["machine"]))
    rows = [
        [f"{step}: {variant}", f"{figures['seconds']:.2f}", " ".join(map(str, figures["runs"]))]
        for step in ("ingest", "build", "load", "files")
        for variant, figures in result[step].items()
        if isinstance(figures, dict)
    ]
    print(h.table(["measurement", "seconds (median)", "runs"], rows))


if __name__ == "__main__":
    main()
