"""Erasure: forget a customer everywhere Tailor holds them (GDPR art. 17, CCPA deletion).

:func:`forget` removes one customer, in this order, each step safe to repeat:

1. **the build**: a new build is published (atomically, like any build) in which the customer is
   folded out: the dataset without their row and events, every recommender with
   :meth:`~tailor.recommend.base.Recommender.forget`, and every per-customer table of the build
   (customer intelligence, offer scores, opt-outs: any Parquet file with a ``customer_id``
   column) without their rows. Every older build is then deleted: it holds them too.
2. **the warehouse**: their rows are deleted from every table holding customer ids, and the
   erasure is recorded in ``erasure_log``, in one transaction; the log holds only a keyed hash of
   the id (HMAC-SHA256 with the audit key, see :func:`audit_key`), so it proves a given id was
   forgotten without naming anyone.
3. **the file**: DuckDB leaves deleted values in the file's freed blocks, so the warehouse is
   copied into a fresh file (``COPY FROM DATABASE``) that replaces it.

What the fold-out removes at once is everything *about* the customer: their rows, ids, events,
features, scores and lists, and their share of every count-based model (popularity, trending,
segment lists, user-KNN, content profiles, repurchase cycles), which is refitted exactly. Models
whose shared weights learned from everyone together (item-KNN neighbours, EASE, ALS and BPR item
factors, the hybrid's ranker, customer intelligence's segment profiles and model parameters)
have no exact fold-out: they lose the customer's own rows now and their share of the shared
weights at the next build — the manifest lists them under ``erasure.retrain_pending``, and
``rebuild=True`` (``tailor forget --rebuild``) retrains everything at once instead.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import scipy.sparse as sp

from tailor.build import (
    CURRENT,
    BuildInfo,
    current_build,
    load_dataset,
    load_dataset_arrays,
    publish,
    save_dataset,
)
from tailor.privacy.crypto import reading, writing
from tailor.recommend.base import Recommender
from tailor.store.schema import domains, quote
from tailor.store.warehouse import Warehouse

AUDIT_KEY_ENV = "TAILOR_AUDIT_KEY"
LOG_TABLE = "erasure_log"
LOG_COLUMNS = ["erased_at", "subject", "warehouse_rows", "build_id", "retrain_pending"]
_LOG_SQL = (
    f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} (erased_at TIMESTAMP, subject VARCHAR, "
    "warehouse_rows BIGINT, build_id VARCHAR, retrain_pending VARCHAR)"
)


@dataclass
class Erasure:
    """What :func:`forget` did; ``subject`` is the keyed hash the audit log holds."""

    subject: str
    held: bool
    warehouse_rows: dict[str, int] = field(default_factory=dict)
    build_id: str | None = None
    builds_deleted: int = 0
    retrain_pending: list[str] = field(default_factory=list)
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)  # seconds of each step

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "held": self.held,
            "warehouse_rows": self.warehouse_rows,
            "build_id": self.build_id,
            "builds_deleted": self.builds_deleted,
            "retrain_pending": self.retrain_pending,
            "seconds": round(self.seconds, 3),
            "steps": {step: round(s, 3) for step, s in self.steps.items()},
        }


def audit_key(db: Path) -> bytes:
    """The key of the audit log's hashes: ``$TAILOR_AUDIT_KEY``, else the key file beside the
    warehouse (``shop.audit-key``, made on first use, readable by its owner only). Keep a copy
    in a secret store: without it no one can check an id against the log."""
    if os.environ.get(AUDIT_KEY_ENV):
        return os.environ[AUDIT_KEY_ENV].encode()
    path = db.with_name(db.stem + ".audit-key")
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def subject_hash(key: bytes, customer_id: Any) -> str:
    """HMAC-SHA256 of the id as text: what the audit log records instead of the id."""
    return hmac.new(key, str(customer_id).strip().encode(), hashlib.sha256).hexdigest()


def forget(
    wh: Warehouse, builds: Path, customer_id: Any, rebuild: bool = False, **build_options: Any
) -> Erasure:
    """Forget one customer in the build, the warehouse and its file (see the module docstring).

    ``wh`` is open for writing and is closed and reopened by the file rewrite (``wh.con`` is a
    new connection afterwards). With ``rebuild``, a full build (``build_options`` passed to
    :func:`tailor.build.build`) replaces the fold-out.
    """
    start = time.perf_counter()
    steps = {}
    key = str(customer_id).strip()
    erasure = Erasure(subject=subject_hash(audit_key(wh.path), key), held=False)
    wh.con.execute(_LOG_SQL)
    erasure.warehouse_rows = _delete_rows(wh, key)
    erasure.held = any(erasure.warehouse_rows.values())
    steps["warehouse"] = time.perf_counter() - start
    if builds.exists() and (builds / CURRENT).exists():
        if rebuild:
            from tailor.build import build

            info = build(wh, builds, **build_options)
        else:
            info, pending, held = fold_out(current_build(builds), key)
            erasure.retrain_pending = pending
            erasure.held = erasure.held or held
        erasure.build_id = info.build_id
        erasure.builds_deleted = _delete_other_builds(builds, info.build_id)
    steps["build"] = time.perf_counter() - start - sum(steps.values())
    wh.con.execute(
        f"INSERT INTO {LOG_TABLE} VALUES (?, ?, ?, ?, ?)",
        [
            datetime.now(UTC).replace(tzinfo=None),
            erasure.subject,
            sum(erasure.warehouse_rows.values()),
            erasure.build_id,
            ",".join(erasure.retrain_pending),
        ],
    )
    wh.rewrite()
    steps["file"] = time.perf_counter() - start - sum(steps.values())
    erasure.seconds = time.perf_counter() - start
    erasure.steps = steps
    return erasure


def erasure_log(wh: Warehouse) -> pd.DataFrame:
    """The audit log of erasures, oldest first (no rows before the first)."""
    if not wh.has_table(LOG_TABLE):
        return pd.DataFrame(columns=LOG_COLUMNS)
    return wh.con.execute(f"SELECT * FROM {LOG_TABLE} ORDER BY erased_at").df()


def _delete_rows(wh: Warehouse, key: str) -> dict[str, int]:
    """Rows deleted per table that held the customer."""
    typed = wh.typed_id("customer", key)
    deleted: dict[str, int] = {}
    if typed is None:  # text in an integer domain: the warehouse cannot hold it
        return deleted
    with wh.transaction():
        for table, column in domains()["customer"]:
            count = wh.run(f"DELETE FROM {table} WHERE {quote(column)} = ?", [typed])
            if count:
                deleted[table] = deleted.get(table, 0) + count
    return deleted


def fold_out(info: BuildInfo, key: str) -> tuple[BuildInfo, list[str], bool]:
    """Publish ``info``'s build without the customer ``key``: (the new build, the models whose
    shared weights still hold their share, whether the build held them at all)."""
    interactions, customer_ids, _ = load_dataset_arrays(info)
    keep = pd.Series(customer_ids, dtype=object).astype(str).to_numpy() != key
    held_rows = not keep.all()
    # The dataset and models exist when the build fitted recommenders.
    dataset = load_dataset(info) if (info.path / "dataset.pkl").exists() else None
    folded = dataset.without_customers(keep) if held_rows and dataset is not None else dataset
    pending: list[str] = []
    tables: list[str] = []  # the build's tables that held the customer

    def fill(staging: Path) -> dict[str, Any]:
        for source in sorted(info.path.rglob("*")):
            relative = source.relative_to(info.path)
            target = staging / relative
            if source.is_dir():
                target.mkdir(exist_ok=True)
            elif source.suffix == ".parquet":
                if _parquet_without(source, target, key):
                    tables.append(str(relative))
            elif source.name == "manifest.json" or not held_rows:
                if source.name != "manifest.json":
                    os.link(source, target)  # unchanged: shared with the old build until it goes
            elif relative.parts[0] == "recommenders":
                model = Recommender.load(source, dataset).forget(folded, keep)
                model.save(target)
                if model.fold_out != "exact":
                    pending.append(model.name)
            elif source.name == "dataset.pkl":
                save_dataset(folded, target)
            elif source.name == "interactions.npz":
                with writing(target) as f:
                    sp.save_npz(f, interactions[keep])
            elif source.name == "customer_ids.npy":
                with writing(target) as f:
                    np.save(f, customer_ids[keep], allow_pickle=True)
            else:
                os.link(source, target)
        # Customer intelligence and offers: their rows go, their fitted models and profiles
        # wait for the next build.
        pending.extend(sorted({Path(t).parts[0] for t in tables} & {"customers", "offers"}))
        manifest = {k: v for k, v in info.manifest.items() if k not in _PUBLISHED}
        if folded is not None:
            manifest["dataset"] = folded.summary()
        previous = info.manifest.get("erasure", {})
        manifest["erasure"] = {
            "folded_out": previous.get("folded_out", 0) + int(held_rows or bool(tables)),
            "from_build": info.build_id,
            "retrain_pending": sorted(set(previous.get("retrain_pending", [])) | set(pending)),
        }
        return manifest

    new = publish(info.path.parent, fill)
    return new, new.manifest["erasure"]["retrain_pending"], held_rows or bool(tables)


_PUBLISHED = ("build_id", "created_at", "tailor_version")  # publish() writes these afresh


def _parquet_without(source: Path, target: Path, key: str) -> bool:
    """Copy a Parquet file without the rows whose customer_id is ``key``; True if it had any."""
    if "customer_id" not in pq.read_schema(reading(source)).names:
        os.link(source, target)
        return False
    frame = pd.read_parquet(reading(source))
    mine = frame["customer_id"].astype(str).str.strip().to_numpy() == key
    if not mine.any():
        os.link(source, target)  # the file is bound to its path in a build, not to the build
        return False
    with writing(target) as f:
        frame.loc[~mine].reset_index(drop=True).to_parquet(f, index=False)
    return True


def _delete_other_builds(builds: Path, current: str) -> int:
    """Delete every build but ``current`` (older ones still hold the forgotten customer)."""
    deleted = 0
    for path in builds.iterdir():
        # Dot folders are builds being written; a build cannot run while the warehouse is
        # held for writing, and the server runs no rebuild while it forgets.
        if path.is_dir() and path.name != current and not path.name.startswith("."):
            shutil.rmtree(path)
            deleted += 1
    return deleted
